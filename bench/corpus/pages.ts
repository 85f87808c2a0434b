/**
 * Generated pages for the rrweb corpus recorder: a product catalogue (large DOM, inline SVG), a form-heavy checkout,
 * a live dashboard (table mutated by timers) and a long article (scrolling, data-URI images, lazy comments).
 * Deterministic: every page is built from a seeded PRNG, so two recordings see the same DOM.
 *
 * In-page scripts are plain JS strings (the project's TS has no DOM lib). Text that identifies the visitor is written
 * as USER_TOKEN and only appears after the recorder starts (mutations, typed input, console), so the amplifier can
 * vary it per synthetic session without touching full snapshots.
 */
import { crc32, deflateSync } from 'node:zlib';
import { prng } from '../shared/prng.ts';

/** Placeholder for per-visitor text; the amplifier swaps it for another 8-character string. */
export const USER_TOKEN = 'USR00000';

export interface PageDef {
  readonly name: string;
  readonly path: string;
  readonly html: string;
}

const WORDS = (
  'the of and a to in is you that it he was for on are as with his they at be this have from or one had by word but ' +
  'not what all were we when your can said there use an each which she do how their if will up other about out many ' +
  'then them these so some her would make like him into time has look two more write go see number no way could ' +
  'people my than first water been call who oil its now find long down day did get come made may part over new ' +
  'sound take only little work know place year live me back give most very after thing our just name good sentence ' +
  'man think say great where help through much before line right too mean old any same tell boy follow came want ' +
  'show also around form three small set put end does another well large must big even such because turn here why ' +
  'ask went men read need land different home us move try kind hand picture again change off play spell air away ' +
  'latency pipeline storage quarterly revenue coffee grinder ceramic walnut merino linen'
).split(' ');

const ADJECTIVES = 'Classic Modern Compact Deluxe Organic Vintage Smart Ultra Rugged Minimal Premium Everyday'.split(
  ' ',
);
const NOUNS =
  'Backpack Lamp Kettle Headphones Sneakers Jacket Mug Watch Blender Notebook Chair Speaker Tent Bottle Scarf'.split(
    ' ',
  );
const BRANDS =
  'Northwind Fabrikam Contoso Tailspin Adatum Litware Proseware Wingtip Lucerne Woodgrove Alpine Humongous'.split(' ');
const CATEGORIES = 'Home Kitchen Outdoor Audio Apparel Office Travel Fitness'.split(' ');
const COLORS = ['#e63946', '#f1c453', '#2a9d8f', '#264653', '#8ecae6', '#ffb703', '#6d597a', '#90be6d', '#577590'];

type Rand = () => number;

function pick<T>(rand: Rand, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)]!;
}

function int(rand: Rand, lo: number, hi: number): number {
  return lo + Math.floor(rand() * (hi - lo + 1));
}

function sentence(rand: Rand, min = 6, max = 18): string {
  const n = int(rand, min, max);
  const words: string[] = [];
  for (let i = 0; i < n; i++) words.push(pick(rand, WORDS));
  const text = words.join(' ');
  return `${text[0]!.toUpperCase()}${text.slice(1)}.`;
}

function paragraph(rand: Rand, sentences = int(rand, 3, 7)): string {
  const out: string[] = [];
  for (let i = 0; i < sentences; i++) out.push(sentence(rand));
  return out.join(' ');
}

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A small product illustration as inline SVG: rrweb serialises every shape as a node. */
function productSvg(rand: Rand): string {
  const bg = pick(rand, COLORS);
  const shapes: string[] = [`<rect width="160" height="120" rx="8" fill="${bg}" opacity="0.25"/>`];
  for (let i = 0, n = int(rand, 3, 6); i < n; i++) {
    const color = pick(rand, COLORS);
    if (rand() < 0.5) {
      shapes.push(
        `<circle cx="${int(rand, 20, 140)}" cy="${int(rand, 20, 100)}" r="${int(rand, 8, 30)}" fill="${color}"/>`,
      );
    } else {
      shapes.push(
        `<rect x="${int(rand, 10, 100)}" y="${int(rand, 10, 70)}" width="${int(rand, 20, 60)}" height="${int(rand, 15, 45)}" rx="4" fill="${color}"/>`,
      );
    }
  }
  shapes.push(
    `<path d="M10 ${int(rand, 90, 110)} Q 80 ${int(rand, 40, 80)} 150 ${int(rand, 90, 110)}" stroke="#333" fill="none" stroke-width="2"/>`,
  );
  return `<svg viewBox="0 0 160 120" width="160" height="120" role="img" aria-hidden="true">${shapes.join('')}</svg>`;
}

