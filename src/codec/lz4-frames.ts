import { createRequire } from 'node:module';
import { decompressFrameSync } from 'lz4-napi';
import { ReplayError } from '../errors/index.ts';
import { ScratchBuffer } from './scratch-buffer.ts';

/**
 * LZ4 frames (the LZ4 frame format). Capture compresses each message's JSONL as one frame with a content checksum; a
 * session block in a blob object is several such frames back to back. lz4-napi decodes only the first frame of a
 * buffer and accepts a frame cut short, so this module walks the frame structure itself: it splits concatenated
 * frames and rejects truncated ones.
 *
 * Frames are written here around the reference C library's block compressor and XXH32 (the `lz4` package's
 * `LZ4_compress_default`, `XXH32`), which compresses rrweb JSON about 3.5 times faster than lz4-napi's frame encoder (Rust
 * lz4_flex): that encoder was the largest cost of capture once `JSON.parse` was gone. They are read with lz4-napi.
 */
const FRAME_MAGIC = 0x184d2204;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;

interface Lz4Library {
  /** Compresses `input` into `output[start, end)`; answers the compressed size, or 0 when it does not fit. */
  encodeBlock(input: Buffer, output: Buffer, start: number, end: number): number;
  /** The reference XXH32 with seed 0 (the frame format's checksum), as a signed 32-bit integer. */
  utils: { blockChecksum(data: Buffer): number };
}
const { encodeBlock, utils } = createRequire(import.meta.url)('lz4') as Lz4Library;

/** XXH32 with seed 0, unsigned. */
export const xxhash32 = (data: Buffer): number => utils.blockChecksum(data) >>> 0;

/** Version 01, independent blocks, a content checksum; no block checksums, content size or dictionary. */
const FRAME_FLAGS = 0b0110_0100;
/** 4 MiB blocks, as lz4-napi writes them (smaller ones compress rrweb JSON ~8 % worse). */
const BLOCK_SIZE_CODE = 7;
const BLOCK_BYTES = 4 << 20;
const FRAME_DESCRIPTOR = Buffer.from([FRAME_FLAGS, BLOCK_SIZE_CODE << 4]);
const HEADER_CHECKSUM = (xxhash32(FRAME_DESCRIPTOR) >>> 8) & 0xff;
const STORED_BLOCK = 0x80000000;

/** Where a frame is written before it is copied out at its exact size. */
const frameScratch = new ScratchBuffer(8 << 20);

/** `data` as one LZ4 frame (4 MiB independent blocks, a content checksum). */
export function compressLz4Frame(data: Buffer): Buffer {
  return compressLz4FrameAfter(data, 0);
}

/** Where a frame's final buffer comes from: `bytes` long exactly. */
export type FrameAllocator = (bytes: number) => Buffer;

/**
 * `data` as one LZ4 frame that starts `headroom` bytes into the returned buffer: the first bytes are left for the
 * caller (a message envelope), so the frame is copied out of the scratch buffer once, into its final place, a buffer
 * from `allocate` (capture lends pooled ones).
 */
export function compressLz4FrameAfter(
  data: Buffer,
  headroom: number,
  allocate: FrameAllocator = Buffer.allocUnsafe,
): Buffer {
  const blocks = Math.ceil(data.length / BLOCK_BYTES);
  // A block is stored as is when compressing does not shrink it, so no frame is larger than this.
  const worst = 7 + blocks * 4 + data.length + 8;
  const out = frameScratch.take(worst);
  out.writeUInt32LE(FRAME_MAGIC, 0);
  out[4] = FRAME_FLAGS;
  out[5] = BLOCK_SIZE_CODE << 4;
  out[6] = HEADER_CHECKSUM;
  let at = 7;
  for (let from = 0; from < data.length; from += BLOCK_BYTES) {
    const block = data.subarray(from, Math.min(data.length, from + BLOCK_BYTES));
    // Room for one byte less than the block: a compressed block must be smaller than the block itself.
    const size = encodeBlock(block, out, at + 4, at + 4 + block.length - 1);
    if (size > 0) {
      out.writeUInt32LE(size, at);
      at += 4 + size;
    } else {
      out.writeUInt32LE((STORED_BLOCK | block.length) >>> 0, at);
      block.copy(out, at + 4);
      at += 4 + block.length;
    }
  }
  out.writeUInt32LE(0, at); // end mark
  out.writeUInt32LE(xxhash32(data), at + 4);
  at += 8;
  const frame = allocate(headroom + at);
  out.copy(frame, headroom, 0, at);
  return frame;
}

/** Byte ranges `[start, end)` of each data frame in `buf` (skippable frames are skipped). Throws on any damage. */
export function scanLz4Frames(buf: Buffer): [number, number][] {
  const frames: [number, number][] = [];
  let at = 0;
  const need = (bytes: number, what: string) => {
    if (at + bytes > buf.length)
      throw new ReplayError('payload_corrupt', `LZ4 data truncated in ${what} at byte ${at}`);
  };
  while (at < buf.length) {
    const start = at;
    need(4, 'magic number');
    const magic = buf.readUInt32LE(at);
    at += 4;
    if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
      need(4, 'skippable frame size');
      const size = buf.readUInt32LE(at);
      at += 4;
      need(size, 'skippable frame');
      at += size;
      continue;
    }
    if (magic !== FRAME_MAGIC) throw new ReplayError('payload_corrupt', `not an LZ4 frame at byte ${start}`);
    need(2, 'frame descriptor');
    const flags = buf[at]!;
    if (flags >> 6 !== 1) throw new ReplayError('payload_corrupt', `unsupported LZ4 frame version at byte ${start}`);
    const blockChecksum = (flags & 0x10) !== 0;
    const contentSize = (flags & 0x08) !== 0;
    const contentChecksum = (flags & 0x04) !== 0;
    const dictId = (flags & 0x01) !== 0;
    at += 2 + (contentSize ? 8 : 0) + (dictId ? 4 : 0) + 1; // FLG, BD, optional fields, header checksum
    need(0, 'frame descriptor');
    for (;;) {
      need(4, 'block size');
      const size = buf.readUInt32LE(at) & 0x7fffffff;
      at += 4;
      if (size === 0) break; // end mark
      need(size + (blockChecksum ? 4 : 0), 'block');
      at += size + (blockChecksum ? 4 : 0);
    }
    if (contentChecksum) {
      need(4, 'content checksum');
      at += 4;
    }
    frames.push([start, at]);
  }
  return frames;
}

