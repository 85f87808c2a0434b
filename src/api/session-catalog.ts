import { createHash } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import { ReplayError } from '../errors/index.ts';
import { clickhouseTime } from '../recordings/summary-row.ts';

/** One session as the API shows it: the merged summary row (`session_replay_events_merged`). */
export interface SessionSummary {
  readonly id: string;
  readonly team_id: number;
  readonly distinct_id: string;
  readonly start_time: string;
  readonly end_time: string;
  readonly duration_ms: number;
  readonly active_ms: number;
  readonly click_count: number;
  readonly keypress_count: number;
  readonly mouse_activity_count: number;
  readonly console_log_count: number;
  readonly console_warn_count: number;
  readonly console_error_count: number;
  readonly first_url: string | null;
  readonly urls: readonly string[];
  readonly event_count: number;
  readonly size: number;
  readonly snapshot_source: string;
  readonly snapshot_library: string;
  readonly retention_period_days: number;
  readonly block_count: number;
  /**
   * Summary rows stored more than once for the same block (0 unless exactly-once broke somewhere): the player plays
   * such a block once, but the counters above include every copy, so this is reported, never hidden.
   */
  readonly duplicate_blocks: number;
}

/** One block of a session, numbered in event-time order. */
export interface SessionBlock {
  readonly index: number;
  /** Stable identity of the block (a hash of its object and byte range): the same block keeps it forever. */
  readonly id: string;
  readonly firstTimestamp: number;
  readonly lastTimestamp: number;
  /** Where the block lives: `<store url>?range=bytes=<first>-<last>`. Internal; never sent to clients. */
  readonly url: string;
}

export interface ListFilters {
  readonly teamId: number;
  /** Sessions that started in [from, to), milliseconds since the epoch. */
  readonly from: number;
  readonly to: number;
  readonly distinctId?: string;
  readonly minDurationMs?: number;
  readonly minActiveMs?: number;
  readonly limit: number;
  /** Keyset pagination: sessions strictly after this one in (start_time DESC, id DESC) order. */
  readonly after?: { readonly startMs: number; readonly id: string };
}

interface SummaryRecord {
  session_id: string;
  team_id: number;
  distinct_id: string;
  start_ms: number;
  end_ms: number;
  duration_ms: number;
  active_milliseconds: number;
  click_count: number;
  keypress_count: number;
  mouse_activity_count: number;
  console_log_count: number;
  console_warn_count: number;
  console_error_count: number;
  first_url: string | null;
  all_urls: string[];
  event_count: number;
  size: number;
  snapshot_source: string;
  snapshot_library: string;
  retention_period_days: number;
  block_count: number;
  duplicate_blocks: number;
}

const summaryColumns = `session_id, team_id, distinct_id,
  toUnixTimestamp64Milli(start_time) AS start_ms, toUnixTimestamp64Milli(end_time) AS end_ms, duration_ms,
  active_milliseconds, click_count, keypress_count, mouse_activity_count,
  console_log_count, console_warn_count, console_error_count, first_url, arraySort(all_urls) AS all_urls,
  event_count, size, snapshot_source, snapshot_library, retention_period_days,
  length(arrayDistinct(block_urls)) AS block_count, length(block_urls) - block_count AS duplicate_blocks`;

function toSummary(row: SummaryRecord): SessionSummary {
  return {
    id: row.session_id,
    team_id: row.team_id,
    distinct_id: row.distinct_id,
    start_time: new Date(row.start_ms).toISOString(),
    end_time: new Date(row.end_ms).toISOString(),
    duration_ms: row.duration_ms,
    active_ms: row.active_milliseconds,
    click_count: row.click_count,
    keypress_count: row.keypress_count,
    mouse_activity_count: row.mouse_activity_count,
    console_log_count: row.console_log_count,
    console_warn_count: row.console_warn_count,
    console_error_count: row.console_error_count,
    first_url: row.first_url,
    urls: row.all_urls,
    event_count: row.event_count,
    size: row.size,
    snapshot_source: row.snapshot_source,
    snapshot_library: row.snapshot_library,
    retention_period_days: row.retention_period_days,
    block_count: row.block_count,
    duplicate_blocks: row.duplicate_blocks,
  };
}

const DAY_MS = 86_400_000;

/**
 * Whether a session is past its retention: its start plus `retention_period_days` days (the longest of its blocks')
 * is before `now`. The ClickHouse TTL and the bucket's lifecycle rules delete such a session on their own schedule;
 * this makes it expired at once, whatever they have done yet.
 */
export function isExpired(summary: SessionSummary, now: number): boolean {
  return Date.parse(summary.start_time) + summary.retention_period_days * DAY_MS < now;
}

/**
 * The API's read side of ClickHouse: sessions and their blocks from `session_replay_events_merged`. Every value
 * reaches SQL as a typed query parameter, never spliced into the text.
 */
