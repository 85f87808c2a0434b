import type { ClickHouseClient } from '@clickhouse/client';
import { insertSummaryRows } from '../clickhouse/session-replay-events.ts';
import {
  type BlockEntry,
  decodeFooter,
  decodeTrailer,
  type ObjectFooter,
  TRAILER_BYTES,
} from '../recordings/blob-object.ts';
import { type SummaryRow, summaryRow } from '../recordings/summary-row.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { objectTime } from './orphans.ts';

/** Reads an object's footer with two range requests: the 16-byte trailer, then the footer it points at. */
export async function readFooter(store: BlobStore, key: string): Promise<ObjectFooter> {
  const size = await store.size(key);
  if (size === undefined || size < TRAILER_BYTES) throw new Error(`object ${key} is missing or too small`);
  const trailer = decodeTrailer(await store.getRange(key, size - TRAILER_BYTES, size - 1), size);
  const footer = await store.getRange(key, trailer.footerStart, trailer.footerStart + trailer.footerLength - 1);
  return decodeFooter(footer, trailer.crc);
}

/** Which of a team's sessions were deleted (`DeletionStore.deletedAmong`). */
export type DeletedSessions = (teamId: number, sessionIds: readonly string[]) => Promise<ReadonlySet<string>>;

/**
 * Rebuilds summary rows from object footers alone, for objects written in [fromMs, toMs). Objects left by flushes
 * that never committed (orphans) hold blocks whose messages were stored again later: walking objects newest first,
 * a block is taken only if none of its source offsets is already covered for its session, so each message counts once.
 * A deleted session never comes back: its erased blocks are marked in the footer, and `deleted` (the deletion
 * records) covers those whose erasure is still under way.
 */
export async function rebuildSummaryRows(options: {
  readonly store: BlobStore;
  readonly prefix: string;
  readonly fromMs: number;
  readonly toMs: number;
  readonly deleted?: DeletedSessions;
}): Promise<{ key: string; rows: SummaryRow[] }[]> {
  const keys: { key: string; time: number }[] = [];
  for await (const key of options.store.list(`${options.prefix}/`)) {
    const time = objectTime(key);
    if (time !== undefined && time >= options.fromMs && time < options.toMs) keys.push({ key, time });
  }
  keys.sort((a, b) => b.time - a.time || (a.key < b.key ? 1 : -1));
  const covered = new Map<string, [number, number][]>();
  const overlaps = (block: BlockEntry) =>
    block.kafka.some((k) => {
      const taken = covered.get(`${block.teamId}:${block.sessionId}:${k.topic}:${k.partition}`) ?? [];
      return taken.some(([a, b]) => k.firstOffset <= b && a <= k.lastOffset);
    });
  const result: { key: string; rows: SummaryRow[] }[] = [];
  for (const { key } of keys) {
    const footer = await readFooter(options.store, key);
    const deleted = new Set<string>();
    if (options.deleted) {
      const byTeam = new Map<number, string[]>();
      for (const block of footer.blocks)
        byTeam.set(block.teamId, [...(byTeam.get(block.teamId) ?? []), block.sessionId]);
      for (const [teamId, ids] of byTeam) {
        for (const id of await options.deleted(teamId, ids)) deleted.add(`${teamId}:${id}`);
      }
    }
    const rows: SummaryRow[] = [];
    for (const block of footer.blocks) {
      if (block.deleted || deleted.has(`${block.teamId}:${block.sessionId}`) || overlaps(block)) continue;
      for (const k of block.kafka) {
        const id = `${block.teamId}:${block.sessionId}:${k.topic}:${k.partition}`;
        covered.set(id, [...(covered.get(id) ?? []), [k.firstOffset, k.lastOffset]]);
      }
      rows.push(
        summaryRow(block, `${options.store.urlOf(key)}?range=bytes=${block.start}-${block.end}`, footer.retention),
      );
    }
    result.push({ key, rows });
  }
  return result;
}

/** Rebuilds and inserts; each object's rows carry a deduplication token, so running it twice stores them once. */
export async function reindex(options: {
  readonly store: BlobStore;
  readonly prefix: string;
  readonly clickhouse: ClickHouseClient;
  readonly fromMs: number;
  readonly toMs: number;
  readonly deleted?: DeletedSessions;
  readonly onProgress?: (message: string) => void;
}): Promise<{ objects: number; rows: number }> {
  const rebuilt = await rebuildSummaryRows(options);
  let rows = 0;
  for (const [i, object] of rebuilt.entries()) {
    await insertSummaryRows(options.clickhouse, object.rows, `reindex:${object.key}`);
    rows += object.rows.length;
    options.onProgress?.(`${i + 1}/${rebuilt.length} objects, ${rows} rows`);
  }
  return { objects: rebuilt.length, rows };
}
