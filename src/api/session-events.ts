import { zstdDecompressSync } from 'node:zlib';
import { decompressLz4FramesWithin } from '../codec/lz4-frames.ts';
import { isReplayError, ReplayError } from '../errors/index.ts';
import { clientDetail } from '../http/respond.ts';
import { blockCodecOf } from '../recordings/blob-object.ts';
import { inflatePosthogEvent } from '../recordings/posthog-compressed-events.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import type { SessionBlock } from './session-catalog.ts';

/** A block bigger than this is refused rather than read into memory (real blocks are a few MB). */
const MAX_BLOCK_BYTES = 512 * 1024 * 1024;

/** Where a block's bytes are: object key and inclusive byte range, from the address its summary row gives. */
export function blockAddress(store: BlobStore, block: SessionBlock): { key: string; start: number; end: number } {
  const [base = '', range = ''] = block.url.split('?range=bytes=');
  const key = store.keyOf(base);
  const bounds = /^(\d+)-(\d+)$/.exec(range);
  if (key === undefined || !bounds) {
    throw new ReplayError(
      'blob_not_found',
      `block ${block.index} lives at ${base}, which is not in ${store.description}`,
    );
  }
  const start = Number(bounds[1]);
  const end = Number(bounds[2]);
  if (end < start || end - start + 1 > MAX_BLOCK_BYTES) {
    throw new ReplayError('block_corrupt', `block ${block.index} has an impossible byte range ${range}`);
  }
  return { key, start, end };
}

/** Reads a block's stored (compressed) bytes. */
export async function readStoredBlock(store: BlobStore, block: SessionBlock): Promise<Buffer> {
  const { key, start, end } = blockAddress(store, block);
  const bytes = await store.getRange(key, start, end);
  if (bytes.length !== end - start + 1) {
    throw new ReplayError('blob_not_found', `block ${block.index}: the object is shorter than its index says`);
  }
  return bytes;
}

interface TimedLine {
  readonly timestamp: number;
  readonly line: string;
}

/**
 * A stored block → its JSONL, decoding at most `maxBytes` (API_MAX_BLOCK_BYTES): the limit holds while the block
 * inflates (LZ4 frames are bounded from their structure before each is decoded; zstd stops at `maxOutputLength`), so a
 * decompression bomb never reaches memory. Past the limit: `block_too_large`; damage: `block_corrupt`.
 */
export function decodeStoredBlock(bytes: Buffer, index: number, maxBytes = Number.POSITIVE_INFINITY): Buffer {
  const tooLarge = () =>
    new ReplayError('block_too_large', `block ${index} inflates past API_MAX_BLOCK_BYTES (${maxBytes} bytes)`);
  try {
    if (blockCodecOf(bytes) === 'lz4-frame') {
      const decoded = decompressLz4FramesWithin(bytes, maxBytes);
      if (decoded === undefined) throw tooLarge();
      return decoded;
    }
    try {
      return zstdDecompressSync(bytes, Number.isFinite(maxBytes) ? { maxOutputLength: maxBytes } : {});
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge();
      throw error;
    }
  } catch (error) {
    if (isReplayError(error, 'block_too_large')) throw error;
    throw new ReplayError('block_corrupt', `block ${index}: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * A stored block → its `[window_id, event]` lines with posthog-js compression undone, in stored order; at most
 * `maxBytes` of JSONL are decoded (see `decodeStoredBlock`).
 */
export function decodeBlockEvents(bytes: Buffer, index: number, maxBytes = Number.POSITIVE_INFINITY): TimedLine[] {
  let text: string;
  try {
    text = decodeStoredBlock(bytes, index, maxBytes).toString('utf8');
  } catch (error) {
    if (isReplayError(error, 'block_too_large') || isReplayError(error, 'block_corrupt')) throw error;
    throw new ReplayError('block_corrupt', `block ${index}: ${(error as Error).message}`, { cause: error });
  }
  const lines: TimedLine[] = [];
  for (const raw of text.split('\n')) {
    if (raw.length === 0) continue;
    try {
      const [windowId, event] = JSON.parse(raw) as [unknown, { timestamp?: unknown; cv?: unknown }];
      if (typeof windowId !== 'string' || typeof event?.timestamp !== 'number')
        throw new Error('not [window_id, event]');
      // Most events are not compressed: their stored line is already the answer.
      const line = event.cv === undefined ? raw : JSON.stringify([windowId, inflatePosthogEvent(event)]);
      lines.push({ timestamp: event.timestamp, line });
    } catch (error) {
      throw new ReplayError('block_corrupt', `block ${index}: a line does not decode: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  return lines;
}

/**
 * The line that stands in for a block that could not be read: which block, its time span, why (`code`), and the
 * code's generic meaning as `detail`. The error's own text (object keys, bucket names, store messages) never goes into
 * the line: `sessionEventLines` hands it to its `onMissing` callback, which logs it.
 */
export function missingBlockLine(block: SessionBlock, error: ReplayError): string {
  return JSON.stringify({
    missing_block: {
      index: block.index,
      first_timestamp: new Date(block.firstTimestamp).toISOString(),
      last_timestamp: new Date(block.lastTimestamp).toISOString(),
      code: error.code,
      detail: clientDetail(error),
    },
  });
}

export interface SessionEventOptions {
  /** The most bytes one block may inflate to (API_MAX_BLOCK_BYTES); past it the block is `block_too_large`. */
  readonly maxBlockBytes?: number;
  /** Told about every block that becomes a `missing_block` line, with the full error (for the log). */
  readonly onMissing?: (block: SessionBlock, error: ReplayError) => void;
}

/**
 * A session's events from `blocks` (ordered by first timestamp) as JSONL lines in event-time order, each event once.
 * Memory stays near one block: after block k, every pending event older than block k+1's first timestamp can be
 * written, since no later block holds anything older. Duplicates (a batch posthog-js sent twice) share a timestamp, so
 * they always meet in the pending set. A block that cannot be read becomes a `missing_block` line in its place.
 * The next block is fetched while the current one is decoded.
 */
export async function* sessionEventLines(
  blocks: readonly SessionBlock[],
  read: (block: SessionBlock) => Promise<Buffer>,
  options: SessionEventOptions = {},
): AsyncGenerator<string> {
  const fetch = (i: number) =>
    blocks[i]
      ? read(blocks[i]).then(
          (bytes) => ({ bytes }),
          (error: unknown) => ({ error }),
        )
      : undefined;
  let next = fetch(0);
  let pending: TimedLine[] = [];
  for (let i = 0; i < blocks.length; i++) {
    const block = blocks[i]!;
    const fetched = (await next)!;
    next = fetch(i + 1);
    try {
      if ('error' in fetched) throw fetched.error;
      pending.push(...decodeBlockEvents(fetched.bytes, block.index, options.maxBlockBytes));
    } catch (error) {
      const known = isReplayError(error)
        ? error
        : new ReplayError('blob_store_unavailable', `block ${block.index}: ${(error as Error).message}`, {
            cause: error,
          });
      options.onMissing?.(block, known);
      yield missingBlockLine(block, known);
    }
    const boundary = blocks[i + 1]?.firstTimestamp ?? Number.POSITIVE_INFINITY;
    pending.sort((a, b) => a.timestamp - b.timestamp);
    const seen = new Set<string>();
    const keep: TimedLine[] = [];
    for (const event of pending) {
      if (event.timestamp >= boundary) keep.push(event);
      else if (!seen.has(event.line)) {
        seen.add(event.line);
        yield event.line;
      }
    }
    // Kept events still need de-duplicating against each other when they are written.
    pending = keep;
  }
}
