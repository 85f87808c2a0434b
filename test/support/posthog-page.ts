import type { Page } from 'playwright-core';

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
