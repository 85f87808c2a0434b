import { randomUUID } from 'node:crypto';
import { type ErrorCode, ReplayError } from '../errors/index.ts';
import { timestampProblem } from '../recordings/bounds.ts';
import { SESSION_ID_PATTERN } from '../recordings/rrweb.ts';
import {
  type BehaviorBatch,
  type BehaviorContext,
  type BehaviorItems,
  type BehaviorRejection,
  expectFewEnough,
  isObject,
  oneToken,
  parseJsonBody,
} from './behavior-batch.ts';
import {
  ACTION_TYPES,
  boundedId,
  isActionType,
  MAX_BEHAVIOR_ID_LENGTH,
  MAX_CONTEXT_LENGTH,
  MAX_USER_ID_LENGTH,
  MAX_WATCH_DURATION_SECONDS,
  UUID_PATTERN,
} from './behavior-bounds.ts';
import type { BehaviorRecord } from './behavior-record.ts';
import { flattenProperties } from './properties-map.ts';

/**
 * `POST /api/v1/behaviors` (DESIGN §3.8): a JSON array (or one object) of behaviours
 * `{user_id, item_id, action_type, scenario_id, timestamp (ms), context{device_type, os, location, ip}, extra_data,
 * watch_duration, completion_rate, experiment_id, experiment_group, event_id?, view_id?, session_id?}`. The project
 * token may ride in each behaviour as `token` (or `api_key`); capture also takes it from the `Authorization` header or
 * the query string. Other fields are ignored.
 *
 * Reading is two steps, because the tenant is known only once the token is admitted: `readBehaviorsRequest` parses
 * the body and finds its token (the request fails whole only when it is not JSON, not a batch, empty, over 1000
 * behaviours, or carries two tokens); `behaviorsToRecords` then checks each behaviour against the bounds
 * (behavior-bounds.ts) and refuses a bad one alone, with its index and code.
 */
export function readBehaviorsRequest(json: Buffer): BehaviorItems {
  const body = parseJsonBody(json);
  if (!isObject(body) && !Array.isArray(body)) {
    throw new ReplayError('invalid_payload', 'the body is not a behaviour or an array of behaviours');
  }
  const items = Array.isArray(body) ? body : [body];
  if (items.length === 0) throw new ReplayError('invalid_payload', 'the request holds no behaviours');
  expectFewEnough(items.length);
  const token = oneToken(undefined, items, (item) => (isObject(item) ? (item.token ?? item.api_key) : undefined));
  return { token, items };
}

export function behaviorsToRecords(items: readonly unknown[], context: BehaviorContext): BehaviorBatch {
  const records: BehaviorRecord[] = [];
  const rejected: BehaviorRejection[] = [];
  items.forEach((item, index) => {
    const result = behaviorRecord(item, context);
    if ('code' in result) rejected.push({ index, ...result });
    else records.push(result);
  });
  return { records, rejected, omittedProperties: 0 };
}

type Problem = { readonly code: ErrorCode; readonly detail: string };
const problem = (code: ErrorCode, detail: string): Problem => ({ code, detail });

/** An optional bounded id field, or its problem. */
function optionalId(value: unknown, field: string, code: ErrorCode): string | Problem {
  return (
    boundedId(value, MAX_BEHAVIOR_ID_LENGTH) ??
    problem(code, `${field} is not a string or number of at most ${MAX_BEHAVIOR_ID_LENGTH} characters`)
  );
}

function optionalNumber(value: unknown, max: number): number | undefined {
  if (value === undefined || value === null) return 0;
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= max ? value : undefined;
}

const CONTEXT_FIELDS = ['device_type', 'os', 'location', 'ip'] as const;

