import type { BlockEntry } from './blob-object.ts';
import type { RetentionClass } from './message-codec.ts';

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

export function clickhouseTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

export function summaryRow(entry: BlockEntry, blockUrl: string, retention: RetentionClass): SummaryRow {
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
