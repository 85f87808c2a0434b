import type { Browser, Page } from 'playwright-core';
import { actLikeAUser, flushPosthog } from './posthog-page.ts';

/** Opens a page that records itself with posthog-js, once its recording has started. */
export async function openRecordingPage(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.waitForFunction(
    'window.posthog && posthog.sessionRecordingStarted && posthog.sessionRecordingStarted()',
    undefined,
    { timeout: 20_000 },
  );
  await page.waitForTimeout(500);
}

/** Opens the demo page, acts like a user (types `text`, clicks "Add to cart"), flushes posthog-js; the session id. */
export async function recordDemoSession(browser: Browser, demoUrl: string, text: string): Promise<string> {
  const tab = await browser.newPage();
  await openRecordingPage(tab, demoUrl);
  await actLikeAUser(tab, text);
  await tab.waitForTimeout(500);
  await flushPosthog(tab);
  const sessionId = (await tab.evaluate('posthog.get_session_id()')) as string;
  await tab.close();
  return sessionId;
}

/** Polls the API until the session's summary counts `keypresses` key presses (its last block has arrived). */
export async function waitForSession(
  apiUrl: string,
  key: string,
  teamId: number,
  sessionId: string,
  keypresses: number,
  timeoutMs = 60_000,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const response = await fetch(`${apiUrl}/api/projects/${teamId}/session_recordings/${sessionId}`, {
      headers: { authorization: `Bearer ${key}` },
    });
    last = await response.json();
    if (response.ok && (last as { keypress_count: number }).keypress_count >= keypresses) {
      return last as Record<string, unknown>;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`session ${sessionId} did not reach the API in time; last answer ${JSON.stringify(last)}`);
}

/** The iframe of the replayed page: the view of the window the player shows. */
export const replayedFrame = '.window-view .replayer-wrapper iframe';

/** The player page once it has played, failed or found nothing to play. */
export const playerSettled = 'body:is([data-state="playing"], [data-state="failed"], [data-state="empty"])';

/**
 * Opens the player page on one session, jumps to the end of the replay and reads the replayed page's DOM: what the
 * user typed (as rrweb replays the input's value) and the status line the click changed.
 */
export async function playToEnd(browser: Browser, playerUrl: string, teamId: number, sessionId: string) {
  const page = await browser.newPage();
  const separator = playerUrl.includes('#') ? '&' : '#';
  await page.goto(`${playerUrl}${separator}team=${teamId}&session=${sessionId}`);
  // A locator, not a string predicate: Playwright polls string predicates with eval, which the player's
  // Content-Security-Policy refuses (no 'unsafe-eval').
  await page.locator(playerSettled).waitFor({ state: 'attached', timeout: 30_000 });
  const state = await page.evaluate('document.body.dataset.state');
  const pageStatus = await page.evaluate("document.getElementById('status').textContent");
  if (state !== 'playing') throw new Error(`player ended in state ${state}: ${pageStatus}`);
  await page.evaluate('window.replay.seek(window.replay.timeline.end, false)');
  const replayed = page.frameLocator(replayedFrame);
  await replayed.locator('#status').waitFor({ timeout: 10_000 });
  const result = {
    summary: (await page.locator('#summary').textContent()) ?? '',
    typed: await replayed.locator('#search').inputValue(),
    status: (await replayed.locator('#status').textContent()) ?? '',
    addressBar: page.url(),
  };
  await page.close();
  return result;
}