/** An RGB PNG with a noisy gradient, as a data URI (the kind of inlined hero image real pages carry). */
function pngDataUri(rand: Rand, width: number, height: number): string {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  const [r0, g0, b0] = [int(rand, 0, 255), int(rand, 0, 255), int(rand, 0, 255)];
  let o = 0;
  for (let y = 0; y < height; y++) {
    raw[o++] = 0;
    for (let x = 0; x < width; x++) {
      const noise = int(rand, -24, 24);
      raw[o++] = (r0 + x * 2 + noise) & 255;
      raw[o++] = (g0 + y * 3 + noise) & 255;
      raw[o++] = (b0 + ((x * y) >> 4) + noise) & 255;
    }
  }
  const chunk = (type: string, data: Buffer): Buffer => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, 'latin1');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
    return Buffer.concat([head, data, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  const png = Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
  return `data:image/png;base64,${png.toString('base64')}`;
}

function svgDataUri(rand: Rand): string {
  return `data:image/svg+xml;base64,${Buffer.from(productSvg(rand)).toString('base64')}`;
}

/**
 * The site stylesheet: hand-written component rules plus a generated utility layer, about the size of a real app's
 * CSS bundle. rrweb inlines it into every full snapshot as `_cssText`.
 */
export function siteCss(): string {
  const rules: string[] = [
    ':root{--brand:#3b5bdb;--brand-dark:#2b44a8;--ink:#1f2933;--muted:#6b7785;--line:#e3e8ef;--bg:#f7f9fc;--ok:#2f9e44;--bad:#e03131;--warn:#f08c00;--radius:10px;--shadow:0 1px 2px rgba(16,24,40,.06),0 1px 3px rgba(16,24,40,.1)}',
    '*,*::before,*::after{box-sizing:border-box}',
    'html{-webkit-text-size-adjust:100%;scroll-behavior:smooth}',
    'body{margin:0;font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);background:var(--bg)}',
    'a{color:var(--brand);text-decoration:none}a:hover{text-decoration:underline}',
    '.topbar{position:sticky;top:0;z-index:20;display:flex;align-items:center;gap:16px;padding:10px 24px;background:#fff;border-bottom:1px solid var(--line)}',
    '.topbar .logo{display:flex;align-items:center;gap:8px;font-weight:700;font-size:18px;color:var(--ink)}',
    '.topbar .search{flex:1;max-width:520px}',
    '.topbar .search input{width:100%;padding:8px 12px;border:1px solid var(--line);border-radius:999px;background:var(--bg)}',
    '.cart-badge{display:inline-flex;min-width:22px;height:22px;align-items:center;justify-content:center;border-radius:11px;background:var(--brand);color:#fff;font-size:12px}',
    '.layout{display:grid;grid-template-columns:260px 1fr;gap:24px;padding:24px;max-width:1440px;margin:0 auto}',
    '@media (max-width:820px){.layout{grid-template-columns:1fr}.sidebar{display:none}}',
    '.sidebar{background:#fff;border:1px solid var(--line);border-radius:var(--radius);padding:16px;align-self:start;position:sticky;top:72px}',
    '.sidebar h4{margin:16px 0 8px;font-size:12px;letter-spacing:.06em;text-transform:uppercase;color:var(--muted)}',
    '.sidebar label{display:flex;gap:8px;align-items:center;padding:3px 0;cursor:pointer}',
    '.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(210px,1fr));gap:16px}',
    '.card{background:#fff;border:1px solid var(--line);border-radius:var(--radius);padding:12px;box-shadow:var(--shadow);transition:transform .15s ease,box-shadow .15s ease}',
    '.card:hover{transform:translateY(-2px);box-shadow:0 8px 24px rgba(16,24,40,.12)}',
    '.card.hidden{display:none}.card .thumb{display:flex;justify-content:center;background:var(--bg);border-radius:8px}',
    '.card h3{font-size:15px;margin:10px 0 4px}.card .desc{color:var(--muted);font-size:13px;height:40px;overflow:hidden}',
    '.card .price{font-weight:700;font-size:17px}.card .price s{color:var(--muted);font-weight:400;margin-left:6px}',
    '.rating{color:#f59f00;font-size:13px}.rating span{color:var(--muted)}',
    '.btn{display:inline-flex;align-items:center;justify-content:center;gap:6px;padding:8px 14px;border:1px solid transparent;border-radius:8px;background:var(--brand);color:#fff;font-weight:600;cursor:pointer}',
    '.btn:hover{background:var(--brand-dark)}.btn.secondary{background:#fff;color:var(--ink);border-color:var(--line)}',
    '.btn.added{background:var(--ok)}.btn[disabled]{opacity:.5;cursor:not-allowed}',
    '.toast{position:fixed;right:24px;bottom:24px;padding:12px 16px;background:#1f2933;color:#fff;border-radius:8px;box-shadow:var(--shadow);animation:toast-in .2s ease-out}',
    '@keyframes toast-in{from{opacity:0;transform:translateY(8px)}to{opacity:1;transform:none}}',
    '.modal-backdrop{position:fixed;inset:0;background:rgba(15,23,42,.5);display:flex;align-items:center;justify-content:center;z-index:50}',
    '.modal{background:#fff;border-radius:14px;max-width:640px;width:92%;padding:24px;box-shadow:0 24px 48px rgba(0,0,0,.25)}',
    '.form{display:grid;gap:18px;max-width:760px}',
    'fieldset{border:1px solid var(--line);border-radius:var(--radius);padding:16px 20px;background:#fff}',
    'legend{font-weight:700;padding:0 6px}',
    '.field{display:flex;flex-direction:column;gap:4px;margin-bottom:10px}.field label{font-size:13px;color:var(--muted)}',
    '.field input,.field select,.field textarea{padding:9px 11px;border:1px solid var(--line);border-radius:8px;font:inherit;background:#fff}',
    '.field input:focus,.field select:focus,.field textarea:focus{outline:2px solid rgba(59,91,219,.35);border-color:var(--brand)}',
    '.field.invalid input,.field.invalid select{border-color:var(--bad)}.field .error{color:var(--bad);font-size:12px}',
    '.row2{display:grid;grid-template-columns:1fr 1fr;gap:12px}.row3{display:grid;grid-template-columns:2fr 1fr 1fr;gap:12px}',
    '.summary{background:#fff;border:1px solid var(--line);border-radius:var(--radius);padding:16px}',
    '.summary li{display:flex;justify-content:space-between;padding:6px 0;border-bottom:1px dashed var(--line)}',
    '.kpis{display:grid;grid-template-columns:repeat(4,1fr);gap:16px;margin-bottom:18px}',
    '.kpi{background:#fff;border:1px solid var(--line);border-radius:var(--radius);padding:14px}.kpi .v{font-size:26px;font-weight:700}',
    '.kpi .d.up{color:var(--ok)}.kpi .d.down{color:var(--bad)}',
    'table.data{width:100%;border-collapse:collapse;background:#fff;font-variant-numeric:tabular-nums}',
    'table.data th{position:sticky;top:0;background:#f1f4f9;text-align:left;font-size:12px;text-transform:uppercase;cursor:pointer}',
    'table.data th,table.data td{padding:7px 10px;border-bottom:1px solid var(--line)}',
    'table.data td.flash-up{background:#ebfbee;transition:background .6s}table.data td.flash-down{background:#fff5f5;transition:background .6s}',
    '.status{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px}.status.ok{background:#ebfbee;color:var(--ok)}',
    '.status.degraded{background:#fff4e6;color:var(--warn)}.status.down{background:#fff5f5;color:var(--bad)}',
    '.log{font:12px/1.5 ui-monospace,SFMono-Regular,Menlo,monospace;background:#0b1021;color:#c9d1d9;border-radius:8px;padding:10px;height:220px;overflow:auto}',
    '.log .warn{color:#f2cc60}.log .error{color:#ff7b72}',
    '.progress{position:fixed;top:0;left:0;height:3px;background:var(--brand);z-index:60}',
    '.article{max-width:720px;margin:0 auto;background:#fff;padding:40px 48px;border-radius:var(--radius)}',
    '.article h1{font-size:38px;line-height:1.15;margin:0 0 12px}.article h2{margin-top:40px}',
    '.article p{font-size:18px;line-height:1.7}.article figure{margin:28px 0}.article figure img{width:100%;border-radius:8px}',
    '.article blockquote{border-left:4px solid var(--brand);margin:24px 0;padding:4px 20px;color:var(--muted);font-style:italic}',
    '.article pre{background:#0b1021;color:#c9d1d9;padding:14px;border-radius:8px;overflow:auto}',
    '.toc a{display:block;padding:3px 0;color:var(--muted)}.toc a.current{color:var(--brand);font-weight:700}',
    '.comment{border-top:1px solid var(--line);padding:12px 0}.comment .who{font-weight:600}',
    '.sr-only{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0,0,0,0);border:0}',
  ];
  // A utility layer in the style of atomic CSS frameworks: many tiny rules, as shipped by real sites.
  const sizes = [0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64];
  const props: [string, string][] = [
    ['m', 'margin'],
    ['mt', 'margin-top'],
    ['mb', 'margin-bottom'],
    ['ml', 'margin-left'],
    ['mr', 'margin-right'],
    ['p', 'padding'],
    ['pt', 'padding-top'],
    ['pb', 'padding-bottom'],
    ['px', 'padding-inline'],
    ['py', 'padding-block'],
    ['gap', 'gap'],
    ['w', 'width'],
    ['h', 'height'],
  ];
  for (const bp of ['', 'sm\\:', 'md\\:', 'lg\\:']) {
    const body: string[] = [];
    for (const [short, prop] of props) for (const s of sizes) body.push(`.${bp}${short}-${s}{${prop}:${s * 0.25}rem}`);
    for (const c of COLORS)
      body.push(
        `.${bp}text-${c.slice(1)}{color:${c}}`,
        `.${bp}bg-${c.slice(1)}{background-color:${c}}`,
        `.${bp}border-${c.slice(1)}{border-color:${c}}`,
      );
    for (const d of ['block', 'inline', 'inline-block', 'flex', 'inline-flex', 'grid', 'none'])
      body.push(`.${bp}${d}{display:${d}}`);
    const width = { '': 0, 'sm\\:': 640, 'md\\:': 768, 'lg\\:': 1024 }[bp]!;
    rules.push(width ? `@media (min-width:${width}px){${body.join('')}}` : body.join(''));
  }
  return rules.join('\n');
}

const USER_SCRIPT = `
setTimeout(function () {
  var el = document.querySelector('.who-am-i');
  if (el) el.textContent = 'Signed in as ' + window.__user + ' · Account settings';
  console.info('session user', window.__user, { plan: 'pro', locale: navigator.language });
}, 600);
`;

function shell(title: string, body: string, script: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)}</title>
<link rel="stylesheet" href="/static/site.css">
<link rel="icon" href="data:,">
<script>window.__user = '${USER_TOKEN}';</script>
</head>
<body>
<header class="topbar">
  <a class="logo" href="/shop"><svg width="28" height="28" viewBox="0 0 28 28"><circle cx="14" cy="14" r="12" fill="#3b5bdb"/><path d="M8 15l4 4 8-9" stroke="#fff" stroke-width="3" fill="none"/></svg>Acme Supply</a>
  <nav class="flex gap-4"><a href="/shop">Shop</a><a href="/blog/field-notes">Journal</a><a href="/dashboard">Status</a></nav>
  <div class="search"><input type="search" name="q" placeholder="Search products, articles, orders…" autocomplete="off"></div>
  <span class="who-am-i text-577590"></span>
  <a class="cart-link" href="/checkout">Cart <span class="cart-badge" id="cart-count">0</span></a>
