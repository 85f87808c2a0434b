import { ReplayError } from '../errors/index.ts';
import { MAX_TIMESTAMP_MS } from '../recordings/bounds.ts';
import {
  MAX_BEHAVIOR_ID_LENGTH,
  MAX_CONTEXT_LENGTH,
  MAX_CURRENT_URL_LENGTH,
  MAX_PROPERTIES_BYTES,
  MAX_PROPERTY_KEY_LENGTH,
  MAX_USER_ID_LENGTH,
  MAX_WATCH_DURATION_SECONDS,
  UUID_PATTERN,
} from './behavior-bounds.ts';
import type { BehaviorRecord } from './behavior-record.ts';

/**
 * Reads one `user_behaviors` message value as a BehaviorRecord, checking every field against the bounds capture
 * enforces (DESIGN §3.5.1: consumers check again what they read). A value that is not JSON, or not a record within
 * the bounds, is poison: `behavior_record_invalid`, which the framework quarantines to the DLQ.
 */
export function readBehaviorRecord(value: Buffer | null | undefined): BehaviorRecord {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value?.toString('utf8') ?? '');
  } catch {
    throw new ReplayError('behavior_record_invalid', 'the message value is not JSON');
  }
  const problem = behaviorRecordProblem(parsed);
  if (problem) throw new ReplayError('behavior_record_invalid', problem);
  return parsed as BehaviorRecord;
}

const isTime = (v: unknown): v is number =>
  typeof v === 'number' && Number.isFinite(v) && v > 0 && v <= MAX_TIMESTAMP_MS;
const isText = (v: unknown, max: number, min = 0): v is string =>
  typeof v === 'string' && v.length >= min && v.length <= max;

const ID_FIELDS = ['item_id', 'scenario_id', 'view_id', 'experiment_id', 'experiment_group'] as const;
const CONTEXT_FIELDS = ['device_type', 'os', 'location', 'ip'] as const;

/** Why a parsed value is not a BehaviorRecord within its bounds, or undefined when it is one. */
export function behaviorRecordProblem(r: unknown): string | undefined {
  if (typeof r !== 'object' || r === null || Array.isArray(r)) return 'the value is not a JSON object';
  const record = r as Record<string, unknown>;
  if (typeof record.event_id !== 'string' || !UUID_PATTERN.test(record.event_id)) return 'event_id is not a UUID';
  if (!Number.isSafeInteger(record.tenant_id) || (record.tenant_id as number) <= 0) {
    return 'tenant_id is not a positive integer';
  }
  if (!isText(record.user_id, MAX_USER_ID_LENGTH, 1)) {
    return `user_id is not a string of 1-${MAX_USER_ID_LENGTH} characters`;
  }
  if (!isText(record.action_type, MAX_BEHAVIOR_ID_LENGTH, 1)) {
    return `action_type is not a string of 1-${MAX_BEHAVIOR_ID_LENGTH} characters`;
  }
  for (const field of ID_FIELDS) {
    if (!isText(record[field], MAX_BEHAVIOR_ID_LENGTH)) {
      return `${field} is not a string of at most ${MAX_BEHAVIOR_ID_LENGTH} characters`;
    }
  }
  for (const field of CONTEXT_FIELDS) {
    if (!isText(record[field], MAX_CONTEXT_LENGTH)) {
      return `${field} is not a string of at most ${MAX_CONTEXT_LENGTH} characters`;
    }
  }
  if (!isTime(record.timestamp)) return 'timestamp is not a time in ms inside DateTime64 range';
  if (!isTime(record.captured_at)) return 'captured_at is not a time in ms inside DateTime64 range';
  if (!isText(record.session_id, 70) || !/^[A-Za-z0-9-]*$/.test(record.session_id)) {
    return 'session_id is not up to 70 characters of [A-Za-z0-9-]';
  }
  const watch = record.watch_duration;
  if (typeof watch !== 'number' || !Number.isFinite(watch) || watch < 0 || watch > MAX_WATCH_DURATION_SECONDS) {
    return `watch_duration is not a number of seconds from 0 to ${MAX_WATCH_DURATION_SECONDS}`;
  }
  const rate = record.completion_rate;
  if (typeof rate !== 'number' || !Number.isFinite(rate) || rate < 0 || rate > 1) {
    return 'completion_rate is not a number from 0 to 1';
  }
  if (!isText(record.current_url, MAX_CURRENT_URL_LENGTH)) {
    return `current_url is not a string of at most ${MAX_CURRENT_URL_LENGTH} characters`;
  }
  if (record.source !== 'behaviors-api' && record.source !== 'posthog-js') {
    return 'source is not behaviors-api or posthog-js';
  }
  const properties = record.properties;
  if (typeof properties !== 'object' || properties === null || Array.isArray(properties)) {
    return 'properties is not an object';
  }
  for (const [key, value] of Object.entries(properties)) {
    if (key === '' || key.length > MAX_PROPERTY_KEY_LENGTH || typeof value !== 'string') {
      return `properties holds a key that is empty or longer than ${MAX_PROPERTY_KEY_LENGTH} characters, or a value that is not a string`;
    }
  }
  if (Buffer.byteLength(JSON.stringify(properties)) > MAX_PROPERTIES_BYTES) {
    return `properties is more than ${MAX_PROPERTIES_BYTES} bytes of JSON`;
  }
  return undefined;
}
