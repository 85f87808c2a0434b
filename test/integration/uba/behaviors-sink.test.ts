import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openClickHouse } from '../../../src/clickhouse/client.ts';
import { migrateClickHouse } from '../../../src/clickhouse/migrations.ts';
import { ensureTopics } from '../../../src/kafka/admin.ts';
import { topicNames } from '../../../src/kafka/topics.ts';
import type { BehaviorRecord } from '../../../src/uba/behavior-record.ts';
import { type BehaviorRow, behaviorRow } from '../../../src/uba/behavior-rows.ts';
import { sampleBehavior } from '../../support/behaviors.ts';
import { headerOf, produceAll, readTopic } from '../../support/kafka.ts';
import { allCommitted } from '../../support/kafka-offsets.ts';
import { metricValue, scrape } from '../../support/metrics.ts';
import { startTestBehaviorsSink } from '../../support/pipeline.ts';

const brokers = inject('stack').kafka!.brokers;
const PARTITIONS = 3;
const MINUTE = 60_000;

let dir: string;
let clickhouse: ClickHouseClient;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'replay-behaviors-sink-'));
  clickhouse = openClickHouse({ kind: 'chdb', path: join(dir, 'db') });
  await migrateClickHouse(clickhouse);
});
afterAll(async () => {
  await clickhouse?.close();
  await rm(dir, { recursive: true, force: true });
});

const freshTenant = () => 100_000 + Math.floor(Math.random() * 800_000);

const asRecord = (topic: string, b: BehaviorRecord) => ({
  topic,
  key: b.user_id,
  value: Buffer.from(JSON.stringify(b)),
});

/** Behaviours of one tenant: six users, every action, two scenarios, fractional milliseconds, a property map. */
function stream(tenant: number, count: number, tag: string): BehaviorRecord[] {
  const now = Date.now();
  const actions = ['impression', 'click', 'view', 'like', 'add_cart', 'order', '$pageview'];
  return Array.from({ length: count }, (_, i) =>
    sampleBehavior({
      tenant_id: tenant,
      user_id: `user-${i % 6}`,
      item_id: `item-${(i * 5) % 9}`,
      action_type: actions[i % actions.length]!,
      scenario_id: i % 2 ? 'feed' : 'home',
      timestamp: now - (i % 7) * MINUTE - i - 0.75,
      session_id: `s-${tag}-${i % 4}`,
      properties: { tag, i: String(i) },
    }),
  );
}

function startSink(topic: string, groupId: string, env: Record<string, string> = {}) {
  return startTestBehaviorsSink({ brokers, clickhouse, topic, groupId, env });
}

async function select<T>(query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  const result = await clickhouse.query({
    query,
    query_params: params,
    format: 'JSONEachRow',
    clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
  });
  return result.json<T>();
}

/** Every stored row of a tenant, as behaviorRow shapes them, ordered by event id. */
const storedRows = (tenant: number) =>
  select<BehaviorRow>(
    `SELECT tenant_id, toString(timestamp) AS timestamp, toString(event_id) AS event_id, user_id, item_id, action_type,
            scenario_id, session_id, view_id, watch_duration, completion_rate, experiment_id, experiment_group,
            device_type, os, location, ip, current_url, properties, source, toString(captured_at) AS captured_at,
            _kafka_topic, _kafka_partition, _kafka_offset
       FROM user_behaviors WHERE tenant_id = {tenant:Int64} ORDER BY event_id`,
    { tenant },
  );

const count = async (table: string, tenant: number) =>
  (await select<{ n: number }>(`SELECT count() AS n FROM ${table} WHERE tenant_id = {tenant:Int64}`, { tenant }))[0]!.n;

