import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ApiKeyStore } from '../../../src/api/api-keys.ts';
import { loadConfig } from '../../../src/config/index.ts';
import { demoPageHtml, serveHtml } from '../../../src/dev/demo-page.ts';
import { launchChromium } from '../../../src/harness/chromium.ts';
import type { BlobStore } from '../../../src/storage/blob-store.ts';
import type { Team } from '../../../src/teams/team-store.ts';
import { postRaw, sampleRrwebEvents, snapshotBody, type TestCapture } from '../../support/capture.ts';
import { eventually } from '../../support/kafka-offsets.ts';
import { startRecordingPipeline, startTestBehaviorsSink } from '../../support/pipeline.ts';
import { flushPosthog } from '../../support/posthog-page.ts';
import { openRecordingPage, playerSettled, replayedFrame, waitForSession } from '../../support/replay-flow.ts';

const stack = inject('stack');
const resultsDir = join(import.meta.dirname, '../../../.data/test-results');
/** Both ends of the test run these: the consumer flushes every second, the player expects data that soon. */
const FLUSH_INTERVAL_MS = '1000';

type Json = Record<string, unknown>;

/** What one tab did, with the browser's clock (the one the recording is stamped with). */
interface TabActions {
  readonly clickedAt: number;
}

/** Types `text` into the search field and clicks "Add to cart" (which logs a console error), like a user. */
async function addToCart(page: Page, text: string): Promise<TabActions> {
  await page.mouse.move(60, 60);
  await page.click('#search');
  await page.keyboard.type(text, { delay: 20 });
  await page.click('#buy');
  const clickedAt = (await page.evaluate('Date.now()')) as number;
  await page.mouse.move(80, 90);
  await page.waitForTimeout(300);
  return { clickedAt };
}

/** The player's current offset into the replay, in ms. */
const currentTime = (tab: Page) => tab.evaluate('window.replay.currentTime()') as Promise<number>;

async function replayedStatus(tab: Page, expected: string): Promise<void> {
  const replayed = tab.frameLocator(replayedFrame).locator('#status');
  await expect.poll(() => replayed.textContent(), { timeout: 10_000 }).toBe(expected);
}