</header>
${body}
<footer class="p-8 text-577590">© Acme Supply · <a href="/shop">Terms</a> · <a href="/shop">Privacy</a></footer>
<script>${USER_SCRIPT}</script>
<script>${script}</script>
</body>
</html>`;
}

function productCard(rand: Rand, i: number): { html: string; data: object } {
  const name = `${pick(rand, ADJECTIVES)} ${pick(rand, NOUNS)} ${int(rand, 2, 9)}${pick(rand, ['', 'X', ' Pro', ' Mini'])}`;
  const brand = pick(rand, BRANDS);
  const category = pick(rand, CATEGORIES);
  const price = int(rand, 900, 39900) / 100;
  const was = rand() < 0.3 ? ` <s>$${(price * 1.25).toFixed(2)}</s>` : '';
  const stars = int(rand, 2, 5);
  const reviews = int(rand, 0, 2400);
  const sku = `SKU-${(100000 + i).toString(36).toUpperCase()}`;
  const html = `<article class="card" data-sku="${sku}" data-brand="${brand}" data-category="${category}" data-price="${price}">
<div class="thumb">${productSvg(rand)}</div>
<h3>${esc(name)}</h3>
<p class="desc">${esc(sentence(rand, 8, 16))}</p>
<div class="price">$${price.toFixed(2)}${was}</div>
<div class="rating">${'★'.repeat(stars)}${'☆'.repeat(5 - stars)} <span>(${reviews})</span></div>
<div class="flex gap-2 mt-2"><button class="btn add" data-sku="${sku}">Add to cart</button><button class="btn secondary quick" data-sku="${sku}">Quick view</button></div>
</article>`;
  return { html, data: { sku, name, brand, category, price, stars, reviews, desc: sentence(rand, 8, 16) } };
}

function cataloguePage(): PageDef {
  const rand = prng(101);
  const cards: string[] = [];
  for (let i = 0; i < 180; i++) cards.push(productCard(rand, i).html);
  const more: object[] = [];
  for (let i = 180; i < 420; i++) more.push(productCard(rand, i).data);
  const filters = (title: string, values: readonly string[], attr: string) =>
    `<h4>${title}</h4>${values.map((v) => `<label><input type="checkbox" data-filter="${attr}" value="${v}"> ${v}</label>`).join('')}`;
  const body = `<main class="layout">
