import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openClickHouse } from '../../../src/clickhouse/client.ts';
import { classifyClickHouseError } from '../../../src/clickhouse/errors.ts';
import { insertJsonRows } from '../../../src/clickhouse/json-rows-insert.ts';

/** chDB's byte-payload insert, which `openClickHouse` wires in for the embedded engine (real chDB). */
describe('insertJsonRows into chDB', () => {
  let dir: string;
  let clickhouse: ClickHouseClient;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'replay-json-rows-'));
    clickhouse = openClickHouse({ kind: 'chdb', path: join(dir, 'db') });
    await clickhouse.command({
      query: `CREATE TABLE rows (k String, n UInt32, m Map(String, String), CONSTRAINT no_bad CHECK k != 'bad')
                ENGINE = MergeTree ORDER BY k SETTINGS non_replicated_deduplication_window = 100`,
    });
  });
  afterAll(async () => {
    await clickhouse.close();
    await rm(dir, { recursive: true, force: true });
  });

  const stored = async () =>
    (await clickhouse.query({ query: 'SELECT k, n, m FROM rows ORDER BY k, n', format: 'JSONEachRow' })).json<{
      k: string;
      n: number;
      m: Record<string, string>;
    }>();
  const dedup = (token: string) => ({ insert_deduplicate: 1, insert_deduplication_token: token, async_insert: 0 });

  it('stores every row as sent, escapes and all; the same token again stores nothing; settings stay with their insert', async () => {
    const hostile = [
      { k: 'quote " backslash \\ newline \n tab \t', n: 1, m: { 'key "x"': 'line\nbreak' } },
      { k: 'unicode ☃ \u2028 \u{1F600} \u0000', n: 2, m: {} },
      { k: "single ' quote; DROP TABLE rows", n: 3, m: { a: '' } },
    ];
    await insertJsonRows(clickhouse, 'rows', hostile, dedup('batch-1'));
    // A retry under the same token is recognised by the token, not by its content (the data differs here).
    await insertJsonRows(clickhouse, 'rows', [{ k: 'retried', n: 0, m: {} }], dedup('batch-1'));
    expect(await stored()).toEqual([...hostile].sort((a, b) => (a.k < b.k ? -1 : 1)));

    // Inserts without a token after those: stored, so the token was not left behind on the session (chDB applies a
    // client's settings as SET statements, which once silently dropped the next insert).
    await insertJsonRows(clickhouse, 'rows', [{ k: 'after', n: 4, m: {} }], { async_insert: 0 });
    await clickhouse.insert({ table: 'rows', values: [{ k: 'after', n: 5, m: {} }], format: 'JSONEachRow' });
    expect((await stored()).filter((r) => r.k === 'after').map((r) => r.n)).toEqual([4, 5]);
  });

  it('fails as the client does: a refused row is clickhouse_rejected, a missing table clickhouse_unavailable', async () => {
    const before = await stored();
    const refused = await insertJsonRows(
      clickhouse,
      'rows',
      [
        { k: 'ok', n: 9, m: {} },
        { k: 'bad', n: 9, m: {} },
      ],
      {
        async_insert: 0,
      },
    ).catch((error: unknown) => error);
    expect(classifyClickHouseError(refused).code).toBe('clickhouse_rejected');
    const unparsable = await insertJsonRows(clickhouse, 'rows', [{ k: 'x', n: 'many', m: {} }], {
      async_insert: 0,
    }).catch((error: unknown) => error);
    expect(classifyClickHouseError(unparsable).code).toBe('clickhouse_rejected');
    expect(await stored()).toEqual(before);

    await clickhouse.command({ query: 'DETACH TABLE rows' });
    try {
      const missing = await insertJsonRows(clickhouse, 'rows', [{ k: 'x', n: 1, m: {} }], { async_insert: 0 }).catch(
        (error: unknown) => error,
      );
      expect(classifyClickHouseError(missing).code).toBe('clickhouse_unavailable');
    } finally {
      await clickhouse.command({ query: 'ATTACH TABLE rows' });
    }
    expect(await stored()).toEqual(before);
  });

  it('inserts nothing for no rows', async () => {
    const before = await stored();
    await insertJsonRows(clickhouse, 'rows', [], dedup('empty'));
    expect(await stored()).toEqual(before);
  });
});