describe('the player: every window in one timeline, console and event panels, scrubber, deep links', () => {
  let browser: Browser;
  let dir: string;
  let capture: TestCapture;
  let apiUrl: string;
  let team: Team;
  let key: string;
  let deleteKey: string;
  let demo: { url: string; server: Server };
  let store: BlobStore;
  const stops: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    browser = await launchChromium(loadConfig());
    dir = await mkdtemp(join(tmpdir(), 'player-timeline-'));
    const brokers = stack.kafka!.brokers;
    const read = await startRecordingPipeline({
      brokers,
      postgresUrl: stack.postgres!.url,
      dir,
      env: { BLOB_FLUSH_INTERVAL_MS: FLUSH_INTERVAL_MS },
    });
    stops.push(() => read.stop());
    ({ capture, store } = read);
    // posthog-js's analytics events reach ClickHouse through the behaviour sink, for the event list.
    const behaviors = await startTestBehaviorsSink({
      brokers,
      groupId: `behaviors-${randomUUID()}`,
      clickhouse: read.clickhouse,
    });
    stops.push(() => behaviors.stop());
    apiUrl = read.apiUrl;
    team = await capture.createTeam();
    const keys = new ApiKeyStore(read.db);
    key = (await keys.create('player', [team.id])).key;
    deleteKey = (await keys.create('player-delete', [team.id], ['read', 'delete'])).key;
    demo = await serveHtml(demoPageHtml({ captureUrl: capture.url, token: team.apiToken }));
  }, 120_000);
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
    demo?.server.close();
    await browser?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const api = async (path: string, init: RequestInit = {}, withKey = key) => {
    const response = await fetch(`${apiUrl}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${withKey}`, ...init.headers },
    });
    return { status: response.status, text: await response.text() };
  };
  const sessionPath = (sessionId: string) => `/api/projects/${team.id}/session_recordings/${sessionId}`;

  async function openPlayer(hash: string): Promise<Page> {
    const tab = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
    await tab.goto(`${apiUrl}/player#${hash}`);
    await tab.locator(playerSettled).waitFor({ state: 'attached', timeout: 30_000 });
    const state = await tab.evaluate(
      "document.body.dataset.state + ' ' + document.getElementById('status').textContent",
    );
    expect(state).toMatch(/^playing/);
    return tab;
  }

  it('plays a session recorded in two tabs window by window; its panels list and seek; a link opens at its time', async () => {
    // One browser profile, two tabs: posthog-js shares the session between them and gives each tab its own window.
    const context = await browser.newContext();
    const tabA = await context.newPage();
    await openRecordingPage(tabA, demo.url);
    await tabA.evaluate("console.log('tab A ready')");
    const a = await addToCart(tabA, 'first tab');
    await tabA.waitForTimeout(1500);
    const tabB = await context.newPage();
    await openRecordingPage(tabB, `${demo.url}?tab=b`);
    await tabB.evaluate("console.warn('tab B warning')");
    const b = await addToCart(tabB, 'second');
    await tabB.waitForTimeout(1500);
    await tabA.bringToFront();
    await tabA.mouse.move(200, 200);
    await tabA.mouse.move(220, 260, { steps: 5 });
    const backInA = (await tabA.evaluate('Date.now()')) as number;
    await tabA.waitForTimeout(500);
    await flushPosthog(tabB);
    await flushPosthog(tabA);
    const sessionId = (await tabA.evaluate('posthog.get_session_id()')) as string;
    expect(await tabB.evaluate('posthog.get_session_id()')).toBe(sessionId);
    const windowA = (await tabA.evaluate(
      'posthog.sessionManager.checkAndGetSessionAndWindowId(true).windowId',
    )) as string;
    const windowB = (await tabB.evaluate(
      'posthog.sessionManager.checkAndGetSessionAndWindowId(true).windowId',
    )) as string;
    expect(windowA).not.toBe(windowB);
    await context.close();

    await waitForSession(apiUrl, key, team.id, sessionId, 'first tab'.length + 'second'.length);
    await eventually(
      async () => (await api(`${sessionPath(sessionId)}/events`)).text.includes('"add_to_cart"'),
      'the analytics events of the session to reach ClickHouse',
    );
    // The session's analytics events come with ISO times (what every browser parses alike), inside the recording.
    const analytics = JSON.parse((await api(`${sessionPath(sessionId)}/events`)).text) as {
      results: { timestamp: string }[];
    };
    for (const { timestamp } of analytics.results) {
      expect(timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      expect(Date.parse(timestamp)).toBeGreaterThan(a.clickedAt - 60_000);
    }
    // Independently of the player: the console events of the session as the API streams them.
    const list = JSON.parse((await api(`${sessionPath(sessionId)}/snapshots`)).text) as { blocks: unknown[] };
    const lines = (await api(`${sessionPath(sessionId)}/snapshots?blocks=0-${list.blocks.length - 1}`)).text
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as [string, Json]);
    const windowIds = new Set(lines.map(([windowId]) => windowId));
    expect(windowIds).toEqual(new Set([windowA, windowB]));
    const consoleEvents = lines
      .filter(([, e]) => e.type === 6 && (e.data as Json).plugin === 'rrweb/console@1')
      .map(([windowId, e]) => ({
        windowId,
        timestamp: e.timestamp as number,
        payload: (e.data as Json).payload as Json,
      }))
      .sort((x, y) => x.timestamp - y.timestamp);
    expect(consoleEvents.map((e) => e.payload.level)).toEqual(['log', 'error', 'warn', 'error']);

    const tab = await openPlayer(`key=${key}&team=${team.id}&session=${sessionId}`);
    await tab.evaluate('window.replay.player.pause()');
    const timeline = (await tab.evaluate('window.replay.timeline')) as {
      start: number;
      end: number;
      windows: string[];
      segments: { windowId: string; start: number; end: number }[];
    };
    // Every window plays, in the order the user went: A, then B, then A again.
    expect(timeline.windows).toEqual([windowA, windowB]);
    expect(timeline.segments.map((s) => s.windowId)).toEqual([windowA, windowB, windowA]);
    expect(timeline.segments[1]!.start).toBeLessThan(b.clickedAt);
    expect(timeline.segments[2]!.start).toBeLessThanOrEqual(backInA + 1000);

    // The DOM of each window at a moment it was active.
    const seek = (timestamp: number) => tab.evaluate(`window.replay.seek(${timestamp})`);
    await seek(a.clickedAt + 200);
    await replayedStatus(tab, 'Added to cart: first tab');
    expect(await tab.locator('#window-badge').textContent()).toBe('Window 1 of 2');
    // Exactly where B's segment starts: B is drawn, before its click.
    await seek(timeline.segments[1]!.start);
    await replayedStatus(tab, 'Cart is empty');
    expect(await tab.locator('#window-badge').textContent()).toBe('Window 2 of 2');
    await seek(b.clickedAt + 200);
    await replayedStatus(tab, 'Added to cart: second');
    expect(await tab.locator('#window-badge').textContent()).toBe('Window 2 of 2');
    await seek(timeline.segments[2]!.start + 200);
    await replayedStatus(tab, 'Added to cart: first tab');
    // Playing (not seeking) across a switch, skipping off: the clock moves the view to B when the user went there.
    await tab.locator('#skip-inactive').uncheck();
    await tab.evaluate(`window.replay.seek(${timeline.segments[1]!.start - 600}, true)`);
    await expect
      .poll(() => currentTime(tab), { timeout: 10_000, interval: 20 })
      .toBeGreaterThan(timeline.segments[1]!.start - timeline.start + 50);
    await tab.evaluate('window.replay.player.pause()');
    expect(await tab.locator('#window-badge').textContent()).toBe('Window 2 of 2');
    expect(await tab.locator('.window-view').getAttribute('data-window')).toBe(windowB);
    const pausedAt = timeline.start + (await currentTime(tab));
    await replayedStatus(tab, pausedAt < b.clickedAt ? 'Cart is empty' : 'Added to cart: second');
    // At 4x the clock moves four times as fast as the wall clock.
    await tab.locator('#speed').selectOption('4');
    const before = await currentTime(tab);
    await tab.locator('#play-toggle').click();
    await tab.waitForTimeout(500);
    await tab.locator('#play-toggle').click();
    expect((await currentTime(tab)) - before).toBeGreaterThan(1000);
    expect(await tab.locator('#play-toggle').textContent()).toBe('Play');
    await tab.locator('#speed').selectOption('1');
    await seek(timeline.segments[2]!.start + 200);
    await replayedStatus(tab, 'Added to cart: first tab');
    await mkdir(resultsDir, { recursive: true });
    await tab.screenshot({ path: join(resultsDir, 'player-console.png'), fullPage: true });

    // The console panel lists exactly the session's console events, with their levels.
    const rows = tab.locator('#console-panel li');
    const listed = await rows.evaluateAll((items) =>
      items.map((item) => ({
        level: item.getAttribute('data-level'),
        timestamp: Number(item.getAttribute('data-timestamp')),
        text: item.querySelector('.text > span')?.textContent,
      })),
    );
    const windowLabel = (windowId: string) => ` [window ${windowId === windowA ? 1 : 2}]`;
    expect(listed).toEqual(
      consoleEvents.map((e) => ({
        level: e.payload.level,
        timestamp: e.timestamp,
        text:
          (e.payload.payload as string[]).map((arg) => JSON.parse(arg) as string).join(' ') + windowLabel(e.windowId),
      })),
    );
    expect(listed.map((e) => e.text)).toEqual([
      'tab A ready [window 1]',
      'checkout failed for first tab [window 1]',
      'tab B warning [window 2]',
      'checkout failed for second [window 2]',
    ]);
    // Clicking one seeks the player to its time.
    await rows.nth(2).click();
    expect(Math.abs((await currentTime(tab)) - (listed[2]!.timestamp - timeline.start))).toBeLessThan(50);
    // Tab B logged that before the user did anything in it: the player still shows tab A then.
    await replayedStatus(tab, 'Added to cart: first tab');
    await rows.nth(3).click();
    expect(Math.abs((await currentTime(tab)) - (listed[3]!.timestamp - timeline.start))).toBeLessThan(50);
    // Entries up to the playhead are marked past, the last of them current.
    expect(await tab.locator('#console-panel li.past').count()).toBe(4);
    expect(await tab.locator('#console-panel li.current').getAttribute('data-level')).toBe('error');

    // The event list: clicks on named elements, inputs, page loads, and the posthog-js events ingested for it.
    await tab.locator('#tab-events').click();
    const events = await tab
      .locator('#events-panel li')
      .evaluateAll((items) =>
        items.map((i) => `${i.getAttribute('data-kind')}: ${i.querySelector('.text')?.textContent}`),
      );
    expect(events.filter((e) => e.startsWith('click: Click on button#buy "Add to cart"'))).toHaveLength(2);
    expect(events).toContain(`navigation: ${demo.url} [window 1]`);
    expect(events).toContain(`navigation: ${demo.url}?tab=b [window 2]`);
    expect(events.some((e) => e.startsWith('input: Input in input#search'))).toBe(true);
    expect(events.filter((e) => e.startsWith('analytics: add_to_cart'))).toHaveLength(2);
    const firstClick = tab.locator('#events-panel li[data-kind="click"]').first();
    await firstClick.click();
    const clickAt = Number(await firstClick.getAttribute('data-timestamp'));
    expect(Math.abs((await currentTime(tab)) - (clickAt - timeline.start))).toBeLessThan(50);
    await tab.screenshot({ path: join(resultsDir, 'player-events.png'), fullPage: true });

    // The scrubber: activity, a marker per click and per console error, the windows; a click on it seeks.
    expect(await tab.locator('#scrubber .active').count()).toBeGreaterThan(0);
    expect(await tab.locator('#scrubber .marker.click').count()).toBeGreaterThanOrEqual(2);
    expect(await tab.locator('#scrubber .marker.error').count()).toBe(2);
    expect(await tab.locator('#scrubber .window').count()).toBe(3);
    const bar = (await tab.locator('#scrubber').boundingBox())!;
    await tab.mouse.click(bar.x + bar.width * 0.75, bar.y + bar.height / 2);
    const total = timeline.end - timeline.start;
    expect(Math.abs((await currentTime(tab)) - total * 0.75)).toBeLessThan(total * 0.02 + 50);

    // "Link at this time", at B's click; the link opens the player there, paused.
    await seek(b.clickedAt + 200);
    await tab.locator('#link-here').click();
    const link = await tab.locator('#link-output').inputValue();
    const t = Number(new URLSearchParams(new URL(link).hash.slice(1)).get('t'));
    expect(t * 1000).toBeCloseTo(b.clickedAt + 200 - timeline.start, -2);
    await tab.close();
    const linked = await openPlayer(`${new URL(link).hash.slice(1)}&key=${key}`);
    expect(Math.abs((await currentTime(linked)) - t * 1000)).toBeLessThan(50);
    expect(await linked.locator('#status').textContent()).toMatch(/^Opened at \d+:\d\d of \d+:\d\d\.$/);
    await replayedStatus(linked, 'Added to cart: second');
    await linked.screenshot({ path: join(resultsDir, 'player-deep-link.png'), fullPage: true });
    await linked.close();
  }, 180_000);

  it('says which blocks could not be read, marks them on the scrubber, and plays the rest', async () => {
    const sessionId = `partial-${randomUUID()}`;
    const objects = async () => {
      const keys = new Set<string>();
      for await (const key of store.list('')) keys.add(key);
      return keys;
    };
    const upload = async (start: number) => {
      const body = JSON.stringify(snapshotBody(team.apiToken, sessionId, sampleRrwebEvents(start)));
      const answer = await postRaw(`${capture.url}/s/`, Buffer.from(body), { 'content-type': 'application/json' });
      expect(answer.status).toBe(200);
    };
    const start = Date.now() - 60_000;
    await upload(start);
    await eventually(async () => (await api(sessionPath(sessionId))).status === 200, 'the first block');
    const before = await objects();
    await upload(start + 30_000);
    await eventually(
      async () => (JSON.parse((await api(sessionPath(sessionId))).text) as { block_count: number }).block_count === 2,
      'the second block',
    );
    for (const key of await objects()) if (!before.has(key)) await store.delete(key);

    const tab = await openPlayer(`key=${key}&team=${team.id}&session=${sessionId}`);
    expect(await tab.locator('#notices').textContent()).toMatch(
      /^1 of 2 blocks of this session could not be read \(blob_not_found\); the replay plays around them: .+–.+\.$/,
    );
    expect(await tab.locator('#scrubber .gap').count()).toBe(1);
    expect(await tab.locator('#console-panel li').count()).toBe(1); // the first block's console error only
    await tab.close();
  }, 120_000);

  it('stops looking for a session that never arrives and says it was not found', async () => {
    const tab = await browser.newPage();
    await tab.goto(`${apiUrl}/player#key=${key}&team=${team.id}&session=never-${randomUUID()}`);
    await tab.locator('body[data-state="processing"]').waitFor({ state: 'attached', timeout: 15_000 });
    // Looked for until the flush and insert intervals plus 30 s have passed (1.3 s + 30 s here), then given up.
    await tab.locator('body[data-state="failed"]').waitFor({ state: 'attached', timeout: 60_000 });
    expect(await tab.locator('#status').textContent()).toMatch(
      /^No recording of session never-\S+ was found: it was never recorded, or its data never arrived\.$/,
    );
    expect(await tab.locator('#notices').textContent()).toBe('');
    await tab.close();
  }, 90_000);

  it('says a session is still processing until it is playable, and that a deleted one was deleted', async () => {
    const sessionId = `processing-${randomUUID()}`;
    const tab = await browser.newPage();
    await tab.goto(`${apiUrl}/player#key=${key}&team=${team.id}&session=${sessionId}`);
    await tab.locator('body[data-state="processing"]').waitFor({ state: 'attached', timeout: 15_000 });
    expect(await tab.locator('#notices').textContent()).toMatch(
      /^Still processing: this session is not playable yet\. .* playable in ~\d+ s\. Checking again/,
    );
    // Its upload arrives now; the page finds it on its own and plays it.
    const upload = await postRaw(
      `${capture.url}/s/`,
      Buffer.from(JSON.stringify(snapshotBody(team.apiToken, sessionId, sampleRrwebEvents(Date.now())))),
      { 'content-type': 'application/json' },
    );
    expect(upload.status).toBe(200);
    await tab.locator('body[data-state="playing"]').waitFor({ state: 'attached', timeout: 30_000 });

    const deletion = await api(sessionPath(sessionId), { method: 'DELETE' }, deleteKey);
    expect(deletion.status).toBe(202);
    const progress = (JSON.parse(deletion.text) as { progress_url: string }).progress_url;
    await eventually(
      async () => (JSON.parse((await api(progress, {}, deleteKey)).text) as { status: string }).status === 'done',
      'the deletion to finish',
    );
    expect(JSON.parse((await api(sessionPath(sessionId))).text)).toMatchObject({ code: 'recording_deleted' });
    await tab.goto(`${apiUrl}/player#team=${team.id}&session=${sessionId}`);
    await tab.reload();
    await tab.locator('body[data-state="deleted"]').waitFor({ state: 'attached', timeout: 15_000 });
    expect(await tab.locator('#notices').textContent()).toBe('This recording was deleted.');
    await tab.close();
  }, 120_000);
});
