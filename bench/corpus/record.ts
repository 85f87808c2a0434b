/**
 * Records the rrweb corpus: serves the generated pages (pages.ts) on loopback with rrweb's UMD build and its console
 * plugin injected, drives each page in headless Chromium with playwright (mouse, touch, typing, scrolling, resizes,
 * console output), and writes one JSON line per session to $REPLAY_CACHE/corpus/rrweb-corpus-v1.jsonl.
 *
 *   node bench/corpus/record.ts            record (overwrites the corpus file)
 *   node bench/corpus/record.ts --check    load the corpus (recording it if missing) and print its event mix
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import { loadConfig } from '../../src/config/index.ts';
import { launchChromium } from '../../src/harness/chromium.ts';
import { prng } from '../shared/prng.ts';
import { amplify, corpusPath, ensureCorpus, posthogBatches, type RecordedSession, type RrwebEvent } from './corpus.ts';
import { buildPages, siteCss, USER_TOKEN } from './pages.ts';

/** Recorded URLs are rewritten from the loopback origin to this one. */
export const SITE_ORIGIN = 'https://shop.acme-supply.example';

const require = createRequire(import.meta.url);

function recorderAssets(): { rrweb: string; consolePlugin: string | undefined } {
  const rrweb = readFileSync(join(dirname(require.resolve('rrweb')), 'rrweb.umd.min.cjs'), 'utf8');
  let consolePlugin: string | undefined;
  try {
    const dir = dirname(require.resolve('@rrweb/rrweb-plugin-console-record'));
    consolePlugin = readFileSync(join(dir, 'rrweb-plugin-console-record.umd.min.cjs'), 'utf8');
  } catch {
    consolePlugin = undefined; // the boot script then uses its own plugin with the same event shape
  }
  return { rrweb, consolePlugin };
}

/**
 * Starts rrweb in the page and ships events to Node in batches through the `__corpusEmit` binding. Adds the custom
 * events posthog-js emits ($pageview with href, $session_options). Falls back to a minimal rrweb/console@1 plugin.
 */
const BOOT_SCRIPT = String.raw`
(function () {
  var buf = [];
  function flush() {
    if (!buf.length || !window.__corpusEmit) return;
    var out = '[' + buf.join(',') + ']';
    buf = [];
    window.__corpusEmit(out);
  }
  var levels = ['assert', 'count', 'countReset', 'debug', 'dir', 'error', 'group', 'groupCollapsed', 'groupEnd', 'info', 'log', 'table', 'time', 'timeEnd', 'timeLog', 'trace', 'warn'];
  var consolePlugin = window.rrwebPluginConsoleRecord
    ? window.rrwebPluginConsoleRecord.getRecordConsolePlugin({ level: levels, lengthThreshold: 1000 })
    : {
        name: 'rrweb/console@1',
        options: {},
        observer: function (cb, win) {
          ['log', 'info', 'warn', 'error', 'debug'].forEach(function (level) {
            var original = win.console[level];
            win.console[level] = function () {
              var args = Array.prototype.slice.call(arguments);
              var trace = (new Error().stack || '').split('\n').slice(2, 5).map(function (s) { return s.trim().replace(/^at /, ''); });
              cb({ level: level, trace: trace, payload: args.map(function (a) { try { return JSON.stringify(a); } catch (e) { return String(a); } }) });
              return original.apply(this, args);
            };
          });
          return function () {};
        },
      };
  window.rrweb.record({
    emit: function (event) { buf.push(JSON.stringify(event)); },
    plugins: [consolePlugin],
    maskInputOptions: { password: true },
    inlineStylesheet: true,
    recordCanvas: false,
  });
  window.addEventListener('load', function () {
    setTimeout(function () {
      window.rrweb.record.addCustomEvent('$pageview', { href: location.href, title: document.title, referrer: document.referrer });
      window.rrweb.record.addCustomEvent('$session_options', {
        sessionRecordingOptions: { blockClass: 'ph-no-capture', maskAllInputs: false, maskInputOptions: { password: true }, recordCrossOriginIframes: false },
        activePlugins: [consolePlugin.name],
      });
      window.__corpusRecording = true;
    }, 0);
  });
  setInterval(flush, 250);
  window.addEventListener('pagehide', flush);
  window.__corpusFlush = flush;
})();
`;

type Rand = () => number;

