import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { describe, expect, inject, it } from 'vitest';
import { runBehaviorsSink } from '../../../src/cli/behaviors-sink-command.ts';
import { openClickHouse } from '../../../src/clickhouse/client.ts';
import { migrateClickHouse } from '../../../src/clickhouse/migrations.ts';
import { loadConfig } from '../../../src/config/index.ts';
import { freePort } from '../../../src/harness/ports.ts';
import { ensureTopics } from '../../../src/kafka/admin.ts';
import { topicNames } from '../../../src/kafka/topics.ts';
import { createLogger } from '../../../src/logging/logger.ts';
import type { BehaviorRecord } from '../../../src/uba/behavior-record.ts';
import { sampleBehavior } from '../../support/behaviors.ts';
import { headerOf, produceAll, readTopic } from '../../support/kafka.ts';
import { allCommitted, eventually, groupOffsets } from '../../support/kafka-offsets.ts';
import { metricValue, scrape } from '../../support/metrics.ts';
import { killBetweenWriteAndCommit, spawnReplay } from '../../support/replay-process.ts';

const brokers = inject('stack').kafka!.brokers;
const PARTITIONS = 3;

const asRecords = (topic: string, behaviors: readonly BehaviorRecord[]) =>
  behaviors.map((b) => ({ topic, key: b.user_id, value: Buffer.from(JSON.stringify(b)) }));

function stream(tenant: number, count: number, tag: string): BehaviorRecord[] {
  const now = Date.now();
  const actions = ['impression', 'click', 'view', 'order'];
  return Array.from({ length: count }, (_, i) =>
    sampleBehavior({
      tenant_id: tenant,
      user_id: `user-${tag}-${i % 8}`,
      item_id: `item-${i % 5}`,
      action_type: actions[i % actions.length]!,
      timestamp: now - i * 1000,
    }),
  );
}

/** What a doubled or a missing behaviour changes: rows, distinct ids, index rows and the hourly roll-up's count. */
async function stored(clickhouse: ClickHouseClient, tenant: number) {
  const one = async (query: string) =>
    Number(
      (
        await (
          await clickhouse.query({ query, query_params: { tenant }, format: 'JSONEachRow' })
        ).json<{ n: number | string }>()
      )[0]!.n,
    );
  return {
    rows: await one('SELECT count() AS n FROM user_behaviors WHERE tenant_id = {tenant:Int64}'),
    ids: await one('SELECT uniqExact(event_id) AS n FROM user_behaviors WHERE tenant_id = {tenant:Int64}'),
    timeline: await one('SELECT count() AS n FROM user_behaviors_by_user WHERE tenant_id = {tenant:Int64}'),
    hourly: await one('SELECT countMerge(events) AS n FROM uba_hourly_metrics WHERE tenant_id = {tenant:Int64}'),
  };
}

/** Per partition: how far user_behaviors got (max stored offset + 1). */
async function storedPerPartition(clickhouse: ClickHouseClient, topic: string): Promise<number[]> {
  const got = await (
    await clickhouse.query({
      query: `SELECT _kafka_partition AS partition, max(_kafka_offset) + 1 AS upto FROM user_behaviors
               WHERE _kafka_topic = {topic:String} GROUP BY _kafka_partition`,
      query_params: { topic },
      format: 'JSONEachRow',
    })
  ).json<{ partition: number; upto: number }>();
  return Array.from({ length: PARTITIONS }, (_, p) => Number(got.find((g) => g.partition === p)?.upto ?? 0));
}

const sum = (values: readonly number[]) => values.reduce((n, v) => n + Math.max(0, v), 0);

