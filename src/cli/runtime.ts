import type { Config } from '../config/index.ts';
import type { ReplayError } from '../errors/index.ts';
import type { Logger } from '../logging/logger.ts';
import { openPostgres, postgresTargetFromUrl, type SqlDatabase } from '../postgres/database.ts';
import type { Command } from './command.ts';

/** Opens the database named by DATABASE_URL. */
export function openDatabase(config: Config): Promise<SqlDatabase> {
  return openPostgres(postgresTargetFromUrl(config.databaseUrl));
}

/** Resolves when the command's shutdown signal fires (SIGINT/SIGTERM). */
export function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/**
 * Runs a service until the shutdown signal (then resolves) or until it fails fatally (then rejects with the fatal
 * error once `stop` has run, so the command exits non-zero with one line naming the code).
 */
export async function serveUntilStopped(
  signal: AbortSignal,
  failed: Promise<ReplayError>,
  stop: () => Promise<void>,
): Promise<void> {
  const outcome = await Promise.race([untilAborted(signal).then(() => undefined), failed]);
  await stop();
  if (outcome) throw outcome;
}

/** A command that runs one service from configuration until the shutdown signal (or a fatal error). */
export function serviceCommand(
  run: (config: Config, log: Logger) => Promise<{ readonly failed: Promise<ReplayError>; stop(): Promise<void> }>,
): Command {
  return {
    async run(_args, { config, log, signal }) {
      const running = await run(config, log);
      await serveUntilStopped(signal, running.failed, () => {
        log.info('shutting down');
        return running.stop();
      });
      return 0;
    },
  };
}