interface Driver {
  readonly page: Page;
  readonly rand: Rand;
  readonly mobile: boolean;
  readonly cdp: CDPSession;
  /** Selectors the scenario wanted but could not see (reported in the progress line). */
  readonly skipped: string[];
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function pause(d: Driver, lo: number, hi: number): Promise<void> {
  await sleep(lo + d.rand() * (hi - lo));
}

async function point(d: Driver, selector: string): Promise<{ x: number; y: number } | null> {
  const target = d.page.locator(selector).first();
  if (!(await target.isVisible())) {
    d.skipped.push(selector); // e.g. the filter sidebar is hidden on phones
    return null;
  }
  await target.scrollIntoViewIfNeeded({ timeout: 5000 });
  const box = await target.boundingBox();
  if (!box) return null;
  return { x: box.x + box.width * (0.3 + 0.4 * d.rand()), y: box.y + box.height * (0.3 + 0.4 * d.rand()) };
}

async function moveTo(d: Driver, x: number, y: number): Promise<void> {
  await d.page.mouse.move(x, y, { steps: 4 + Math.floor(d.rand() * 12) });
}

async function click(d: Driver, selector: string): Promise<void> {
  const p = await point(d, selector);
  if (!p) return;
  if (d.mobile) {
    await d.page.touchscreen.tap(p.x, p.y);
  } else {
    await moveTo(d, p.x, p.y);
    await pause(d, 80, 250);
    await d.page.mouse.down();
    await sleep(50 + d.rand() * 60);
    await d.page.mouse.up();
  }
  await pause(d, 200, 500);
}

async function select(d: Driver, selector: string, value: string): Promise<void> {
  const p = await point(d, selector);
  if (!p) return;
  if (!d.mobile) await moveTo(d, p.x, p.y);
  await d.page.selectOption(selector, value);
  await pause(d, 300, 700);
}

async function typeInto(d: Driver, selector: string, text: string): Promise<void> {
  await click(d, selector);
  await d.page.keyboard.type(text, { delay: 20 + d.rand() * 35 });
  await pause(d, 150, 400);
}

/** Idle reading: the pointer drifts around the viewport. */
async function wander(d: Driver, ms: number): Promise<void> {
  const end = Date.now() + ms;
  const { width, height } = d.page.viewportSize() ?? { width: 1280, height: 800 };
  while (Date.now() < end) {
    if (!d.mobile) await moveTo(d, 20 + d.rand() * (width - 40), 80 + d.rand() * (height - 120));
    await pause(d, 150, 700);
  }
}

async function wheel(d: Driver, total: number, step = 200): Promise<void> {
  for (let done = 0; Math.abs(done) < Math.abs(total); done += step * Math.sign(total)) {
    await d.page.mouse.wheel(0, step * Math.sign(total));
    await pause(d, 60, 260);
  }
}

/** A finger swipe: touchstart, touchmoves, touchend (rrweb TouchMove / TouchStart / TouchEnd). */
async function swipe(d: Driver, dy: number): Promise<void> {
  const { width, height } = d.page.viewportSize() ?? { width: 390, height: 844 };
  const x = width * (0.4 + 0.2 * d.rand());
  const y0 = dy > 0 ? height * 0.8 : height * 0.25;
  const before = Number(await d.page.evaluate('window.scrollY'));
  await d.cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [{ x, y: y0 }] });
  for (let i = 1; i <= 12; i++) {
    await d.cdp.send('Input.dispatchTouchEvent', {
      type: 'touchMove',
      touchPoints: [{ x: x + i, y: y0 - (dy * i) / 12 }],
    });
    await sleep(16);
  }
  await d.cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
  await sleep(150);
  // Synthetic touches may not scroll the page in headless mode; scroll as the gesture would have.
  if (Number(await d.page.evaluate('window.scrollY')) === before)
    await d.page.evaluate(`window.scrollBy({ top: ${Math.round(dy * 1.6)}, behavior: 'smooth' })`);
  await pause(d, 250, 600);
}

async function scrollDown(d: Driver, px: number): Promise<void> {
  if (d.mobile) for (let done = 0; done < px; done += 900) await swipe(d, 900);
  else await wheel(d, px);
}

async function consoleNoise(d: Driver, text: string): Promise<void> {
  await d.page.evaluate(
    `console.log(${JSON.stringify(text)}, { ts: Date.now(), user: window.__user }); console.debug('perf', performance.now().toFixed(1));`,
  );
}

