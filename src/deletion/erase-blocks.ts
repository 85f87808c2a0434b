import { isReplayError } from '../errors/index.ts';
import {
  type BlockEntry,
  decodeFooter,
  decodeTrailer,
  encodeFooter,
  type ObjectFooter,
  TRAILER_BYTES,
} from '../recordings/blob-object.ts';
import type { RetentionClass } from '../recordings/message-codec.ts';
import { retentionDays } from '../recordings/summary-row.ts';
import type { BlobStore } from '../storage/blob-store.ts';

/** A block to erase: the object it lives in and its inclusive byte range, from the block's address. */
export interface BlockToErase {
  readonly key: string;
  readonly start: number;
  readonly end: number;
}

/** `s3://bucket/key?range=bytes=a-b` → where the block is in this store (undefined: not this store's). */
export function blockToErase(store: BlobStore, url: string): BlockToErase | undefined {
  const [base = '', range = ''] = url.split('?range=bytes=');
  const key = store.keyOf(base);
  const bounds = /^(\d+)-(\d+)$/.exec(range);
  if (key === undefined || !bounds) return undefined;
  return { key, start: Number(bounds[1]), end: Number(bounds[2]) };
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** Whether an object's key date (`.../{class}/{yyyy}/{mm}/{dd}/...`, DESIGN §3.3) plus its class's days is past. */
function pastRetention(key: string, now: number): boolean {
  const match = /(?:^|\/)(30d|90d|1y|5y)\/(\d{4})\/(\d{2})\/(\d{2})\//.exec(key);
  if (!match) return false;
  const day = Date.UTC(Number(match[2]), Number(match[3]) - 1, Number(match[4]));
  return day + (retentionDays[match[1] as RetentionClass] + 1) * DAY_MS <= now;
}

/** What a deleted block's footer entry keeps: where it was and whose, nothing of what it held. */
function redacted(block: BlockEntry): BlockEntry {
  return {
    ...block,
    deleted: true,
    distinctId: '',
    snapshotLibrary: '',
    windowIds: [],
    activeIntervals: [],
    firstUrl: null,
    firstUrlTimestamp: null,
    urls: [],
  };
}

/**
 * Erases blocks from one object, which other sessions' blocks share: the object is rewritten under the same key with
 * the blocks' bytes zeroed in place (every other block keeps its bytes and its range) and their footer entries
 * redacted and marked `deleted` (so `reindex` never brings them back). The store replaces the object whole (an S3 PUT,
 * a rename on the filesystem), so a reader sees the old or the new object, never a mix. A missing object (expired,
 * or removed as an orphan) has nothing left to erase. Returns the bytes zeroed.
 */
export async function eraseBlocks(
  store: BlobStore,
  key: string,
  blocks: readonly BlockToErase[],
  sessions: ReadonlySet<string>,
  now = Date.now(),
): Promise<number> {
  const size = await store.size(key);
  if (size === undefined) return 0;
  if (pastRetention(key, now)) {
    // Its whole retention is over (the lifecycle rule is due to remove it): a rewrite would be a new PUT and start
    // its lifecycle clock again, keeping every other session of it a retention period too long. Remove it instead.
    await store.delete(key);
    return blocks.reduce((n, { start, end }) => n + end - start + 1, 0);
  }
  let object: Buffer;
  try {
    object = await store.getRange(key, 0, size - 1);
  } catch (error) {
    if (isReplayError(error, 'blob_not_found')) return 0;
    throw error;
  }
  // The footer, when it decodes: its entries of these sessions are redacted, and their ranges zeroed as well (a block
  // whose address never reached the deletion is still one of theirs). `sessions` holds `team:session`.
  let footer: ObjectFooter | undefined;
  let blocksEnd = object.length;
  try {
    const trailer = decodeTrailer(object.subarray(object.length - TRAILER_BYTES), object.length);
    footer = decodeFooter(
      object.subarray(trailer.footerStart, trailer.footerStart + trailer.footerLength),
      trailer.crc,
    );
    blocksEnd = trailer.footerStart;
  } catch {
    footer = undefined; // the bytes are erased all the same; the footer is left as it is
  }
  const theirs = (block: BlockEntry) => sessions.has(`${block.teamId}:${block.sessionId}`);
  const ranges = [...blocks, ...(footer?.blocks.filter(theirs) ?? [])];
  let zeroed = 0;
  for (const { start, end } of ranges) {
    if (start > end || end >= blocksEnd) continue; // never into the footer
    if (object.subarray(start, end + 1).some((byte) => byte !== 0)) zeroed += end - start + 1;
    object.fill(0, start, end + 1);
  }
  let rewritten = object;
  if (footer) {
    const blocksNow = footer.blocks.map((block) => (theirs(block) && !block.deleted ? redacted(block) : block));
    if (blocksNow.some((block, i) => block !== footer.blocks[i])) {
      rewritten = Buffer.concat([object.subarray(0, blocksEnd), encodeFooter({ ...footer, blocks: blocksNow })]);
    } else if (zeroed === 0) {
      return 0; // erased before: nothing to write
    }
  } else if (zeroed === 0) {
    return 0;
  }
  const writer = store.newObject(key);
  try {
    await writer.write(rewritten);
    await writer.finish();
  } catch (error) {
    await writer.abort();
    throw error;
  }
  return zeroed;
}
