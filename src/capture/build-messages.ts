import type { FrameAllocator } from '../codec/lz4-frames.ts';
import { ScratchBuffer } from '../codec/scratch-buffer.ts';
import { ReplayError } from '../errors/index.ts';
import {
  encodeLz4RecordingMessage,
  MAX_HEADER_BYTES,
  type RecordingMessageHeader,
} from '../recordings/message-codec.ts';
import type { RrwebEvent } from '../recordings/rrweb.ts';
import { SummaryBuilder } from '../recordings/summary.ts';
import type { Team } from '../teams/team-store.ts';
import type { SnapshotEvent } from './parse-snapshots.ts';

/** One session's events from one request, ready to be framed. */
export interface SessionSnapshots {
  readonly team: Team;
  readonly sessionId: string;
  readonly distinctId: string;
  readonly snapshotSource: 'web' | 'mobile';
  readonly snapshotLibrary: string;
  /** An event's `raw`, when present, is its compact JSON (no whitespace outside strings), written as is. */
  readonly events: readonly SnapshotEvent[];
}

export interface RecordingRecord {
  readonly key: string;
  readonly value: Buffer;
  readonly headers: Record<string, string>;
  readonly header: RecordingMessageHeader;
}

/**
 * The raw JSONL budget of one message: the limit minus room for the header, shrunk by LZ4's worst-case growth on
 * incompressible input (1/255), so that an encoded message never exceeds `maxMessageBytes`.
 */
export function rawBudget(maxMessageBytes: number): number {
  return Math.floor(((maxMessageBytes - MAX_HEADER_BYTES - 64) * 255) / 256);
}

/** JSONL is assembled in one reused buffer (it lives only until it is compressed). */
const jsonlScratch = new ScratchBuffer(8 << 20);

/**
 * Frames one session's events into recordings-topic messages: JSONL `[window_id, event]` lines, split at event
 * boundaries so every message fits `maxMessageBytes`, each with the summary of its own events in its header.
 * Throws `event_too_large` when a single event cannot fit.
 */
export function buildRecordingMessages(
  session: SessionSnapshots,
  options: {
    readonly maxMessageBytes: number;
    readonly requestId: string;
    readonly capturedAt: number;
    /** Where each message's buffer comes from (default: a fresh one). */
    readonly allocate?: FrameAllocator;
  },
): RecordingRecord[] {
  const budget = rawBudget(options.maxMessageBytes);
  // A line is `[<window id JSON>,<event JSON>]\n`: from the event's own bytes when capture sliced them out of the
  // body, else `JSON.stringify([windowId, event])` (the same bytes for anything posthog-js sends).
  const prefixes = new Map<string, Buffer>();
  const chunks: { lines: (Buffer | number)[]; bytes: number; events: RrwebEvent[]; windows: Set<string> }[] = [];
  let current: (typeof chunks)[number] | undefined;
  const events = session.events;
  for (let index = 0; index < events.length; index++) {
    const { windowId, event, raw } = events[index]!;
    let line: Buffer | number;
    let length: number;
    if (raw !== undefined) {
      let prefix = prefixes.get(windowId);
      if (prefix === undefined) {
        prefix = Buffer.from(`[${JSON.stringify(windowId)},`, 'utf8');
        prefixes.set(windowId, prefix);
      }
      line = index; // assembled from the prefix and `raw` below
      length = prefix.length + raw.length + 2;
    } else {
      line = Buffer.from(`${JSON.stringify([windowId, event])}\n`, 'utf8');
      length = line.length;
    }
    if (length > budget) {
      throw new ReplayError(
        'event_too_large',
        `an event of ${length} bytes exceeds the ${options.maxMessageBytes}-byte message limit`,
      );
    }
    if (!current || current.bytes + length > budget) {
      current = { lines: [], bytes: 0, events: [], windows: new Set() };
      chunks.push(current);
    }
    current.lines.push(line);
    current.bytes += length;
    current.events.push(event);
    current.windows.add(windowId);
  }

  const jsonl = (chunk: (typeof chunks)[number]): Buffer => {
    const out = jsonlScratch.take(chunk.bytes);
    let at = 0;
    for (const line of chunk.lines) {
      if (typeof line !== 'number') {
        out.set(line, at);
        at += line.length;
        continue;
      }
      const { windowId, raw } = events[line]!;
      const prefix = prefixes.get(windowId)!;
      out.set(prefix, at);
      at += prefix.length;
      out.set(raw!, at);
      at += raw!.length;
      out[at++] = 0x5d; // ]
      out[at++] = 0x0a; // \n
    }
    if (at !== out.length) throw new Error(`JSONL of ${at} bytes, ${out.length} expected`);
    return out;
  };

  return chunks.map((chunk, part) => {
    const summary = new SummaryBuilder();
    for (const event of chunk.events) summary.add(event);
    const header: RecordingMessageHeader = {
      teamId: session.team.id,
      sessionId: session.sessionId,
      distinctId: session.distinctId,
      windowIds: [...chunk.windows],
      snapshotSource: session.snapshotSource,
      snapshotLibrary: session.snapshotLibrary,
      retention: session.team.retention,
      rawBytes: chunk.bytes,
      capturedAt: options.capturedAt,
      requestId: options.requestId,
      part,
      parts: chunks.length,
      payloadCodec: 'lz4-frame',
      ...summary.finish(),
    };
    const value = encodeLz4RecordingMessage(header, jsonl(chunk), options.allocate);
    return {
      key: session.sessionId,
      value,
      header,
      headers: {
        team_id: String(session.team.id),
        session_id: session.sessionId,
        'content-encoding': 'lz4-frame',
        format: 'replay-message/2',
        captured_at: String(options.capturedAt),
      },
    };
  });
}