<aside class="sidebar">
  ${filters('Category', CATEGORIES, 'category')}
  ${filters('Brand', BRANDS, 'brand')}
  <h4>Max price</h4><input type="range" id="max-price" min="10" max="400" value="400"> <output id="max-price-out">$400</output>
  <h4>Sort</h4><select id="sort"><option value="featured">Featured</option><option value="price-asc">Price: low to high</option><option value="price-desc">Price: high to low</option><option value="rating">Rating</option></select>
</aside>
<section>
  <div class="flex mb-4"><h2 class="m-0">All products</h2><span class="ml-4 text-577590" id="result-count">180 results</span></div>
  <div class="grid" id="grid">${cards.join('\n')}</div>
  <div class="flex mt-8"><button class="btn secondary" id="load-more">Load more</button></div>
</section>
</main>
<script type="application/json" id="more-products">${JSON.stringify(more)}</script>`;
  const script = `
(function () {
  var grid = document.getElementById('grid');
  var count = 0;
  var more = JSON.parse(document.getElementById('more-products').textContent);
  var cursor = 0;
  function toast(text) {
    var t = document.createElement('div');
    t.className = 'toast';
    t.textContent = text;
    document.body.appendChild(t);
    setTimeout(function () { t.remove(); }, 1800);
  }
  function svg(seed) {
    var colors = ['#e63946', '#f1c453', '#2a9d8f', '#264653', '#8ecae6', '#ffb703'];
    var out = '<svg viewBox="0 0 160 120" width="160" height="120"><rect width="160" height="120" rx="8" fill="' + colors[seed % 6] + '" opacity="0.25"/>';
    for (var i = 0; i < 4; i++) out += '<circle cx="' + ((seed * 37 + i * 41) % 140 + 10) + '" cy="' + ((seed * 13 + i * 29) % 100 + 10) + '" r="' + (8 + (seed + i) % 20) + '" fill="' + colors[(seed + i) % 6] + '"/>';
    return out + '</svg>';
  }
  function card(p, n) {
    var a = document.createElement('article');
    a.className = 'card';
    a.dataset.sku = p.sku; a.dataset.brand = p.brand; a.dataset.category = p.category; a.dataset.price = p.price;
    a.innerHTML = '<div class="thumb">' + svg(n) + '</div><h3></h3><p class="desc"></p><div class="price">$' + p.price.toFixed(2) +
      '</div><div class="rating">' + '★★★★★'.slice(0, p.stars) + '☆☆☆☆☆'.slice(p.stars) + ' <span>(' + p.reviews + ')</span></div>' +
      '<div class="flex gap-2 mt-2"><button class="btn add" data-sku="' + p.sku + '">Add to cart</button><button class="btn secondary quick" data-sku="' + p.sku + '">Quick view</button></div>';
    a.querySelector('h3').textContent = p.name;
    a.querySelector('.desc').textContent = p.desc;
    return a;
  }
  function applyFilters() {
    var checked = Array.prototype.slice.call(document.querySelectorAll('[data-filter]:checked'));
    var max = Number(document.getElementById('max-price').value);
    var shown = 0;
    document.querySelectorAll('.card').forEach(function (c) {
      var ok = Number(c.dataset.price) <= max;
      ['category', 'brand'].forEach(function (attr) {
        var wanted = checked.filter(function (x) { return x.dataset.filter === attr; }).map(function (x) { return x.value; });
        if (wanted.length && wanted.indexOf(c.dataset[attr]) < 0) ok = false;
      });
      c.classList.toggle('hidden', !ok);
      if (ok) shown++;
    });
    document.getElementById('result-count').textContent = shown + ' results';
    console.log('filters applied', { checked: checked.map(function (x) { return x.value; }), max: max, shown: shown });
  }
  document.addEventListener('change', function (e) {
    if (e.target.dataset && e.target.dataset.filter) applyFilters();
    if (e.target.id === 'sort') {
      var cards = Array.prototype.slice.call(grid.children);
      var key = e.target.value;
      cards.sort(function (a, b) {
        if (key === 'price-asc') return a.dataset.price - b.dataset.price;
        if (key === 'price-desc') return b.dataset.price - a.dataset.price;
        return a.dataset.sku < b.dataset.sku ? -1 : 1;
      });
      cards.forEach(function (c) { grid.appendChild(c); });
      console.log('sorted by', key);
    }
  });
  document.getElementById('max-price').addEventListener('input', function (e) {
    document.getElementById('max-price-out').textContent = '$' + e.target.value;
  });
  document.getElementById('max-price').addEventListener('change', applyFilters);
  document.addEventListener('click', function (e) {
    var add = e.target.closest && e.target.closest('.add');
    if (add) {
      count++;
      document.getElementById('cart-count').textContent = String(count);
      add.classList.add('added');
      add.textContent = 'Added ✓';
      toast('Added ' + add.dataset.sku + ' to your cart');
      console.log('analytics: add_to_cart', { sku: add.dataset.sku, cart: count, user: window.__user });
      if (count % 3 === 0) console.warn('cart service slow: 1240ms for POST /api/cart');
    }
    var quick = e.target.closest && e.target.closest('.quick');
    if (quick) {
      var src = quick.closest('.card');
      var bd = document.createElement('div');
      bd.className = 'modal-backdrop';
      bd.innerHTML = '<div class="modal"><h2></h2><div class="thumb">' + src.querySelector('.thumb').innerHTML +
        '</div><p></p><label>Quantity <input type="number" min="1" value="1" class="qty"></label> <button class="btn close">Close</button></div>';
      bd.querySelector('h2').textContent = src.querySelector('h3').textContent;
      bd.querySelector('p').textContent = src.querySelector('.desc').textContent + ' Ships in 2-4 business days.';
      document.body.appendChild(bd);
      if (Math.random() < 0.5) console.error('Failed to load reviews for ' + quick.dataset.sku + ': HTTP 503');
    }
    if (e.target.classList && e.target.classList.contains('close')) e.target.closest('.modal-backdrop').remove();
    if (e.target.id === 'load-more') {
      var frag = document.createDocumentFragment();
      for (var i = 0; i < 48 && cursor < more.length; i++, cursor++) frag.appendChild(card(more[cursor], cursor));
      grid.appendChild(frag);
      console.log('loaded page', cursor / 48, 'of catalogue');
      if (cursor >= more.length) e.target.disabled = true;
    }
  });
  window.addEventListener('scroll', function () {
    if (window.scrollY + window.innerHeight > document.body.scrollHeight - 300 && cursor < more.length && !window.__autoloading) {
      window.__autoloading = true;
      setTimeout(function () { document.getElementById('load-more').click(); window.__autoloading = false; }, 250);
    }
  });
})();
`;
  return { name: 'catalogue', path: '/shop', html: shell('Shop all products — Acme Supply', body, script) };
}

function checkoutPage(): PageDef {
  const rand = prng(202);
  const items: string[] = [];
  let total = 0;
  for (let i = 0; i < 6; i++) {
    const price = int(rand, 900, 19900) / 100;
    const qty = int(rand, 1, 3);
    total += price * qty;
    items.push(
      `<li><span>${qty} × ${esc(`${pick(rand, ADJECTIVES)} ${pick(rand, NOUNS)}`)}</span><span>$${(price * qty).toFixed(2)}</span></li>`,
    );
  }
  const countries = [
    'United States',
    'Canada',
    'United Kingdom',
    'Germany',
    'France',
    'Netherlands',
    'Japan',
    'Brazil',
  ];
  const states =
    'AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY'.split(
      ' ',
    );
  const field = (id: string, label: string, attrs = '') =>
    `<div class="field" data-for="${id}"><label for="${id}">${label}</label><input id="${id}" name="${id}" ${attrs}></div>`;
  const address = (prefix: string) => `
  ${field(`${prefix}-name`, 'Full name', 'autocomplete="name" required')}
  ${field(`${prefix}-street`, 'Street address', 'autocomplete="street-address" required')}
  ${field(`${prefix}-apt`, 'Apartment, suite, etc. (optional)')}
  <div class="row3">${field(`${prefix}-city`, 'City', 'required')}<div class="field"><label for="${prefix}-state">State</label><select id="${prefix}-state">${states.map((s) => `<option>${s}</option>`).join('')}</select></div>${field(`${prefix}-zip`, 'ZIP', 'inputmode="numeric" required')}</div>
  <div class="field"><label for="${prefix}-country">Country</label><select id="${prefix}-country">${countries.map((c) => `<option>${c}</option>`).join('')}</select></div>`;
  const body = `<main class="layout">
