import type { ReplayError } from '../errors/index.ts';
import { classifyClickHouseError } from './errors.ts';

/** How a sink inserts one unit of entries, makes a unit of some entries, and quarantines an entry ClickHouse refuses. */
export interface BisectingInsert<Entry, Unit extends { readonly entries: readonly Entry[] }> {
  insert(unit: Unit): Promise<void>;
  unit(entries: readonly Entry[]): Unit;
  refuse(entry: Entry, error: ReplayError): void;
  /** Counts a split (the sink's metric). */
  bisected(): void;
}

/**
 * Runs the pending inserts in order, removing each one once ClickHouse took it. One that ClickHouse refuses for its
 * content (`clickhouse_rejected`) is split in two at once, with no backoff, and each half tried in its place, so one
 * bad entry costs log2(n) extra inserts and delays the others by no retry; a single entry it refuses goes to `refuse`.
 * Any other failure throws (classified, transient), leaving the inserts not yet done in `pending` for the retry.
 */
export async function insertBisecting<Entry, Unit extends { readonly entries: readonly Entry[] }>(
  pending: Unit[],
  how: BisectingInsert<Entry, Unit>,
): Promise<void> {
  while (pending.length > 0) {
    const unit = pending[0]!;
    try {
      await how.insert(unit);
      pending.shift();
    } catch (error) {
      const known = classifyClickHouseError(error);
      if (known.code !== 'clickhouse_rejected') throw known;
      pending.shift();
      if (unit.entries.length > 1) {
        const half = Math.ceil(unit.entries.length / 2);
        pending.unshift(how.unit(unit.entries.slice(0, half)), how.unit(unit.entries.slice(half)));
        how.bisected();
        continue;
      }
      how.refuse(unit.entries[0]!, known);
    }
  }
}