interface SessionSpec {
  readonly name: string;
  readonly path: string;
  readonly viewport: { width: number; height: number };
  readonly mobile?: boolean;
  readonly seed: number;
  drive(d: Driver): Promise<void>;
}

async function browseCatalogue(d: Driver): Promise<void> {
  await wander(d, 1500);
  await click(d, '.card:nth-child(3) .add');
  await click(d, '.card:nth-child(7) .add');
  await click(d, '[data-filter=category][value=Kitchen]');
  await click(d, '[data-filter=brand][value=Contoso]');
  if (!d.mobile) {
    const p = await point(d, '#max-price');
    if (p) {
      await moveTo(d, p.x, p.y);
      await d.page.mouse.down();
      await moveTo(d, p.x - 30, p.y);
      await d.page.mouse.up();
    }
  }
  await click(d, '[data-filter=category][value=Kitchen]');
  await click(d, '[data-filter=brand][value=Contoso]');
  await select(d, '#sort', 'price-asc');
  await click(d, '.card:not(.hidden) >> nth=1 >> .quick');
  await wander(d, 1200);
  await click(d, '.modal .close');
  await scrollDown(d, 2400);
  await click(d, '.card:not(.hidden) >> nth=11 >> .add');
  await typeInto(d, '.topbar .search input', 'walnut lamp');
  await consoleNoise(d, 'search suggestions rendered');
  await scrollDown(d, 3000);
  await click(d, '#load-more');
  await wander(d, 1500);
}

async function fillCheckout(d: Driver, valid: boolean): Promise<void> {
  await typeInto(d, '#email', valid ? `${USER_TOKEN}@example.com` : `${USER_TOKEN}.example.com`);
  await typeInto(d, '#phone', '+1 415 555 0134');
  await typeInto(d, '#ship-name', 'Jordan Rivera');
  await typeInto(d, '#ship-street', '1200 Market Street');
  await typeInto(d, '#ship-city', 'San Francisco');
  await select(d, '#ship-state', 'CA');
  await typeInto(d, '#ship-zip', '94103');
  await click(d, 'input[name=ship][value="9.5"]');
  await typeInto(d, '#card', '4242424242424242');
  await typeInto(d, '#exp', '1229');
  await typeInto(d, '#cvc', '123');
  await typeInto(d, '#card-name', 'J RIVERA');
}

async function checkout(d: Driver): Promise<void> {
  await wander(d, 800);
  await fillCheckout(d, true);
  await typeInto(d, '#notes', 'Side door, please.');
  await click(d, '#terms');
  for (let i = 0; i < 3; i++) {
    await click(d, '#pay');
    await wander(d, 600);
  }
  await consoleNoise(d, 'checkout flow complete');
}

async function checkoutWithErrors(d: Driver): Promise<void> {
  await click(d, '#pay');
  await wander(d, 800);
  await typeInto(d, '#promo', 'SUMMER99');
  await click(d, '#apply-promo');
  await typeInto(d, '#email', `${USER_TOKEN}.example.com`);
  await typeInto(d, '#ship-name', 'Sam Okafor');
  await typeInto(d, '#card', '42424242');
  await click(d, '#pay');
  await click(d, '#same-billing');
  await d.page.setViewportSize({ width: 1024, height: 700 });
  await pause(d, 400, 700);
  await typeInto(d, '#bill-name', 'Acme Holdings LLC');
  await select(d, '#bill-country', 'Canada');
  await d.page.locator('#email').fill('');
  await typeInto(d, '#email', `${USER_TOKEN}@example.com`);
  await click(d, '#terms');
  await click(d, '#pay');
  await wander(d, 1200);
}

async function watchDashboard(d: Driver): Promise<void> {
  await wander(d, 2500);
  await click(d, 'th[data-col="3"]');
  await wander(d, 1500);
  await typeInto(d, '#filter', 'api');
  await wander(d, 1200);
  await d.page.locator('#filter').fill('');
  await select(d, '#region', 'eu-west-1');
  await wander(d, 1200);
  await select(d, '#region', '');
  await click(d, '#ack');
  await scrollDown(d, 1500);
  await wander(d, 1500);
  // Back from an idle tab: posthog-js takes a fresh full snapshot.
  await d.page.evaluate('window.rrweb.record.takeFullSnapshot(true)');
  await click(d, '#live');
  await wander(d, 1200);
  await click(d, '#live');
  await wander(d, 2500);
}

