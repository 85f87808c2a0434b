import { type ErrorCode, ReplayError } from '../errors/index.ts';
import { MAX_DISTINCT_ID_LENGTH, MAX_LIBRARY_LENGTH, MAX_WINDOWS_PER_SESSION } from '../recordings/bounds.ts';
import { type RrwebEvent, rrwebEventProblem, SESSION_ID_PATTERN } from '../recordings/rrweb.ts';
import { type SnapshotBody, snapshotBodyOf } from './snapshot-body.ts';
import { scanSnapshotBody } from './snapshot-scanner.ts';

export interface SnapshotEvent {
  readonly windowId: string;
  /** The event, or (from the scanner) its skeleton: the fields the summary and the bounds read. */
  readonly event: RrwebEvent;
  /**
   * The event's own bytes in the request body (a view, compact JSON that parses to the event), when the scanner read
   * the body: its JSONL line is built from them. Without them `event` is the whole event, re-serialised.
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

/** Events dropped for breaking an input bound, by code; the request's other events go on. */
export interface DroppedEvents {
  count: number;
  readonly byCode: Partial<Record<ErrorCode, number>>;
  /** The first few, located: `item` in the batch, `event` in its `$snapshot_data` (absent when the whole item went). */
  readonly examples: { readonly item: number; readonly event?: number; readonly code: ErrorCode }[];
}

/** How many dropped events a response names one by one. */
const MAX_DROP_EXAMPLES = 20;

export interface SnapshotRequest {
  /** The project token, or undefined when the request carries none. */
  readonly token: string | undefined;
  readonly sessions: ParsedSession[];
  /** Events accepted. */
  readonly eventCount: number;
  readonly dropped: DroppedEvents;
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
 *
 * The body is read by the validating scanner when it is one the scanner takes (what posthog-js sends), else by
 * `JSON.parse` (snapshot-scanner.ts); the decisions below see the same values either way.
 *
 * Input bounds (DESIGN §3.5.1) apply per event and per item: an event or item that breaks one is dropped alone and
 * counted under its code, and the rest is accepted. The request fails only when it is not a batch at all, carries two
 * tokens, or nothing of it is left (then with the first drop's code).
 */
export function parseSnapshotRequest(json: Buffer): SnapshotRequest {
  const body = scanSnapshotBody(json) ?? parseWithJson(json);
  const topLevelToken = body.root === 'object' ? (idString(body.rootApiKey) ?? idString(body.rootToken)) : undefined;
  let token = topLevelToken;
  const sessions = new Map<string, ParsedSession & { readonly windows: Set<string> }>();
  const dropped: DroppedEvents = { count: 0, byCode: {}, examples: [] };
  const drop = (code: ErrorCode, count: number, item: number, event?: number) => {
    dropped.count += count;
    dropped.byCode[code] = (dropped.byCode[code] ?? 0) + count;
    if (dropped.examples.length < MAX_DROP_EXAMPLES) {
      dropped.examples.push(event === undefined ? { item, code } : { item, event, code });
    }
  };
  let eventCount = 0;
  let snapshots = 0;

  body.items.forEach((item, index) => {
    if (item === undefined || item.event !== '$snapshot') return;
    snapshots++;
    const props = item.properties;
    const data = props?.data;
    if (props === undefined || data === undefined) {
      drop('invalid_payload', 1, index);
      return;
    }

    const itemToken = idString(props.token) ?? idString(item.apiKey) ?? topLevelToken;
    if (itemToken !== undefined) {
      if (token !== undefined && token !== itemToken) {
        throw new ReplayError('invalid_payload', 'items of one request carry different tokens');
      }
      token = itemToken;
    }
    if (data.length === 0) return;

    const sessionId = props.sessionId;
    const windowId = props.windowId ?? '';
    const distinctId = idString(props.distinctId) ?? idString(item.distinctId) ?? '';
    const itemProblem: ErrorCode | undefined =
      sessionId === undefined || sessionId === null || sessionId === ''
        ? 'missing_session_id'
        : typeof sessionId !== 'string' || !SESSION_ID_PATTERN.test(sessionId)
          ? 'invalid_session_id'
          : typeof windowId !== 'string' || (windowId !== '' && !SESSION_ID_PATTERN.test(windowId))
            ? 'invalid_window_id'
            : distinctId.length > MAX_DISTINCT_ID_LENGTH
              ? 'distinct_id_too_long'
              : undefined;
    if (itemProblem) {
      drop(itemProblem, data.length, index);
      return;
    }

    let session = sessions.get(sessionId as string);
    if (!session) {
      session = {
        sessionId: sessionId as string,
        distinctId,
        snapshotSource: props.snapshotSource === 'mobile' ? 'mobile' : 'web',
        snapshotLibrary: typeof props.lib === 'string' ? props.lib.slice(0, MAX_LIBRARY_LENGTH) : 'unknown',
        events: [],
        windows: new Set(),
      };
      sessions.set(session.sessionId, session);
    }
    if (!session.windows.has(windowId as string)) {
      if (session.windows.size >= MAX_WINDOWS_PER_SESSION) {
        drop('too_many_windows', data.length, index);
        return;
      }
      session.windows.add(windowId as string);
    }
    const events = session.events;
    data.forEach(({ event, raw }, eventIndex) => {
      const problem = rrwebEventProblem(event);
      if (problem) {
        drop(problem, 1, index, eventIndex);
        return;
      }
      events.push({ windowId: windowId as string, event: event as RrwebEvent, raw });
      eventCount++;
    });
  });

  if (snapshots === 0) throw new ReplayError('invalid_payload', 'the request holds no $snapshot events');
  if (eventCount === 0 && dropped.count > 0) {
    const first = dropped.examples[0]!;
    throw new ReplayError(
      first.code,
      `all ${dropped.count} events were dropped; the first: item ${first.item}${first.event === undefined ? '' : `, event ${first.event}`} (${first.code})`,
    );
  }
  return {
    token,
    sessions: [...sessions.values()].filter((s) => s.events.length > 0).map(({ windows: _, ...session }) => session),
    eventCount,
    dropped,
  };
}

/** The body read by `JSON.parse` (any body the scanner does not take): its events are re-serialised later. */
function parseWithJson(json: Buffer): SnapshotBody {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json.toString('utf8'));
  } catch (error) {
    throw new ReplayError('invalid_json', `body is not valid JSON: ${(error as Error).message}`);
  }
  const body = snapshotBodyOf(parsed);
  if (body === undefined) throw new ReplayError('invalid_payload', 'the body is not a batch');
  return body;
}