describe('behaviour sink (real Kafka, chDB)', () => {
  it('stores each behaviour once (retried requests included), fills the index and roll-ups, and keeps a watch once with its last state', async () => {
    const topic = `behaviors-ch-${randomUUID()}`;
    const groupId = `behaviors-${randomUUID()}`;
    await ensureTopics(brokers, [{ name: topic, partitions: PARTITIONS, config: {} }]);
    const tenant = freshTenant();
    const first = stream(tenant, 150, 'a');
    const second = stream(tenant, 150, 'b');
    // A watch that grows over five updates, sent in both rounds.
    const watch = [10, 20, 30, 40, 50].map((seconds, i) =>
      sampleBehavior({
        tenant_id: tenant,
        user_id: 'watcher',
        item_id: 'video-1',
        action_type: 'view',
        view_id: 'view-1',
        watch_duration: seconds,
        completion_rate: seconds / 100,
        timestamp: Date.now() - (5 - i) * 1000,
      }),
    );
    // A client resends a request whose events carry their ids: new messages, the same behaviours.
    const retried = first.slice(0, 20);
    const sink = await startSink(topic, groupId);
    try {
      await produceAll(
        brokers,
        [...first, ...watch.slice(0, 2)].map((b) => asRecord(topic, b)),
      );
      await allCommitted(brokers, groupId, topic, PARTITIONS);
      await produceAll(
        brokers,
        [...second, ...retried, ...watch.slice(2)].map((b) => asRecord(topic, b)),
      );
      await allCommitted(brokers, groupId, topic, PARTITIONS);
      const metrics = await scrape(sink.http.url);
      expect(metricValue(metrics, 'behaviors_skipped_total', { reason: 'duplicate_event_id' })).toBe(retried.length);
      expect(metricValue(metrics, 'behaviors_rows_inserted_total', { table: 'user_behaviors' })).toBe(
        first.length + second.length + watch.length,
      );
      // Two batches at least (two rounds), each one insert per table: never one insert per message.
      const inserts = metricValue(metrics, 'behaviors_inserts_total', { table: 'user_behaviors' });
      expect(inserts).toBeGreaterThanOrEqual(2);
      expect(inserts).toBeLessThan(20);
      expect(metricValue(metrics, 'behaviors_dead_letters_total')).toBe(0);
      expect((await fetch(`${sink.http.url}/readyz`)).status).toBe(200);
    } finally {
      await sink.stop();
    }

    const sent = [...first, ...second, ...watch];
    const rows = await storedRows(tenant);
    expect(rows.map((r) => r.event_id)).toEqual([...new Set(rows.map((r) => r.event_id))]);
    expect(rows).toHaveLength(sent.length);
    const byId = new Map(sent.map((b) => [b.event_id, b]));
    const positions = new Set<string>();
    for (const row of rows) {
      const record = byId.get(row.event_id)!;
      expect(record, row.event_id).toBeDefined();
      expect(row).toEqual(behaviorRow({ record, topic, partition: row._kafka_partition, offset: row._kafka_offset }));
      // Fractional milliseconds are cut, never rounded up.
      expect(Date.parse(`${row.timestamp.replace(' ', 'T')}Z`)).toBe(Math.floor(record.timestamp));
      positions.add(`${row._kafka_partition}:${row._kafka_offset}`);
    }
    expect(positions.size).toBe(rows.length);
    expect(await count('user_behaviors_by_user', tenant)).toBe(sent.length);
    const [hourly] = await select<{ n: number; users: number }>(
      `SELECT countMerge(events) AS n FROM uba_hourly_metrics WHERE tenant_id = {tenant:Int64}`,
      { tenant },
    );
    expect(hourly!.n).toBe(sent.length);
    const [state] = await select<{ live: number; duration: number; rate: number }>(
      `SELECT sum(sign) AS live, sum(sign * watch_duration) AS duration, sum(sign * completion_rate) AS rate
         FROM user_watches WHERE tenant_id = {tenant:Int64} AND view_id = 'view-1'`,
      { tenant },
    );
    expect(state).toEqual({ live: 1, duration: 50, rate: 0.5 });
  });

  it('stores nothing twice when another group reads the topic again from the start', async () => {
    const topic = `behaviors-ch-replay-${randomUUID()}`;
    await ensureTopics(brokers, [{ name: topic, partitions: PARTITIONS, config: {} }]);
    const tenant = freshTenant();
    const records = stream(tenant, 120, 'r');
    await produceAll(
      brokers,
      records.map((b) => asRecord(topic, b)),
    );
    const firstGroup = `behaviors-${randomUUID()}`;
    const one = await startSink(topic, firstGroup);
    await allCommitted(brokers, firstGroup, topic, PARTITIONS).finally(() => one.stop());
    expect(await count('user_behaviors', tenant)).toBe(records.length);

    const secondGroup = `behaviors-${randomUUID()}`;
    const two = await startSink(topic, secondGroup);
    try {
      await allCommitted(brokers, secondGroup, topic, PARTITIONS);
      const metrics = await scrape(two.http.url);
      expect(metricValue(metrics, 'behaviors_skipped_total', { reason: 'stored_offset' })).toBe(records.length);
      expect(metricValue(metrics, 'behaviors_rows_inserted_total')).toBe(0);
    } finally {
      await two.stop();
    }
    expect(await count('user_behaviors', tenant)).toBe(records.length);
    expect(await count('user_behaviors_by_user', tenant)).toBe(records.length);
  });

  it('quarantines poison to clickhouse_user_behaviors_dlq with its code, and stores the rest', async () => {
    const topic = `behaviors-ch-poison-${randomUUID()}`;
    const groupId = `behaviors-${randomUUID()}`;
    await ensureTopics(brokers, [{ name: topic, partitions: PARTITIONS, config: {} }]);
    const tenant = freshTenant();
    const good = stream(tenant, 60, 'p');
    const raw = (key: string, value: string) => ({ topic, key, value: Buffer.from(value) });
    await produceAll(brokers, [
      ...good.slice(0, 30).map((b) => asRecord(topic, b)),
      raw('not-json', '{"tenant_id": 1,'),
      raw('year-2400', JSON.stringify({ ...good[1]!, event_id: randomUUID(), timestamp: Date.UTC(2400, 0, 1) })),
      raw('bad-action', JSON.stringify({ ...good[2]!, event_id: randomUUID(), action_type: '' })),
      raw('empty', ''),
      ...good.slice(30).map((b) => asRecord(topic, b)),
    ]);
    const sink = await startSink(topic, groupId);
    try {
      await allCommitted(brokers, groupId, topic, PARTITIONS);
      const metrics = await scrape(sink.http.url);
      expect(metricValue(metrics, 'behaviors_dead_letters_total', { reason: 'behavior_record_invalid' })).toBe(4);
      expect(metricValue(metrics, 'behaviors_rows_inserted_total', { table: 'user_behaviors' })).toBe(good.length);
    } finally {
      await sink.stop();
    }
    const dlq = await readTopic(brokers, topicNames.userBehaviorsClickhouseDlq, {
      done: (got) => got.filter((m) => headerOf(m, 'dlq_source_topic') === topic).length >= 4,
    });
    const mine = dlq.filter((m) => headerOf(m, 'dlq_source_topic') === topic);
    expect(mine.map((m) => [m.key?.toString(), headerOf(m, 'dlq_reason'), headerOf(m, 'dlq_class')]).sort()).toEqual([
      ['bad-action', 'behavior_record_invalid', 'poison'],
      ['empty', 'behavior_record_invalid', 'poison'],
      ['not-json', 'behavior_record_invalid', 'poison'],
      ['year-2400', 'behavior_record_invalid', 'poison'],
    ]);
    expect((await storedRows(tenant)).map((r) => r.event_id).sort()).toEqual(good.map((b) => b.event_id).sort());
  });
});