async function idleDashboard(d: Driver): Promise<void> {
  await wander(d, 4000);
  await sleep(6000);
  await consoleNoise(d, 'visibility: visible');
  await click(d, 'th[data-col="2"]');
  await wander(d, 5000);
}

async function readArticle(d: Driver): Promise<void> {
  await wander(d, 1200);
  if (!d.mobile) {
    await click(d, '#listen');
    await pause(d, 600, 900);
    await click(d, '#listen');
  }
  for (let i = 0; i < 4; i++) {
    await scrollDown(d, 900);
    await wander(d, 300);
  }
  if (!d.mobile) await click(d, '.toc a[data-s="2"]');
  await scrollDown(d, 4500);
  await click(d, '.like');
  await click(d, '#share');
  await typeInto(d, '#nl-email', `${USER_TOKEN}@example.com`);
  await d.page.keyboard.press('Enter');
  await pause(d, 400, 800);
  await scrollDown(d, 2000);
  await click(d, '.comment:nth-child(2) .reply');
  await d.page.keyboard.type('Great write-up, thanks!', { delay: 60 });
  await wander(d, 1500);
}

async function journey(d: Driver): Promise<void> {
  await wander(d, 1000);
  await click(d, '.card:nth-child(5) .add');
  await scrollDown(d, 900);
  await click(d, '.card:nth-child(14) .add');
  await click(d, '.cart-link');
  await d.page.waitForURL('**/checkout');
  await d.page.waitForFunction('window.__corpusRecording === true');
  await fillCheckout(d, true);
  await click(d, '#terms');
  await click(d, '#pay');
  await click(d, 'nav a[href="/blog/field-notes"]');
  await d.page.waitForURL('**/blog/field-notes');
  await d.page.waitForFunction('window.__corpusRecording === true');
  await scrollDown(d, 2500);
  await wander(d, 1000);
}

const desktop = { width: 1440, height: 900 };
const phone = { width: 390, height: 844 };

const SESSIONS: readonly SessionSpec[] = [
  { name: 'catalogue-desktop', path: '/shop', viewport: desktop, seed: 1, drive: browseCatalogue },
  { name: 'catalogue-mobile', path: '/shop', viewport: phone, mobile: true, seed: 2, drive: browseCatalogue },
  {
    name: 'catalogue-tablet',
    path: '/shop',
    viewport: { width: 1024, height: 1366 },
    mobile: true,
    seed: 10,
    drive: browseCatalogue,
  },
  { name: 'checkout', path: '/checkout', viewport: { width: 1280, height: 800 }, seed: 3, drive: checkout },
  {
    name: 'checkout-errors',
    path: '/checkout',
    viewport: { width: 1366, height: 768 },
    seed: 4,
    drive: checkoutWithErrors,
  },
  {
    name: 'dashboard-live',
    path: '/dashboard',
    viewport: { width: 1680, height: 1050 },
    seed: 5,
    drive: watchDashboard,
  },
  { name: 'dashboard-idle', path: '/dashboard', viewport: { width: 1280, height: 800 }, seed: 6, drive: idleDashboard },
  { name: 'article-desktop', path: '/blog/field-notes', viewport: desktop, seed: 7, drive: readArticle },
  { name: 'article-mobile', path: '/blog/field-notes', viewport: phone, mobile: true, seed: 8, drive: readArticle },
  { name: 'journey', path: '/shop', viewport: { width: 1536, height: 864 }, seed: 9, drive: journey },
];

function startServer(): Promise<{ server: Server; origin: string }> {
  const pages = new Map(buildPages().map((p) => [p.path, p.html]));
  const { rrweb, consolePlugin } = recorderAssets();
  const injected =
    '<script src="/static/rrweb.js"></script>' +
    (consolePlugin ? '<script src="/static/rrweb-console.js"></script>' : '') +
    '<script src="/static/boot.js"></script>';
  const statics = new Map<string, [string, string]>([
    ['/static/site.css', ['text/css', siteCss()]],
    ['/static/rrweb.js', ['text/javascript', rrweb]],
    ['/static/rrweb-console.js', ['text/javascript', consolePlugin ?? '']],
    ['/static/boot.js', ['text/javascript', BOOT_SCRIPT]],
  ]);
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const html = pages.get(path);
    const asset = statics.get(path);
    if (html) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(html.replace('<head>', `<head>\n${injected}`));
    } else if (asset) {
      res.writeHead(200, { 'content-type': `${asset[0]}; charset=utf-8`, 'cache-control': 'max-age=600' });
      res.end(asset[1]);
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({ server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
    });
  });
}

