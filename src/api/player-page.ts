import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Router } from '../http/router.ts';

/** rrweb-player's browser build and stylesheet, served from node_modules (nothing is bundled or committed). */
const playerDist = dirname(createRequire(import.meta.url).resolve('rrweb-player'));
const assets: Record<string, { file: string; type: string }> = {
  'rrweb-player.js': { file: 'rrweb-player.umd.min.cjs', type: 'text/javascript; charset=utf-8' },
  'rrweb-player.css': { file: 'style.min.css', type: 'text/css; charset=utf-8' },
};

/** `/player` (the page) and `/player/assets/*` on `router`. The page itself is public; its data needs an API key. */
export function addPlayerRoutes(router: Router): Router {
  const cache = new Map<string, Buffer>();
  return (
    router
      .on('GET', '/player', ({ res }) => {
        res.writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'cache-control': 'no-cache',
          ...playerSecurityHeaders,
        });
        res.end(playerPageHtml);
      })
      // Browsers ask for it on every page; an empty answer keeps their consoles clean.
      .on('GET', '/favicon.ico', ({ res }) => {
        res.writeHead(204, { 'cache-control': 'public, max-age=86400' }).end();
      })
      .on('GET', '/player/assets/:file', async ({ res, params }) => {
        const asset = assets[params.file!];
        if (!asset) {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('no such asset');
          return;
        }
        let bytes = cache.get(asset.file);
        if (!bytes) {
          bytes = await readFile(join(playerDist, asset.file));
          cache.set(asset.file, bytes);
        }
        res.writeHead(200, {
          'content-type': asset.type,
          'content-length': bytes.length,
          'cache-control': 'public, max-age=3600',
          'x-content-type-options': 'nosniff',
          'cross-origin-resource-policy': 'same-origin',
        });
        res.end(bytes);
      })
  );
}

