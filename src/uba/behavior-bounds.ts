import { MAX_DISTINCT_ID_LENGTH } from '../recordings/bounds.ts';

/**
 * The input bounds of a behaviour (DESIGN §3.8, §3.5.1), in one place: capture enforces them on `POST
 * /api/v1/behaviors` and on posthog-js analytics events (an event that breaks one is refused alone, with its index),
 * and the behaviour sinks check the same bounds again on what they read, so nothing accepted can fail later in
 * ClickHouse or Redis. The bounds shared with recordings (timestamps, the token, the distinct id) stay in
 * src/recordings/bounds.ts and are used from there.
 */

/** The actions of the behaviours API (posthog-js events carry their own event name instead). */
export const ACTION_TYPES = ['impression', 'click', 'view', 'like', 'share', 'add_cart', 'order'] as const;
export type ActionType = (typeof ACTION_TYPES)[number];
const actionTypes: ReadonlySet<string> = new Set(ACTION_TYPES);
export const isActionType = (value: unknown): value is ActionType =>
  typeof value === 'string' && actionTypes.has(value);

/** `user_id` is the posthog-js `distinct_id`: the same bound. */
export const MAX_USER_ID_LENGTH = MAX_DISTINCT_ID_LENGTH;
/** `item_id`, `scenario_id`, `view_id`, `experiment_id`, `experiment_group`, and a posthog-js event name. */
export const MAX_BEHAVIOR_ID_LENGTH = 200;
/** Each of `context.device_type`, `os`, `location`, `ip`. */
export const MAX_CONTEXT_LENGTH = 200;
/** `$current_url` longer than this is cut, not refused. */
export const MAX_CURRENT_URL_LENGTH = 8192;
/** Seconds: a week of watching. */
export const MAX_WATCH_DURATION_SECONDS = 7 * 24 * 3600;
/** The properties map (`extra_data`, or a posthog-js event's properties), flattened, as JSON bytes. */
export const MAX_PROPERTIES_BYTES = 16 * 1024;
export const MAX_PROPERTY_KEY_LENGTH = 200;
/** A posthog-js property whose flattened value is longer than this is left out (the event is kept). */
export const MAX_PROPERTY_VALUE_BYTES = 8 * 1024;
/** Behaviours (or posthog-js events) in one request; more is refused whole (413 `too_many_events`). */
export const MAX_BEHAVIORS_PER_REQUEST = 1000;

export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The value carried by the `format` header of every `user_behaviors` record (BehaviorRecord as JSON, version 1). */
export const BEHAVIOR_FORMAT = 'behavior/1';

/**
 * A bounded identifier as the record holds it: a string as sent, or a finite number as its `String` (clients send
 * numeric user and item ids); `''` for absent (undefined, null or ''). Undefined when the value is unusable: another
 * type, or longer than `max`.
 */
export function boundedId(value: unknown, max: number): string | undefined {
  if (value === undefined || value === null) return '';
  const text =
    typeof value === 'string' ? value : typeof value === 'number' && Number.isFinite(value) ? String(value) : undefined;
  return text !== undefined && text.length <= max ? text : undefined;
}
