import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LOOPBACK } from '../harness/ports.ts';

/**
 * A small shop page that loads posthog-js from capture (`api_host` = capture) and records itself: `dev` mode serves
 * it, and the browser tests drive it. `headScript` runs before posthog-js loads (tests use it to observe rrweb).
 */
export function demoPageHtml(options: { captureUrl: string; token: string; headScript?: string }): string {
  const filler = Array.from(
    { length: 60 },
    (_, i) => `<p>Product line ${i}: a sturdy thing for everyday use.</p>`,
  ).join('');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>Demo shop</title>
${options.headScript ? `<script>${options.headScript}</script>` : ''}
<script src="${options.captureUrl}/static/array.js"></script>
<script>
  posthog.init(${JSON.stringify(options.token)}, {
    api_host: ${JSON.stringify(options.captureUrl)},
    opt_out_useragent_filter: true,
    request_queue_config: { flush_interval_ms: 250 },
    enable_recording_console_log: true,
  });
</script></head>
<body>
  <h1>Demo shop</h1>
  <label>Search <input id="search" type="text"></label>
  <button id="buy" onclick="document.getElementById('status').textContent = 'Added to cart: ' + document.getElementById('search').value; console.error('checkout failed for', document.getElementById('search').value)">Add to cart</button>
  <p id="status">Cart is empty</p>
  ${filler}
</body></html>`;
}

/** Serves one HTML page on a free loopback port: a separate origin from capture, as on a real site. */
export async function serveHtml(html: string, port = 0): Promise<{ url: string; server: Server }> {
  const server = createServer((_req, res) =>
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html),
  );
  await new Promise<void>((resolve) => server.listen(port, LOOPBACK, resolve));
  return { url: `http://${LOOPBACK}:${(server.address() as AddressInfo).port}/`, server };
}
