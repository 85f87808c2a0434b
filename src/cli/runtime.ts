import type { Config } from '../config/index.ts';
import { openPostgres, postgresTargetFromUrl, type SqlDatabase } from '../postgres/database.ts';

/** Opens the database named by DATABASE_URL. */
export function openDatabase(config: Config): Promise<SqlDatabase> {
  return openPostgres(postgresTargetFromUrl(config.databaseUrl));
}

/** Resolves when the command's shutdown signal fires (SIGINT/SIGTERM). */
export function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}
