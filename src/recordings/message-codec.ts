import { crc32 } from 'node:zlib';
import { compressLz4FrameAfter, type FrameAllocator } from '../codec/lz4-frames.ts';
import { ReplayError } from '../errors/index.ts';
import type { ActiveInterval } from './activity.ts';
import {
  isCount,
  isTimestamp,
  MAX_DISTINCT_ID_LENGTH,
  MAX_LIBRARY_LENGTH,
  MAX_REQUEST_ID_LENGTH,
  MAX_WINDOWS_PER_SESSION,
} from './bounds.ts';
import { SESSION_ID_PATTERN } from './rrweb.ts';
import { type EventsSummary, MAX_URL_LENGTH, MAX_URLS_PER_SUMMARY } from './summary.ts';

/**
 * The recordings-topic message (DESIGN §3.2), capture → consumer:
 *
 *   offset 0   "RPLM"                 magic
 *          4   u8  version            = 2 (1 is read too: it has no payload CRC)
 *          5   u8  flags              = 0 (reserved)
 *          6   u32 header length (BE) = n
 *         10   n bytes                header, UTF-8 JSON (`RecordingMessageHeader`)
 *       10+n   u32 CRC-32 of the header bytes (BE)
 *       14+n   u32 CRC-32 of the payload bytes (BE)            version 2 only
 *       18+n   payload                one LZ4 frame (content checksum on) of JSONL lines `[window_id, event]\n`
 *
 * The consumer reads the header without decoding the payload, and appends the payload frame as is to the session's
 * block: concatenated frames decode as one JSONL stream. The payload CRC (native, over the compressed bytes: a few
 * hundredths of a nanosecond per raw byte) is what lets it refuse a damaged frame on arrival, alone, instead of
 * storing it into a block that then cannot be decoded, losing the good messages beside it. Version 2 messages need
 * a consumer that reads them: upgrade consumers before capture.
 */
export const MESSAGE_MAGIC = Buffer.from('RPLM', 'latin1');
export const MESSAGE_VERSION = 2;
const READABLE_VERSIONS = [1, 2];
const PREFIX_BYTES = 10;
const CRC_BYTES = 4;
/** A header is metadata only; anything bigger is damage or abuse. */
export const MAX_HEADER_BYTES = 256 * 1024;

export type RetentionClass = '30d' | '90d' | '1y' | '5y';
export const retentionClasses: readonly RetentionClass[] = ['30d', '90d', '1y', '5y'];

export interface RecordingMessageHeader extends EventsSummary {
  readonly teamId: number;
  readonly sessionId: string;
  readonly distinctId: string;
  /** Distinct window ids of the events in this message. */
  readonly windowIds: string[];
  readonly snapshotSource: 'web' | 'mobile';
  readonly snapshotLibrary: string;
  readonly retention: RetentionClass;
  /** Bytes of the uncompressed JSONL payload. */
  readonly rawBytes: number;
  /** When capture accepted the request (ms since epoch). */
  readonly capturedAt: number;
  /** One id per capture request; `part` of `parts` when the request was split to fit the message limit. */
  readonly requestId: string;
  readonly part: number;
  readonly parts: number;
  readonly payloadCodec: 'lz4-frame';
}

export interface DecodedRecordingMessage {
  readonly header: RecordingMessageHeader;
  /** The LZ4 frame, a view into the input buffer (no copy). */
  readonly payload: Buffer;
  /** The payload's CRC-32 (checked), from version 2 on. */
  readonly payloadCrc32?: number;
}

export function encodeRecordingMessage(header: RecordingMessageHeader, payload: Buffer): Buffer {
  const json = headerBytes(header);
  const out = Buffer.allocUnsafe(envelopeBytes(json) + payload.length);
  payload.copy(out, envelopeBytes(json));
  return writeEnvelope(out, json);
}

/**
 * The message of `header` whose payload is `jsonl` as an LZ4 frame, compressed straight behind the envelope (the
 * same bytes as `encodeRecordingMessage(header, compressLz4Frame(jsonl))`, one payload-sized copy fewer), in a
 * buffer from `allocate`.
 */
export function encodeLz4RecordingMessage(
  header: RecordingMessageHeader,
  jsonl: Buffer,
  allocate?: FrameAllocator,
): Buffer {
  const json = headerBytes(header);
  return writeEnvelope(compressLz4FrameAfter(jsonl, envelopeBytes(json), allocate), json);
}

function headerBytes(header: RecordingMessageHeader): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  if (json.length > MAX_HEADER_BYTES) throw new RangeError(`message header of ${json.length} bytes is too large`);
  return json;
}

/** Bytes before the payload: prefix, header JSON, header CRC, payload CRC. */
const envelopeBytes = (json: Buffer) => PREFIX_BYTES + json.length + 2 * CRC_BYTES;

/** Writes the envelope of `json` into the start of `out`, whose payload already follows it. */
function writeEnvelope(out: Buffer, json: Buffer): Buffer {
  const payloadStart = envelopeBytes(json);
  MESSAGE_MAGIC.copy(out, 0);
  out[4] = MESSAGE_VERSION;
  out[5] = 0;
  out.writeUInt32BE(json.length, 6);
  json.copy(out, PREFIX_BYTES);
  out.writeUInt32BE(crc32(json), PREFIX_BYTES + json.length);
  out.writeUInt32BE(crc32(out.subarray(payloadStart)), PREFIX_BYTES + json.length + CRC_BYTES);
  return out;
}

