import { compressFrameSync, decompressFrameSync } from 'lz4-napi';

/**
 * LZ4 frames (the LZ4 frame format, lz4-napi). Capture compresses each message's JSONL as one frame with a content
 * checksum; a session block in a blob object is several such frames back to back. lz4-napi decodes only the first
 * frame of a buffer and accepts a frame cut short, so this module walks the frame structure itself: it splits
 * concatenated frames and rejects truncated ones.
 */
const FRAME_MAGIC = 0x184d2204;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;

export class Lz4FrameError extends Error {}

export function compressLz4Frame(data: Buffer): Buffer {
  return compressFrameSync(data, { contentChecksum: true });
}

/** Byte ranges `[start, end)` of each data frame in `buf` (skippable frames are skipped). Throws on any damage. */
export function scanLz4Frames(buf: Buffer): [number, number][] {
  const frames: [number, number][] = [];
  let at = 0;
  const need = (bytes: number, what: string) => {
    if (at + bytes > buf.length) throw new Lz4FrameError(`LZ4 data truncated in ${what} at byte ${at}`);
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
    if (magic !== FRAME_MAGIC) throw new Lz4FrameError(`not an LZ4 frame at byte ${start}`);
    need(2, 'frame descriptor');
    const flags = buf[at]!;
    if (flags >> 6 !== 1) throw new Lz4FrameError(`unsupported LZ4 frame version at byte ${start}`);
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

/** Decodes one or more concatenated LZ4 frames into their joined content. Throws `Lz4FrameError` on damage. */
export function decompressLz4Frames(buf: Buffer): Buffer {
  const parts = scanLz4Frames(buf).map(([start, end]) => {
    try {
      return decompressFrameSync(buf.subarray(start, end));
    } catch (error) {
      throw new Lz4FrameError(`corrupt LZ4 frame at byte ${start}: ${(error as Error).message}`);
    }
  });
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}
