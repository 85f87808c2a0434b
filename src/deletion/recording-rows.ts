import { randomUUID } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import { insertSummaryRows } from '../clickhouse/session-replay-events.ts';
import type { DeletedMarker, DeletionFilter } from './deletion-store.ts';

/** What a session's rows hold now: the fields of its `is_deleted` row, its block addresses, when it was last written. */
export interface SessionRows extends Record<string, unknown> {
  session_id: string;
  min_first_timestamp: string;
  max_last_timestamp: string;
  retention_period_days: string | number;
  kafka_topic: string;
  kafka_partition: number;
  kafka_offset: string | number;
  block_urls: string[];
  inserted_up_to: string;
}

/** The marker fields of a session's current rows. */
export function markerOf(rows: SessionRows): DeletedMarker {
  return {
    firstTimestamp: rows.min_first_timestamp,
    lastTimestamp: rows.max_last_timestamp,
    retentionDays: Number(rows.retention_period_days),
    kafkaTopic: rows.kafka_topic,
    kafkaPartition: Number(rows.kafka_partition),
    kafkaOffset: Number(rows.kafka_offset),
  };
}

/**
 * The ClickHouse half of deleting recordings (session_replay_events): which sessions a person or a filter covers,
 * the addresses of their blocks, and replacing their rows with one `is_deleted` row each.
 */
export class RecordingRows {
  private readonly clickhouse: ClickHouseClient;

  constructor(clickhouse: ClickHouseClient) {
    this.clickhouse = clickhouse;
  }

  /** Ids of the team's live sessions matching `filter` (a person's sessions: `{distinctId}`). */
  async matching(teamId: number, filter: DeletionFilter): Promise<string[]> {
    const where = ['team_id = {team:Int64}'];
    const having: string[] = [];
    const params: Record<string, unknown> = { team: teamId };
    if (filter.fromMs !== undefined) {
      having.push("start_time >= fromUnixTimestamp64Milli({from:Int64}, 'UTC')");
      params.from = filter.fromMs;
    }
    if (filter.toMs !== undefined) {
      having.push("start_time < fromUnixTimestamp64Milli({to:Int64}, 'UTC')");
      params.to = filter.toMs;
    }
    if (filter.distinctId !== undefined) {
      // Any of the session's rows, not the merged row's one distinct id: a session identified half-way has two.
      having.push(
        'session_id IN (SELECT session_id FROM session_replay_events WHERE team_id = {team:Int64} AND distinct_id = {distinct:String})',
      );
      params.distinct = filter.distinctId;
    }
    if (filter.urlContains !== undefined) {
      having.push('arrayExists(u -> position(u, {url:String}) > 0, all_urls)');
      params.url = filter.urlContains;
    }
    const result = await this.clickhouse.query({
      query: `SELECT session_id FROM session_replay_events_merged WHERE ${where.join(' AND ')}
        ${having.length > 0 ? `AND ${having.join(' AND ')}` : ''} ORDER BY session_id`,
      query_params: params,
      format: 'JSONEachRow',
    });
    return (await result.json<{ session_id: string }>()).map((row) => row.session_id);
  }

  /** What the rows of these sessions hold now, their block addresses included (none for a session without rows). */
  async current(teamId: number, sessionIds: readonly string[]): Promise<SessionRows[]> {
    if (sessionIds.length === 0) return [];
    const result = await this.clickhouse.query({
      query: `SELECT session_id,
          toString(min(min_first_timestamp)) AS min_first_timestamp,
          toString(max(max_last_timestamp)) AS max_last_timestamp,
          max(retention_period_days) AS retention_period_days,
          argMax(_kafka_topic, _kafka_offset) AS kafka_topic,
          argMax(_kafka_partition, _kafka_offset) AS kafka_partition,
          max(_kafka_offset) AS kafka_offset,
          arrayDistinct(groupArrayArray(block_urls)) AS block_urls,
          toString(max(_inserted_at)) AS inserted_up_to
        FROM session_replay_events
        WHERE team_id = {team:Int64} AND session_id IN {ids:Array(String)}
        GROUP BY session_id`,
      query_params: { team: teamId, ids: sessionIds },
      format: 'JSONEachRow',
    });
    return result.json<SessionRows>();
  }

  /**
   * Replaces the rows of these sessions written up to `upTo` (the newest `_inserted_at` that `current` saw) with one
   * `is_deleted` row each, carrying no personal data (no distinct id, URLs or block addresses), only what the TTL and
   * the sink's resume points read: the sessions leave listings and answer 404 from now on, whatever rows arrive later
   * (they merge with it and stay hidden, their addresses kept for the erasure). A session without rows (still in the
   * sink's topic) gets its row all the same. Keep the block addresses and markers elsewhere first (`current`).
   */
  async replaceWithDeletedRows(
    teamId: number,
    sessions: readonly { readonly sessionId: string; readonly marker: DeletedMarker }[],
    upTo: string | undefined,
  ): Promise<void> {
    if (sessions.length === 0) return;
    // The old rows go first, then the deleted row: in the other order a merge could fold the old rows' personal data
    // into the deleted row before the delete reached them. The markers are in Postgres, so a crash in between loses
    // nothing: the batch is hidden again on resume.
    if (upTo !== undefined) {
      await this.clickhouse.command({
        query: `DELETE FROM session_replay_events WHERE team_id = {team:Int64} AND session_id IN {ids:Array(String)}
                  AND _inserted_at <= toDateTime64({upTo:String}, 3, 'UTC')`,
        query_params: { team: teamId, ids: sessions.map((s) => s.sessionId), upTo },
      });
    }
    await insertSummaryRows(
      this.clickhouse,
      sessions.map(({ sessionId, marker }) => ({
        team_id: teamId,
        session_id: sessionId,
        distinct_id: '',
        first_timestamp: marker.firstTimestamp,
        last_timestamp: marker.lastTimestamp,
        block_url: '',
        first_url: null,
        first_url_timestamp: null,
        urls: [],
        click_count: 0,
        keypress_count: 0,
        mouse_activity_count: 0,
        active_milliseconds: 0,
        console_log_count: 0,
        console_warn_count: 0,
        console_error_count: 0,
        size: 0,
        event_count: 0,
        message_count: 0,
        snapshot_source: 'web',
        snapshot_library: '',
        retention_period_days: marker.retentionDays,
        source_offsets: '',
        _kafka_topic: marker.kafkaTopic,
        _kafka_partition: marker.kafkaPartition,
        _kafka_offset: marker.kafkaOffset,
        is_deleted: 1,
      })),
      // Never deduplicated against an earlier marker: a resumed batch removes that one first.
      `deleted:${randomUUID()}`,
    );
  }
}
