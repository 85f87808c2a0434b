import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ApiKeyStore } from '../../../src/api/api-keys.ts';
import { loadConfig } from '../../../src/config/index.ts';
import { DEMO_ITEMS, DEMO_SCENARIO, demoPageHtml, serveHtml } from '../../../src/dev/demo-page.ts';
import { launchChromium } from '../../../src/harness/chromium.ts';
import { topicNames } from '../../../src/kafka/topics.ts';
import type { SqlDatabase } from '../../../src/postgres/database.ts';
import { freshBucketStore, startTestBlobConsumer } from '../../support/blob-consumer.ts';
import { startTestCapture, type TestCapture } from '../../support/capture.ts';
import { startSinkAndApi, startTestBehaviorsSink } from '../../support/pipeline.ts';
import { actLikeAUser, flushPosthog, recordCaptureTraffic } from '../../support/posthog-page.ts';
import { playToEnd, waitForSession } from '../../support/replay-flow.ts';

const stack = inject('stack');
const typed = 'blue teapot';

interface StoredBehavior {
  event_id: string;
  action_type: string;
  user_id: string;
  item_id: string;
  scenario_id: string;
  session_id: string;
  current_url: string;
  source: string;
  ts: number;
  properties: Record<string, string>;
}

/** A property value as the behaviour map holds it (the test's own reading of docs/uba.md's flattening). */
const flat = (value: unknown) => (typeof value === 'string' ? value : JSON.stringify(value));

/** The properties a page or user set: posthog-js's own (`$...`) and those that became columns left out. */
function ownProperties(properties: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(properties)
      .filter(([key, value]) => !key.startsWith('$') && key !== 'distinct_id' && key !== 'token' && value != null)
      .map(([key, value]) => [key, flat(value)]),
  );
}

