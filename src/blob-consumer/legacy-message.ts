import { compressLz4Frame } from '../codec/lz4-frames.ts';
import { ReplayError } from '../errors/index.ts';
import { MAX_DISTINCT_ID_LENGTH, MAX_LIBRARY_LENGTH, MAX_REQUEST_ID_LENGTH } from '../recordings/bounds.ts';
import type { RecordingMessageHeader, RetentionClass } from '../recordings/message-codec.ts';
import { rrwebEventProblem, SESSION_ID_PATTERN } from '../recordings/rrweb.ts';
import { SummaryBuilder } from '../recordings/summary.ts';

/**
 * The parse-based path, for recordings messages without our envelope: the JSON message PostHog's capture writes
 * (`{team_id, distinct_id, data: "<JSON of {event, properties: {$session_id, $window_id, $snapshot_items |
 * $snapshot_data, $snapshot_source, $lib}}>"}`). The consumer does what capture would have done (parse, summarise,
 * re-serialise each event, LZ4-frame), so the message joins the fast path afterwards. It is also the reference
 * "parse-based consumer" the bench compares the fast path with. Anything unusable, including an event that breaks an
 * input bound, makes the whole message poison (`legacy_message_invalid`): it goes to the DLQ as it came.
 */
const invalid = (detail: string) => new ReplayError('legacy_message_invalid', detail);

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
    throw invalid('message is neither an envelope nor JSON');
  }
  if (!isObject(outer)) throw invalid('message JSON is not an object');
  let event: unknown = outer.data;
  if (typeof event === 'string') {
    try {
      event = JSON.parse(event);
    } catch {
      throw invalid('message "data" is not JSON');
    }
  }
  const props = isObject(event) ? event.properties : undefined;
  if (!isObject(props)) throw invalid('message has no event properties');
  const teamId = Number(outer.team_id);
  const sessionId = props.$session_id;
  const windowId = typeof props.$window_id === 'string' ? props.$window_id : '';
  const events = props.$snapshot_items ?? props.$snapshot_data;
  if (!Number.isSafeInteger(teamId) || teamId <= 0) throw invalid('message has no valid team_id');
  if (typeof sessionId !== 'string' || !SESSION_ID_PATTERN.test(sessionId)) {
    throw invalid('message has no valid $session_id');
  }
  if (!Array.isArray(events) || events.length === 0) throw invalid('message has no events');
  const distinctId = typeof outer.distinct_id === 'string' ? outer.distinct_id : '';
  if (distinctId.length > MAX_DISTINCT_ID_LENGTH) throw invalid(`distinct_id is over ${MAX_DISTINCT_ID_LENGTH} chars`);
  if (windowId !== '' && !SESSION_ID_PATTERN.test(windowId)) throw invalid('message has an invalid $window_id');

  const summary = new SummaryBuilder();
  const lines: string[] = [];
  for (const [index, item] of events.entries()) {
    const problem = rrwebEventProblem(item);
    if (problem) throw invalid(`event ${index}: ${problem}`);
    summary.add(item);
    lines.push(`${JSON.stringify([windowId, item])}\n`);
  }
  const jsonl = Buffer.from(lines.join(''), 'utf8');
  const header: RecordingMessageHeader = {
    teamId,
    sessionId,
    distinctId,
    windowIds: [windowId],
    snapshotSource: props.$snapshot_source === 'mobile' ? 'mobile' : 'web',
    snapshotLibrary: typeof props.$lib === 'string' ? props.$lib.slice(0, MAX_LIBRARY_LENGTH) : 'unknown',
    retention: options.retention,
    rawBytes: jsonl.length,
    capturedAt: options.capturedAt,
    requestId: typeof outer.uuid === 'string' ? outer.uuid.slice(0, MAX_REQUEST_ID_LENGTH) : '',
    part: 0,
    parts: 1,
    payloadCodec: 'lz4-frame',
    ...summary.finish(),
  };
  return { header, payload: compressLz4Frame(jsonl) };
}
