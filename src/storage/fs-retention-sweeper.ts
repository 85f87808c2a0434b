import { readdir, rmdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../logging/logger.ts';
import { retentionClasses } from '../recordings/message-codec.ts';
import { retentionDays } from '../recordings/summary-row.ts';

const DAY_MS = 86_400_000;

export interface SweepOptions {
  /** Root directory of the filesystem blob store (BLOB_FS_ROOT). */
  readonly root: string;
  /** BLOB_PREFIX: objects live at `{root}/{prefix}/{class}/{yyyy}/{mm}/{dd}/...`. */
  readonly prefix: string;
  /** The most objects one sweep deletes (BLOB_FS_SWEEP_MAX_OBJECTS). */
  readonly maxObjects: number;
  readonly log: Logger;
  readonly now?: () => number;
}

export interface SweepResult {
  /** Objects deleted. */
  readonly removed: number;
  /** Whether expired objects were left for the next sweep (the budget ran out). */
  readonly more: boolean;
}

/** Names of the subdirectories of `dir` that match `pattern`, in order (fixed-width digits sort as numbers). */
async function subdirectories(dir: string, pattern: RegExp): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  return entries
    .filter((e) => e.isDirectory() && pattern.test(e.name))
    .map((e) => e.name)
    .sort();
}

/** Removes `dir` if it is empty; a directory still holding anything (or gone already) is left as it is. */
async function removeIfEmpty(dir: string): Promise<void> {
  await rmdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (!['ENOTEMPTY', 'EEXIST', 'ENOENT'].includes(error.code ?? '')) throw error;
  });
}

/**
 * The filesystem store's stand-in for the bucket lifecycle rules (`retentionLifecycleRules`): deletes the objects
 * of every day directory `{prefix}/{class}/{yyyy}/{mm}/{dd}` that its class's retention has passed, then the day
 * (and month and year) directories left empty. Like an S3 expiration rule, which counts days from an object's
 * creation and rounds up to the next midnight UTC, every object of UTC day D expires at D + days + 1 day: the key's
 * date is its creation date, so the whole directory expires at once and no file needs to be opened or stat'ed.
 * Oldest days first; at most `maxObjects` deletions, the rest left for the next sweep. Writers never touch an
 * expired day (they write under today), so a sweep cannot race a flush.
 */
export async function sweepExpiredObjects(options: SweepOptions): Promise<SweepResult> {
  const now = (options.now ?? Date.now)();
  let budget = options.maxObjects;
  let removed = 0;
  for (const retention of retentionClasses) {
    const classDir = join(options.root, options.prefix, retention);
    const keptMs = (retentionDays[retention] + 1) * DAY_MS;
    for (const year of await subdirectories(classDir, /^\d{4}$/)) {
      for (const month of await subdirectories(join(classDir, year), /^\d{2}$/)) {
        for (const day of await subdirectories(join(classDir, year, month), /^\d{2}$/)) {
          const date = Date.UTC(Number(year), Number(month) - 1, Number(day));
          if (date + keptMs > now) break; // later days of the month are younger still
          if (budget === 0) return { removed, more: true };
          const dayDir = join(classDir, year, month, day);
          const files = (await readdir(dayDir, { withFileTypes: true })).filter((e) => e.isFile());
          const doomed = files.slice(0, budget);
          for (const file of doomed) await unlink(join(dayDir, file.name));
          budget -= doomed.length;
          removed += doomed.length;
          if (doomed.length > 0) {
            options.log.info('retention sweep removed expired objects', {
              class: retention,
              day: `${year}-${month}-${day}`,
              objects: doomed.length,
            });
          }
          if (doomed.length < files.length) return { removed, more: true };
          await removeIfEmpty(dayDir);
        }
        await removeIfEmpty(join(classDir, year, month));
      }
      await removeIfEmpty(join(classDir, year));
    }
  }
  return { removed, more: false };
}

/**
 * Sweeps now and then every `intervalMs` (BLOB_FS_SWEEP_INTERVAL_MS), one sweep at a time. A failed sweep is logged
 * and the next one tries again. `stop()` cancels the next sweep and waits for one in progress.
 */
export function startRetentionSweeper(options: SweepOptions & { readonly intervalMs: number }): {
  stop(): Promise<void>;
} {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  const sweep = () => {
    running = sweepExpiredObjects(options)
      .then(
        ({ removed, more }) => {
          if (removed > 0 || more) options.log.info('retention sweep done', { removed, more });
        },
        (error: Error) => options.log.warn('retention sweep failed', { error: error.message }),
      )
      .finally(() => {
        running = undefined;
        if (!stopped) timer = setTimeout(sweep, options.intervalMs);
      });
  };
  sweep();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