describe('behaviour sink under faults (real Kafka, chDB, real processes)', () => {
  it('killed with SIGKILL between the insert and the offset commit, then restarted: no behaviour doubled, none missing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'replay-behaviors-kill-'));
    const topic = `behaviors-kill-${randomUUID()}`;
    const groupId = `behaviors-kill-${randomUUID()}`;
    await ensureTopics(brokers, [{ name: topic, partitions: PARTITIONS, config: {} }]);
    const tenant = 500_000 + Math.floor(Math.random() * 100_000);
    const [first, second, last] = ['a', 'b', 'c'].map((tag) => stream(tenant, 60, tag)) as [
      BehaviorRecord[],
      BehaviorRecord[],
      BehaviorRecord[],
    ];
    const port = await freePort();
    const env = {
      HOME: '/nonexistent',
      LOG_LEVEL: 'info',
      KAFKA_BROKERS: brokers,
      BEHAVIORS_TOPIC: topic,
      BEHAVIORS_GROUP_ID: groupId,
      // Static membership: the restarted sink takes the partitions of the killed one at once.
      KAFKA_GROUP_INSTANCE_ID: `behaviors-kill-member-${randomUUID()}`,
      CLICKHOUSE_URL: `chdb://${join(dir, 'db')}`,
      BEHAVIORS_INSERT_INTERVAL_MS: '300',
      BEHAVIORS_HOST: '127.0.0.1',
      BEHAVIORS_PORT: String(port),
    };
    const offsets = () => groupOffsets(brokers, groupId, topic, PARTITIONS);
    try {
      const { committed: committedAtKill } = await killBetweenWriteAndCommit({
        command: 'behaviors-sink',
        env,
        brokers,
        groupId,
        topic,
        partitions: PARTITIONS,
        produceFirst: () => produceAll(brokers, asRecords(topic, first)),
        produceSecond: () => produceAll(brokers, asRecords(topic, second)),
      });
      expect(sum(committedAtKill)).toBe(first.length);

      // ClickHouse holds more than was committed (the dead process released its chDB directory).
      let storedAtKill: number[];
      let clickhouse = openClickHouse({ kind: 'chdb', path: join(dir, 'db') });
      try {
        storedAtKill = await storedPerPartition(clickhouse, topic);
        expect(sum(storedAtKill)).toBeGreaterThan(first.length);
        for (let p = 0; p < PARTITIONS; p++)
          expect(storedAtKill[p]).toBeGreaterThanOrEqual(Math.max(0, committedAtKill[p]!));
      } finally {
        await clickhouse.close();
      }

      // A new process reads the uncommitted behaviours again, skips those stored, inserts the rest and the round
      // produced while no sink ran.
      await produceAll(brokers, asRecords(topic, last));
      const restarted = spawnReplay('behaviors-sink', env);
      try {
        await allCommitted(brokers, groupId, topic, PARTITIONS);
        const metrics = await scrape(`http://127.0.0.1:${port}`);
        expect(metricValue(metrics, 'behaviors_skipped_total', { reason: 'stored_offset' })).toBe(
          sum(storedAtKill) - first.length,
        );
        expect(metricValue(metrics, 'behaviors_rows_inserted_total', { table: 'user_behaviors' })).toBe(
          first.length + second.length + last.length - sum(storedAtKill),
        );
        restarted.child.kill('SIGTERM');
        expect((await restarted.exited).code).toBe(0);
      } finally {
        await restarted.killNow();
      }

      clickhouse = openClickHouse({ kind: 'chdb', path: join(dir, 'db') });
      try {
        const all = first.length + second.length + last.length;
        expect(await stored(clickhouse, tenant)).toEqual({ rows: all, ids: all, timeline: all, hourly: all });
        expect(await storedPerPartition(clickhouse, topic)).toEqual((await offsets()).end);
      } finally {
        await clickhouse.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('waits out ClickHouse losing its table (not ready, fetching paused), then bisects to the one behaviour ClickHouse refuses', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'replay-behaviors-outage-'));
    const clickhouse = openClickHouse({ kind: 'chdb', path: join(dir, 'db') });
    try {
      await migrateClickHouse(clickhouse);
      const topic = `behaviors-outage-${randomUUID()}`;
      const groupId = `behaviors-outage-${randomUUID()}`;
      await ensureTopics(brokers, [{ name: topic, partitions: PARTITIONS, config: {} }]);
      const tenant = 600_000 + Math.floor(Math.random() * 100_000);
      const before = stream(tenant, 30, 'a');
      const during = stream(tenant, 3000, 'b');
      // A value ClickHouse refuses for its content, through a real constraint: the behaviour alone goes to the DLQ.
      const refused = sampleBehavior({ tenant_id: tenant, user_id: 'refused-by-clickhouse' });
      await clickhouse.command({
        query: "ALTER TABLE user_behaviors ADD CONSTRAINT not_refused CHECK user_id != 'refused-by-clickhouse'",
      });
      const sink = await runBehaviorsSink(
        loadConfig({
          HOME: '/nonexistent',
          BEHAVIORS_TOPIC: topic,
          BEHAVIORS_GROUP_ID: groupId,
          BEHAVIORS_PORT: '0',
          BEHAVIORS_INSERT_INTERVAL_MS: '100',
          BEHAVIORS_MAX_ROWS: '40',
        }),
        createLogger((process.env.TEST_LOG_LEVEL as 'info') ?? 'error', 'behaviors-sink'),
        { brokers, clickhouse },
      );
      try {
        await produceAll(brokers, asRecords(topic, before));
        await allCommitted(brokers, groupId, topic, PARTITIONS);
        await clickhouse.command({ query: 'DETACH TABLE user_behaviors' });
        await produceAll(brokers, asRecords(topic, [...during.slice(0, 1500), refused, ...during.slice(1500)]));
        await eventually(
          async () => (await fetch(`${sink.http.url}/readyz`)).status === 503,
          'the sink to report not ready',
        );
        // Fetching pauses at twice BEHAVIORS_MAX_ROWS held (checked per fetched batch of up to 1000): the rest stays
        // on the topic, uncommitted.
        await eventually(
          async () => metricValue(await scrape(sink.http.url), 'behaviors_held_messages') >= 80,
          'the buffer to fill',
        );
        const held = async () => metricValue(await scrape(sink.http.url), 'behaviors_held_messages');
        const first = await held();
        await new Promise((resolve) => setTimeout(resolve, 1000));
        expect(await held()).toBe(first);
        expect(first).toBeLessThan(during.length / 2);
        expect(sum((await groupOffsets(brokers, groupId, topic, PARTITIONS)).committed)).toBe(before.length);

        await clickhouse.command({ query: 'ATTACH TABLE user_behaviors' });
        await allCommitted(brokers, groupId, topic, PARTITIONS);
        await eventually(async () => (await fetch(`${sink.http.url}/readyz`)).status === 200, 'ready again');
        const metrics = await scrape(sink.http.url);
        expect(metricValue(metrics, 'behaviors_insert_errors_total')).toBeGreaterThan(0);
        expect(metricValue(metrics, 'behaviors_insert_bisections_total')).toBeGreaterThan(0);
        expect(metricValue(metrics, 'behaviors_dead_letters_total', { reason: 'clickhouse_rejected' })).toBe(1);
      } finally {
        await sink.stop();
      }
      const all = before.length + during.length;
      expect(await stored(clickhouse, tenant)).toEqual({ rows: all, ids: all, timeline: all, hourly: all });
      const dlq = await readTopic(brokers, topicNames.userBehaviorsClickhouseDlq, {
        done: (got) => got.some((m) => headerOf(m, 'dlq_source_topic') === topic),
      });
      const mine = dlq.filter((m) => headerOf(m, 'dlq_source_topic') === topic);
      expect(mine.map((m) => [m.key?.toString(), headerOf(m, 'dlq_reason')])).toEqual([
        ['refused-by-clickhouse', 'clickhouse_rejected'],
      ]);
      expect(headerOf(mine[0]!, 'dlq_detail')).toMatch(/VIOLATED_CONSTRAINT/);
    } finally {
      await clickhouse.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
