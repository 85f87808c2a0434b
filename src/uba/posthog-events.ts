import { randomUUID } from 'node:crypto';
import { type ErrorCode, ReplayError } from '../errors/index.ts';
import { MAX_DISTINCT_ID_LENGTH, timestampProblem } from '../recordings/bounds.ts';
import { SESSION_ID_PATTERN } from '../recordings/rrweb.ts';
import {
  type BehaviorBatch,
  type BehaviorContext,
  type BehaviorItems,
  type BehaviorRejection,
  expectFewEnough,
  isObject,
  type Json,
  oneToken,
  parseJsonBody,
  tokenString,
} from './behavior-batch.ts';
import {
  boundedId,
  MAX_BEHAVIOR_ID_LENGTH,
  MAX_CONTEXT_LENGTH,
  MAX_CURRENT_URL_LENGTH,
  UUID_PATTERN,
} from './behavior-bounds.ts';
import type { BehaviorRecord } from './behavior-record.ts';
import { flattenProperties } from './properties-map.ts';

/**
 * posthog-js analytics events (`/e/`, `/i/v0/e/`, `/batch`, `/capture`) as behaviours (DESIGN §3.8). posthog-js 1.449
 * posts `{api_key, batch: [event, ...]}` (its `capture-body` mode); older SDKs and other clients post an array of
 * events, or one event. An event is `{uuid, event, properties: {distinct_id, $session_id, $current_url, token, ...},
 * timestamp (ISO string)}`, older ones carry `properties.$time` (seconds) or an `offset` (ms before sending).
 *
 * Each event becomes one record: `action_type` = the event name, `user_id` = `distinct_id`, `session_id` =
 * `$session_id` (the link to its replay), `current_url` = `$current_url` (cut to 8192 characters), `device_type` =
 * `$device_type`, `os` = `$os`, `ip` = `$ip`, `event_id` = `uuid` when it is a UUID (else a new one), and the other
 * properties flattened to strings (properties-map.ts, `trim`: values over 8 KiB and what would pass 16 KiB are left
 * out, counted, and the event kept). `$snapshot` events are not behaviours: they belong to `/s/` and are skipped
 * here, neither accepted nor refused.
 */

/** Properties that became record fields, or are never kept (the recording payload, the token). */
const MAPPED = new Set([
  'distinct_id',
  'token',
  '$session_id',
  '$current_url',
  '$device_type',
  '$os',
  '$ip',
  '$time',
  '$snapshot_data',
]);

const SNAPSHOT = '$snapshot';

/** Parses the body and finds its token; fails whole only for a body that is not JSON or not a batch of events. */
export function readPosthogEventsRequest(json: Buffer): BehaviorItems {
  const body = parseJsonBody(json);
  let items: readonly unknown[];
  let topLevel: string | undefined;
  if (Array.isArray(body)) items = body;
  else if (isObject(body)) {
    topLevel = tokenString(body.api_key) ?? tokenString(body.token);
    if (Array.isArray(body.batch)) items = body.batch;
    else if (typeof body.event === 'string') items = [body];
    else
      throw new ReplayError('invalid_payload', 'the body is neither an event, an array of events nor {batch: [...]}');
  } else throw new ReplayError('invalid_payload', 'the body is not a batch of events');
  expectFewEnough(items.length);
  const token = oneToken(topLevel, items, (item) =>
    isObject(item) ? ((isObject(item.properties) ? item.properties.token : undefined) ?? item.api_key) : undefined,
  );
  return { token, items };
}

export function posthogEventsToRecords(items: readonly unknown[], context: BehaviorContext): BehaviorBatch {
  const records: BehaviorRecord[] = [];
  const rejected: BehaviorRejection[] = [];
  let omittedProperties = 0;
  items.forEach((item, index) => {
    if (isObject(item) && item.event === SNAPSHOT) return;
    const result = posthogEventRecord(item, context);
    if ('code' in result) rejected.push({ index, ...result });
    else {
      records.push(result.record);
      omittedProperties += result.omitted;
    }
  });
  return { records, rejected, omittedProperties };
}

type Problem = { readonly code: ErrorCode; readonly detail: string };
const problem = (code: ErrorCode, detail: string): Problem => ({ code, detail });

