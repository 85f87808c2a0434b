import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openClickHouse } from '../../../src/clickhouse/client.ts';
import { clickhouseSchemaDir, migrateClickHouse } from '../../../src/clickhouse/migrations.ts';
import { insertSummaryRows } from '../../../src/clickhouse/session-replay-events.ts';
import { clickhouseTime, type SummaryRow } from '../../../src/recordings/summary-row.ts';

const DAY = 86_400_000;
const TTL = 'TTL toDateTime(min_first_timestamp) + toIntervalDay(retention_period_days)';

function row(sessionId: string, start: number, retentionDays: number, offset: number): SummaryRow {
  return {
    team_id: 7,
    session_id: sessionId,
    distinct_id: 'd',
    first_timestamp: clickhouseTime(start),
    last_timestamp: clickhouseTime(start + 9000),
    block_url: `s3://bucket/key-${offset}?range=bytes=0-99`,
    first_url: null,
    first_url_timestamp: null,
    urls: [],
    click_count: 1,
    keypress_count: 0,
    mouse_activity_count: 0,
    active_milliseconds: 100,
    console_log_count: 0,
    console_warn_count: 0,
    console_error_count: 0,
    size: 100,
    event_count: 3,
    message_count: 1,
    snapshot_source: 'web',
    snapshot_library: 'web',
    retention_period_days: retentionDays,
    source_offsets: `recordings:0:${offset}-${offset}`,
  };
}

describe('session_replay_events TTL from retention_period_days (0014, chDB)', () => {
  let dir: string;
  let clickhouse: ClickHouseClient;
  const select = async <T>(query: string) => (await clickhouse.query({ query, format: 'JSONEachRow' })).json<T>();
  const createStatement = async () =>
    (await select<{ statement: string }>('SHOW CREATE TABLE session_replay_events'))[0]!.statement;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'retention-ttl-'));
    clickhouse = openClickHouse({ kind: 'chdb', path: join(dir, 'db') });
    await migrateClickHouse(clickhouse);
  });
  afterAll(async () => {
    await clickhouse?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('gives the table a row TTL of its first timestamp plus its retention days, idempotently', async () => {
    expect(await createStatement()).toContain(`\n${TTL}\n`);
    // The migration's statement run again (as a second migrate racing the first would) changes nothing.
    const migration = await readFile(join(clickhouseSchemaDir, '0014_session_replay_events_ttl.sql'), 'utf8');
    const before = await createStatement();
    await clickhouse.command({ query: migration.replace(/^--.*\n/gm, '').trim() });
    expect(await createStatement()).toBe(before);
  });

  it('deletes the rows past their retention on OPTIMIZE FINAL and keeps the others', async () => {
    const now = Date.now();
    // Hold back background TTL merges, as when a row expired since the last one: every row is stored and visible.
    await clickhouse.command({ query: 'SYSTEM STOP TTL MERGES session_replay_events' });
    const rows = [
      row('expired-30d', now - 40 * DAY, 30, 1),
      row('expired-30d', now - 40 * DAY + 60_000, 30, 2),
      row('fresh-30d', now - DAY, 30, 3),
      row('kept-90d', now - 40 * DAY, 90, 4),
      row('expired-1y', now - 400 * DAY, 365, 5),
      row('kept-5y', now - 400 * DAY, 1825, 6),
    ];
    for (const [i, r] of rows.entries()) await insertSummaryRows(clickhouse, [r], `ttl-${i}`);
    const sessions = async () =>
      (
        await select<{ session_id: string; n: number }>(
          'SELECT session_id, toUInt32(count()) AS n FROM session_replay_events GROUP BY session_id ORDER BY session_id',
        )
      ).map((r) => `${r.session_id}:${r.n}`);
    expect(await sessions()).toEqual(['expired-1y:1', 'expired-30d:2', 'fresh-30d:1', 'kept-5y:1', 'kept-90d:1']);

    await clickhouse.command({ query: 'SYSTEM START TTL MERGES session_replay_events' });
    await clickhouse.command({ query: 'OPTIMIZE TABLE session_replay_events FINAL' });
    expect(await sessions()).toEqual(['fresh-30d:1', 'kept-5y:1', 'kept-90d:1']);
    // What is left reads as before through the merged view.
    const merged = await select<{ session_id: string; retention_period_days: number }>(
      'SELECT session_id, retention_period_days FROM session_replay_events_merged ORDER BY session_id',
    );
    expect(merged).toEqual([
      { session_id: 'fresh-30d', retention_period_days: 30 },
      { session_id: 'kept-5y', retention_period_days: 1825 },
      { session_id: 'kept-90d', retention_period_days: 90 },
    ]);
  });
});