/** One behaviour as its record, or the first bound it breaks. */
export function behaviorRecord(item: unknown, context: BehaviorContext): BehaviorRecord | Problem {
  if (!isObject(item)) return problem('invalid_behavior', 'the behaviour is not a JSON object');

  if (item.user_id === undefined || item.user_id === null || item.user_id === '') {
    return problem('missing_user_id', 'user_id is missing');
  }
  const userId = boundedId(item.user_id, MAX_USER_ID_LENGTH);
  if (userId === undefined) {
    return problem('invalid_user_id', `user_id is not a string or number of at most ${MAX_USER_ID_LENGTH} characters`);
  }
  if (item.item_id === undefined || item.item_id === null || item.item_id === '') {
    return problem('missing_item_id', 'item_id is missing');
  }
  const itemId = optionalId(item.item_id, 'item_id', 'invalid_item_id');
  if (typeof itemId !== 'string') return itemId;
  if (!isActionType(item.action_type)) {
    return problem('invalid_action_type', `action_type is not one of ${ACTION_TYPES.join(', ')}`);
  }
  const timeProblem = timestampProblem(item.timestamp);
  if (timeProblem) {
    return problem(
      timeProblem,
      timeProblem === 'invalid_timestamp'
        ? 'timestamp is not a number of milliseconds above 0'
        : 'timestamp lies past 2299-12-31',
    );
  }

  let eventId: string;
  if (item.event_id === undefined || item.event_id === null) eventId = (context.newEventId ?? randomUUID)();
  else if (typeof item.event_id === 'string' && UUID_PATTERN.test(item.event_id)) eventId = item.event_id.toLowerCase();
  else return problem('invalid_event_id', 'event_id is not a UUID');

  const scenarioId = optionalId(item.scenario_id, 'scenario_id', 'invalid_scenario_id');
  if (typeof scenarioId !== 'string') return scenarioId;
  const viewId = optionalId(item.view_id, 'view_id', 'invalid_view_id');
  if (typeof viewId !== 'string') return viewId;
  const experimentId = optionalId(item.experiment_id, 'experiment_id', 'invalid_experiment_id');
  if (typeof experimentId !== 'string') return experimentId;
  const experimentGroup = optionalId(item.experiment_group, 'experiment_group', 'invalid_experiment_group');
  if (typeof experimentGroup !== 'string') return experimentGroup;

  const sessionId = item.session_id ?? '';
  if (typeof sessionId !== 'string' || (sessionId !== '' && !SESSION_ID_PATTERN.test(sessionId))) {
    return problem('invalid_session_id', 'session_id is not 1-70 characters of [A-Za-z0-9-]');
  }

  const watchDuration = optionalNumber(item.watch_duration, MAX_WATCH_DURATION_SECONDS);
  if (watchDuration === undefined) {
    return problem(
      'invalid_watch_duration',
      `watch_duration is not a number of seconds from 0 to ${MAX_WATCH_DURATION_SECONDS}`,
    );
  }
  const completionRate = optionalNumber(item.completion_rate, 1);
  if (completionRate === undefined) return problem('invalid_completion_rate', 'completion_rate is not from 0 to 1');

  const ctx = item.context ?? {};
  if (!isObject(ctx)) return problem('invalid_context', 'context is not an object');
  const device: Record<(typeof CONTEXT_FIELDS)[number], string> = { device_type: '', os: '', location: '', ip: '' };
  for (const field of CONTEXT_FIELDS) {
    const value = ctx[field] ?? '';
    if (typeof value !== 'string' || value.length > MAX_CONTEXT_LENGTH) {
      return problem('invalid_context', `context.${field} is not a string of at most ${MAX_CONTEXT_LENGTH} characters`);
    }
    device[field] = value;
  }

  const extra = item.extra_data ?? {};
  if (!isObject(extra)) return problem('invalid_extra_data', 'extra_data is not a JSON object');
  const flattened = flattenProperties(extra, 'strict');
  if (!flattened.ok) return problem(flattened.code, flattened.detail);

  return {
    event_id: eventId,
    tenant_id: context.tenantId,
    user_id: userId,
    item_id: itemId,
    action_type: item.action_type,
    scenario_id: scenarioId,
    timestamp: item.timestamp as number,
    session_id: sessionId,
    view_id: viewId,
    watch_duration: watchDuration,
    completion_rate: completionRate,
    experiment_id: experimentId,
    experiment_group: experimentGroup,
    ...device,
    current_url: '',
    properties: flattened.properties,
    source: 'behaviors-api',
    captured_at: context.capturedAt,
  };
}
