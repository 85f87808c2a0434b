import { isReplayError } from '../errors/index.ts';
import {
  type BlockEntry,
  decodeFooter,
  decodeTrailer,
  encodeFooter,
  TRAILER_BYTES,
} from '../recordings/blob-object.ts';
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
): Promise<number> {
  const size = await store.size(key);
  if (size === undefined) return 0;
  let object: Buffer;
  try {
    object = await store.getRange(key, 0, size - 1);
  } catch (error) {
    if (isReplayError(error, 'blob_not_found')) return 0;
    throw error;
  }
  let zeroed = 0;
  for (const { start, end } of blocks) {
    if (end >= object.length || start > end) continue;
    if (object.subarray(start, end + 1).some((byte) => byte !== 0)) zeroed += end - start + 1;
    object.fill(0, start, end + 1);
  }
  // The footer: its entries for these sessions are redacted. A footer that does not decode is left as it is (the
  // bytes are gone all the same); `sessions` holds `team:session`.
  let rewritten = object;
  try {
    const trailer = decodeTrailer(object.subarray(object.length - TRAILER_BYTES), object.length);
    const footer = decodeFooter(
      object.subarray(trailer.footerStart, trailer.footerStart + trailer.footerLength),
      trailer.crc,
    );
    const blocksNow = footer.blocks.map((block) =>
      sessions.has(`${block.teamId}:${block.sessionId}`) && !block.deleted ? redacted(block) : block,
    );
    if (blocksNow.some((block, i) => block !== footer.blocks[i])) {
      rewritten = Buffer.concat([
        object.subarray(0, trailer.footerStart),
        encodeFooter({ ...footer, blocks: blocksNow }),
      ]);
    } else if (zeroed === 0) {
      return 0; // erased before: nothing to write
    }
  } catch {
    if (zeroed === 0) return 0;
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
