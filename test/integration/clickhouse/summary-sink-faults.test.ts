import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { describe, expect, inject, it } from 'vitest';
import { runSink } from '../../../src/cli/sink-command.ts';
import { openClickHouse } from '../../../src/clickhouse/client.ts';
import { migrateClickHouse } from '../../../src/clickhouse/migrations.ts';
import { loadConfig } from '../../../src/config/index.ts';
import { freePort } from '../../../src/harness/ports.ts';
import { ensureTopics } from '../../../src/kafka/admin.ts';
import { createLogger } from '../../../src/logging/logger.ts';
import type { SummaryRow } from '../../../src/recordings/summary-row.ts';
import { produceAll } from '../../support/kafka.ts';
import { eventually, groupOffsets } from '../../support/kafka-offsets.ts';
import { killBetweenWriteAndCommit, spawnReplay } from '../../support/replay-process.ts';
import { liveRows } from '../../support/summary-rows.ts';

const brokers = inject('stack').kafka!.brokers;
const PARTITIONS = 3;

/** Counters summed over the table: a row stored twice shows up in every one of them (all rows have events). */
interface Totals {
  rows_events: number;
  clicks: number;
  size: number;
  messages: number;
  active: number;
}

const expectedTotals = (rows: readonly SummaryRow[]): Totals => ({
  rows_events: rows.reduce((n, r) => n + r.event_count, 0),
  clicks: rows.reduce((n, r) => n + r.click_count, 0),
  size: rows.reduce((n, r) => n + r.size, 0),
  messages: rows.reduce((n, r) => n + r.message_count, 0),
  active: rows.reduce((n, r) => n + r.active_milliseconds, 0),
});

async function storedTotals(clickhouse: ClickHouseClient): Promise<Totals> {
  const [row] = await (
    await clickhouse.query({
      query: `SELECT sum(event_count) AS rows_events, sum(click_count) AS clicks, sum(size) AS size,
                     sum(message_count) AS messages, sum(active_milliseconds) AS active
              FROM session_replay_events`,
      format: 'JSONEachRow',
    })
  ).json<Totals>();
  return row!;
}

/** Per Kafka partition: how many summary-topic messages the table holds (max stored offset + 1; offsets start at 0). */
async function storedPerPartition(clickhouse: ClickHouseClient): Promise<number[]> {
  const got = await (
    await clickhouse.query({
      query: `SELECT _kafka_partition AS partition, max(_kafka_offset) + 1 AS upto
              FROM session_replay_events GROUP BY _kafka_partition`,
      format: 'JSONEachRow',
    })
  ).json<{ partition: number; upto: number }>();
  return Array.from({ length: PARTITIONS }, (_, p) => got.find((g) => g.partition === p)?.upto ?? 0);
}

const records = (topic: string, rows: readonly SummaryRow[]) =>
  rows.map((row) => ({ topic, key: `${row.team_id}:${row.session_id}`, value: Buffer.from(JSON.stringify(row)) }));

const sum = (values: readonly number[]) => values.reduce((n, v) => n + Math.max(0, v), 0);

/** A metric's value in a Prometheus text exposition (the first series of that name). */
function metric(text: string, name: string): number {
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) : Number.NaN;
}