<aside class="summary"><h3>Order summary</h3><ul class="p-0">${items.join('')}</ul>
  <p>Subtotal <b id="subtotal">$${total.toFixed(2)}</b></p><p>Shipping <b id="ship-cost">$0.00</b></p><p>Total <b id="total">$${total.toFixed(2)}</b></p>
  <div class="field"><label for="promo">Promo code</label><input id="promo" name="promo"></div><button class="btn secondary" id="apply-promo" type="button">Apply</button><div id="promo-msg"></div>
</aside>
<form class="form" id="checkout" novalidate>
  <fieldset><legend>Contact</legend>
    ${field('email', 'Email', 'type="email" autocomplete="email" required')}
    ${field('phone', 'Phone', 'type="tel" autocomplete="tel"')}
    <label><input type="checkbox" id="news" checked> Email me with news and offers</label>
  </fieldset>
  <fieldset><legend>Shipping address</legend>${address('ship')}</fieldset>
  <fieldset><legend>Shipping method</legend>
    <label><input type="radio" name="ship" value="0" checked> Standard (5–7 days) — free</label><br>
    <label><input type="radio" name="ship" value="9.5"> Express (2 days) — $9.50</label><br>
    <label><input type="radio" name="ship" value="24"> Overnight — $24.00</label>
  </fieldset>
  <fieldset><legend>Payment</legend>
    ${field('card', 'Card number', 'inputmode="numeric" autocomplete="cc-number" required')}
    <div class="row2">${field('exp', 'Expiry (MM / YY)', 'autocomplete="cc-exp" required')}${field('cvc', 'Security code', 'type="password" autocomplete="cc-csc" required')}</div>
    ${field('card-name', 'Name on card', 'autocomplete="cc-name" required')}
    <label><input type="checkbox" id="same-billing" checked> Billing address same as shipping</label>
    <div id="billing" hidden>${address('bill')}</div>
  </fieldset>
  <fieldset><legend>Notes</legend><div class="field"><label for="notes">Delivery instructions</label><textarea id="notes" rows="3"></textarea></div>
    <label><input type="checkbox" id="terms"> I agree to the terms of sale</label></fieldset>
  <button class="btn" id="pay" type="submit">Pay now</button>
