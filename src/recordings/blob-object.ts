import { constants, crc32, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { decompressLz4Frames } from '../codec/lz4-frames.ts';
import { ReplayError } from '../errors/index.ts';
import type { ActiveInterval } from './activity.ts';
import type { RetentionClass } from './message-codec.ts';

/**
 * A flushed blob object (DESIGN §3.3): session blocks back to back, then a footer index, then a fixed trailer.
 *
 *   [block 0][block 1]...[block n-1][footer: UTF-8 JSON][u32 footer length BE][u32 CRC-32 of footer BE]["RPLOBJ01"]
 *
 * Each block is one session's events as JSONL `[window_id, event]` lines, compressed as `codec` says: `lz4-frame`
 * (the frames capture made, concatenated untouched: the fast path) or `zstd` (one zstd frame: the space-saving
 * option). The footer lists every block with its byte range and summary, so the ClickHouse rows can be rebuilt from the
 * object alone (`reindex`).
 */
export const OBJECT_MAGIC = Buffer.from('RPLOBJ01', 'latin1');
export const TRAILER_BYTES = 16;
export const OBJECT_FORMAT_VERSION = 1;

export type BlockCodec = 'lz4-frame' | 'zstd';

export interface KafkaRange {
  readonly topic: string;
  readonly partition: number;
  readonly firstOffset: number;
  readonly lastOffset: number;
}

/** One session's block: where it is and what it holds (the summary row, before it meets the object's address). */
export interface BlockEntry {
  readonly teamId: number;
  readonly sessionId: string;
  readonly distinctId: string;
  /** First and last byte of the block in the object, inclusive (an HTTP range). */
  readonly start: number;
  readonly end: number;
  readonly codec: BlockCodec;
  readonly snapshotSource: 'web' | 'mobile';
  readonly snapshotLibrary: string;
  readonly windowIds: readonly string[];
  readonly firstTimestamp: number;
  readonly lastTimestamp: number;
  readonly eventCount: number;
  readonly messageCount: number;
  /** Uncompressed JSONL bytes. */
  readonly rawBytes: number;
  readonly clickCount: number;
  readonly keypressCount: number;
  readonly mouseActivityCount: number;
  readonly consoleLogCount: number;
  readonly consoleWarnCount: number;
  readonly consoleErrorCount: number;
  /** This block's share of the session's active time (see `SessionActivity`): block shares add up exactly. */
  readonly activeMilliseconds: number;
  /** The activity intervals of this block's own events. */
  readonly activeIntervals: readonly ActiveInterval[];
  readonly firstUrl: string | null;
  readonly firstUrlTimestamp: number | null;
  readonly urls: readonly string[];
  /** Source messages, per partition, for deduplication and audit. */
  readonly kafka: readonly KafkaRange[];
  /** The session was deleted: the block's bytes are zeros and this entry keeps nothing it held (DESIGN §3.9). */
  readonly deleted?: true;
}

export interface ObjectFooter {
  readonly version: number;
  readonly createdAt: number;
  readonly retention: RetentionClass;
  /** Who wrote it (consumer group and instance), for audit. */
  readonly writer: string;
  readonly blocks: readonly BlockEntry[];
}

/** The trailer and footer bytes that close an object whose blocks end at `blocksEnd`. */
export function encodeFooter(footer: ObjectFooter): Buffer {
  const json = Buffer.from(JSON.stringify(footer), 'utf8');
  const trailer = Buffer.alloc(TRAILER_BYTES);
  trailer.writeUInt32BE(json.length, 0);
  trailer.writeUInt32BE(crc32(json), 4);
  OBJECT_MAGIC.copy(trailer, 8);
  return Buffer.concat([json, trailer]);
}

/** Reads the trailer (the last 16 bytes of an object): where the footer starts and how long it is. */
export function decodeTrailer(
  trailer: Buffer,
  objectSize: number,
): { footerStart: number; footerLength: number; crc: number } {
  if (trailer.length !== TRAILER_BYTES || trailer.compare(OBJECT_MAGIC, 0, 8, 8, 16) !== 0) {
    throw new ReplayError('object_corrupt', 'not a replay blob object (trailer magic missing)');
  }
  const footerLength = trailer.readUInt32BE(0);
  const footerStart = objectSize - TRAILER_BYTES - footerLength;
  if (footerStart < 0) throw new ReplayError('object_corrupt', `footer length ${footerLength} exceeds the object`);
  return { footerStart, footerLength, crc: trailer.readUInt32BE(4) };
}

export function decodeFooter(bytes: Buffer, expectedCrc: number): ObjectFooter {
  if (crc32(bytes) !== expectedCrc) throw new ReplayError('object_corrupt', 'footer checksum mismatch');
  let footer: ObjectFooter;
  try {
    footer = JSON.parse(bytes.toString('utf8')) as ObjectFooter;
  } catch {
    throw new ReplayError('object_corrupt', 'footer is not JSON');
  }
  if (footer.version !== OBJECT_FORMAT_VERSION) {
    throw new ReplayError(
      'object_corrupt',
      `object format version ${footer.version}, this build reads ${OBJECT_FORMAT_VERSION}`,
    );
  }
  return footer;
}

/** Parses a whole object held in memory (tests, tools); services read footers with range requests instead. */
export function decodeObject(object: Buffer): ObjectFooter {
  const trailer = decodeTrailer(object.subarray(object.length - TRAILER_BYTES), object.length);
  return decodeFooter(object.subarray(trailer.footerStart, trailer.footerStart + trailer.footerLength), trailer.crc);
}

/** Recompresses a block's JSONL for the `zstd` codec (level 3, with zstd's content checksum so damage is caught). */
export function zstdBlock(jsonl: Buffer): Buffer {
  return zstdCompressSync(jsonl, {
    params: { [constants.ZSTD_c_compressionLevel]: 3, [constants.ZSTD_c_checksumFlag]: 1 },
  });
}

/** A block's bytes (as stored) → its JSONL. Throws on damage. */
export function decodeBlock(bytes: Buffer, codec: BlockCodec): Buffer {
  if (codec === 'lz4-frame') return decompressLz4Frames(bytes);
  if (codec === 'zstd') {
    try {
      return zstdDecompressSync(bytes);
    } catch (error) {
      throw new ReplayError('block_corrupt', `corrupt zstd block: ${(error as Error).message}`);
    }
  }
  throw new ReplayError('block_corrupt', `unknown block codec ${codec as string}`);
}

const LZ4_FRAME_MAGIC = 0x184d2204;
const ZSTD_FRAME_MAGIC = 0xfd2fb528;

/** A stored block's codec, from its first frame's magic number (summary rows keep the address, not the codec). */
export function blockCodecOf(bytes: Buffer): BlockCodec {
  const magic = bytes.length >= 4 ? bytes.readUInt32LE(0) : 0;
  if (magic === LZ4_FRAME_MAGIC) return 'lz4-frame';
  if (magic === ZSTD_FRAME_MAGIC) return 'zstd';
  throw new ReplayError('block_corrupt', 'block starts with neither an LZ4 nor a zstd frame');
}
