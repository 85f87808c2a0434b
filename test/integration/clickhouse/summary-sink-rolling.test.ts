import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { openClickHouse } from '../../../src/clickhouse/client.ts';
import { migrateClickHouse } from '../../../src/clickhouse/migrations.ts';
import { ensureTopics } from '../../../src/kafka/admin.ts';
import { expectedSummary } from '../../support/expected-summary.ts';
import { produceAll } from '../../support/kafka.ts';
import { eventually, groupOffsets } from '../../support/kafka-offsets.ts';
import { startTestSink } from '../../support/pipeline.ts';
import { liveRows } from '../../support/summary-rows.ts';

const brokers = inject('stack').kafka!.brokers;
const PARTITIONS = 4;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('two ClickHouse sinks in one group under a rolling restart (real Kafka, chDB)', () => {
  it('every row is stored once while members leave and join: revocations wait for inserts in flight', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'replay-rolling-'));
    const clickhouse = openClickHouse({ kind: 'chdb', path: join(dir, 'db') });
    await migrateClickHouse(clickhouse);
    const topic = `summaries-rolling-${randomUUID()}`;
    await ensureTopics(brokers, [{ name: topic, partitions: PARTITIONS, config: {} }]);
    const groupId = `sink-rolling-${randomUUID()}`;
    const sink = () => startTestSink({ brokers, topic, groupId, clickhouse });
    // Six waves of rows, each a team of its own, produced while the members are replaced one by one.
    const teamBase = 980_000 + Math.floor(Math.random() * 10_000);
    const waves = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const waveDir = join(dir, `wave-${i}`);
        await mkdir(waveDir);
        return liveRows(waveDir, teamBase + i);
      }),
    );
    const produce = (i: number) =>
      produceAll(
        brokers,
        waves[i]!.rows.map((row) => ({
          topic,
          key: `${row.team_id}:${row.session_id}`,
          value: Buffer.from(JSON.stringify(row)),
        })),
      );

    let a = await sink();
    let b = await sink();
    try {
      await produce(0);
      await pause(1500);
      await produce(1);
      await a.stop(); // graceful: drains, commits, leaves; b takes its partitions over
      await produce(2);
      a = await sink();
      await pause(1500);
      await produce(3);
      await b.stop();
      await produce(4);
      b = await sink();
      await pause(1000);
      await produce(5);

      const end = await eventually(async () => {
        const o = await groupOffsets(brokers, groupId, topic, PARTITIONS);
        return o.committed.every((c, p) => c === o.end[p]) ? o : undefined;
      }, 'both members to commit everything');
      expect(end.end.reduce((n, x) => n + x, 0)).toBe(waves.reduce((n, w) => n + w.rows.length, 0));
      expect(a.consumer.assignment().length + b.consumer.assignment().length).toBe(PARTITIONS);
    } finally {
      await a.stop();
      await b.stop();
    }

    const stored = await (
      await clickhouse.query({
        query: `SELECT team_id, sum(event_count) AS events, sum(click_count) AS clicks, sum(keypress_count) AS keys
                  FROM session_replay_events WHERE team_id >= {base:Int64} AND team_id < {top:Int64}
                 GROUP BY team_id ORDER BY team_id`,
        query_params: { base: teamBase, top: teamBase + waves.length },
        format: 'JSONEachRow',
      })
    ).json<{ team_id: number; events: number; clicks: number; keys: number }>();
    expect(stored.map((r) => ({ ...r, team_id: Number(r.team_id) }))).toEqual(
      waves.map((w, i) => ({
        team_id: teamBase + i,
        events: w.sessions.reduce((n, s) => n + s.events.length, 0),
        clicks: w.sessions.reduce((n, s) => n + expectedSummary(s.events).clickCount, 0),
        keys: w.sessions.reduce((n, s) => n + expectedSummary(s.events).keypressCount, 0),
      })),
    );
    await clickhouse.close();
    await rm(dir, { recursive: true, force: true });
  });
});