</form>
</main>`;
  const script = String.raw`
(function () {
  var form = document.getElementById('checkout');
  var attempts = 0;
  var subtotal = ${total.toFixed(2)};
  function setError(id, text) {
    var f = document.querySelector('.field[data-for="' + id + '"]');
    if (!f) return;
    var err = f.querySelector('.error');
    if (text) {
      f.classList.add('invalid');
      if (!err) { err = document.createElement('span'); err.className = 'error'; f.appendChild(err); }
      err.textContent = text;
    } else {
      f.classList.remove('invalid');
      if (err) err.remove();
    }
  }
  document.getElementById('card').addEventListener('input', function (e) {
    var digits = e.target.value.replace(/\D/g, '').slice(0, 16);
    e.target.value = digits.replace(/(.{4})/g, '$1 ').trim();
  });
  document.getElementById('exp').addEventListener('input', function (e) {
    var d = e.target.value.replace(/\D/g, '').slice(0, 4);
    e.target.value = d.length > 2 ? d.slice(0, 2) + ' / ' + d.slice(2) : d;
  });
  document.getElementById('same-billing').addEventListener('change', function (e) {
    document.getElementById('billing').hidden = e.target.checked;
  });
  document.querySelectorAll('input[name=ship]').forEach(function (r) {
    r.addEventListener('change', function () {
      var cost = Number(r.value);
      document.getElementById('ship-cost').textContent = '$' + cost.toFixed(2);
      document.getElementById('total').textContent = '$' + (subtotal + cost).toFixed(2);
    });
  });
  document.getElementById('apply-promo').addEventListener('click', function () {
    var code = document.getElementById('promo').value.trim().toUpperCase();
    var msg = document.getElementById('promo-msg');
    if (code === 'WELCOME10') { msg.textContent = '10% off applied'; msg.className = 'text-2a9d8f'; subtotal = subtotal * 0.9; }
    else { msg.textContent = 'This code is not valid'; msg.className = 'text-e63946'; console.warn('promo rejected', code); }
  });
  form.addEventListener('input', function (e) { if (e.target.id) setError(e.target.id, ''); });
  form.addEventListener('submit', function (e) {
    e.preventDefault();
    attempts++;
    var bad = 0;
    form.querySelectorAll('input[required]').forEach(function (input) {
      if (input.closest('[hidden]')) return;
      var v = input.value.trim();
      var msg = v ? '' : 'Required';
      if (v && input.type === 'email' && v.indexOf('@') < 0) msg = 'Enter a valid email';
      if (v && input.id === 'card' && v.replace(/\D/g, '').length < 16) msg = 'Card number is incomplete';
      setError(input.id, msg);
      if (msg) bad++;
    });
    if (!document.getElementById('terms').checked) { bad++; console.warn('terms not accepted'); }
    console.log('checkout submit', { attempt: attempts, invalid: bad, user: window.__user });
    if (bad) return;
    if (attempts < 3) {
      console.error('PaymentError: card_declined (attempt ' + attempts + ')');
      setTimeout(function () { throw new Error('Unhandled: payment widget state mismatch'); }, 10);
      setError('card', 'Your card was declined. Try again or use another card.');
      return;
    }
    form.innerHTML = '<fieldset><legend>Thank you!</legend><p>Order <b>#A-' + (100000 + attempts * 7919) + '</b> is confirmed. A receipt was sent to ' +
      window.__user + '@example.com.</p></fieldset>';
    console.log('purchase', { value: subtotal, currency: 'USD' });
  });
})();
`;
  return { name: 'checkout', path: '/checkout', html: shell('Checkout — Acme Supply', body, script) };
}

function dashboardPage(): PageDef {
  const rand = prng(303);
  const regions = ['us-east-1', 'us-west-2', 'eu-west-1', 'eu-central-1', 'ap-south-1', 'ap-northeast-1', 'sa-east-1'];
  const services =
    'api auth billing search checkout inventory media notifications recommendations reports ingest export'.split(' ');
  const rows: string[] = [];
  for (let i = 0; i < 160; i++) {
    const status = rand() < 0.85 ? 'ok' : rand() < 0.7 ? 'degraded' : 'down';
    rows.push(
      `<tr data-row="${i}"><td>${pick(rand, services)}-${int(rand, 1, 40)}</td><td>${pick(rand, regions)}</td><td>${int(rand, 50, 9000)}</td><td>${int(rand, 8, 900)}</td><td>${(rand() * 3).toFixed(2)}%</td><td>${(rand() * 100).toFixed(1)}%</td><td><span class="status ${status}">${status}</span></td></tr>`,
    );
  }
  const kpi = (id: string, label: string, value: string) =>
    `<div class="kpi"><div class="text-577590">${label}</div><div class="v" id="${id}">${value}</div><div class="d up" id="${id}-d">+0.0%</div><svg width="200" height="40" viewBox="0 0 200 40"><path id="${id}-spark" d="M0 20 L200 20" stroke="#3b5bdb" fill="none" stroke-width="2"/></svg></div>`;
  const body = `<main class="layout">
<aside class="sidebar"><h4>Views</h4><a href="#overview">Overview</a><br><a href="#services">Services</a><br><a href="#incidents">Incidents</a>
  <h4>Refresh</h4><label><input type="checkbox" id="live" checked> Live updates</label>
  <h4>Region</h4><select id="region"><option value="">All regions</option>${regions.map((r) => `<option>${r}</option>`).join('')}</select></aside>