async function recordSession(
  browser: Browser,
  origin: string,
  spec: SessionSpec,
  log: (line: string) => void,
): Promise<RecordedSession> {
  const context: BrowserContext = await browser.newContext({
    viewport: spec.viewport,
    isMobile: spec.mobile ?? false,
    hasTouch: spec.mobile ?? false,
    deviceScaleFactor: spec.mobile ? 3 : 1,
    locale: 'en-US',
    timezoneId: 'UTC',
  });
  const events: RrwebEvent[] = [];
  try {
    await context.exposeFunction('__corpusEmit', (batch: string) => {
      for (const event of JSON.parse(batch.replaceAll(origin, SITE_ORIGIN)) as RrwebEvent[]) events.push(event);
    });
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    const cdp = await context.newCDPSession(page);
    await page.goto(`${origin}${spec.path}`, { waitUntil: 'load' });
    await page.waitForFunction('window.__corpusRecording === true');
    const skipped: string[] = [];
    await spec.drive({ page, cdp, rand: prng(spec.seed), mobile: spec.mobile ?? false, skipped });
    if (skipped.length > 0) log(`corpus: ${spec.name}: not visible, skipped: ${skipped.join(' ')}`);
    await page.evaluate('window.__corpusFlush()');
    await sleep(300);
  } finally {
    await context.close();
  }
  return { name: spec.name, url: `${SITE_ORIGIN}${spec.path}`, events };
}

export interface RecordResult {
  readonly sessions: RecordedSession[];
  readonly path: string;
  readonly bytes: number;
  readonly elapsedMs: number;
}

/** Records every session (a few at a time), writes the corpus file atomically and returns it. */
export async function recordCorpus(
  options: { out?: string; concurrency?: number; log?: (line: string) => void; timeoutMs?: number } = {},
): Promise<RecordResult> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const path = options.out ?? corpusPath();
  const started = Date.now();
  const { server, origin } = await startServer();
  const browser = await launchChromium(loadConfig());
  const timer = setTimeout(() => {
    log(`corpus: recording exceeded ${options.timeoutMs ?? 240_000} ms, closing the browser`);
    void browser.close();
  }, options.timeoutMs ?? 240_000);
  timer.unref();
  const results: RecordedSession[] = new Array(SESSIONS.length);
  try {
    let next = 0;
    const worker = async () => {
      while (next < SESSIONS.length) {
        const i = next++;
        const spec = SESSIONS[i]!;
        const t0 = Date.now();
        const session = await recordSession(browser, origin, spec, log);
        results[i] = session;
        const bytes = Buffer.byteLength(JSON.stringify(session.events));
        log(
          `corpus: ${spec.name.padEnd(18)} ${String(session.events.length).padStart(6)} events ${(bytes / 1e6).toFixed(2).padStart(6)} MB  ${((Date.now() - t0) / 1000).toFixed(1)} s`,
        );
      }
    };
    await Promise.all(Array.from({ length: options.concurrency ?? 3 }, worker));
  } finally {
    clearTimeout(timer);
    await browser.close().catch(() => {});
    server.close();
  }
  const text = `${results.map((s) => JSON.stringify(s)).join('\n')}\n`;
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
  const bytes = Buffer.byteLength(text);
  const elapsedMs = Date.now() - started;
  log(
    `corpus: wrote ${path}: ${results.length} sessions, ${(bytes / 1e6).toFixed(2)} MB in ${(elapsedMs / 1000).toFixed(1)} s`,
  );
  return { sessions: results, path, bytes, elapsedMs };
}

