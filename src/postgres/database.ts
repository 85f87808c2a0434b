import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { ReplayError } from '../errors/index.ts';

/**
 * What the project needs from Postgres (teams, tokens, API keys): parameterised queries and a clean close. Two
 * implementations: a `pg` pool against a PostgreSQL server (production) and PGlite in this process (embedded default).
 */
export interface SqlExecutor {
  query<Row extends Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<Row[]>;
  /** Runs several statements separated by semicolons, without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface SqlDatabase extends SqlExecutor {
  readonly kind: 'postgres' | 'pglite';
  /** Runs `work` in one transaction on one connection: committed if it resolves, rolled back if it throws. */
  transaction<T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export type PostgresTarget =
  | { readonly kind: 'postgres'; readonly url: string; readonly poolSize?: number }
  | { readonly kind: 'pglite' /** Data directory; `memory://` for an in-memory database. */; readonly dataDir: string };

/** `postgres://...` → a server; `pglite://memory` → in-memory PGlite; `pglite://<dir>` → PGlite persisted in dir. */
export function postgresTargetFromUrl(url: string): PostgresTarget {
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) return { kind: 'postgres', url };
  if (url.startsWith('pglite://')) {
    const rest = url.slice('pglite://'.length);
    return { kind: 'pglite', dataDir: rest === 'memory' || rest === '' ? 'memory://' : rest };
  }
  throw new ReplayError('config_invalid', 'DATABASE_URL must start with postgres://, postgresql:// or pglite://');
}

export async function openPostgres(target: PostgresTarget): Promise<SqlDatabase> {
  if (target.kind === 'pglite') {
    const db = await PGlite.create(target.dataDir);
    return {
      kind: 'pglite',
      query: async <Row extends Record<string, unknown>>(sql: string, params: readonly unknown[] = []) =>
        (await db.query<Row>(sql, [...params])).rows,
      exec: async (sql) => {
        await db.exec(sql);
      },
      transaction: (work) =>
        db.transaction((tx) =>
          work({
            query: async <Row extends Record<string, unknown>>(sql: string, params: readonly unknown[] = []) =>
              (await tx.query<Row>(sql, [...params])).rows,
            exec: async (sql) => {
              await tx.exec(sql);
            },
          }),
        ),
      close: () => db.close(),
    };
  }
  const pool = new pg.Pool({ connectionString: target.url, max: target.poolSize ?? 10 });
  // An idle client losing its connection must not crash the process; the next query gets a fresh one.
  pool.on('error', () => {});
  return {
    kind: 'postgres',
    query: async <Row extends Record<string, unknown>>(sql: string, params: readonly unknown[] = []) =>
      (await pool.query<Row>(sql, [...params])).rows,
    exec: async (sql) => {
      await pool.query(sql);
    },
    async transaction(work) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await work({
          query: async <Row extends Record<string, unknown>>(sql: string, params: readonly unknown[] = []) =>
            (await client.query<Row>(sql, [...params])).rows,
          exec: async (sql) => {
            await client.query(sql);
          },
        });
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}
