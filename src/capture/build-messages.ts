import { compressLz4Frame } from '../codec/lz4-frames.ts';
import { ReplayError } from '../errors/index.ts';
import { encodeRecordingMessage, MAX_HEADER_BYTES, type RecordingMessageHeader } from '../recordings/message-codec.ts';
import type { RrwebEvent } from '../recordings/rrweb.ts';
import { SummaryBuilder } from '../recordings/summary.ts';
import type { Team } from '../teams/team-store.ts';

/** One session's events from one request, ready to be framed. */
export interface SessionSnapshots {
  readonly team: Team;
  readonly sessionId: string;
  readonly distinctId: string;
  readonly snapshotSource: 'web' | 'mobile';
  readonly snapshotLibrary: string;
  readonly events: readonly { readonly windowId: string; readonly event: RrwebEvent }[];
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

/**
 * Frames one session's events into recordings-topic messages: JSONL `[window_id, event]` lines, split at event
 * boundaries so every message fits `maxMessageBytes`, each with the summary of its own events in its header.
 * Throws `event_too_large` when a single event cannot fit.
 */
export function buildRecordingMessages(
  session: SessionSnapshots,
  options: { readonly maxMessageBytes: number; readonly requestId: string; readonly capturedAt: number },
): RecordingRecord[] {
  const budget = rawBudget(options.maxMessageBytes);
  const chunks: { lines: Buffer[]; bytes: number; events: RrwebEvent[]; windows: Set<string> }[] = [];
  let current: (typeof chunks)[number] | undefined;
  for (const { windowId, event } of session.events) {
    const line = Buffer.from(`${JSON.stringify([windowId, event])}\n`, 'utf8');
    if (line.length > budget) {
      throw new ReplayError(
        'event_too_large',
        `an event of ${line.length} bytes exceeds the ${options.maxMessageBytes}-byte message limit`,
      );
    }
    if (!current || current.bytes + line.length > budget) {
      current = { lines: [], bytes: 0, events: [], windows: new Set() };
      chunks.push(current);
    }
    current.lines.push(line);
    current.bytes += line.length;
    current.events.push(event);
    current.windows.add(windowId);
  }

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
    const value = encodeRecordingMessage(header, compressLz4Frame(Buffer.concat(chunk.lines, chunk.bytes)));
    return {
      key: session.sessionId,
      value,
      header,
      headers: {
        team_id: String(session.team.id),
        session_id: session.sessionId,
        'content-encoding': 'lz4-frame',
        format: 'replay-message/1',
        captured_at: String(options.capturedAt),
      },
    };
  });
}