const TYPE_NAMES: Record<number, string> = {
  0: 'DomContentLoaded',
  1: 'Load',
  2: 'FullSnapshot',
  3: 'Incremental',
  4: 'Meta',
  5: 'Custom',
  6: 'Plugin',
};
const SOURCE_NAMES: Record<number, string> = {
  0: 'Mutation',
  1: 'MouseMove',
  2: 'MouseInteraction',
  3: 'Scroll',
  4: 'ViewportResize',
  5: 'Input',
  6: 'TouchMove',
  7: 'MediaInteraction',
  8: 'StyleSheetRule',
  9: 'CanvasMutation',
  10: 'Font',
  11: 'Log',
  12: 'Drag',
  13: 'StyleDeclaration',
  14: 'Selection',
  15: 'AdoptedStyleSheet',
  16: 'CustomElement',
};
const INTERACTION_NAMES: Record<number, string> = {
  0: 'MouseUp',
  1: 'MouseDown',
  2: 'Click',
  3: 'ContextMenu',
  4: 'DblClick',
  5: 'Focus',
  6: 'Blur',
  7: 'TouchStart',
  9: 'TouchEnd',
  10: 'TouchCancel',
};

/** Counts and bytes by event kind, for a human to judge whether the mix looks like real traffic. */
export function describeCorpus(sessions: readonly RecordedSession[]): string {
  const rows = new Map<string, { count: number; bytes: number }>();
  const add = (key: string, bytes: number) => {
    const row = rows.get(key) ?? { count: 0, bytes: 0 };
    row.count++;
    row.bytes += bytes;
    rows.set(key, row);
  };
  const lines: string[] = [];
  let total = 0;
  let events = 0;
  const hrefs = new Set<string>();
  for (const s of sessions) {
    const bytes = Buffer.byteLength(JSON.stringify(s.events));
    const span = s.events.length ? (s.events[s.events.length - 1]!.timestamp - s.events[0]!.timestamp) / 1000 : 0;
    lines.push(
      `  ${s.name.padEnd(18)} ${String(s.events.length).padStart(6)} events ${(bytes / 1e6).toFixed(2).padStart(6)} MB ${span.toFixed(1).padStart(5)} s`,
    );
    total += bytes;
    events += s.events.length;
    for (const e of s.events) {
      const size = Buffer.byteLength(JSON.stringify(e));
      const data = (e.data ?? {}) as Record<string, unknown>;
      const typeName = `${e.type} ${TYPE_NAMES[e.type] ?? '?'}`;
      add(typeName, size);
      if (e.type === 3) {
        const source = data.source as number;
        add(`${typeName} / ${source} ${SOURCE_NAMES[source] ?? '?'}`, size);
        if (source === 2)
          add(`${typeName} / 2 MouseInteraction / ${INTERACTION_NAMES[data.type as number] ?? data.type}`, size);
      } else if (e.type === 6) {
        const payload = (data.payload ?? {}) as Record<string, unknown>;
        add(`${typeName} / ${data.plugin} / ${payload.level}`, size);
      } else if (e.type === 5) {
        add(`${typeName} / ${data.tag}`, size);
      } else if (e.type === 4) {
        hrefs.add(String(data.href));
      }
    }
  }
  const keys = [...rows.keys()].sort((a, b) =>
    a.split(' ')[0]! === b.split(' ')[0]! ? a.localeCompare(b) : Number(a.split(' ')[0]) - Number(b.split(' ')[0]),
  );
  lines.unshift(`corpus: ${sessions.length} sessions, ${events} events, ${(total / 1e6).toFixed(2)} MB of event JSON`);
  lines.push('', '  kind'.padEnd(62) + 'events'.padStart(8) + 'MB'.padStart(9) + 'bytes %'.padStart(9));
  for (const key of keys) {
    const row = rows.get(key)!;
    lines.push(
      `  ${key.padEnd(60)}${String(row.count).padStart(8)}${(row.bytes / 1e6).toFixed(3).padStart(9)}${((100 * row.bytes) / total).toFixed(1).padStart(9)}`,
    );
  }
  lines.push('', `  meta hrefs: ${[...hrefs].join(', ')}`);
  return lines.join('\n');
}

