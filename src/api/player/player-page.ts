import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Router } from '../../http/router.ts';
import { loadBrowserModules } from './browser-modules.ts';

/** rrweb-player's browser build and stylesheet, served from node_modules (nothing is bundled or committed). */
const playerDist = dirname(createRequire(import.meta.url).resolve('rrweb-player'));
const rrwebAssets = new Map([
  ['rrweb-player.js', { file: 'rrweb-player.umd.min.cjs', type: 'text/javascript; charset=utf-8' }],
  ['rrweb-player.css', { file: 'style.min.css', type: 'text/css; charset=utf-8' }],
]);

export interface PlayerPageOptions {
  /**
   * How long after its upload a recording is normally playable (the blob consumer's flush interval plus the summary
   * sink's insert interval): the player says "still processing, playable in ~N s" for a session it cannot find yet
   * or whose last events are younger than this, and keeps looking that long before it says "not found".
   */
  readonly playableWithinMs: number;
}

/**
 * `/player` (the page) and `/player/assets/*` on `router`. The page itself is public; its data needs an API key. Its
 * scripts are modules under /player/assets (player-app.js and what it imports): no inline script at all.
 */
export function addPlayerRoutes(router: Router, options: PlayerPageOptions): Router {
  const cache = new Map<string, Buffer>();
  const modules = loadBrowserModules();
  const page = playerPageHtml(options);
  const assetHeaders = (type: string, length: number, cacheControl: string) => ({
    'content-type': type,
    'content-length': length,
    'cache-control': cacheControl,
    'x-content-type-options': 'nosniff',
    'cross-origin-resource-policy': 'same-origin',
  });
  return (
    router
      .on('GET', '/player', ({ res }) => {
        res.writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'cache-control': 'no-cache',
          ...playerSecurityHeaders,
        });
        res.end(page);
      })
      // Browsers ask for it on every page; an empty answer keeps their consoles clean.
      .on('GET', '/favicon.ico', ({ res }) => {
        res.writeHead(204, { 'cache-control': 'public, max-age=86400' }).end();
      })
      .on('GET', '/player/assets/:file', async ({ res, params }) => {
        const module = modules.get(params.file!);
        if (module) {
          // The page's own code changes with every release: revalidated, never kept.
          res.writeHead(200, assetHeaders('text/javascript; charset=utf-8', module.code.length, 'no-cache'));
          res.end(module.code);
          return;
        }
        const asset = rrwebAssets.get(params.file!);
        if (!asset) {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('no such asset');
          return;
        }
        let bytes = cache.get(asset.file);
        if (!bytes) {
          bytes = await readFile(join(playerDist, asset.file));
          cache.set(asset.file, bytes);
        }
        res.writeHead(200, assetHeaders(asset.type, bytes.length, 'public, max-age=3600'));
        res.end(bytes);
      })
  );
}

/**
 * The page: the key's sessions on the left; on the right the session's summary, the replay with the console and
 * event panels beside it, and under it the scrubber (activity, markers, the playhead) and the controls.
 */