/** True when the bytes start like a recordings message (used to route legacy, envelope-less messages). */
export function hasMessageMagic(bytes: Buffer): boolean {
  return bytes.length >= 4 && bytes.compare(MESSAGE_MAGIC, 0, 4, 0, 4) === 0;
}

export function decodeRecordingMessage(bytes: Buffer): DecodedRecordingMessage {
  if (bytes.length < PREFIX_BYTES) throw new ReplayError('message_truncated', `only ${bytes.length} bytes`);
  if (!hasMessageMagic(bytes)) throw new ReplayError('message_bad_magic', 'does not start with "RPLM"');
  const version = bytes[4]!;
  if (!READABLE_VERSIONS.includes(version)) {
    throw new ReplayError(
      'message_unsupported_version',
      `version ${version}, this build reads ${READABLE_VERSIONS.join(' and ')}`,
    );
  }
  const headerLength = bytes.readUInt32BE(6);
  if (headerLength > MAX_HEADER_BYTES) {
    throw new ReplayError('message_header_corrupt', `header length ${headerLength} exceeds ${MAX_HEADER_BYTES}`);
  }
  const payloadStart = PREFIX_BYTES + headerLength + (version === 1 ? CRC_BYTES : 2 * CRC_BYTES);
  if (bytes.length < payloadStart) {
    throw new ReplayError('message_truncated', `header needs ${payloadStart} bytes, got ${bytes.length}`);
  }
  const json = bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + headerLength);
  if (crc32(json) !== bytes.readUInt32BE(PREFIX_BYTES + headerLength)) {
    throw new ReplayError('message_header_corrupt', 'header checksum mismatch');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(json.toString('utf8'));
  } catch {
    throw new ReplayError('message_header_corrupt', 'header is not JSON');
  }
  const problem = headerProblem(parsed);
  if (problem) throw new ReplayError('message_header_invalid', problem);
  if (bytes.length === payloadStart) throw new ReplayError('message_truncated', 'no payload');
  const payload = bytes.subarray(payloadStart);
  const header = parsed as RecordingMessageHeader;
  if (version === 1) return { header, payload };
  const payloadCrc32 = bytes.readUInt32BE(payloadStart - CRC_BYTES);
  if (crc32(payload) !== payloadCrc32) throw new ReplayError('payload_corrupt', 'payload checksum mismatch');
  return { header, payload, payloadCrc32 };
}

const isTime = isTimestamp;
const textUpTo = (max: number) => (v: unknown) => typeof v === 'string' && v.length <= max;
const isWindowId = (v: unknown) => v === '' || (typeof v === 'string' && SESSION_ID_PATTERN.test(v));
const isInterval = (v: unknown) => Array.isArray(v) && v.length === 2 && isTime(v[0]) && isTime(v[1]) && v[0] <= v[1];

/**
 * Every header field and its bound (DESIGN §3.5.1): the same bounds capture enforces, checked again because a
 * message may come from an older producer or another client. A field out of bounds makes the message poison
 * (`message_header_invalid`), never a failure later in a date conversion or a ClickHouse insert.
 */
const headerChecks: Record<keyof RecordingMessageHeader, (v: unknown) => boolean> = {
  teamId: (v) => isCount(v) && (v as number) > 0,
  sessionId: (v) => typeof v === 'string' && SESSION_ID_PATTERN.test(v),
  distinctId: textUpTo(MAX_DISTINCT_ID_LENGTH),
  windowIds: (v) => Array.isArray(v) && v.length <= MAX_WINDOWS_PER_SESSION && v.every(isWindowId),
  snapshotSource: (v) => v === 'web' || v === 'mobile',
  snapshotLibrary: textUpTo(MAX_LIBRARY_LENGTH),
  retention: (v) => retentionClasses.includes(v as RetentionClass),
  rawBytes: isCount,
  capturedAt: isTime,
  requestId: textUpTo(MAX_REQUEST_ID_LENGTH),
  part: isCount,
  parts: (v) => isCount(v) && (v as number) > 0,
  payloadCodec: (v) => v === 'lz4-frame',
  firstTimestamp: isTime,
  lastTimestamp: isTime,
  eventCount: (v) => isCount(v) && (v as number) > 0,
  clickCount: isCount,
  keypressCount: isCount,
  mouseActivityCount: isCount,
  consoleLogCount: isCount,
  consoleWarnCount: isCount,
  consoleErrorCount: isCount,
  firstUrl: (v) => v === null || textUpTo(MAX_URL_LENGTH)(v),
  firstUrlTimestamp: (v) => v === null || isTime(v),
  urls: (v) => Array.isArray(v) && v.length <= MAX_URLS_PER_SUMMARY && v.every(textUpTo(MAX_URL_LENGTH)),
  activeIntervals: (v) => Array.isArray(v) && (v as ActiveInterval[]).every(isInterval),
};

function headerProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'header is not an object';
  const header = value as Record<string, unknown>;
  for (const [key, check] of Object.entries(headerChecks)) {
    if (!check(header[key])) return `header field ${key} is missing or invalid`;
  }
  if ((header.firstTimestamp as number) > (header.lastTimestamp as number)) return 'firstTimestamp > lastTimestamp';
  if ((header.part as number) >= (header.parts as number)) return 'part is not below parts';
  return undefined;
}
