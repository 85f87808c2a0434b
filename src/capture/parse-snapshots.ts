import { ReplayError } from '../errors/index.ts';
import { isRrwebEvent, type RrwebEvent, SESSION_ID_PATTERN } from '../recordings/rrweb.ts';
import { type EventSlices, locateSnapshotEvents, NOT_COMPACT } from './event-slices.ts';

export interface SnapshotEvent {
  readonly windowId: string;
  readonly event: RrwebEvent;
  /**
   * The event's own bytes in the request body (a view, compact JSON that parses to exactly `event`), when they could
   * be located: its JSONL line is built from them instead of re-serialising `event`.
   */
  readonly raw?: Buffer | undefined;
}

export interface ParsedSession {
  readonly sessionId: string;
  readonly distinctId: string;
  readonly snapshotSource: 'web' | 'mobile';
  readonly snapshotLibrary: string;
  readonly events: SnapshotEvent[];
}

export interface SnapshotRequest {
  /** The project token, or undefined when the request carries none. */
  readonly token: string | undefined;
  readonly sessions: ParsedSession[];
  readonly eventCount: number;
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function idString(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

/**
 * Reads a posthog-js `/s/` body: a JSON array (or one object) of `$snapshot` events whose `properties` carry
 * `$snapshot_data` (rrweb events), `$session_id`, `$window_id`, `token`, `distinct_id`, `$lib` and, from mobile SDKs,
 * `$snapshot_source`. Other events in the batch are ignored. Events are grouped by session, in arrival order.
 */
export function parseSnapshotRequest(json: Buffer): SnapshotRequest {
  let body: unknown;
  try {
    body = JSON.parse(json.toString('utf8'));
  } catch (error) {
    throw new ReplayError('invalid_json', `body is not valid JSON: ${(error as Error).message}`);
  }
  let slices: EventSlices;
  try {
    slices = locateSnapshotEvents(json);
  } catch {
    slices = undefined; // cannot happen on a body JSON.parse accepted; the events are then re-serialised
  }
  const items = Array.isArray(body) ? body : [body];
  const topLevelToken = isObject(body) ? (idString(body.api_key) ?? idString(body.token)) : undefined;
  let token = topLevelToken;
  const sessions = new Map<string, ParsedSession>();
  let eventCount = 0;
  let snapshots = 0;

  items.forEach((item, index) => {
    if (!isObject(item)) throw new ReplayError('invalid_payload', `item ${index} is not an object`);
    if (item.event !== '$snapshot') return;
    snapshots++;
    const props = item.properties;
    if (!isObject(props)) throw new ReplayError('invalid_payload', `item ${index} has no properties object`);

    const itemToken = idString(props.token) ?? idString(item.api_key) ?? topLevelToken;
    if (itemToken !== undefined) {
      if (token !== undefined && token !== itemToken) {
        throw new ReplayError('invalid_payload', 'items of one request carry different tokens');
      }
      token = itemToken;
    }

    const sessionId = props.$session_id;
    if (sessionId === undefined || sessionId === null || sessionId === '') {
      throw new ReplayError('missing_session_id', `item ${index} has no $session_id`);
    }
    if (typeof sessionId !== 'string' || !SESSION_ID_PATTERN.test(sessionId)) {
      throw new ReplayError('invalid_session_id', `item ${index}: $session_id must be 1-70 characters of [A-Za-z0-9-]`);
    }
    const windowId = props.$window_id ?? '';
    if (typeof windowId !== 'string' || (windowId !== '' && !SESSION_ID_PATTERN.test(windowId))) {
      throw new ReplayError('invalid_window_id', `item ${index}: $window_id must be 1-70 characters of [A-Za-z0-9-]`);
    }
    const data = props.$snapshot_data;
    if (!Array.isArray(data)) throw new ReplayError('invalid_payload', `item ${index}: $snapshot_data is not an array`);

    let session = sessions.get(sessionId);
    if (!session) {
      session = {
        sessionId,
        distinctId: idString(props.distinct_id) ?? idString(item.distinct_id) ?? '',
        snapshotSource: props.$snapshot_source === 'mobile' ? 'mobile' : 'web',
        snapshotLibrary: typeof props.$lib === 'string' ? props.$lib.slice(0, 64) : 'unknown',
        events: [],
      };
      sessions.set(sessionId, session);
    }
    const ranges = slices?.[index];
    const sliced = ranges !== undefined && ranges.length === 2 * data.length;
    data.forEach((event, eventIndex) => {
      if (!isRrwebEvent(event)) {
        throw new ReplayError(
          'invalid_event',
          `item ${index}, event ${eventIndex}: an rrweb event needs a numeric type and a positive timestamp`,
        );
      }
      const start = sliced ? ranges[2 * eventIndex]! : NOT_COMPACT;
      session.events.push({
        windowId,
        event,
        raw: start === NOT_COMPACT ? undefined : json.subarray(start, ranges![2 * eventIndex + 1]),
      });
    });
    eventCount += data.length;
  });

  if (snapshots === 0) throw new ReplayError('invalid_payload', 'the request holds no $snapshot events');
  return { token, sessions: [...sessions.values()].filter((s) => s.events.length > 0), eventCount };
}
