import { gunzipSync } from 'node:zlib';
import type { Page, Request } from 'playwright-core';
import { POSTHOG_EVENT_PATHS } from '../../src/capture/behavior-routes.ts';

/**
 * Wraps rrweb's `record` when posthog-js's recorder installs it on `window.__PosthogExtensions__.rrweb`, and copies
 * every emitted event into `window.__rrwebEmitted`: what rrweb itself produced, before posthog-js compresses it.
 * posthog-js is not modified; the page only observes.
 */
export const RRWEB_TAP = `
(function () {
  window.__rrwebEmitted = [];
  var ext = (window.__PosthogExtensions__ = window.__PosthogExtensions__ || {});
  var current;
  function tap(record) {
    if (!record || record.__tapped) return record;
    return new Proxy(record, {
      apply: function (target, self, args) {
        var options = args[0] || {};
        var emit = options.emit;
        var tapped = Object.assign({}, options, {
          emit: function (event) {
            try { return emit.apply(this, arguments); }
            finally { try { window.__rrwebEmitted.push(JSON.parse(JSON.stringify(event))); } catch (e) {} }
          },
        });
        return Reflect.apply(target, self, [tapped].concat([].slice.call(args, 1)));
      },
      get: function (target, key, receiver) { return key === '__tapped' ? true : Reflect.get(target, key, receiver); },
    });
  }
  Object.defineProperty(ext, 'rrweb', {
    configurable: true, enumerable: true,
    get: function () { return current; },
    set: function (value) { if (value && typeof value.record === 'function') value.record = tap(value.record); current = value; },
  });
})();`;

/** Makes posthog-js send what it has buffered now (it flushes on unload), without leaving the page. */
export async function flushPosthog(page: Page): Promise<void> {
  await page.evaluate(`
    window.dispatchEvent(new Event('beforeunload'));
    window.dispatchEvent(new PageTransitionEvent('pagehide', { persisted: true }));
    window.dispatchEvent(new PageTransitionEvent('pageshow', { persisted: false }));`);
}

/** What rrweb emitted on the page so far (see RRWEB_TAP). */
export function emittedEvents(page: Page): Promise<Record<string, unknown>[]> {
  return page.evaluate('window.__rrwebEmitted');
}

/** Clicks, types and scrolls like a user. */
export async function actLikeAUser(page: Page, text: string): Promise<void> {
  await page.mouse.move(50, 50);
  await page.click('#search');
  await page.keyboard.type(text, { delay: 20 });
  await page.click('#buy');
  await page.mouse.wheel(0, 600);
  await page.waitForTimeout(300);
  await page.mouse.wheel(0, -300);
}

/** What the page sent to capture, read off the wire: posthog-js analytics events and behaviours. */
export interface CaptureTraffic {
  /** posthog-js analytics events in the order sent (a retried request's events appear again); no `$snapshot`s. */
  readonly events: Record<string, unknown>[];
  /** Behaviours POSTed to `/api/v1/behaviors`, in the order sent. */
  readonly behaviors: Record<string, unknown>[];
  /** Requests to those routes whose body the browser did not expose: the two lists above miss them. */
  readonly unreadable: string[];
}

/**
 * Records, from now on, every POST `page` makes to capture's analytics routes and `/api/v1/behaviors`, decoded as
 * posthog-js encodes them. Through request interception, not request events: Chromium shows the body of a
 * sendBeacon (posthog-js's way on unload) only to an interceptor. Requests go on unchanged.
 */
export async function recordCaptureTraffic(page: Page, captureUrl: string): Promise<CaptureTraffic> {
  const origin = new URL(captureUrl).origin;
  const traffic: CaptureTraffic = { events: [], behaviors: [], unreadable: [] };
  const analytics = new Set<string>(POSTHOG_EVENT_PATHS);
  const record = (request: Request) => {
    const url = new URL(request.url());
    const path = url.pathname.replace(/\/+$/, '');
    if (request.method() !== 'POST' || (path !== '/api/v1/behaviors' && !analytics.has(path))) return;
    const body = request.postDataBuffer();
    if (!body) {
      traffic.unreadable.push(`${request.resourceType()} ${request.url()}`);
      return;
    }
    const items = listOf(decodePosthogBody(url, body));
    if (path === '/api/v1/behaviors') traffic.behaviors.push(...items);
    // `$snapshot`s on these routes are skipped by capture: they belong to /s/.
    else traffic.events.push(...items.filter((event) => event.event !== '$snapshot'));
  };
  await page.route(
    (url) => url.origin === origin,
    async (route) => {
      try {
        record(route.request());
      } finally {
        await route.continue();
      }
    },
  );
  return traffic;
}

/**
 * A posthog-js request body as JSON: the base64 `data=` form (sendBeacon), gzip (`compression=gzip-js`), or plain.
 * The test's own reading of the wire, kept apart from capture's body-encoding.ts.
 */
export function decodePosthogBody(url: URL, body: Buffer): unknown {
  let bytes = body;
  const text = body.toString('latin1');
  if (url.searchParams.get('compression') === 'base64' || text.startsWith('data=')) {
    bytes = Buffer.from(new URLSearchParams(text).get('data') ?? '', 'base64');
  }
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = gunzipSync(bytes);
  return JSON.parse(bytes.toString('utf8'));
}

/** The items of a body: an array, posthog-js's `{batch: [...]}`, or one object. */
function listOf(body: unknown): Record<string, unknown>[] {
  if (Array.isArray(body)) return body as Record<string, unknown>[];
  const object = body as Record<string, unknown>;
  return Array.isArray(object.batch) ? (object.batch as Record<string, unknown>[]) : [object];
}
