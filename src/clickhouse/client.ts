import { createRequire } from 'node:module';
import { type ClickHouseClient, type ClickHouseClientConfigOptions, createClient } from '@clickhouse/client';
import { registerJsonLinesInsert } from './json-rows-insert.ts';

/**
 * chDB (the whole ClickHouse engine, ~150 MB mapped) is loaded only when a process opens it: a sink or API talking
 * to a ClickHouse server over HTTP never maps it.
 */
const loadChdbConnection = (): typeof import('chdb/connection') =>
  createRequire(import.meta.url)('chdb/connection') as typeof import('chdb/connection');

/** Where ClickHouse lives: a server over HTTP in production, or chDB inside this process (the embedded default). */
export type ClickHouseTarget =
  | {
      readonly kind: 'http';
      readonly url: string;
      readonly username: string;
      readonly password: string;
      readonly database: string;
    }
  | { readonly kind: 'chdb'; readonly path: string };

/**
 * The one way the project opens ClickHouse. Both targets return the same `@clickhouse/client` API, so callers cannot
 * tell them apart. chDB allows one data directory per process; a second process on the same path fails to lock it.
 */
/** `chdb://<dir>` → the embedded engine; `http(s)://user:password@host:port/database` → a server. */
export function clickhouseTargetFromUrl(url: string): ClickHouseTarget {
  if (url.startsWith('chdb://')) return { kind: 'chdb', path: url.slice('chdb://'.length) || ':memory:' };
  const parsed = new URL(url);
  return {
    kind: 'http',
    url: `${parsed.protocol}//${parsed.host}`,
    username: decodeURIComponent(parsed.username) || 'default',
    password: decodeURIComponent(parsed.password),
    database: parsed.pathname.replace(/^\//, '') || 'default',
  };
}

export function openClickHouse(target: ClickHouseTarget): ClickHouseClient {
  // chDB and the server disagree on this default; pin it so JSON rows look the same on both. Our 64-bit values
  // (ids, counters, bytes, milliseconds) stay far below 2^53, so plain JSON numbers are exact.
  const clickhouse_settings = { output_format_json_quote_64bit_integers: 0 } as const;
  if (target.kind === 'chdb') {
    // chdb types its connection against @clickhouse/client-common, which @clickhouse/client now bundles under its own
    // (structurally equal) types; the cast bridges the two declarations of one interface.
    const chdb = loadChdbConnection().createChdbConnection({ path: target.path });
    const connection = chdb as unknown as ClickHouseClientConfigOptions['connection'];
    const client = createClient({ connection: settingsPerQuery(connection!), clickhouse_settings });
    registerJsonLinesInsert(client, async ({ table, lines, settings }) => {
      await chdb.chdb.rawInsert({ table, values: lines, format: 'JSONEachRow', settings });
    });
    return client;
  }
  return createClient({
    url: target.url,
    username: target.username,
    password: target.password,
    database: target.database,
    clickhouse_settings,
  });
}

type Connection = NonNullable<ClickHouseClientConfigOptions['connection']>;
type Settings = Record<string, unknown>;

/**
 * chDB's connection applies a call's `clickhouse_settings` as `SET` statements on its one session, so they outlive
 * the call: an `insert_deduplication_token` left behind silently dropped the next insert that carried none. This
 * makes settings per-query again, as over HTTP: every call also resets each setting an earlier call changed to the
 * engine's default (read once per setting name from `system.settings`).
 */
function settingsPerQuery(connection: Connection): Connection {
  const defaults = new Map<string, unknown>();
  async function withResets(settings: Settings | undefined): Promise<Settings> {
    const unknown = Object.keys(settings ?? {}).filter((name) => !defaults.has(name));
    if (unknown.length > 0) {
      const { stream } = await connection.query({
        query: 'SELECT name, default FROM system.settings WHERE has({names:Array(String)}, name) FORMAT JSONEachRow',
        query_params: { names: unknown },
      } as never);
      let text = '';
      for await (const chunk of stream as AsyncIterable<Buffer>) text += chunk.toString('utf8');
      for (const line of text.split('\n').filter(Boolean)) {
        const row = JSON.parse(line) as { name: string; default: string };
        defaults.set(row.name, row.default);
      }
      // Not engine settings (HTTP-only ones the adapter drops): nothing to reset.
      for (const name of unknown) if (!defaults.has(name)) defaults.set(name, undefined);
    }
    return { ...Object.fromEntries(defaults), ...settings };
  }
  return new Proxy(connection, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (!['query', 'exec', 'command', 'insert'].includes(property as string) || typeof value !== 'function') {
        return typeof value === 'function' ? value.bind(target) : value;
      }
      return async (params: { clickhouse_settings?: Settings }) =>
        value.call(target, { ...params, clickhouse_settings: await withResets(params.clickhouse_settings) });
    },
  });
}
