import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openClickHouse } from '../../../src/clickhouse/client.ts';
import { migrateClickHouse } from '../../../src/clickhouse/migrations.ts';
import { ensureTopics } from '../../../src/kafka/admin.ts';
import { hourlyMetrics, userTimeline, userWatches } from '../../../src/uba/behavior-queries.ts';
import type { BehaviorRecord } from '../../../src/uba/behavior-record.ts';
import { behaviorRecordProblem, readBehaviorRecord } from '../../../src/uba/behavior-record-check.ts';
import {
  type BehaviorRow,
  behaviorRow,
  behaviorsInsertedUpTo,
  behaviorTime,
  compareEventIds,
} from '../../../src/uba/behavior-rows.ts';
import { sampleBehavior } from '../../support/behaviors.ts';
import { produceAll, readTopic } from '../../support/kafka.ts';
import { kafkaEngineStatements, produceAborted } from '../../support/kafka-engine.ts';

const brokers = inject('stack').kafka!.brokers;
const HOUR = 3_600_000;
/** Two hours ago on the hour: recent enough that nothing expires (90 days), the hours of the roll-up fixed. */
const base = Math.floor(Date.now() / HOUR) * HOUR - 2 * HOUR;
const TENANT = 7;
const PARTITIONS = 3;

/** Everything the file creates, the view on the Kafka table first: dropping it stops the consumer. */
const ENGINE_OBJECTS = [
  'user_behaviors_kafka_checked_mv',
  'user_behaviors_kafka',
  'user_behaviors_kafka_mv',
  'user_behaviors_kafka_errors_mv',
  'user_behaviors_kafka_checked',
  'user_behaviors_kafka_errors',
];

const json = (record: object) => JSON.stringify(record);
const jsonBytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value));
const emoji = (n: number) => '😀'.repeat(n); // two UTF-16 units each, as the sink counts lengths

/** Properties whose JSON is exactly `bytes` long, with every kind of character JSON.stringify escapes (or not). */
function propertiesOf(bytes: number): Record<string, string> {
  const head = 'q"b\\s\n\t\u0001\u001f/é😀\u2028';
  return { 'k"ey\n': head + 'x'.repeat(bytes - jsonBytes({ 'k"ey\n': head })) };
}

