import { type ClickHouseClient, type ClickHouseClientConfigOptions, createClient } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';

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
    const connection = createChdbConnection({
      path: target.path,
    }) as unknown as ClickHouseClientConfigOptions['connection'];
    return createClient({ connection, clickhouse_settings });
  }
  return createClient({
    url: target.url,
    username: target.username,
    password: target.password,
    database: target.database,
    clickhouse_settings,
  });
}
