import type { Server } from 'node:http';
import type Kafka from 'node-rdkafka';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { decompressLz4Frames } from '../../../src/codec/lz4-frames.ts';
import { loadConfig } from '../../../src/config/index.ts';
import { demoPageHtml, serveHtml } from '../../../src/dev/demo-page.ts';
import { launchChromium } from '../../../src/harness/chromium.ts';
import { topicNames } from '../../../src/kafka/topics.ts';
import { decodeRecordingMessage, type RecordingMessageHeader } from '../../../src/recordings/message-codec.ts';
import { inflatePosthogEvent } from '../../../src/recordings/posthog-compressed-events.ts';
import type { Team } from '../../../src/teams/team-store.ts';
import { startTestCapture, type TestCapture } from '../../support/capture.ts';
import { headerOf, readTopic } from '../../support/kafka.ts';
import { actLikeAUser, emittedEvents, flushPosthog, RRWEB_TAP } from '../../support/posthog-page.ts';

const stack = inject('stack');

interface Received {
  header: RecordingMessageHeader;
  lines: [string, Record<string, unknown>][];
}

function decode(message: Kafka.Message): Received {
  const { header, payload } = decodeRecordingMessage(message.value!);
  const lines = decompressLz4Frames(payload)
    .toString('utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as [string, Record<string, unknown>]);
  return { header, lines };
}

/** The test's own reading of DESIGN §3.4, kept apart from src/recordings/summary.ts on purpose. */
function expectedCounters(events: Record<string, unknown>[]) {
  const data = (e: Record<string, unknown>) => (e.data ?? {}) as Record<string, unknown>;
  const incremental = events.filter((e) => e.type === 3);
  const consoleLevels = events
    .filter((e) => e.type === 6 && data(e).plugin === 'rrweb/console@1')
    .map((e) => (data(e).payload as { level: string }).level);
  return {
    eventCount: events.length,
    clickCount: incremental.filter((e) => data(e).source === 2 && [2, 3, 4, 9].includes(data(e).type as number)).length,
    keypressCount: incremental.filter((e) => data(e).source === 5).length,
    mouseActivityCount: incremental.filter((e) => [1, 2, 6].includes(data(e).source as number)).length,
    consoleErrorCount: consoleLevels.filter((l) => l === 'error' || l === 'assert').length,
    consoleWarnCount: consoleLevels.filter((l) => l === 'warn' || l === 'countReset').length,
    consoleLogCount: consoleLevels.filter((l) => !['error', 'assert', 'warn', 'countReset'].includes(l)).length,
  };
}

describe('posthog-js records a page against capture (real Chromium, real Kafka)', () => {
  let capture: TestCapture;
  let team: Team;
  let browser: Browser;
  let page: { url: string; server: Server };

  beforeAll(async () => {
    capture = await startTestCapture({ brokers: stack.kafka!.brokers, databaseUrl: stack.postgres!.url });
    team = await capture.createTeam({ retention: '90d' });
    page = await serveHtml(demoPageHtml({ captureUrl: capture.url, token: team.apiToken, headScript: RRWEB_TAP }));
    browser = await launchChromium(loadConfig());
  });
  afterAll(async () => {
    await browser?.close();
    page?.server.close();
    await capture?.stop();
  });

  it('delivers exactly the rrweb events the page emitted, framed with the right team, session, window and counters', async () => {
    const tab = await browser.newPage();
    await tab.goto(page.url);
    await tab.waitForFunction('window.__rrwebEmitted && window.__rrwebEmitted.length >= 2', undefined, {
      timeout: 20_000,
    });
    await actLikeAUser(tab, 'blue teapot');
    await tab.waitForTimeout(500);
    await flushPosthog(tab);
    const sessionId = (await tab.evaluate('posthog.get_session_id()')) as string;

    // Events keep coming (mouse, scroll); settle on a count that Kafka has caught up with.
    let emitted: Record<string, unknown>[] = [];
    let received: Received[] = [];
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      emitted = await emittedEvents(tab);
      const messages = await readTopic(stack.kafka!.brokers, topicNames.recordings, {
        done: (got) =>
          got.filter((m) => headerOf(m, 'session_id') === sessionId).flatMap((m) => decode(m).lines).length >=
          emitted.length,
        timeoutMs: 10_000,
      });
      received = messages.filter((m) => headerOf(m, 'session_id') === sessionId).map(decode);
      if (received.flatMap((r) => r.lines).length >= emitted.length) break;
      await flushPosthog(tab);
    }
    const lines = received.flatMap((r) => r.lines);
    const events = lines.map(([, event]) => inflatePosthogEvent(event));
    expect(events.length).toBe(emitted.length);
    expect(events).toEqual(emitted);

    // What the user did is in the recording.
    expect(JSON.stringify(events)).toContain('blue teapot');
    const windowIds = new Set(lines.map(([windowId]) => windowId));
    expect(windowIds.size).toBe(1);

    for (const { header } of received) {
      expect(header).toMatchObject({
        teamId: team.id,
        sessionId,
        retention: '90d',
        snapshotSource: 'web',
        snapshotLibrary: 'web',
      });
      expect(header.windowIds).toEqual([...windowIds]);
      expect(header.distinctId).toBe(await tab.evaluate('posthog.get_distinct_id()'));
    }
    const sum = (key: keyof RecordingMessageHeader) => received.reduce((n, r) => n + (r.header[key] as number), 0);
    const expected = expectedCounters(emitted);
    for (const [key, value] of Object.entries(expected))
      expect(sum(key as keyof RecordingMessageHeader), key).toBe(value);
    expect(expected.clickCount).toBeGreaterThanOrEqual(2);
    expect(expected.keypressCount).toBeGreaterThan(0);
    expect(expected.consoleErrorCount).toBe(1);
    const timestamps = emitted.map((e) => e.timestamp as number);
    expect(Math.min(...received.map((r) => r.header.firstTimestamp))).toBe(Math.min(...timestamps));
    expect(Math.max(...received.map((r) => r.header.lastTimestamp))).toBe(Math.max(...timestamps));
    expect(received[0]!.header.urls[0]).toBe(page.url);
  });
});
