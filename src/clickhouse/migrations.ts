import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';

export const clickhouseSchemaDir = new URL('../../schema/clickhouse/', import.meta.url).pathname;

/**
 * Applies `schema/clickhouse/NNNN_name.sql` in name order, recording each in `schema_migrations`. ClickHouse has no
 * transactions or advisory locks, so safety comes from the files: every statement is idempotent (`IF NOT EXISTS`),
 * and two processes migrating at once both succeed and converge on the same schema.
 */
export async function migrateClickHouse(client: ClickHouseClient, dir = clickhouseSchemaDir): Promise<string[]> {
  await client.command({
    query: `CREATE TABLE IF NOT EXISTS schema_migrations (name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
            ENGINE = ReplacingMergeTree ORDER BY name`,
  });
  const done = await (
    await client.query({ query: 'SELECT DISTINCT name FROM schema_migrations', format: 'JSONEachRow' })
  ).json<{ name: string }>();
  const applied = new Set(done.map((row) => row.name));
  const files = (await readdir(dir)).filter((name) => /^\d{4}_[\w-]+\.sql$/.test(name)).sort();
  const pending = files.filter((name) => !applied.has(name));
  for (const name of pending) {
    const text = await readFile(join(dir, name), 'utf8');
    for (const statement of text
      .split(/;\s*$/m)
      .map((s) => s.trim())
      .filter((s) => s.replace(/--.*$/gm, '').trim())) {
      await client.command({ query: statement });
    }
    await client.insert({ table: 'schema_migrations', values: [{ name }], format: 'JSONEachRow' });
  }
  return pending;
}