function playerPageHtml(options: PlayerPageOptions): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Session replay</title>
<link rel="stylesheet" href="/player/assets/rrweb-player.css">
<style>
  body { font: 14px system-ui, sans-serif; margin: 0; display: flex; min-height: 100vh; color: #222; }
  aside { width: 320px; flex: none; border-right: 1px solid #ddd; overflow: auto; max-height: 100vh; }
  main { flex: 1; padding: 16px; min-width: 0; }
  table { border-collapse: collapse; width: 100%; }
  td, th { padding: 6px 8px; border-bottom: 1px solid #eee; text-align: left; font-size: 13px; }
  tr.session { cursor: pointer; } tr.session:hover, tr.session.current { background: #eef4ff; }
  dl { display: grid; grid-template-columns: repeat(3, max-content minmax(0, 1fr)); gap: 2px 12px; margin: 8px 0; }
  dt { color: #666; } dd { margin: 0; overflow-wrap: anywhere; }
  .notice { background: #fff4e0; border: 1px solid #f0c36d; padding: 8px; margin: 8px 0; }
  .notice.gone { background: #f3f3f3; border-color: #ccc; }
  .error { color: #b00020; }
  form { padding: 16px; }
  #stage { display: flex; gap: 12px; align-items: flex-start; }
  #time { font-variant-numeric: tabular-nums; }
  #panels { width: 340px; flex: none; border: 1px solid #ddd; display: flex; flex-direction: column; height: 600px; }
  #panels[hidden] { display: none; }
  #panel-tabs { display: flex; border-bottom: 1px solid #ddd; }
  #panel-tabs button { flex: 1; border: 0; background: #f6f6f6; padding: 8px; cursor: pointer; font: inherit; }
  #panel-tabs button[aria-selected="true"] { background: #fff; font-weight: 600; }
  .panel { overflow: auto; flex: 1; margin: 0; padding: 0; list-style: none; }
  .panel li { padding: 4px 8px; border-bottom: 1px solid #f0f0f0; cursor: pointer; font-size: 12px; display: flex; gap: 6px; }
  .panel li:hover { background: #f4f8ff; }
  .panel li.past { color: #444; } .panel li:not(.past) { color: #999; }
  .panel li.current { background: #eef4ff; }
  .panel .at { font-variant-numeric: tabular-nums; color: #888; flex: none; }
  .panel .level { flex: none; font-weight: 600; text-transform: uppercase; font-size: 10px; padding-top: 2px; }
  .panel .text { overflow-wrap: anywhere; white-space: pre-wrap; }
  .panel li.warn { background: #fffbe6; } .panel li.error { background: #fff0f0; }
  .panel li.warn .level { color: #8a6d00; } .panel li.error .level { color: #b00020; }
  .panel details { font-family: monospace; font-size: 11px; color: #666; }
  .panel .kind { flex: none; font-size: 10px; text-transform: uppercase; color: #555; padding-top: 2px; width: 64px; }
  #scrubber { position: relative; height: 28px; margin: 8px 0; background: #e6e6e6; cursor: pointer; border-radius: 3px; }
  #scrubber .active { position: absolute; top: 0; bottom: 0; background: #9fd3a8; }
  #scrubber .gap { position: absolute; top: 0; bottom: 0; background: repeating-linear-gradient(45deg, #f0c36d 0 4px, #fff4e0 4px 8px); }
  #scrubber .window { position: absolute; bottom: 0; height: 4px; }
  #scrubber .marker { position: absolute; top: 2px; width: 2px; height: 14px; }
  #scrubber .marker.click { background: #2f6fd6; } #scrubber .marker.error { background: #d62f2f; top: 12px; }
  #playhead { position: absolute; top: -2px; bottom: -2px; width: 2px; background: #000; pointer-events: none; }
  #controls { display: flex; gap: 12px; align-items: center; flex-wrap: wrap; font-size: 13px; }
  #controls[hidden], #scrubber[hidden] { display: none; }
  #link-output { width: 420px; font-size: 12px; }
  .legend span { display: inline-block; width: 10px; height: 10px; margin: 0 3px 0 8px; vertical-align: middle; }
</style></head>
<body data-state="starting" data-playable-within-ms="${options.playableWithinMs}">
<aside>
  <form id="key-form" hidden>
    <p>Personal API key</p>
    <input id="key-input" type="password" size="36" placeholder="rpk_..." autocomplete="off">
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
  <div id="notices"></div>
  <dl id="summary"></dl>
  <div id="stage">
    <div id="player"></div>
    <section id="panels" hidden>
      <div id="panel-tabs" role="tablist">
        <button id="tab-console" role="tab" aria-selected="true">Console</button>
        <button id="tab-events" role="tab" aria-selected="false">Events</button>
      </div>
      <ol id="console-panel" class="panel" role="tabpanel"></ol>
      <ol id="events-panel" class="panel" role="tabpanel" hidden></ol>
    </section>
  </div>
  <div id="scrubber" hidden title="Click to seek"><div id="playhead"></div></div>
  <div id="controls" hidden>
    <button id="play-toggle">Play</button>
    <span id="time"></span>
    <label>Speed <select id="speed"><option value="1">1×</option><option value="2">2×</option><option value="4">4×</option><option value="8">8×</option></select></label>
    <label><input type="checkbox" id="skip-inactive" checked> Skip inactivity</label>
    <span class="legend"><span style="background:#9fd3a8"></span>active<span style="background:#e6e6e6"></span>inactive<span style="background:#2f6fd6"></span>click<span style="background:#d62f2f"></span>error</span>
    <span id="window-badge"></span>
    <button id="link-here">Link at this time</button>
    <input id="link-output" readonly hidden aria-label="Link to this moment">
  </div>
</main>
<script src="/player/assets/rrweb-player.js"></script>
<script type="module" src="/player/assets/player-app.js"></script>
</body></html>`;
}

/**
 * The player's Content-Security-Policy. Scripts: rrweb-player and the page's modules from /player/assets, nothing
 * else: no inline script or handler, no eval. rrweb rebuilds the recorded DOM inside an about:blank iframe
 * that it sandboxes without `allow-scripts`; that iframe inherits this policy, so a script inside a recording cannot
 * run even if the sandbox were lifted. What the policy allows beyond scripts is what faithful playback needs: the
 * recorded page's inline styles (`style-src 'unsafe-inline'`: rrweb writes each stylesheet it could read as a
 * <style> element), the stylesheets it could not read (another origin's, without CORS: rrweb keeps their <link>), and
 * its images, fonts and media from wherever the recorded page loaded them. Data only from this origin
 * (`connect-src 'self'`); no plugins, no <base>, no form posts, and never framed by another page (`frame-ancestors
 * 'none'`, clickjacking).
 */
export const playerContentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline' https: http:",
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