// The page is plain browser JavaScript: it lists the key's sessions, shows one's summary, fetches its events as JSONL
// (in chunks of the API's block limit) and plays them with rrweb-player. Everything from the API is set as text, never
// as HTML: URLs and ids in recordings are untrusted. `#key=...&team=...&session=...` opens a session directly; the key
// moves to sessionStorage and leaves the address bar. The script is a constant of its own so that the page's
// Content-Security-Policy allows exactly it (by hash) and no other inline script.
const playerScript = `
(function () {
  var hash = new URLSearchParams(location.hash.slice(1));
  var state = { key: hash.get('key') || sessionStorage.getItem('replay-api-key'), team: hash.get('team'), player: null };
  if (hash.get('key')) {
    sessionStorage.setItem('replay-api-key', hash.get('key'));
    hash.delete('key');
    history.replaceState(null, '', location.pathname + (hash.toString() ? '#' + hash : ''));
  }
  function el(tag, text) { var e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); return e; }
  function $(id) { return document.getElementById(id); }
  function setStatus(text, isError) { $('status').textContent = text; $('status').className = isError ? 'error' : ''; }
  function duration(ms) {
    var s = Math.round(ms / 1000), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return (h ? h + 'h ' : '') + (h || m ? m + 'm ' : '') + (s % 60) + 's';
  }
  // An overloaded API (503 with Retry-After) is asked again a few times, after the wait it names.
  function api(path, attempt) {
    attempt = attempt || 0;
    return fetch(path, { headers: { authorization: 'Bearer ' + state.key } }).then(function (response) {
      if (response.ok) return response;
      var retryAfter = Number(response.headers.get('retry-after'));
      if (response.status === 503 && retryAfter > 0 && attempt < 4) {
        return new Promise(function (resolve) { setTimeout(resolve, Math.min(retryAfter, 10) * 1000); })
          .then(function () { return api(path, attempt + 1); });
      }
      return response.json().catch(function () { return {}; }).then(function (body) {
        var error = new Error((body.code || 'http_' + response.status) + ': ' + (body.detail || response.statusText));
        error.code = body.code;
        error.detail = body.detail;
        throw error;
      });
    });
  }
  function askForKey(message) {
    $('key-form').hidden = false;
    $('list-status').textContent = message || '';
    $('key-form').onsubmit = function (event) {
      event.preventDefault();
      state.key = $('key-input').value.trim();
      sessionStorage.setItem('replay-api-key', state.key);
      $('key-form').hidden = true;
      start();
    };
  }
  function sessionsBase() { return '/api/projects/' + encodeURIComponent(state.team) + '/session_recordings'; }

  function listSessions() {
    var since = new Date(Date.now() - 30 * 86400000).toISOString().slice(0, 10);
    return api(sessionsBase() + '?limit=100&date_from=' + since).then(function (r) { return r.json(); }).then(function (page) {
      var body = $('sessions');
      body.replaceChildren();
      page.results.forEach(function (s) {
        var row = el('tr');
        row.className = 'session';
        row.dataset.session = s.id;
        [new Date(s.start_time).toLocaleString(), duration(s.duration_ms), s.click_count, s.console_error_count]
          .forEach(function (v) { row.appendChild(el('td', v)); });
        row.title = s.first_url || s.id;
        row.onclick = function () { play(s.id); };
        body.appendChild(row);
      });
      $('list-status').textContent = page.results.length ? '' : 'No sessions in the last 30 days.';
    });
  }

  function showSummary(s) {
    $('title').textContent = 'Session ' + s.id;
    var summary = $('summary');
    summary.replaceChildren();
    [['Started', new Date(s.start_time).toLocaleString()], ['Duration', duration(s.duration_ms)],
     ['Active time', duration(s.active_ms)], ['Clicks', s.click_count], ['Key presses', s.keypress_count],
     ['Console errors', s.console_error_count], ['Console warnings', s.console_warn_count],
     ['Console logs', s.console_log_count], ['Person', s.distinct_id], ['First URL', s.first_url || '']]
      .forEach(function (pair) { summary.appendChild(el('dt', pair[0])); summary.appendChild(el('dd', pair[1])); });
    summary.appendChild(el('dt', 'URLs'));
    var urls = el('dd');
    s.urls.forEach(function (u) { urls.appendChild(el('div', u)); });
    summary.appendChild(urls);
  }

  function loadEvents(base, list) {
    var chunk = list.max_blocks_per_request, ranges = [];
    for (var i = 0; i < list.blocks.length; i += chunk) ranges.push(i + '-' + (Math.min(i + chunk, list.blocks.length) - 1));
    var byWindow = {}, missing = [];
    return ranges.reduce(function (done, range) {
      return done.then(function () { return api(base + '/snapshots?blocks=' + range); })
        .then(function (r) { return r.text(); })
        .then(function (text) {
          text.split('\\n').forEach(function (line) {
            if (!line) return;
            var item = JSON.parse(line);
            if (Array.isArray(item)) (byWindow[item[0]] = byWindow[item[0]] || []).push(item[1]);
            else if (item.missing_block) missing.push(item.missing_block);
          });
        });
    }, Promise.resolve()).then(function () { return { byWindow: byWindow, missing: missing }; });
  }

  function play(id) {
    location.hash = 'team=' + encodeURIComponent(state.team) + '&session=' + encodeURIComponent(id);
    document.querySelectorAll('tr.session').forEach(function (r) { r.classList.toggle('current', r.dataset.session === id); });
    document.body.dataset.state = 'loading';
    if (state.player) { state.player.$destroy(); state.player = null; }
    $('player').replaceChildren();
    $('missing').hidden = true;
    setStatus('Loading...');
    var base = sessionsBase() + '/' + encodeURIComponent(id);
    return api(base).then(function (r) { return r.json(); }).then(function (summary) {
      showSummary(summary);
      return api(base + '/snapshots').then(function (r) { return r.json(); });
    }).then(function (list) { return loadEvents(base, list); }).then(function (loaded) {
      if (loaded.missing.length) {
        $('missing').hidden = false;
        $('missing').textContent = 'Missing blocks (played around): ' + loaded.missing.map(function (m) {
          return '#' + m.index + ' ' + m.first_timestamp + ' to ' + m.last_timestamp + ' (' + m.code + ')';
        }).join('; ');
      }
      // One window plays at a time: the one with the most events.
      var windows = Object.keys(loaded.byWindow).sort(function (a, b) {
        return loaded.byWindow[b].length - loaded.byWindow[a].length;
      });
      var events = windows.length ? loaded.byWindow[windows[0]] : [];
      window.replay = { events: events, missing: loaded.missing, windows: windows };
      if (events.length < 2) {
        setStatus('This session has too few events to play.', true);
        document.body.dataset.state = 'empty';
        return;
      }
      // The UMD build exposes the component as the global's default export.
      var Player = window.rrwebPlayer.default || window.rrwebPlayer;
      state.player = new Player({ target: $('player'), props: { events: events, autoPlay: true, width: 960, height: 540 } });
      window.replay.player = state.player;
      setStatus(windows.length > 1 ? 'Playing the busiest of ' + windows.length + ' windows.' : '');
      document.body.dataset.state = 'playing';
    }).catch(function (error) {
      // Past its retention the recording is gone for good: say so in a sentence (the API's detail), not as a failure.
      if (error.code === 'recording_expired') {
        $('title').textContent = 'Session ' + id;
        $('summary').replaceChildren();
        setStatus(error.detail);
        document.body.dataset.state = 'expired';
        return;
      }
      setStatus(error.message, true);
      document.body.dataset.state = 'failed';
    });
  }

  function start() {
    if (!state.key) return askForKey();
    api('/api/projects').then(function (r) { return r.json(); }).then(function (projects) {
      if (!projects.results.length) throw new Error('this key reads no projects');
      if (!state.team) state.team = String(projects.results[0].id);
      var picker = el('select');
      projects.results.forEach(function (p) {
        var option = el('option', p.name + ' (' + p.id + ')');
        option.value = p.id;
        option.selected = String(p.id) === String(state.team);
        picker.appendChild(option);
      });
      picker.onchange = function () { state.team = picker.value; listSessions(); };
      $('projects').replaceChildren(el('label', 'Project '), picker);
      return listSessions();
    }).then(function () {
      if (hash.get('session')) return play(hash.get('session'));
      document.body.dataset.state = 'ready';
    }).catch(function (error) {
      if (/api_key/.test(error.message)) askForKey(error.message);
      else setStatus(error.message, true);
      document.body.dataset.state = 'failed';
    });
  }
  start();
})();
`;