/**
 * When the event happened (ms): its `timestamp` (an ISO string, as posthog-js sends it, or ms), else
 * `properties.$time` (seconds), else `offset` ms before capture received it, else capture's clock (what PostHog does
 * for an event without a time). A time that is there but unusable refuses the event.
 */
function eventTime(event: Json, props: Json, capturedAt: number): number | Problem {
  let ms: unknown;
  if (event.timestamp !== undefined && event.timestamp !== null) {
    ms = typeof event.timestamp === 'string' ? Date.parse(event.timestamp) : event.timestamp;
  } else if (props.$time !== undefined && props.$time !== null) {
    ms = typeof props.$time === 'number' ? props.$time * 1000 : Number.NaN;
  } else if (typeof event.offset === 'number') {
    ms = capturedAt - event.offset;
  } else ms = capturedAt;
  const code = timestampProblem(ms);
  if (code === undefined) return ms as number;
  return problem(
    code,
    code === 'invalid_timestamp'
      ? 'timestamp is not an ISO date, nor a number of milliseconds above 0'
      : 'timestamp lies past 2299-12-31',
  );
}

/** An SDK-filled context string: '' when absent or not a string; over 200 characters refuses the event. */
function contextString(value: unknown): string | undefined {
  if (typeof value !== 'string') return '';
  return value.length <= MAX_CONTEXT_LENGTH ? value : undefined;
}

/** One posthog-js event as its record (and how many of its properties were left out), or the first bound it breaks. */
export function posthogEventRecord(
  item: unknown,
  context: BehaviorContext,
): { readonly record: BehaviorRecord; readonly omitted: number } | Problem {
  if (!isObject(item)) return problem('invalid_behavior', 'the event is not a JSON object');
  const props = item.properties ?? {};
  if (!isObject(props)) return problem('invalid_behavior', 'the event has properties that are not an object');
  const name = item.event;
  if (typeof name !== 'string' || name === '' || name.length > MAX_BEHAVIOR_ID_LENGTH) {
    return problem('invalid_action_type', `the event name is not a string of 1-${MAX_BEHAVIOR_ID_LENGTH} characters`);
  }
  const rawDistinctId = props.distinct_id ?? item.distinct_id;
  if (rawDistinctId === undefined || rawDistinctId === null || rawDistinctId === '') {
    return problem('missing_user_id', 'the event has no distinct_id');
  }
  const distinctId = boundedId(rawDistinctId, MAX_DISTINCT_ID_LENGTH);
  if (distinctId === undefined) {
    return problem(
      'distinct_id_too_long',
      `distinct_id is not a string or number of at most ${MAX_DISTINCT_ID_LENGTH} characters`,
    );
  }
  const time = eventTime(item, props, context.capturedAt);
  if (typeof time !== 'number') return time;

  const sessionId = props.$session_id ?? '';
  if (typeof sessionId !== 'string' || (sessionId !== '' && !SESSION_ID_PATTERN.test(sessionId))) {
    return problem('invalid_session_id', '$session_id is not 1-70 characters of [A-Za-z0-9-]');
  }
  const deviceType = contextString(props.$device_type);
  const os = contextString(props.$os);
  const ip = contextString(props.$ip);
  if (deviceType === undefined || os === undefined || ip === undefined) {
    return problem('invalid_context', `$device_type, $os or $ip is longer than ${MAX_CONTEXT_LENGTH} characters`);
  }
  const eventId =
    typeof item.uuid === 'string' && UUID_PATTERN.test(item.uuid)
      ? item.uuid.toLowerCase()
      : (context.newEventId ?? randomUUID)();
  const flattened = flattenProperties(props, 'trim', MAPPED);
  if (!flattened.ok) return problem(flattened.code, flattened.detail); // `trim` never refuses; kept for the types

  return {
    record: {
      event_id: eventId,
      tenant_id: context.tenantId,
      user_id: distinctId,
      item_id: '',
      action_type: name,
      scenario_id: '',
      timestamp: time,
      session_id: sessionId,
      view_id: '',
      watch_duration: 0,
      completion_rate: 0,
      experiment_id: '',
      experiment_group: '',
      device_type: deviceType,
      os,
      location: '',
      ip,
      current_url: typeof props.$current_url === 'string' ? props.$current_url.slice(0, MAX_CURRENT_URL_LENGTH) : '',
      properties: flattened.properties,
      source: 'posthog-js',
      captured_at: context.capturedAt,
    },
    omitted: flattened.omitted,
  };
}
