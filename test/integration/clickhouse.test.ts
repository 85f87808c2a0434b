import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openClickHouse } from '../../src/clickhouse/client.ts';

describe('ClickHouse engine (chDB through @clickhouse/client)', () => {
  let dir: string;
  let clickhouse: ClickHouseClient;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'replay-chdb-'));
    clickhouse = openClickHouse({ kind: 'chdb', path: join(dir, 'db') });
    const version = await (await clickhouse.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' })).json();
    process.stderr.write(`[stack] versions exercised: ClickHouse ${(version as { v: string }[])[0]!.v} (chDB)\n`);
  });

  afterAll(async () => {
    await clickhouse.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('merges partial rows of an AggregatingMergeTree into the right totals', async () => {
    await clickhouse.command({
      query: `CREATE TABLE sessions (
        team_id Int64,
        session_id String,
        min_ts SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
        max_ts SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
        clicks SimpleAggregateFunction(sum, Int64),
        first_url AggregateFunction(argMin, Nullable(String), DateTime64(3, 'UTC'))
      ) ENGINE = AggregatingMergeTree ORDER BY (team_id, session_id)`,
    });
    // chDB writes 0 rows for INSERT ... SELECT FROM input(); aggregate states are built from format() instead.
    const quote = (text: string) => `'${text.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
    const structure = "team_id Int64, session_id String, ts DateTime64(3, 'UTC'), clicks Int64, url Nullable(String)";
    const insertPart = (rows: object[]) =>
      clickhouse.command({
        query: `INSERT INTO sessions SELECT team_id, session_id, min(ts), max(ts), sum(clicks), argMinState(url, ts)
          FROM format(JSONEachRow, ${quote(structure)}, ${quote(rows.map((row) => JSON.stringify(row)).join('\n'))})
          GROUP BY team_id, session_id`,
      });
    await insertPart([{ team_id: 1, session_id: 's1', ts: '2026-11-22 10:00:05.000', clicks: 2, url: 'https://b' }]);
    await insertPart([{ team_id: 1, session_id: 's1', ts: '2026-11-22 10:00:01.000', clicks: 3, url: 'https://a' }]);
    await insertPart([{ team_id: 2, session_id: 's1', ts: '2026-11-22 11:00:00.000', clicks: 7, url: null }]);
    const parts = await (
      await clickhouse.query({
        query: "SELECT count() AS n FROM system.parts WHERE table = 'sessions' AND active",
        format: 'JSONEachRow',
      })
    ).json<{ n: number }>();
    expect(parts[0]!.n).toBe(3);

    await clickhouse.command({ query: 'OPTIMIZE TABLE sessions FINAL' });
    const rows = await (
      await clickhouse.query({
        query: `SELECT team_id, session_id, min(min_ts) AS start, max(max_ts) AS end, sum(clicks) AS clicks,
                  argMinMerge(first_url) AS first_url, count() AS stored_rows
                FROM sessions GROUP BY team_id, session_id ORDER BY team_id`,
        format: 'JSONEachRow',
      })
    ).json();
    expect(rows).toEqual([
      {
        team_id: 1,
        session_id: 's1',
        start: '2026-11-22 10:00:01.000',
        end: '2026-11-22 10:00:05.000',
        clicks: 5,
        first_url: 'https://a',
        stored_rows: 1,
      },
      {
        team_id: 2,
        session_id: 's1',
        start: '2026-11-22 11:00:00.000',
        end: '2026-11-22 11:00:00.000',
        clicks: 7,
        first_url: null,
        stored_rows: 1,
      },
    ]);
  });

  it("keeps one call's settings to that call, as over HTTP (chDB's session would keep them)", async () => {
    const setting = async () =>
      (
        await (
          await clickhouse.query({
            query: "SELECT getSetting('insert_deduplication_token') AS token, getSetting('max_query_size') AS size",
            format: 'JSONEachRow',
          })
        ).json<{ token: string; size: number }>()
      )[0]!;
    const before = await setting();
    await clickhouse.command({
      query:
        'CREATE TABLE tokens (n Int64) ENGINE = MergeTree ORDER BY n SETTINGS non_replicated_deduplication_window = 100',
    });
    await clickhouse.command({
      query: 'INSERT INTO tokens VALUES (1)',
      clickhouse_settings: { insert_deduplication_token: 'batch-1', max_query_size: '999999' },
    });
    expect(await setting()).toEqual(before);
    // A later insert without a token is not taken for a retry of batch-1.
    await clickhouse.command({ query: 'INSERT INTO tokens VALUES (2)' });
    const count = await (
      await clickhouse.query({ query: 'SELECT count() AS n FROM tokens', format: 'JSONEachRow' })
    ).json();
    expect(count).toEqual([{ n: 2 }]);
  });
});
