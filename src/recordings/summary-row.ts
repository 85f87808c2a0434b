import { ReplayError } from '../errors/index.ts';
import type { BlockEntry } from './blob-object.ts';
import { isCount, MAX_DISTINCT_ID_LENGTH, MAX_LIBRARY_LENGTH } from './bounds.ts';
import type { RetentionClass } from './message-codec.ts';
import { SESSION_ID_PATTERN } from './rrweb.ts';
import { MAX_URL_LENGTH, MAX_URLS_PER_SUMMARY } from './summary.ts';

export const retentionDays: Record<RetentionClass, number> = { '30d': 30, '90d': 90, '1y': 365, '5y': 1825 };

/**
 * One row per session block, as produced to `clickhouse_session_replay_events` and inserted into
 * `session_replay_events` (JSONEachRow: snake_case, timestamps as UTC `YYYY-MM-DD hh:mm:ss.sss`). The live path and
 * `reindex` both build it from a block entry, so they agree by construction.
 */
export interface SummaryRow {
  readonly team_id: number;
  readonly session_id: string;
  readonly distinct_id: string;
  readonly first_timestamp: string;
  readonly last_timestamp: string;
  readonly block_url: string;
  readonly first_url: string | null;
  readonly first_url_timestamp: string | null;
  readonly urls: readonly string[];
  readonly click_count: number;
  readonly keypress_count: number;
  readonly mouse_activity_count: number;
  readonly active_milliseconds: number;
  readonly console_log_count: number;
  readonly console_warn_count: number;
  readonly console_error_count: number;
  readonly size: number;
  readonly event_count: number;
  readonly message_count: number;
  readonly snapshot_source: string;
  readonly snapshot_library: string;
  readonly retention_period_days: number;
  /** `topic:partition:first-last` per source partition: a deterministic identity for deduplicated inserts. */
  readonly source_offsets: string;
}

/** A timestamp (ms, possibly fractional) as ClickHouse reads DateTime64(3) from JSON; '' when it is not a date. */
export function clickhouseTime(ms: number): string {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? '' : date.toISOString().replace('T', ' ').replace('Z', '');
}

/** Inside DateTime64(3)'s range and after the epoch, as `clickhouseTime` writes it. */
const TIME_PATTERN = /^(19[7-9]\d|2[0-2]\d\d)-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$/;
const MAX_BLOCK_URL_LENGTH = 4096;
const MAX_SOURCE_OFFSETS_LENGTH = 4096;
const retentionDayValues: ReadonlySet<number> = new Set(Object.values(retentionDays));

const isTime = (v: unknown) => typeof v === 'string' && TIME_PATTERN.test(v);
const textUpTo = (max: number) => (v: unknown) => typeof v === 'string' && v.length <= max;

const rowChecks: Record<keyof SummaryRow, (v: unknown) => boolean> = {
  team_id: (v) => isCount(v) && v > 0,
  session_id: (v) => typeof v === 'string' && SESSION_ID_PATTERN.test(v),
  distinct_id: textUpTo(MAX_DISTINCT_ID_LENGTH),
  first_timestamp: isTime,
  last_timestamp: isTime,
  block_url: (v) => typeof v === 'string' && v.length > 0 && v.length <= MAX_BLOCK_URL_LENGTH,
  first_url: (v) => v === null || textUpTo(MAX_URL_LENGTH)(v),
  first_url_timestamp: (v) => v === null || isTime(v),
  urls: (v) => Array.isArray(v) && v.length <= MAX_URLS_PER_SUMMARY && v.every(textUpTo(MAX_URL_LENGTH)),
  click_count: isCount,
  keypress_count: isCount,
  mouse_activity_count: isCount,
  active_milliseconds: isCount,
  console_log_count: isCount,
  console_warn_count: isCount,
  console_error_count: isCount,
  size: isCount,
  event_count: isCount,
  message_count: isCount,
  snapshot_source: (v) => v === 'web' || v === 'mobile',
  snapshot_library: textUpTo(MAX_LIBRARY_LENGTH),
  retention_period_days: (v) => retentionDayValues.has(v as number),
  source_offsets: textUpTo(MAX_SOURCE_OFFSETS_LENGTH),
};

/**
 * Why a value is not a summary row `session_replay_events` takes as it is (a field missing, of the wrong type, or out
 * of the column's range), or undefined. The blob consumer checks every row it builds before its object is uploaded;
 * the ClickHouse sink checks every row it reads.
 */
export function summaryRowProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const row = value as Record<string, unknown>;
  for (const [key, check] of Object.entries(rowChecks)) {
    if (!check(row[key])) return `field ${key} is missing or out of bounds`;
  }
  if ((row.first_timestamp as string) > (row.last_timestamp as string)) return 'first_timestamp > last_timestamp';
  return undefined;
}

/** The summary row of a block; throws `summary_row_invalid` when the block's values break a column's bounds. */
export function summaryRow(entry: BlockEntry, blockUrl: string, retention: RetentionClass): SummaryRow {
  const row = blockRow(entry, blockUrl, retention);
  const problem = summaryRowProblem(row);
  if (problem) throw new ReplayError('summary_row_invalid', `session ${entry.sessionId}: ${problem}`);
  return row;
}

function blockRow(entry: BlockEntry, blockUrl: string, retention: RetentionClass): SummaryRow {
  return {
    team_id: entry.teamId,
    session_id: entry.sessionId,
    distinct_id: entry.distinctId,
    first_timestamp: clickhouseTime(entry.firstTimestamp),
    last_timestamp: clickhouseTime(entry.lastTimestamp),
    block_url: blockUrl,
    first_url: entry.firstUrl,
    first_url_timestamp: entry.firstUrlTimestamp === null ? null : clickhouseTime(entry.firstUrlTimestamp),
    urls: entry.urls,
    click_count: entry.clickCount,
    keypress_count: entry.keypressCount,
    mouse_activity_count: entry.mouseActivityCount,
    active_milliseconds: entry.activeMilliseconds,
    console_log_count: entry.consoleLogCount,
    console_warn_count: entry.consoleWarnCount,
    console_error_count: entry.consoleErrorCount,
    size: entry.rawBytes,
    event_count: entry.eventCount,
    message_count: entry.messageCount,
    snapshot_source: entry.snapshotSource,
    snapshot_library: entry.snapshotLibrary,
    retention_period_days: retentionDays[retention],
    source_offsets: entry.kafka.map((k) => `${k.topic}:${k.partition}:${k.firstOffset}-${k.lastOffset}`).join(','),
  };
}