describe('ClickHouse sink under faults (real Kafka, chDB, real processes)', () => {
  it('killed with SIGKILL between the insert and the offset commit, then restarted: no counter doubles', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'replay-sink-kill-'));
    const topic = `summaries-kill-${randomUUID()}`;
    const groupId = `sink-kill-${randomUUID()}`;
    await ensureTopics(brokers, [{ name: topic, partitions: PARTITIONS, config: {} }]);
    const { rows } = await liveRows(dir, 4242);
    // Three flushes of twelve sessions: the first is committed normally, the second is caught by the kill, the third
    // arrives while no sink runs.
    const third = rows.length / 3;
    const first = rows.slice(0, third);
    const second = rows.slice(third, 2 * third);
    const last = rows.slice(2 * third);
    const port = await freePort();
    const env = {
      HOME: '/nonexistent',
      LOG_LEVEL: 'info',
      KAFKA_BROKERS: brokers,
      SINK_TOPIC: topic,
      SINK_GROUP_ID: groupId,
      // Static membership: the restarted sink takes the partitions of the killed one at once.
      KAFKA_GROUP_INSTANCE_ID: `sink-kill-member-${randomUUID()}`,
      CLICKHOUSE_URL: `chdb://${join(dir, 'db')}`,
      SINK_INSERT_INTERVAL_MS: '300',
      SINK_HOST: '127.0.0.1',
      SINK_PORT: String(port),
    };
    const offsets = () => groupOffsets(brokers, groupId, topic, PARTITIONS);

    try {
      // Round 1 is inserted and committed; the sink is killed after round 2's insert, before its commit: the broker
      // still holds round 1's offsets...
      await killBetweenWriteAndCommit({
        command: 'sink',
        env,
        brokers,
        groupId,
        topic,
        partitions: PARTITIONS,
        produceFirst: () => produceAll(brokers, records(topic, first)),
        produceSecond: () => produceAll(brokers, records(topic, second)),
      });
      expect(sum((await offsets()).end)).toBe(first.length + second.length);

      // ...and ClickHouse holds more than what was committed (the dead process released its chDB directory).
      let storedAtKill: number[];
      let clickhouse = openClickHouse({ kind: 'chdb', path: join(dir, 'db') });
      try {
        storedAtKill = await storedPerPartition(clickhouse);
        expect(sum(storedAtKill)).toBeGreaterThan(first.length);
        const committedAtKill = (await offsets()).committed;
        for (let p = 0; p < PARTITIONS; p++)
          expect(storedAtKill[p]).toBeGreaterThanOrEqual(Math.max(0, committedAtKill[p]!));
      } finally {
        await clickhouse.close();
      }

      // A new sink process in the same group reads the uncommitted rows again, skips those already stored and
      // inserts the rest, and the rows that came while no sink ran.
      await produceAll(brokers, records(topic, last));
      const restarted = spawnReplay('sink', env);
      try {
        await eventually(async () => {
          const o = await offsets();
          return o.committed.every((c, p) => c === o.end[p]);
        }, 'the restarted sink to commit everything');
        const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        const replayed = sum(storedAtKill) - first.length;
        expect(metric(metrics, 'clickhouse_rows_skipped_total')).toBe(replayed);
        expect(metric(metrics, 'clickhouse_rows_inserted_total')).toBe(rows.length - sum(storedAtKill));
        expect(metric(metrics, 'clickhouse_rows_inserted_total')).toBeGreaterThanOrEqual(last.length);
        restarted.child.kill('SIGTERM');
        expect((await restarted.exited).code).toBe(0);
      } finally {
        await restarted.killNow();
      }

      clickhouse = openClickHouse({ kind: 'chdb', path: join(dir, 'db') });
      try {
        expect(await storedTotals(clickhouse)).toEqual(expectedTotals(rows));
        expect(await storedPerPartition(clickhouse)).toEqual((await offsets()).end);
      } finally {
        await clickhouse.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  /**
   * An in-process sink on its own chDB directory and topic; the test shares the sink's chDB client, so it can take
   * the table away (DETACH: every insert and lookup fails with UNKNOWN_TABLE) and give it back (ATTACH).
   */
  async function withOutageSink(
    run: (ctx: {
      clickhouse: ClickHouseClient;
      topic: string;
      rows: SummaryRow[];
      url: string;
      offsets: () => ReturnType<typeof groupOffsets>;
      metrics: () => Promise<string>;
      assigned: () => number;
    }) => Promise<void>,
    /** What the sink talks to instead of the chDB client itself (a fault-injecting wrapper). */
    wrap: (clickhouse: ClickHouseClient) => ClickHouseClient = (clickhouse) => clickhouse,
  ) {
    const dir = await mkdtemp(join(tmpdir(), 'replay-sink-outage-'));
    const clickhouse = openClickHouse({ kind: 'chdb', path: join(dir, 'db') });
    try {
      await migrateClickHouse(clickhouse);
      const topic = `summaries-outage-${randomUUID()}`;
      const groupId = `sink-outage-${randomUUID()}`;
      await ensureTopics(brokers, [{ name: topic, partitions: PARTITIONS, config: {} }]);
      const { rows } = await liveRows(dir, 4343);
      const sink = await runSink(
        loadConfig({
          HOME: '/nonexistent',
          SINK_TOPIC: topic,
          SINK_GROUP_ID: groupId,
          SINK_PORT: '0',
          SINK_INSERT_INTERVAL_MS: '200',
          // Fetching pauses at 16 buffered rows: the outage tests produce more than that.
          SINK_MAX_ROWS: '8',
        }),
        createLogger((process.env.TEST_LOG_LEVEL as 'info') ?? 'error', 'sink'),
        { brokers, clickhouse: wrap(clickhouse) },
      );
      try {
        await run({
          clickhouse,
          topic,
          rows,
          url: sink.http.url,
          offsets: () => groupOffsets(brokers, groupId, topic, PARTITIONS),
          metrics: async () => (await fetch(`${sink.http.url}/metrics`)).text(),
          assigned: () => sink.consumer.assignment().length,
        });
      } finally {
        await clickhouse.command({ query: 'ATTACH TABLE IF NOT EXISTS session_replay_events' }).catch(() => {});
        await sink.stop();
      }
    } finally {
      await clickhouse.close();
      await rm(dir, { recursive: true, force: true });
    }
  }

  const readyz = async (url: string) => (await fetch(`${url}/readyz`)).status;

  /** While the table is away: the sink retries, reports not ready, pauses fetching and commits nothing new. */
  async function expectHeldBack(
    ctx: { url: string; metrics: () => Promise<string>; offsets: () => ReturnType<typeof groupOffsets> },
    committedBefore: number[],
  ) {
    await eventually(async () => (await readyz(ctx.url)) === 503, '/readyz to report not ready');
    await eventually(
      async () => metric(await ctx.metrics(), 'clickhouse_insert_errors_total') >= 3,
      'the sink to retry the failing insert',
    );
    await eventually(async () => metric(await ctx.metrics(), 'consumer_paused') === 1, 'fetching to pause');
    expect((await ctx.offsets()).committed).toEqual(committedBefore);
    expect(await readyz(ctx.url)).toBe(503);
  }

  /** After the table is back: everything stored once, everything committed, ready again. */
  async function expectCaughtUp(
    ctx: {
      clickhouse: ClickHouseClient;
      url: string;
      rows: SummaryRow[];
      metrics: () => Promise<string>;
      offsets: () => ReturnType<typeof groupOffsets>;
    },
    failuresBefore: number,
  ) {
    const done = await eventually(async () => {
      const o = await ctx.offsets();
      return o.committed.every((c, p) => c === o.end[p]) ? o : undefined;
    }, 'the sink to catch up and commit everything');
    expect(sum(done.end)).toBe(ctx.rows.length);
    expect(await storedTotals(ctx.clickhouse)).toEqual(expectedTotals(ctx.rows));
    expect(await storedPerPartition(ctx.clickhouse)).toEqual(done.end);
    await eventually(async () => (await readyz(ctx.url)) === 200, '/readyz to report ready again');
    // The consumer loop samples backpressure once a turn, so the gauge may trail the last commit by one poll.
    await eventually(async () => metric(await ctx.metrics(), 'consumer_paused') === 0, 'fetching to resume');
    const metrics = await ctx.metrics();
    expect(metric(metrics, 'clickhouse_rows_inserted_total')).toBe(ctx.rows.length);
    expect(metric(metrics, 'clickhouse_insert_errors_total')).toBeGreaterThanOrEqual(failuresBefore);
  }

  it('ClickHouse unavailable before the first row: the sink holds everything back, then catches up once', async () => {
    await withOutageSink(async (ctx) => {
      await eventually(async () => ctx.assigned() === PARTITIONS, 'the sink to own every partition');
      await ctx.clickhouse.command({ query: 'DETACH TABLE session_replay_events' });
      await produceAll(brokers, records(ctx.topic, ctx.rows));
      await expectHeldBack(ctx, [-1, -1, -1]);
      const failures = metric(await ctx.metrics(), 'clickhouse_insert_errors_total');
      await ctx.clickhouse.command({ query: 'ATTACH TABLE session_replay_events' });
      await expectCaughtUp(ctx, failures);
    });
  }, 60_000);

  it('ClickHouse unavailable mid-stream (some rows stored): nothing lost, nothing doubled', async () => {
    await withOutageSink(async (ctx) => {
      const first = ctx.rows.slice(0, ctx.rows.length / 3);
      await produceAll(brokers, records(ctx.topic, first));
      const committed = await eventually(async () => {
        const o = await ctx.offsets();
        return sum(o.committed) === first.length ? o.committed : undefined;
      }, 'the first rows to be committed');
      expect(await storedTotals(ctx.clickhouse)).toEqual(expectedTotals(first));

      await ctx.clickhouse.command({ query: 'DETACH TABLE session_replay_events' });
      await produceAll(brokers, records(ctx.topic, ctx.rows.slice(first.length)));
      await expectHeldBack(ctx, committed);
      const failures = metric(await ctx.metrics(), 'clickhouse_insert_errors_total');
      await ctx.clickhouse.command({ query: 'ATTACH TABLE session_replay_events' });
      await expectCaughtUp(ctx, failures);
    });
  }, 60_000);
  it('an insert ClickHouse stored but whose reply was lost is retried as the same batch: stored once', async () => {
    let armed = false;
    let lost!: () => void;
    const replyLost = new Promise<void>((resolve) => {
      lost = resolve;
    });
    // The fault a server deployment sees when a connection drops after ClickHouse committed the insert: the insert
    // runs for real on the engine, then the sink gets an error; and ClickHouse stays unavailable (table detached)
    // until the test has let more rows pile up behind the failed batch.
    const loseReplyOnce = (clickhouse: ClickHouseClient) =>
      new Proxy(clickhouse, {
        get(target, property) {
          if (property === 'command')
            return async (params: Parameters<ClickHouseClient['command']>[0]) => {
              const result = await target.command(params);
              if (armed && params.query.includes('INSERT INTO session_replay_events')) {
                armed = false;
                await target.command({ query: 'DETACH TABLE session_replay_events' });
                lost();
                throw new Error('socket hang up (the reply to a stored insert was lost)');
              }
              return result;
            };
          const value = Reflect.get(target, property, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
    await withOutageSink(async (ctx) => {
      const third = ctx.rows.length / 3;
      await produceAll(brokers, records(ctx.topic, ctx.rows.slice(0, third)));
      const committed = await eventually(async () => {
        const o = await ctx.offsets();
        return sum(o.committed) === third ? o.committed : undefined;
      }, 'the first rows to be committed');

      armed = true;
      await produceAll(brokers, records(ctx.topic, ctx.rows.slice(third, 2 * third)));
      await replyLost;
      // More rows arrive while the failed batch waits for its retry.
      await produceAll(brokers, records(ctx.topic, ctx.rows.slice(2 * third)));
      // They are read into the buffers until the sink holds twice SINK_MAX_ROWS and pauses fetching; how many get in
      // before that depends on how the consume calls split the stream.
      await eventually(async () => {
        const text = await ctx.metrics();
        return metric(text, 'consumer_messages_total') > 2 * third || metric(text, 'consumer_paused') === 1;
      }, 'the sink to read rows behind the failed batch');
      await expectHeldBack(ctx, committed);
      const failures = metric(await ctx.metrics(), 'clickhouse_insert_errors_total');
      await ctx.clickhouse.command({ query: 'ATTACH TABLE session_replay_events' });
      await expectCaughtUp(ctx, failures);
    }, loseReplyOnce);
  }, 60_000);
});
