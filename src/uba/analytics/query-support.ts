import type { ClickHouseClient } from '@clickhouse/client';
import { ReplayError } from '../../errors/index.ts';
import { behaviorTime } from '../behavior-rows.ts';

/**
 * What the raw-table analytics (funnel, retention, paths, experiments) share: the checks of their options and the way
 * they run a query. The API validates every option first; these checks repeat the bounds so that a caller that forgot
 * cannot send an unbounded read to ClickHouse. A broken option is `invalid_parameter` (HTTP 400).
 */

export const DAY_MS = 86_400_000;
/** The widest range one analytics read may cover (a quarter). */
export const MAX_RANGE_DAYS = 93;
/** Like the behaviours' own fields (docs/uba.md): actions, property keys, experiment ids and groups. */
export const MAX_NAME_LENGTH = 200;
export const MAX_PROPERTY_VALUE_LENGTH = 8192;

export function invalid(detail: string): ReplayError {
  return new ReplayError('invalid_parameter', detail);
}

export function checkTenant(tenantId: number): number {
  if (!Number.isSafeInteger(tenantId) || tenantId < 0) throw invalid('tenantId must be a whole number ≥ 0');
  return tenantId;
}

export function checkInteger(name: string, value: number, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw invalid(`${name} must be a whole number from ${min} to ${max}`);
  }
  return value;
}

/** An action, property key, experiment id or group: a non-empty string of at most MAX_NAME_LENGTH characters. */
export function checkName(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_NAME_LENGTH) {
    throw invalid(`${name} must be a string of 1-${MAX_NAME_LENGTH} characters`);
  }
  return value;
}

/** A time range in ms since the epoch, `from` included, `to` excluded, with the query parameters that bound it. */
export interface CheckedRange {
  readonly from: number;
  readonly to: number;
  /** `DateTime64(3, 'UTC')` text of `from` and `to`. */
  readonly fromTime: string;
  readonly toTime: string;
  /** The UTC days of `from` and of the range's last millisecond: the `date` key column's bounds (partitions, index). */
  readonly fromDate: string;
  readonly toDate: string;
}

export function checkRange(from: number, to: number, maxDays = MAX_RANGE_DAYS): CheckedRange {
  // Whole milliseconds, inside the behaviours' own bounds (after the epoch, before 2300).
  const limit = Date.UTC(2300, 0, 1);
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < 0 || to > limit) {
    throw invalid('from and to must be whole milliseconds since the epoch');
  }
  if (to <= from) throw invalid('to must be after from');
  if (to - from > maxDays * DAY_MS) throw invalid(`the range may cover at most ${maxDays} days`);
  return {
    from,
    to,
    fromTime: behaviorTime(from),
    toTime: behaviorTime(to),
    fromDate: dayText(from),
    toDate: dayText(to - 1),
  };
}

/** The UTC day of a time, 'YYYY-MM-DD'. */
export const dayText = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** 64-bit integers may arrive as JSON strings (output_format_json_quote_64bit_integers): answers carry numbers. */
export function toNumber(value: unknown): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isFinite(n)) throw new Error(`ClickHouse returned a non-number: ${String(value)}`);
  return n;
}

/**
 * SQL for (timestamp, event_id) as one UInt256 that sorts as `ORDER BY timestamp, event_id` does: the millisecond in
 * bits 192-255, the UUID in ClickHouse's order (its low 64 bits compared first, then its high 64, `compareEventIds`)
 * in bits 64-191, and `low` (an unsigned value of at most 64 bits carried along) below. Exact, unlike the table's
 * `sequence_ts` (20 bits of event_id), and one integer compare per step where a (timestamp, event_id) tuple sorts
 * several times slower in arrays.
 */
export function orderKeySql(low = '0'): string {
  return `bitOr(bitOr(bitShiftLeft(toUInt256(toUnixTimestamp64Milli(timestamp)), 192),
    bitShiftLeft(toUInt256(bitOr(bitShiftLeft(bitAnd(toUInt128(event_id), toUInt128('18446744073709551615')), 64),
      bitShiftRight(toUInt128(event_id), 64))), 64)), toUInt256(${low}))`;
}

/** The millisecond of an `orderKeySql` key. */
export const orderKeyMs = (key: string): string => `toInt64(bitShiftRight(${key}, 192))`;

/** Runs one SELECT with every value as a query parameter; JSONEachRow rows. */
export async function queryRows<T>(
  client: ClickHouseClient,
  query: string,
  query_params: Record<string, unknown>,
): Promise<T[]> {
  return await (await client.query({ query, query_params, format: 'JSONEachRow' })).json<T>();
}
