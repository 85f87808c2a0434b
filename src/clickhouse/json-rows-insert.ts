import type { ClickHouseClient } from '@clickhouse/client';

/** Settings of one insert (deduplication token and the like), applied to that insert alone. */
export type InsertSettings = Readonly<Record<string, string | number>>;

/** Inserts a JSONEachRow payload as bytes: the engine parses it, nothing re-encodes it. */
export type JsonLinesInsert = (insert: {
  readonly table: string;
  readonly lines: Buffer;
  readonly settings: InsertSettings;
}) => Promise<void>;

/** Clients whose engine takes a JSONEachRow payload as it is (chDB, registered when opened). */
const bytePayloadInserts = new WeakMap<ClickHouseClient, JsonLinesInsert>();

/** Called by `openClickHouse` for a chDB client: its inserts skip the client's per-row encoding and the SQL parser. */
export function registerJsonLinesInsert(client: ClickHouseClient, insert: JsonLinesInsert): void {
  bytePayloadInserts.set(client, insert);
}

/**
 * Inserts rows as JSONEachRow with per-insert settings. Into chDB the rows are encoded once, into one buffer, and
 * handed to the engine as the INSERT's data: through `@clickhouse/client` the same rows were encoded row by row,
 * joined into a string and appended to the statement's SQL, which cost about twice the CPU of the insert itself
 * (bench/README, "UBA ingest throughput"). Any other client (a server over HTTP) inserts through `@clickhouse/client`.
 */
export async function insertJsonRows(
  client: ClickHouseClient,
  table: string,
  rows: readonly object[],
  settings: InsertSettings,
): Promise<void> {
  if (rows.length === 0) return;
  const direct = bytePayloadInserts.get(client);
  if (!direct) {
    await client.insert({ table, values: rows as object[], format: 'JSONEachRow', clickhouse_settings: settings });
    return;
  }
  let text = '';
  for (const row of rows) text += `${JSON.stringify(row)}\n`;
  await direct({ table, lines: Buffer.from(text), settings });
}
