import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openClickHouse } from '../../../src/clickhouse/client.ts';
import { migrateClickHouse } from '../../../src/clickhouse/migrations.ts';
import { ensureTopics } from '../../../src/kafka/admin.ts';
import { expectedSummary } from '../../support/expected-summary.ts';
import { produceAll } from '../../support/kafka.ts';
import { startTestSink } from '../../support/pipeline.ts';
import { liveRows } from '../../support/summary-rows.ts';

const brokers = inject('stack').kafka!.brokers;

describe('ClickHouse sink (real Kafka, chDB)', () => {
  let dir: string;
  let clickhouse: ClickHouseClient;
  const topic = `summaries-${randomUUID()}`;
  const teamId = 77;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'replay-sink-'));
    clickhouse = openClickHouse({ kind: 'chdb', path: join(dir, 'db') });
    await migrateClickHouse(clickhouse);
    await ensureTopics(brokers, [{ name: topic, partitions: 3, config: {} }]);
  });
  afterAll(async () => {
    await clickhouse.close();
    await rm(dir, { recursive: true, force: true });
  });

  const sink = (groupId: string) =>
    startTestSink({ brokers, topic, groupId, clickhouse, env: { SINK_INSERT_INTERVAL_MS: '300' } });
  const totals = async () =>
    (
      await (
        await clickhouse.query({
          query: `SELECT count() AS inserts, sum(event_count) AS events, sum(click_count) AS clicks FROM session_replay_events WHERE team_id = ${teamId}`,
          format: 'JSONEachRow',
        })
      ).json<{ inserts: number; events: number; clicks: number }>()
    )[0]!;

  it('inserts every summary row once, in few inserts, and a replay from uncommitted offsets doubles nothing', async () => {
    const { sessions, rows } = await liveRows(dir, teamId);
    await produceAll(
      brokers,
      rows.map((row) => ({ topic, key: `${row.team_id}:${row.session_id}`, value: Buffer.from(JSON.stringify(row)) })),
    );
    const expectedEvents = sessions.reduce((n, s) => n + s.events.length, 0);
    const expectedClicks = sessions.reduce((n, s) => n + expectedSummary(s.events).clickCount, 0);

    const first = await sink(`sink-${randomUUID()}`);
    for (let i = 0; i < 120 && (await totals()).events < expectedEvents; i++)
      await new Promise((r) => setTimeout(r, 250));
    const metrics = await (await fetch(`${first.http.url}/metrics`)).text();
    await first.stop();
    expect(await totals()).toMatchObject({ events: expectedEvents, clicks: expectedClicks });
    const inserts = Number(/^clickhouse_inserts_total(?:\{[^}]*\})? (\d+)/m.exec(metrics)?.[1]);
    expect(inserts).toBeGreaterThan(0);
    expect(inserts).toBeLessThanOrEqual(3);

    // A sink with no committed offsets reads everything again: what a crash between insert and commit looks like.
    const second = await sink(`sink-${randomUUID()}`);
    await new Promise((r) => setTimeout(r, 4000));
    const replayMetrics = await (await fetch(`${second.http.url}/metrics`)).text();
    await second.stop();
    expect(Number(/^clickhouse_rows_skipped_total(?:\{[^}]*\})? (\d+)/m.exec(replayMetrics)?.[1])).toBe(rows.length);
    expect(await totals()).toMatchObject({ events: expectedEvents, clicks: expectedClicks });
  });
});