describe('Kafka engine alternative to the behaviours sink (user-behaviors-kafka-engine.sql; real Kafka, chDB)', () => {
  let dir: string;
  let clickhouse: ClickHouseClient;
  const topic = `behaviors-engine-${randomUUID()}`;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'uba-kafka-engine-'));
    clickhouse = openClickHouse({ kind: 'chdb', path: join(dir, 'db') });
    await migrateClickHouse(clickhouse);
    await ensureTopics(brokers, [{ name: topic, partitions: PARTITIONS, config: {} }]);
  });
  afterAll(async () => {
    // Stop the engine's consumer before the broker goes away with the stack.
    for (const name of ENGINE_OBJECTS) {
      await clickhouse.command({ query: `DROP TABLE IF EXISTS ${name}` }).catch(() => {});
    }
    await clickhouse.close();
    await rm(dir, { recursive: true, force: true });
  });

  const select = async <T>(query: string, query_params: Record<string, unknown> = {}) =>
    (await clickhouse.query({ query, query_params, format: 'JSONEachRow' })).json<T>();
  const count = async (table: string) =>
    Number((await select<{ n: number }>(`SELECT count() AS n FROM ${table}`))[0]!.n);

  it('stores what behaviorRow would, fills the timeline and roll-ups, and keeps bad messages out', async () => {
    const watch = sampleBehavior({
      user_id: 'u2',
      action_type: 'view',
      item_id: 'video-1',
      view_id: 'view-1',
      watch_duration: 12.5,
      completion_rate: 0.25,
      timestamp: base + HOUR + 40,
    });
    const good: BehaviorRecord[] = [
      // Two behaviours in one millisecond once floored (1000.7 and 1000.2): ordered by event_id.
      sampleBehavior({
        timestamp: base + 1000.7,
        captured_at: base + 1500.25,
        properties: { plan: 'pro', 'with "quotes"': 'a\\b\nc' },
      }),
      sampleBehavior({ action_type: 'impression', timestamp: base + 1000.2, captured_at: base + 1000.999 }),
      sampleBehavior({
        user_id: 'u2',
        action_type: '$pageview',
        item_id: '',
        scenario_id: '',
        session_id: '0192a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
        current_url: 'https://example.com/a?b=c',
        device_type: 'Mobile',
        os: 'iOS',
        location: 'Berlin',
        ip: '10.0.0.1',
        properties: { $browser: 'Safari', $screen_width: '390' },
        source: 'posthog-js',
        timestamp: base + HOUR + 5.999,
      }),
      sampleBehavior({
        user_id: 'u3',
        action_type: 'order',
        experiment_id: 'exp-1',
        experiment_group: 'treatment',
        timestamp: base + 2 * HOUR + 1,
      }),
      watch,
      // At the bounds, so accepted by both: 200 UTF-16 units, properties of exactly 16384 bytes of JSON.
      sampleBehavior({ user_id: emoji(100), timestamp: base + 2 * HOUR + 2 }),
      sampleBehavior({ user_id: 'u4', properties: propertiesOf(16_384), timestamp: base + 2 * HOUR + 3 }),
    ];
    for (const record of good) expect(behaviorRecordProblem(record)).toBeUndefined();

    // Records the sink refuses as poison; the engine must give the same reason, word for word.
    const valid = sampleBehavior({ user_id: 'u9', timestamp: base + 10 });
    const { event_id: _, ...withoutEventId } = valid;
    const outOfBounds = [
      json({ ...valid, completion_rate: 1.5 }),
      json(withoutEventId),
      json({ ...valid, user_id: emoji(101) }),
      json(valid).replace(`"timestamp":${valid.timestamp}`, '"timestamp":1e400'),
      json({ ...valid, properties: propertiesOf(16_385) }),
      json({ ...valid, session_id: 'not_a_session' }),
      json({ ...valid, source: 'elsewhere' }),
      json({ ...valid, tenant_id: 0 }),
      json({ ...valid, properties: { '': 'empty key' } }),
    ];
    // Values that do not parse as a BehaviorRecord at all: the engine's own parse error, the raw value kept.
    const unparsable = [
      '{"event_id": ',
      json({ ...valid, user_id: 42 }),
      json({ ...valid, properties: { n: 1 } }),
      json({ ...valid, properties: null }),
    ];
    for (const value of [...outOfBounds, ...unparsable]) {
      expect(() => readBehaviorRecord(Buffer.from(value))).toThrow();
    }

    const aborted = sampleBehavior({ user_id: 'u-aborted', timestamp: base + 20 });
    await produceAborted(brokers, topic, [{ key: aborted.user_id, value: Buffer.from(json(aborted)) }]);
    // Bad messages first on every partition: the good ones behind them must still arrive.
    const values = [...outOfBounds, ...unparsable, ...good.map(json)];
    await produceAll(
      brokers,
      values.map((value, i) => ({ topic, key: `k${i}`, value: Buffer.from(value), partition: i % PARTITIONS })),
    );
    const position = new Map<string, { partition: number; offset: number }>();
    for (const m of await readTopic(brokers, topic, { done: (all) => all.length === values.length })) {
      position.set(m.value!.toString(), { partition: m.partition, offset: m.offset });
    }
    expect(position.size).toBe(values.length);
    const at = (value: string) => position.get(value)!;

    // Created after the messages: a new consumer group starts at the earliest offset.
    for (const statement of await kafkaEngineStatements('user-behaviors-kafka-engine.sql', {
      kafka_broker_list: brokers,
      kafka_topic: topic,
      kafka_group_name: `clickhouse-${randomUUID()}`,
    })) {
      await clickhouse.command({ query: statement });
    }
    const bad = outOfBounds.length + unparsable.length;
    const arrived = async () => ({
      rows: await count('user_behaviors'),
      errors: await count('user_behaviors_kafka_errors FINAL'),
    });
    for (let i = 0; i < 240; i++) {
      const now = await arrived();
      if (now.rows >= good.length && now.errors >= bad) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    // Longer than the engine's flush interval: anything more (a duplicate, the aborted record) would have landed.
    await new Promise((r) => setTimeout(r, 2500));
    expect(await arrived()).toEqual({ rows: good.length, errors: bad });

    // Field by field what the sink's mapping gives for the same records at the same positions.
    const byPosition = (a: BehaviorRow, b: BehaviorRow) =>
      a._kafka_partition - b._kafka_partition || a._kafka_offset - b._kafka_offset;
    const expected = good.map((record) => behaviorRow({ record, topic, ...at(json(record)) })).sort(byPosition);
    const columns = Object.keys(expected[0]!).join(', ');
    const stored = await select<BehaviorRow>(`SELECT ${columns} FROM user_behaviors`);
    expect([...stored].sort(byPosition)).toEqual(expected);
    // The fractional milliseconds were floored, not rounded.
    const first = stored.find((r) => r.event_id === good[0]!.event_id)!;
    expect([first.timestamp, first.captured_at]).toEqual([behaviorTime(base + 1000), behaviorTime(base + 1500)]);

    // The timeline index got every row (no Kafka columns), and u1's timeline orders the tie by event_id.
    const withoutKafka = expected.map(({ _kafka_topic, _kafka_partition, _kafka_offset, ...row }) => row);
    const indexed = await select<(typeof withoutKafka)[number]>(
      `SELECT ${Object.keys(withoutKafka[0]!).join(', ')} FROM user_behaviors_by_user`,
    );
    const byEventId = (a: { event_id: string }, b: { event_id: string }) => compareEventIds(a.event_id, b.event_id);
    expect([...indexed].sort(byEventId)).toEqual([...withoutKafka].sort(byEventId));
    const u1 = good.slice(0, 2).sort((a, b) => compareEventIds(b.event_id, a.event_id));
    expect((await userTimeline(clickhouse, TENANT, 'u1')).map((e) => e.event_id)).toEqual(u1.map((r) => r.event_id));

    // The hourly roll-up equals the recomputation from the records.
    const hours = new Map<string, { hour: string; action_type: string; events: number; users: Set<string> }>();
    for (const r of good) {
      const hour = behaviorTime(Math.floor(r.timestamp / HOUR) * HOUR).slice(0, 19);
      const key = `${hour} ${r.action_type}`;
      const entry = hours.get(key) ?? { hour, action_type: r.action_type, events: 0, users: new Set() };
      entry.events++;
      entry.users.add(r.user_id);
      hours.set(key, entry);
    }
    const recomputed = [...hours.values()]
      .map(({ users, ...entry }) => ({ ...entry, users: users.size }))
      .sort((a, b) => (a.hour < b.hour ? -1 : a.hour > b.hour ? 1 : a.action_type < b.action_type ? -1 : 1));
    expect(await hourlyMetrics(clickhouse, TENANT, { from: base, to: base + 3 * HOUR })).toEqual(recomputed);

    // What the engine does not do: the watch is stored and in the timeline, but user_watches stays empty, so the item
    // roll-up counts no view and no watch time for it.
    expect(stored.some((r) => r.view_id === watch.view_id)).toBe(true);
    expect(await count('user_watches')).toBe(0);
    expect(await userWatches(clickhouse, TENANT, 'u2')).toEqual([]);
    expect(
      await select(
        `SELECT sumMerge(views) AS views, sumMerge(watch_time) AS watch_time FROM uba_item_daily
           WHERE tenant_id = {tenant:Int64} AND item_id = {item:String}`,
        { tenant: TENANT, item: watch.item_id },
      ),
    ).toEqual([{ views: 0, watch_time: 0 }]);

    // Every bad message is in the errors table at its position, and nothing of it reached user_behaviors.
    const errors = await select<{ topic: string; partition: number; offset: number; message: string; error: string }>(
      'SELECT topic, partition, offset, message, error FROM user_behaviors_kafka_errors FINAL',
    );
    const errorAt = (value: string) =>
      errors.find((e) => e.partition === at(value).partition && e.offset === at(value).offset);
    for (const value of outOfBounds) {
      const parsed = JSON.parse(value) as Record<string, unknown>;
      const error = errorAt(value);
      expect(error, value.slice(0, 120)).toMatchObject({ topic, error: behaviorRecordProblem(parsed) });
      // Not the raw bytes (the engine keeps those only for a parse error) but the fields as read, absent ones null.
      expect(JSON.parse(error!.message)).toMatchObject({ event_id: parsed.event_id ?? null, user_id: parsed.user_id });
    }
    for (const value of unparsable) {
      const error = errorAt(value);
      expect(error, value).toMatchObject({ topic, message: value });
      expect(error!.error).not.toBe('');
    }

    // The aborted transaction's record is nowhere.
    expect(await select(`SELECT 1 FROM user_behaviors WHERE user_id = 'u-aborted'`)).toEqual([]);
    expect(errors.filter((e) => e.message.includes('u-aborted'))).toEqual([]);

    // The rows carry their positions as the sink's do, so `replay behaviors-sink` could take over without duplicates:
    // per partition it would resume after the last good message (the bad ones come first on each).
    for (let partition = 0; partition < PARTITIONS; partition++) {
      const offsets = good.map((r) => at(json(r))).filter((p) => p.partition === partition);
      expect(await behaviorsInsertedUpTo(clickhouse, topic, partition)).toBe(
        offsets.length === 0 ? -1 : Math.max(...offsets.map((p) => p.offset)),
      );
    }
  });
});