export class SessionCatalog {
  private readonly clickhouse: ClickHouseClient;

  constructor(clickhouse: ClickHouseClient) {
    this.clickhouse = clickhouse;
  }

  /** A page of a team's sessions, newest first, expired ones left out; `more` says whether another page follows. */
  async list(filters: ListFilters): Promise<{ sessions: SessionSummary[]; more: boolean }> {
    const conditions = [
      'start_time >= {from:DateTime64(3)}',
      'start_time < {to:DateTime64(3)}',
      // isExpired, in SQL: a session is listed while its start plus its retention is not before now.
      'start_time + toIntervalDay(retention_period_days) >= {now:DateTime64(3)}',
    ];
    if (filters.distinctId !== undefined) conditions.push('distinct_id = {distinctId:String}');
    if (filters.minDurationMs !== undefined) conditions.push('duration_ms >= {minDurationMs:Int64}');
    if (filters.minActiveMs !== undefined) conditions.push('active_milliseconds >= {minActiveMs:Int64}');
    if (filters.after) {
      conditions.push('(toUnixTimestamp64Milli(start_time), session_id) < ({afterMs:Int64}, {afterId:String})');
    }
    // A session's rows each carry their own block's first timestamp; the session starts at the smallest. Picking
    // sessions with any row in the window, then merging all their rows, keeps early blocks outside the window in.
    const rows = await this.select<SummaryRecord>(
      `SELECT ${summaryColumns}
         FROM session_replay_events_merged
        WHERE team_id = {teamId:Int64}
          AND session_id IN (
            SELECT session_id FROM session_replay_events
             WHERE team_id = {teamId:Int64}
               AND min_first_timestamp >= {from:DateTime64(3)} AND min_first_timestamp < {to:DateTime64(3)})
          AND ${conditions.join(' AND ')}
        ORDER BY start_time DESC, session_id DESC
        LIMIT {limit:UInt32}`,
      {
        teamId: filters.teamId,
        from: clickhouseTime(filters.from),
        to: clickhouseTime(filters.to),
        distinctId: filters.distinctId,
        minDurationMs: filters.minDurationMs,
        minActiveMs: filters.minActiveMs,
        afterMs: filters.after?.startMs,
        afterId: filters.after?.id,
        now: clickhouseTime(Date.now()),
        limit: filters.limit + 1,
      },
    );
    return { sessions: rows.slice(0, filters.limit).map(toSummary), more: rows.length > filters.limit };
  }

  /** One session's summary and its blocks in event-time order; undefined when the team has no such session. */
  async get(
    teamId: number,
    sessionId: string,
  ): Promise<{ summary: SessionSummary; blocks: SessionBlock[] } | undefined> {
    const [row] = await this.select<
      SummaryRecord & { block_first_ms: number[]; block_last_ms: number[]; block_urls: string[] }
    >(
      `SELECT ${summaryColumns},
              arrayMap(t -> toUnixTimestamp64Milli(t), block_first_timestamps) AS block_first_ms,
              arrayMap(t -> toUnixTimestamp64Milli(t), block_last_timestamps) AS block_last_ms,
              block_urls
         FROM session_replay_events_merged
        WHERE team_id = {teamId:Int64} AND session_id = {sessionId:String}`,
      { teamId, sessionId },
    );
    if (!row) return undefined;
    return { summary: toSummary(row), blocks: orderBlocks(row.block_first_ms, row.block_last_ms, row.block_urls) };
  }

  private async select<Row>(query: string, params: Record<string, unknown>): Promise<Row[]> {
    const query_params = Object.fromEntries(Object.entries(params).filter(([, value]) => value !== undefined));
    try {
      const result = await this.clickhouse.query({ query, query_params, format: 'JSONEachRow' });
      return await result.json<Row>();
    } catch (error) {
      throw new ReplayError('clickhouse_unavailable', `session query failed: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
}

/**
 * The aligned block arrays as a list in event-time order. A block that appears twice (a row stored twice) is listed
 * once, since playing it twice shows nothing new; the summary's `duplicate_blocks` counts such copies. Ties on time
 * are broken by address so the numbering is the same on every call.
 */
export function orderBlocks(firsts: number[], lasts: number[], urls: string[]): SessionBlock[] {
  const byUrl = new Map<string, { firstTimestamp: number; lastTimestamp: number; url: string }>();
  urls.forEach((url, i) => {
    if (!byUrl.has(url)) byUrl.set(url, { firstTimestamp: firsts[i]!, lastTimestamp: lasts[i]!, url });
  });
  return [...byUrl.values()]
    .sort((a, b) => a.firstTimestamp - b.firstTimestamp || (a.url < b.url ? -1 : a.url > b.url ? 1 : 0))
    .map((block, index) => ({
      index,
      id: createHash('sha256').update(block.url).digest('base64url').slice(0, 22),
      ...block,
    }));
}