describe('posthog-js in Chromium → capture → Kafka → behaviour sink → ClickHouse, each behaviour linked to its replay', () => {
  let dir: string;
  let capture: TestCapture;
  let clickhouse: ClickHouseClient;
  let db: SqlDatabase;
  let apiUrl: string;
  let browser: Browser;
  let page: { url: string; server: Server } | undefined;
  const stops: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'replay-posthog-ch-'));
    const brokers = stack.kafka!.brokers;
    capture = await startTestCapture({ brokers, databaseUrl: stack.postgres!.url });
    stops.push(() => capture.stop());
    const store = await freshBucketStore();
    const consumer = await startTestBlobConsumer({ brokers, topic: topicNames.recordings, store });
    stops.push(() => consumer.stop());
    const read = await startSinkAndApi({ brokers, postgresUrl: stack.postgres!.url, store, dir });
    stops.push(() => read.stop());
    ({ clickhouse, db, apiUrl } = read);
    const behaviors = await startTestBehaviorsSink({ brokers, clickhouse, groupId: `behaviors-${randomUUID()}` });
    stops.push(() => behaviors.stop());
    browser = await launchChromium(loadConfig());
    stops.push(() => browser.close());
  });
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
    page?.server.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function stored(teamId: number): Promise<StoredBehavior[]> {
    const result = await clickhouse.query({
      query: `SELECT toString(event_id) AS event_id, action_type, user_id, item_id, scenario_id, session_id, current_url,
                     source, toUnixTimestamp64Milli(timestamp) AS ts, properties
                FROM user_behaviors WHERE tenant_id = {team:Int64} ORDER BY timestamp, event_id`,
      query_params: { team: teamId },
      format: 'JSONEachRow',
    });
    return result.json<StoredBehavior>();
  }

  it('stores exactly the events and behaviours the page sent, once each, and every session id plays back', async () => {
    const team = await capture.createTeam();
    const { key } = await new ApiKeyStore(db).create('uba', [team.id]);
    page = await serveHtml(demoPageHtml({ captureUrl: capture.url, token: team.apiToken }));
    const tab = await browser.newPage();
    const sent = await recordCaptureTraffic(tab, capture.url);
    await tab.goto(page.url);
    await tab.waitForFunction(
      'window.posthog && posthog.sessionRecordingStarted && posthog.sessionRecordingStarted()',
      undefined,
      { timeout: 20_000 },
    );
    await tab.evaluate('demoShop.loaded');
    // Types and clicks "Add to cart" (add_to_cart, add_cart), opens one product (view_item, click), leaves ($pageleave).
    await actLikeAUser(tab, typed);
    const item = DEMO_ITEMS[1];
    await tab.click(`#details-${item.id}`);
    await tab.waitForTimeout(500);
    await flushPosthog(tab);
    const sessionId = (await tab.evaluate('posthog.get_session_id()')) as string;
    const distinctId = (await tab.evaluate('posthog.get_distinct_id()')) as string;

    // Retries carry the same ids: what was sent is one entry per id.
    const sentById = () =>
      new Map<string, { kind: 'event' | 'behavior'; item: Record<string, unknown> }>([
        ...sent.events.map((e) => [String(e.uuid).toLowerCase(), { kind: 'event' as const, item: e }] as const),
        ...sent.behaviors.map(
          (b) => [String(b.event_id).toLowerCase(), { kind: 'behavior' as const, item: b }] as const,
        ),
      ]);
    let rows: StoredBehavior[] = [];
    const deadline = Date.now() + 60_000;
    for (;;) {
      rows = await stored(team.id);
      const ids = new Set(rows.map((r) => r.event_id));
      if ([...sentById().keys()].every((id) => ids.has(id))) break;
      if (Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    // Past the sink's insert interval and posthog-js's flush: nothing more arrives, nothing arrives twice.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    rows = await stored(team.id);
    const expected = sentById();

    expect(sent.unreadable).toEqual([]);
    expect(rows.map((r) => r.event_id)).toEqual([...new Set(rows.map((r) => r.event_id))]);
    expect(new Set(rows.map((r) => r.event_id))).toEqual(new Set(expected.keys()));
    const names = new Set(rows.map((r) => r.action_type));
    for (const name of [
      '$pageview',
      '$autocapture',
      '$pageleave',
      'add_to_cart',
      'view_item',
      'impression',
      'click',
      'add_cart',
    ])
      expect([...names], name).toContain(name);

    for (const row of rows) {
      const { kind, item: what } = expected.get(row.event_id)!;
      expect(row.session_id, row.action_type).not.toBe('');
      if (kind === 'event') {
        const properties = what.properties as Record<string, unknown>;
        expect(row, String(what.event)).toMatchObject({
          source: 'posthog-js',
          action_type: what.event,
          user_id: properties.distinct_id,
          session_id: properties.$session_id,
          current_url: properties.$current_url,
          ts: Date.parse(String(what.timestamp)),
        });
        expect(row.properties).toMatchObject(ownProperties(properties));
      } else {
        expect(row, String(what.action_type)).toMatchObject({
          source: 'behaviors-api',
          action_type: what.action_type,
          user_id: what.user_id,
          item_id: what.item_id,
          scenario_id: what.scenario_id,
          session_id: what.session_id,
          current_url: '',
          ts: what.timestamp,
        });
        expect(row.properties).toEqual(ownProperties(what.extra_data as Record<string, unknown>));
      }
      // One tab, one visitor, one recording.
      expect(row.user_id).toBe(distinctId);
      expect(row.session_id).toBe(sessionId);
    }
    // What the page itself set reached the map as it set it.
    expect(rows.find((r) => r.action_type === 'add_to_cart')!.properties).toMatchObject({
      item_id: typed,
      quantity: '1',
      price: '9.5',
      currency: 'EUR',
    });
    expect(rows.find((r) => r.action_type === 'view_item')!.properties).toMatchObject({
      item_id: item.id,
      price: String(item.price),
      position: '1',
    });
    expect(
      rows
        .filter((r) => r.action_type === 'impression')
        .map((r) => r.item_id)
        .sort(),
    ).toEqual(DEMO_ITEMS.map((i) => i.id).sort());
    expect(rows.find((r) => r.action_type === 'click')).toMatchObject({ item_id: item.id, scenario_id: DEMO_SCENARIO });
    expect(rows.find((r) => r.action_type === '$pageview')!.current_url).toBe(page.url);

    // Every session id a behaviour carries has its replay: a summary row and a snapshot the player plays.
    await tab.close();
    for (const session of new Set(rows.map((r) => r.session_id))) {
      await waitForSession(apiUrl, key, team.id, session, typed.length);
      const summaries = await clickhouse.query({
        query:
          'SELECT count() AS n FROM session_replay_events WHERE team_id = {team:Int64} AND session_id = {session:String}',
        query_params: { team: team.id, session },
        format: 'JSONEachRow',
      });
      expect((await summaries.json<{ n: number }>())[0]!.n, session).toBeGreaterThan(0);
      const played = await playToEnd(browser, `${apiUrl}/player#key=${key}`, team.id, session);
      expect(played.status).toBe(`Added to cart: ${typed}`);
    }
  });
});