<section>
  <div class="kpis">${kpi('rps', 'Requests / s', '12,480')}${kpi('p99', 'p99 latency', '184 ms')}${kpi('err', 'Error rate', '0.42%')}${kpi('sat', 'Saturation', '61%')}</div>
  <div class="flex gap-4 mb-4"><input type="search" id="filter" placeholder="Filter services…"><button class="btn secondary" id="ack">Acknowledge alerts</button></div>
  <table class="data" id="services"><thead><tr><th data-col="0">Service</th><th data-col="1">Region</th><th data-col="2">RPS</th><th data-col="3">p99 ms</th><th data-col="4">Errors</th><th data-col="5">CPU</th><th data-col="6">Status</th></tr></thead>
  <tbody>${rows.join('\n')}</tbody></table>
  <h3 id="incidents">Event log</h3><div class="log" id="log"></div>
</section>
</main>`;
  const script = `
(function () {
  var seed = 7;
  function rnd() { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; }
  var body = document.querySelector('#services tbody');
  var log = document.getElementById('log');
  var series = { rps: [], p99: [], err: [], sat: [] };
  var tick = 0;
  function spark(id, v) {
    var s = series[id]; s.push(v); if (s.length > 40) s.shift();
    var max = Math.max.apply(null, s) || 1;
    var d = s.map(function (x, i) { return (i ? 'L' : 'M') + (i * 5) + ' ' + (38 - (x / max) * 34).toFixed(1); }).join(' ');
    document.getElementById(id + '-spark').setAttribute('d', d);
  }
  function line(level, text) {
    var div = document.createElement('div');
    div.className = level;
    div.textContent = new Date().toISOString().slice(11, 23) + ' ' + level.toUpperCase() + ' ' + text;
    log.appendChild(div);
    while (log.children.length > 60) log.firstChild.remove();
    log.scrollTop = log.scrollHeight;
  }
  function update() {
    if (!document.getElementById('live').checked) return;
    tick++;
    var rows = body.rows;
    for (var k = 0; k < 10; k++) {
      var row = rows[Math.floor(rnd() * rows.length)];
      var col = 2 + Math.floor(rnd() * 4);
      var cell = row.cells[col];
      var old = parseFloat(cell.textContent);
      var next = Math.max(0, old * (0.85 + rnd() * 0.3));
      cell.textContent = col === 4 ? next.toFixed(2) + '%' : col === 5 ? Math.min(100, next).toFixed(1) + '%' : String(Math.round(next));
      cell.className = next >= old ? 'flash-up' : 'flash-down';
      if (rnd() < 0.03) {
        var st = row.cells[6].firstChild;
        var s = ['ok', 'ok', 'degraded', 'down'][Math.floor(rnd() * 4)];
        st.className = 'status ' + s; st.textContent = s;
        line(s === 'down' ? 'error' : s === 'degraded' ? 'warn' : 'info', row.cells[0].textContent + ' in ' + row.cells[1].textContent + ' is ' + s);
        if (s === 'down') console.error('health check failed', { service: row.cells[0].textContent, region: row.cells[1].textContent });
      }
    }
    var rps = 12000 + Math.round(rnd() * 1500), p99 = 150 + Math.round(rnd() * 90), err = rnd() * 0.9, sat = 50 + rnd() * 30;
    document.getElementById('rps').textContent = rps.toLocaleString('en-US');
    document.getElementById('p99').textContent = p99 + ' ms';
    document.getElementById('err').textContent = err.toFixed(2) + '%';
    document.getElementById('sat').textContent = Math.round(sat) + '%';
    ['rps', 'p99', 'err', 'sat'].forEach(function (id, i) {
      var d = document.getElementById(id + '-d');
      var delta = (rnd() - 0.5) * 8;
      d.textContent = (delta >= 0 ? '+' : '') + delta.toFixed(1) + '%';
      d.className = 'd ' + (delta >= 0 ? 'up' : 'down');
      spark(id, [rps, p99, err, sat][i]);
    });
    if (tick % 3 === 0) line('info', 'poll ok: ' + rows.length + ' services, ' + rps + ' rps');
    if (tick % 10 === 0) console.log('metrics poll', { tick: tick, rps: rps, p99: p99, user: window.__user });
    if (p99 > 230) console.warn('p99 latency above SLO: ' + p99 + 'ms');
  }
  setInterval(update, 300);
  document.querySelector('#services thead').addEventListener('click', function (e) {
    var col = Number(e.target.dataset.col);
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].textContent, y = b.cells[col].textContent;
      return isNaN(parseFloat(x)) ? x.localeCompare(y) : parseFloat(y) - parseFloat(x);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    console.log('sorted services by column', col);
  });
  function filter() {
    var q = document.getElementById('filter').value.toLowerCase();
    var region = document.getElementById('region').value;
    Array.prototype.forEach.call(body.rows, function (r) {
      var show = r.cells[0].textContent.indexOf(q) >= 0 && (!region || r.cells[1].textContent === region);
      r.style.display = show ? '' : 'none';
    });
  }
  document.getElementById('filter').addEventListener('input', filter);
  document.getElementById('region').addEventListener('change', filter);
  document.getElementById('ack').addEventListener('click', function () {
    document.querySelectorAll('.status.down').forEach(function (s) { s.className = 'status degraded'; s.textContent = 'acknowledged'; });
    line('warn', 'alerts acknowledged by ' + window.__user);
  });
})();
`;
  return { name: 'dashboard', path: '/dashboard', html: shell('Service status — Acme Ops', body, script) };
}

function articlePage(): PageDef {
  const rand = prng(404);
  const sections: string[] = [];
  const toc: string[] = [];
  for (let s = 0; s < 9; s++) {
    const title = sentence(rand, 3, 7).slice(0, -1);
    toc.push(`<a href="#s${s}" data-s="${s}">${esc(title)}</a>`);
    const parts = [`<h2 id="s${s}">${esc(title)}</h2>`];
    for (let p = 0, n = int(rand, 4, 7); p < n; p++) {
      parts.push(`<p>${esc(paragraph(rand))}</p>`);
      const r = rand();
      if (r < 0.12) parts.push(`<blockquote>${esc(paragraph(rand, 2))}</blockquote>`);
      else if (r < 0.2)
        parts.push(
          `<pre><code>${esc(`const total = items.reduce((sum, item) => sum + item.price * item.qty, 0);\nconsole.log('total', total);`)}</code></pre>`,
        );
    }
    const img = s % 3 === 0 ? pngDataUri(rand, int(rand, 60, 90), int(rand, 36, 56)) : svgDataUri(rand);
    parts.push(
      `<figure><img src="${img}" alt="${esc(sentence(rand, 3, 6))}"><figcaption>${esc(sentence(rand))}</figcaption></figure>`,
    );
    sections.push(`<section>${parts.join('\n')}</section>`);
  }
  const comments: object[] = [];
  for (let i = 0; i < 30; i++)
    comments.push({
      who: `${pick(rand, ADJECTIVES)}${pick(rand, NOUNS)}${int(rand, 1, 99)}`,
      text: paragraph(rand, 2),
    });
  // One second of silence as a WAV data URI, so play/pause produce rrweb media interactions.
  const wav = Buffer.alloc(44 + 8000);
  wav.write('RIFF', 0, 'latin1');
  wav.writeUInt32LE(36 + 8000, 4);
  wav.write('WAVEfmt ', 8, 'latin1');
  wav.writeUInt32LE(16, 16);
  wav.writeUInt16LE(1, 20);
  wav.writeUInt16LE(1, 22);
  wav.writeUInt32LE(8000, 24);
  wav.writeUInt32LE(8000, 28);
  wav.writeUInt16LE(1, 32);
  wav.writeUInt16LE(8, 34);
  wav.write('data', 36, 'latin1');
  wav.writeUInt32LE(8000, 40);
  wav.fill(128, 44);
  const body = `<div class="progress" id="progress" style="width:0%"></div>
