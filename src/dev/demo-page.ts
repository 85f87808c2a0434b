import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LOOPBACK } from '../harness/ports.ts';

/** The products the demo page lists: each is shown (an impression) and has a details button (a click). */
export const DEMO_ITEMS = [
  { id: 'teapot-blue', name: 'Blue teapot', price: 24.5 },
  { id: 'mug-red', name: 'Red mug', price: 8 },
  { id: 'kettle-steel', name: 'Steel kettle', price: 39.9 },
] as const;

/** The `scenario_id` of the demo page's behaviours. */
export const DEMO_SCENARIO = 'demo_shop';

/**
 * A small shop page that loads posthog-js from capture (`api_host` = capture) and records itself: `dev` mode serves
 * it, and the browser tests drive it. posthog-js also sends its analytics events to capture's `/e/`: `$pageview`,
 * `$pageleave`, `view_item` and `add_to_cart` from the buttons, and `$autocapture` (asked for here; posthog-js starts
 * it only when the remote config says `autocapture_opt_out: false`). The page posts behaviours (an impression per
 * product on load, a click on a product's button, an add_cart) to `POST /api/v1/behaviors` with fetch, as the
 * posthog-js user and session so each links to its replay. `headScript` runs before posthog-js loads (tests use it
 * to observe rrweb).
 */
export function demoPageHtml(options: { captureUrl: string; token: string; headScript?: string }): string {
  const filler = Array.from(
    { length: 60 },
    (_, i) => `<p>Product line ${i}: a sturdy thing for everyday use.</p>`,
  ).join('');
  const items = DEMO_ITEMS.map(
    (item, i) =>
      `<li data-item="${item.id}" data-price="${item.price}" data-position="${i}">${item.name}, ${item.price} EUR ` +
      `<button id="details-${item.id}" class="details">Details</button></li>`,
  ).join('\n    ');
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
    autocapture: true,
    capture_pageview: true,
  });
</script></head>
<body>
  <h1>Demo shop</h1>
  <label>Search <input id="search" type="text"></label>
  <button id="buy" onclick="demoShop.addToCart(document.getElementById('search').value)">Add to cart</button>
  <p id="status">Cart is empty</p>
  <ul id="items">
    ${items}
  </ul>
  ${filler}
<script>
  window.demoShop = (function () {
    var captureUrl = ${JSON.stringify(options.captureUrl)};
    var token = ${JSON.stringify(options.token)};
    var scenario = ${JSON.stringify(DEMO_SCENARIO)};
    // Capture's answers, for a look in devtools; nothing is logged, as the page's console is part of its recording.
    var answers = [];
    function ready() { return window.posthog && posthog.__loaded; }
    // One behaviour as POST /api/v1/behaviors takes it. The user and the session are posthog-js's, so the behaviour
    // sits with the page's analytics events and links to its replay; an event_id makes a retried request harmless.
    function behavior(action, item, extra) {
      return {
        event_id: window.crypto && crypto.randomUUID ? crypto.randomUUID() : undefined,
        user_id: posthog.get_distinct_id(),
        session_id: posthog.get_session_id(),
        item_id: String(item).slice(0, 200) || 'unknown',
        action_type: action,
        scenario_id: scenario,
        timestamp: Date.now(),
        context: { device_type: /Mobi/.test(navigator.userAgent) ? 'mobile' : 'desktop' },
        extra_data: extra || {},
      };
    }
    function send(behaviors) {
      return fetch(captureUrl + '/api/v1/behaviors', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer ' + token },
        body: JSON.stringify(behaviors),
      })
        .then(function (response) { return response.json().then(function (body) { answers.push({ status: response.status, body: body }); }); })
        .catch(function (error) { answers.push({ status: 0, body: String(error) }); });
    }
    function product(button) {
      var li = button.closest('li');
      return { id: li.dataset.item, price: Number(li.dataset.price), position: Number(li.dataset.position) };
    }
    var buttons = Array.prototype.slice.call(document.querySelectorAll('#items button.details'));
    buttons.forEach(function (button) {
      button.addEventListener('click', function () {
        var p = product(button);
        if (!ready()) return;
        posthog.capture('view_item', { item_id: p.id, price: p.price, position: p.position });
        send([behavior('click', p.id, { position: p.position, price: p.price })]);
      });
    });
    return {
      answers: answers,
      // Every product on the page was shown once: one impression each, in one request.
      loaded: ready()
        ? send(buttons.map(function (button) { return behavior('impression', product(button).id, { position: product(button).position }); }))
        : Promise.resolve(),
      addToCart: function (query) {
        document.getElementById('status').textContent = 'Added to cart: ' + query;
        // A console error for the recording to count (the replay tests look for it).
        console.error('checkout failed for', query);
        if (!ready()) return;
        posthog.capture('add_to_cart', { item_id: query, quantity: 1, price: 9.5, currency: 'EUR' });
        send([behavior('add_cart', query, { quantity: 1, price: 9.5 })]);
      },
    };
  })();
</script>
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