const playerPageHtml = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Session replay</title>
<link rel="stylesheet" href="/player/assets/rrweb-player.css">
<style>
  body { font: 14px system-ui, sans-serif; margin: 0; display: flex; min-height: 100vh; color: #222; }
  aside { width: 360px; border-right: 1px solid #ddd; overflow: auto; max-height: 100vh; }
  main { flex: 1; padding: 16px; }
  table { border-collapse: collapse; width: 100%; }
  td, th { padding: 6px 8px; border-bottom: 1px solid #eee; text-align: left; font-size: 13px; }
  tr.session { cursor: pointer; } tr.session:hover, tr.session.current { background: #eef4ff; }
  dl { display: grid; grid-template-columns: max-content auto; gap: 4px 12px; }
  dt { color: #666; } dd { margin: 0; }
  .warning { background: #fff4e0; border: 1px solid #f0c36d; padding: 8px; margin: 8px 0; }
  .error { color: #b00020; }
  form { padding: 16px; }
</style></head>
<body data-state="starting">
<aside>
  <form id="key-form" hidden>
    <p>Personal API key</p>
    <input id="key-input" type="password" size="40" placeholder="rpk_..." autocomplete="off">
    <button>Use key</button>
  </form>
  <div id="projects"></div>
  <table><thead><tr><th>Started</th><th>Duration</th><th>Clicks</th><th>Errors</th></tr></thead>
    <tbody id="sessions"></tbody></table>
  <p id="list-status"></p>
</aside>
<main>
  <h2 id="title">Choose a session</h2>
  <p id="status" role="status"></p>
  <div id="missing" class="warning" hidden></div>
  <dl id="summary"></dl>
  <div id="player"></div>
</main>
<script src="/player/assets/rrweb-player.js"></script>
<script>${playerScript}</script>
</body></html>`;

/**
 * The player's Content-Security-Policy. Scripts: rrweb-player from /player/assets and the page's own inline script
 * (by hash), nothing else: no inline handlers, no eval. rrweb rebuilds the recorded DOM inside an about:blank iframe
 * that it sandboxes without `allow-scripts`; that iframe inherits this policy, so a script inside a recording cannot
 * run even if the sandbox were lifted. What the policy allows beyond scripts is what faithful playback needs: the
 * recorded page's inline styles (`style-src 'unsafe-inline'`: rrweb writes each recorded stylesheet as a <style>
 * element) and its images, fonts and media from wherever the recorded page loaded them. Data only from this origin
 * (`connect-src 'self'`); no plugins, no <base>, no form posts, and never framed by another page (`frame-ancestors
 * 'none'`, clickjacking).
 */
export const playerContentSecurityPolicy = [
  "default-src 'none'",
  `script-src 'self' 'sha256-${createHash('sha256').update(playerScript, 'utf8').digest('base64')}'`,
  "style-src 'self' 'unsafe-inline'",
  'img-src * data: blob:',
  'font-src * data:',
  'media-src * data: blob:',
  "connect-src 'self'",
  "frame-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const playerSecurityHeaders = {
  'content-security-policy': playerContentSecurityPolicy,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=(), usb=()',
};