<main class="layout">
<aside class="sidebar toc"><h4>Contents</h4>${toc.join('')}<h4>Listen</h4>
  <audio id="narration" controls preload="auto" src="data:audio/wav;base64,${wav.toString('base64')}"></audio>
  <button class="btn secondary mt-2" id="listen">Play narration</button></aside>
<article class="article">
  <p class="text-577590">Field notes · 14 min read</p>
  <h1>${esc(sentence(rand, 6, 10).slice(0, -1))}</h1>
  <p><b>${esc(paragraph(rand, 2))}</b></p>
  ${sections.join('\n')}
  <div class="flex gap-4 mt-8"><button class="btn secondary like" data-n="${int(rand, 10, 500)}">♥ Like</button><button class="btn secondary" id="share">Share</button></div>
  <form id="newsletter" class="mt-8"><div class="field"><label for="nl-email">Get the next issue</label><input id="nl-email" type="email" placeholder="you@example.com"></div><button class="btn">Subscribe</button></form>
  <h3>Comments</h3><div id="comments"><p class="text-577590">Comments load when you reach them…</p></div>
</article>
</main>
<script type="application/json" id="comment-data">${JSON.stringify(comments)}</script>`;
  const script = `
(function () {
  var bar = document.getElementById('progress');
  var links = document.querySelectorAll('.toc a');
  var heads = document.querySelectorAll('.article h2');
  var loaded = false, current = -1;
  window.addEventListener('scroll', function () {
    var max = document.documentElement.scrollHeight - window.innerHeight;
    bar.style.width = (100 * window.scrollY / Math.max(1, max)).toFixed(1) + '%';
    var idx = -1;
    heads.forEach(function (h, i) { if (h.getBoundingClientRect().top < 120) idx = i; });
    if (idx !== current) {
      current = idx;
      links.forEach(function (a, i) { a.classList.toggle('current', i === idx); });
      if (idx >= 0) console.log('read section', idx, heads[idx].textContent);
    }
    if (!loaded && window.scrollY > max - 900) {
      loaded = true;
      var list = JSON.parse(document.getElementById('comment-data').textContent);
      var box = document.getElementById('comments');
      box.textContent = '';
      list.forEach(function (c) {
        var d = document.createElement('div');
        d.className = 'comment';
        d.innerHTML = '<div class="who"></div><p></p><button class="btn secondary reply">Reply</button>';
        d.querySelector('.who').textContent = c.who;
        d.querySelector('p').textContent = c.text;
        box.appendChild(d);
      });
      console.log('comments loaded', list.length);
    }
  }, { passive: true });
  document.addEventListener('click', function (e) {
    if (e.target.classList.contains('like')) {
      var n = Number(e.target.dataset.n) + 1;
      e.target.dataset.n = n;
      e.target.textContent = '♥ ' + n;
    }
    if (e.target.id === 'share') {
      console.warn('navigator.share unavailable, copying link instead');
      e.target.textContent = 'Link copied';
    }
    if (e.target.id === 'listen') {
      var audio = document.getElementById('narration');
      if (audio.paused) { audio.play().catch(function (err) { console.error('narration failed', String(err)); }); e.target.textContent = 'Pause narration'; }
      else { audio.pause(); e.target.textContent = 'Play narration'; }
    }
    if (e.target.classList.contains('reply')) {
      var ta = document.createElement('textarea');
      ta.rows = 2; ta.className = 'reply-box'; ta.placeholder = 'Write a reply as ' + window.__user;
      e.target.after(ta);
      ta.focus();
    }
  });
  document.getElementById('newsletter').addEventListener('submit', function (e) {
    e.preventDefault();
    var v = document.getElementById('nl-email').value;
    if (v.indexOf('@') < 0) { console.error('newsletter: invalid email'); return; }
    e.target.innerHTML = '<p>Thanks! Check ' + v.replace(/</g, '') + ' to confirm.</p>';
  });
})();
`;
  return { name: 'article', path: '/blog/field-notes', html: shell('Field notes — Acme Journal', body, script) };
}

/** All pages, built once per call (a few hundred KB of HTML). */
export function buildPages(): PageDef[] {
  return [cataloguePage(), checkoutPage(), dashboardPage(), articlePage()];
}
