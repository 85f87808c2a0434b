import { compressLz4Frame } from '../codec/lz4-frames.ts';
import type { RecordingMessageHeader, RetentionClass } from '../recordings/message-codec.ts';
import { isRrwebEvent, SESSION_ID_PATTERN } from '../recordings/rrweb.ts';
import { SummaryBuilder } from '../recordings/summary.ts';

/**
 * The parse-based path, for recordings messages without our envelope: the JSON message PostHog's capture writes
 * (`{team_id, distinct_id, data: "<JSON of {event, properties: {$session_id, $window_id, $snapshot_items |
 * $snapshot_data, $snapshot_source, $lib}}>"}`). The consumer does what capture would have done (parse, summarise,
 * re-serialise each event, LZ4-frame), so the message joins the fast path afterwards. It is also the reference
 * "parse-based consumer" the bench compares the fast path with.
 */
export class LegacyMessageError extends Error {
  readonly code = 'legacy_message_invalid';
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export function frameLegacyMessage(
  value: Buffer,
  options: { readonly retention: RetentionClass; readonly capturedAt: number },
): { header: RecordingMessageHeader; payload: Buffer } {
  let outer: unknown;
  try {
    outer = JSON.parse(value.toString('utf8'));
  } catch {
    throw new LegacyMessageError('message is neither an envelope nor JSON');
  }
  if (!isObject(outer)) throw new LegacyMessageError('message JSON is not an object');
  let event: unknown = outer.data;
  if (typeof event === 'string') {
    try {
      event = JSON.parse(event);
    } catch {
      throw new LegacyMessageError('message "data" is not JSON');
    }
  }
  const props = isObject(event) ? event.properties : undefined;
  if (!isObject(props)) throw new LegacyMessageError('message has no event properties');
  const teamId = Number(outer.team_id);
  const sessionId = props.$session_id;
  const windowId = typeof props.$window_id === 'string' ? props.$window_id : '';
  const events = props.$snapshot_items ?? props.$snapshot_data;
  if (!Number.isSafeInteger(teamId) || teamId <= 0) throw new LegacyMessageError('message has no valid team_id');
  if (typeof sessionId !== 'string' || !SESSION_ID_PATTERN.test(sessionId)) {
    throw new LegacyMessageError('message has no valid $session_id');
  }
  if (!Array.isArray(events) || events.length === 0) throw new LegacyMessageError('message has no events');

  const summary = new SummaryBuilder();
  const lines: string[] = [];
  for (const item of events) {
    if (!isRrwebEvent(item)) throw new LegacyMessageError('message holds an invalid rrweb event');
    summary.add(item);
    lines.push(`${JSON.stringify([windowId, item])}\n`);
  }
  const jsonl = Buffer.from(lines.join(''), 'utf8');
  const header: RecordingMessageHeader = {
    teamId,
    sessionId,
    distinctId: typeof outer.distinct_id === 'string' ? outer.distinct_id : '',
    windowIds: [windowId],
    snapshotSource: props.$snapshot_source === 'mobile' ? 'mobile' : 'web',
    snapshotLibrary: typeof props.$lib === 'string' ? props.$lib : 'unknown',
    retention: options.retention,
    rawBytes: jsonl.length,
    capturedAt: options.capturedAt,
    requestId: typeof outer.uuid === 'string' ? outer.uuid : '',
    part: 0,
    parts: 1,
    payloadCodec: 'lz4-frame',
    ...summary.finish(),
  };
  return { header, payload: compressLz4Frame(jsonl) };
}
