import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openClickHouse } from '../../../src/clickhouse/client.ts';
import { migrateClickHouse } from '../../../src/clickhouse/migrations.ts';
import { insertedUpTo, insertSummaryRows } from '../../../src/clickhouse/session-replay-events.ts';
import { ensureTopics } from '../../../src/kafka/admin.ts';
import type { SummaryRow } from '../../../src/recordings/summary-row.ts';
import { expectedSummary } from '../../support/expected-summary.ts';
import { produceAll, readTopic } from '../../support/kafka.ts';
import { kafkaEngineStatements, produceAborted } from '../../support/kafka-engine.ts';
import { liveRows } from '../../support/summary-rows.ts';

const brokers = inject('stack').kafka!.brokers;

describe('Kafka engine alternative to the sink (schema/clickhouse/alternatives/kafka-engine.sql; real Kafka, chDB)', () => {
  let dir: string;
  let clickhouse: ClickHouseClient;
  const topic = `summaries-engine-${randomUUID()}`;
  const teamId = 78;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'replay-kafka-engine-'));
    clickhouse = openClickHouse({ kind: 'chdb', path: join(dir, 'db') });
    await migrateClickHouse(clickhouse);
    await ensureTopics(brokers, [{ name: topic, partitions: 3, config: {} }]);
  });
  afterAll(async () => {
    // Stop the engine's consumer before the broker goes away with the stack.
    await clickhouse.command({ query: 'DROP TABLE IF EXISTS session_replay_events_kafka_mv' }).catch(() => {});
    await clickhouse.command({ query: 'DROP TABLE IF EXISTS session_replay_events_kafka_errors_mv' }).catch(() => {});
    await clickhouse.command({ query: 'DROP TABLE IF EXISTS session_replay_events_kafka' }).catch(() => {});
    await clickhouse.close();
    await rm(dir, { recursive: true, force: true });
  });

  const select = async <T>(query: string) => (await clickhouse.query({ query, format: 'JSONEachRow' })).json<T>();
  const totals = async () =>
    (
      await select<{ events: number; clicks: number }>(
        `SELECT sum(event_count) AS events, sum(click_count) AS clicks FROM session_replay_events WHERE team_id = ${teamId}`,
      )
    )[0]!;
  /** The merged view of the team, with the columns whose order ClickHouse does not fix sorted. */
  const mergedView = async () =>
    (
      await select<Record<string, unknown>>(
        `SELECT * FROM session_replay_events_merged WHERE team_id = ${teamId} ORDER BY session_id`,
      )
    ).map((r) => ({
      ...r,
      block_urls: [...(r.block_urls as string[])].sort(),
      block_first_timestamps: [...(r.block_first_timestamps as string[])].sort(),
      block_last_timestamps: [...(r.block_last_timestamps as string[])].sort(),
      all_urls: [...(r.all_urls as string[])].sort(),
    }));

  it('consumes the summary topic into the same merged rows as the sink path, skipping bad and aborted messages', async () => {
    const { sessions, rows } = await liveRows(dir, teamId);
    const key = (row: SummaryRow) => `${row.team_id}:${row.session_id}`;
    const aborted: SummaryRow = { ...rows[0]!, session_id: 'aborted-session', event_count: 1_000_000 };
    await produceAborted(brokers, topic, [{ key: key(aborted), value: Buffer.from(JSON.stringify(aborted)) }]);
    await produceAll(brokers, [
      ...rows.map((row) => ({ topic, key: key(row), value: Buffer.from(JSON.stringify(row)) })),
      { topic, key: 'bad', value: Buffer.from('{"team_id": "not a number", ') },
    ]);

    // Created after the messages: a new consumer group starts at the earliest offset.
    for (const statement of await kafkaEngineStatements('kafka-engine.sql', {
      kafka_broker_list: brokers,
      kafka_topic: topic,
      kafka_group_name: `clickhouse-${randomUUID()}`,
    })) {
      await clickhouse.command({ query: statement });
    }
    const expectedEvents = sessions.reduce((n, s) => n + s.events.length, 0);
    const expectedClicks = sessions.reduce((n, s) => n + expectedSummary(s.events).clickCount, 0);
    for (let i = 0; i < 240 && (await totals()).events < expectedEvents; i++) {
      await new Promise((r) => setTimeout(r, 250));
    }
    // Longer than the engine's flush interval: anything more (a duplicate, the aborted row) would have landed.
    await new Promise((r) => setTimeout(r, 2500));
    expect(await totals()).toEqual({ events: expectedEvents, clicks: expectedClicks });
    expect(await select(`SELECT 1 FROM session_replay_events WHERE session_id = 'aborted-session'`)).toEqual([]);

    // The message that did not parse is kept with its coordinates, and did not stop the consumer.
    const errors = await select<{ topic: string; raw_message: string; error: string }>(
      'SELECT topic, raw_message, error FROM session_replay_events_kafka_errors',
    );
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ topic, raw_message: '{"team_id": "not a number", ' });
    expect(errors[0]!.error).not.toBe('');

    // Rows record where they came from as the sink's do, so `replay sink` could take over without duplicates: what
    // it would resume after, per partition, is the last summary row of that partition in the topic.
    const lastRow = new Map<number, number>();
    for (const m of await readTopic(brokers, topic, { done: (all) => all.length === rows.length + 1 })) {
      if (m.key?.toString() !== 'bad') lastRow.set(m.partition, Math.max(lastRow.get(m.partition) ?? -1, m.offset));
    }
    for (const partition of [0, 1, 2]) {
      expect(await insertedUpTo(clickhouse, topic, partition)).toBe(lastRow.get(partition) ?? -1);
    }

    const viaEngine = await mergedView();
    expect(viaEngine).toHaveLength(sessions.length);

    // The sink path on the same rows: stop the engine, empty the table, insert as `replay sink` does.
    await clickhouse.command({ query: 'DROP TABLE session_replay_events_kafka_mv' });
    await clickhouse.command({ query: 'TRUNCATE TABLE session_replay_events' });
    await insertSummaryRows(clickhouse, rows);
    expect(await mergedView()).toEqual(viaEngine);
    await clickhouse.command({ query: 'OPTIMIZE TABLE session_replay_events FINAL' });
    expect(await mergedView()).toEqual(viaEngine);
  });
});