/** Checks amplify() and posthogBatches() on the corpus and reports their speed; returns the problems found. */
export function checkAmplify(
  sessions: readonly RecordedSession[],
  count = 300,
): { report: string; problems: string[] } {
  const problems: string[] = [];
  const maxBatchBytes = 1_000_000;
  const t0 = performance.now();
  let eventBytes = 0;
  let bodyCount = 0;
  let bodyBytes = 0;
  const ids = new Set<string>();
  for (const s of amplify(sessions, { count, seed: 42 })) {
    ids.add(s.sessionId);
    eventBytes += s.eventBytes;
    for (const body of posthogBatches(s, { maxBatchBytes })) {
      bodyCount++;
      bodyBytes += body.length;
    }
  }
  const ms = performance.now() - t0;
  if (ids.size !== count) problems.push(`session ids not unique: ${ids.size} of ${count}`);
  // Exactness on a sample: bodies parse back to the template's events, shifted; sizes match; runs are deterministic.
  const sample = [...amplify(sessions, { count: sessions.length * 2, seed: 7 })];
  const again = [...amplify(sessions, { count: sessions.length * 2, seed: 7 })];
  sample.forEach((s, i) => {
    const template = sessions[i % sessions.length]!;
    if (!/^[A-Za-z0-9-]{1,70}$/.test(s.sessionId)) problems.push(`bad session id ${s.sessionId}`);
    if (again[i]!.eventJson.join('\n') !== s.eventJson.join('\n')) problems.push(`${s.sessionId}: not deterministic`);
    const events: RrwebEvent[] = [];
    for (const body of posthogBatches(s, { maxBatchBytes })) {
      const items = JSON.parse(body.toString()) as {
        properties: { $snapshot_data: RrwebEvent[]; $session_id: string };
      }[];
      if (body.length > maxBatchBytes && items.length > 1)
        problems.push(`${s.sessionId}: body of ${body.length} bytes`);
      for (const item of items) {
        if (item.properties.$session_id !== s.sessionId) problems.push(`${s.sessionId}: wrong $session_id`);
        events.push(...item.properties.$snapshot_data);
      }
    }
    if (events.length !== template.events.length)
      problems.push(`${s.sessionId}: ${events.length} events after batching`);
    const shift = s.firstTimestamp - template.events[0]!.timestamp;
    events.forEach((e, k) => {
      const original = template.events[k]!;
      if (e.timestamp !== original.timestamp + shift || e.type !== original.type)
        problems.push(`${s.sessionId}: event ${k} differs`);
      if (Buffer.byteLength(s.eventJson[k]!) !== s.eventSizes[k]) problems.push(`${s.sessionId}: size of event ${k}`);
    });
    if (JSON.stringify(s.events) !== `[${s.eventJson.join(',')}]`)
      problems.push(`${s.sessionId}: events and eventJson differ`);
    const copied = Buffer.allocUnsafe(s.eventBytes);
    let o = 0;
    for (let k = 0; k < s.eventCount; k++) o = s.copyEvent(k, copied, o);
    if (o !== s.eventBytes || !copied.equals(Buffer.from(s.eventJson.join(''))))
      problems.push(`${s.sessionId}: copyEvent differs`);
  });
  const [a, b] = [sample[0]!, sample[sessions.length]!];
  if (a.eventJson.join('').replace(/\d{13}/g, '') === b.eventJson.join('').replace(/\d{13}/g, ''))
    problems.push('two sessions from one template differ only in timestamps');
  const report =
    `amplify + posthogBatches: ${count} sessions, ${(eventBytes / 1e6).toFixed(1)} MB of events, ${bodyCount} bodies ` +
    `(${(bodyBytes / 1e6).toFixed(1)} MB) in ${ms.toFixed(0)} ms = ${(eventBytes / 1e3 / ms).toFixed(0)} MB/s; ` +
    `sample of ${sample.length} checked: ${problems.length === 0 ? 'ok' : `${problems.length} problems`}`;
  return { report, problems };
}

async function main(args: readonly string[]): Promise<void> {
  if (args.includes('--check')) {
    const sessions = await ensureCorpus();
    console.log(`${corpusPath()}\n${describeCorpus(sessions)}`);
    const types = new Set(sessions.flatMap((s) => s.events.map((e) => e.type)));
    const missing = [2, 3, 4, 5, 6].filter((t) => !types.has(t));
    const { report, problems } = checkAmplify(sessions);
    console.log(`\n${report}`);
    if (missing.length > 0) problems.push(`no events of type ${missing.join(', ')}`);
    if (problems.length > 0) {
      console.error(`corpus check failed:\n  ${problems.slice(0, 20).join('\n  ')}`);
      process.exitCode = 1;
    }
  } else {
    const out = args[args.indexOf('--out') + 1];
    const result = await recordCorpus(args.includes('--out') && out ? { out } : {});
    console.log(describeCorpus(result.sessions));
  }
}

// Not a top-level await: ensureCorpus() imports this module, which must finish evaluating first.
if (import.meta.main) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