/** Decodes one or more concatenated LZ4 frames into their joined content. Throws `payload_corrupt` on damage. */
export function decompressLz4Frames(buf: Buffer): Buffer {
  const parts = scanLz4Frames(buf).map(([start, end]) => {
    try {
      return decompressFrameSync(buf.subarray(start, end));
    } catch (error) {
      throw new ReplayError('payload_corrupt', `corrupt LZ4 frame at byte ${start}: ${(error as Error).message}`);
    }
  });
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/** Largest output of one LZ4 frame block, by the frame descriptor's block-maximum-size id (BD bits 4-6). */
const BLOCK_MAX_BYTES: Record<number, number> = { 4: 64 << 10, 5: 256 << 10, 6: 1 << 20, 7: 4 << 20 };

/**
 * Like `decompressLz4Frames`, but never decodes more than `maxBytes`: returns `undefined` when the content would
 * inflate past it (a decompression bomb, or a block larger than the reader accepts). The limit holds while decoding,
 * not after it: before a frame is decoded its output is bounded from its structure (each block yields at most the
 * frame's block maximum; near the limit, the exact output is counted from the block's LZ4 sequences without decoding
 * them), and a frame that would cross the limit is never decoded. A content size in the frame header is only used to
 * refuse early, never trusted as a bound. Damage throws as in `decompressLz4Frames`.
 */
export function decompressLz4FramesWithin(buf: Buffer, maxBytes: number): Buffer | undefined {
  const parts: Buffer[] = [];
  let total = 0;
  for (const [start, end] of scanLz4Frames(buf)) {
    const remaining = maxBytes - total;
    if (frameOutputBound(buf, start, end, remaining) > remaining) return undefined;
    let part: Buffer;
    try {
      part = decompressFrameSync(buf.subarray(start, end));
    } catch (error) {
      throw new ReplayError('payload_corrupt', `corrupt LZ4 frame at byte ${start}: ${(error as Error).message}`);
    }
    total += part.length;
    if (total > maxBytes) return undefined; // cannot happen when the bound holds; never hand out more than allowed
    parts.push(part);
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, total);
}

/**
 * An upper bound of what the data frame at `[start, end)` (already checked by `scanLz4Frames`) decodes to; when the
 * quick bound (blocks × block maximum) passes `limit`, the exact size from the sequences (which may still pass it).
 */
function frameOutputBound(buf: Buffer, start: number, end: number, limit: number): number {
  const flags = buf[start + 4]!;
  const blockMax = BLOCK_MAX_BYTES[(buf[start + 5]! >> 4) & 0x7] ?? BLOCK_MAX_BYTES[7]!;
  const blockChecksum = (flags & 0x10) !== 0;
  const hasContentSize = (flags & 0x08) !== 0;
  if (hasContentSize) {
    const declared = Number(buf.readBigUInt64LE(start + 6));
    if (declared > limit) return declared;
  }
  let at = start + 4 + 2 + (hasContentSize ? 8 : 0) + ((flags & 0x01) !== 0 ? 4 : 0) + 1;
  const blocks: [number, number, boolean][] = [];
  let quick = 0;
  while (at + 4 <= end) {
    const word = buf.readUInt32LE(at);
    at += 4;
    const size = word & 0x7fffffff;
    if (size === 0) break;
    const stored = (word & 0x80000000) !== 0; // an uncompressed block: its bytes are its output
    blocks.push([at, at + size, stored]);
    quick += stored ? size : blockMax;
    at += size + (blockChecksum ? 4 : 0);
  }
  if (quick <= limit) return quick;
  let exact = 0;
  for (const [from, to, stored] of blocks) {
    exact += stored ? to - from : Math.min(blockMax, lz4BlockOutputSize(buf, from, to, blockMax));
    if (exact > limit) return exact;
  }
  return exact;
}

/**
 * The bytes an LZ4 block at `[from, to)` decodes to, counted from its sequences (token, literal length, literals,
 * offset, match length) without decoding; stops counting past `stopAt`. Damage is left to the decoder to report.
 */
export function lz4BlockOutputSize(buf: Buffer, from: number, to: number, stopAt = Number.POSITIVE_INFINITY): number {
  let at = from;
  let out = 0;
  while (at < to && out <= stopAt) {
    const token = buf[at++]!;
    let literals = token >> 4;
    if (literals === 15) {
      let more: number;
      do {
        more = buf[at++] ?? 0;
        literals += more;
      } while (more === 255 && at < to);
    }
    at += literals;
    out += literals;
    if (at >= to) break; // the last sequence holds literals only
    at += 2; // match offset
    let match = token & 0x0f;
    if (match === 15) {
      let more: number;
      do {
        more = buf[at++] ?? 0;
        match += more;
      } while (more === 255 && at < to);
    }
    out += match + 4;
  }
  return out;
}
