import type { ClickHouseClient } from '@clickhouse/client';
import type { SummaryRow } from '../recordings/summary-row.ts';

/** The JSONEachRow shape of a summary row, as `format()` reads it. */
const SUMMARY_ROW_STRUCTURE = [
  'team_id Int64',
  'session_id String',
  'distinct_id String',
  "first_timestamp DateTime64(3, 'UTC')",
  "last_timestamp DateTime64(3, 'UTC')",
  'block_url String',
  'first_url Nullable(String)',
  "first_url_timestamp Nullable(DateTime64(3, 'UTC'))",
  'urls Array(String)',
  'click_count Int64',
  'keypress_count Int64',
  'mouse_activity_count Int64',
  'active_milliseconds Int64',
  'console_log_count Int64',
  'console_warn_count Int64',
  'console_error_count Int64',
  'size Int64',
  'event_count Int64',
  'message_count Int64',
  'snapshot_source String',
  'snapshot_library String',
  'retention_period_days Int64',
  '_kafka_partition Int32',
  '_kafka_offset Int64',
  '_kafka_topic String',
  'is_deleted UInt8',
].join(', ');

const quote = (text: string) => `'${text.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;

/**
 * Inserts summary rows into `session_replay_events`, building the aggregate states per row with `arrayReduce`
 * (chDB writes nothing for `INSERT ... SELECT FROM input()`, so the rows travel inline through `format()`).
 * With `deduplicationToken`, inserting the same batch again stores nothing new.
 */
export async function insertSummaryRows(
  client: ClickHouseClient,
  rows: readonly (SummaryRow & {
    readonly _kafka_partition?: number;
    readonly _kafka_offset?: number;
    readonly _kafka_topic?: string;
    /** 1: the session's deletion marker (DESIGN §3.9); its blocks and personal data are not in it. */
    readonly is_deleted?: 0 | 1;
  })[],
  deduplicationToken?: string,
): Promise<void> {
  if (rows.length === 0) return;
  const data = rows.map((row) => JSON.stringify(row)).join('\n');
  await client.command({
    query: `INSERT INTO session_replay_events
      SELECT
        team_id,
        session_id,
        distinct_id,
        first_timestamp,
        last_timestamp,
        if(is_deleted = 1, [], [first_timestamp]),
        if(is_deleted = 1, [], [last_timestamp]),
        if(is_deleted = 1, [], [block_url]),
        arrayReduce('argMinState', [first_url], [coalesce(first_url_timestamp, first_timestamp)]),
        urls,
        click_count,
        keypress_count,
        mouse_activity_count,
        active_milliseconds,
        console_log_count,
        console_warn_count,
        console_error_count,
        size,
        event_count,
        message_count,
        arrayReduce('argMinState', [toLowCardinality(snapshot_source)], [first_timestamp]),
        arrayReduce('argMinState', [snapshot_library], [first_timestamp]),
        retention_period_days,
        is_deleted,
        now64(3),
        _kafka_partition,
        _kafka_offset,
        _kafka_topic
      FROM format(JSONEachRow, ${quote(SUMMARY_ROW_STRUCTURE)}, ${quote(data)})`,
    clickhouse_settings: {
      max_query_size: String(Math.max(262_144, data.length * 2 + 65_536)),
      input_format_skip_unknown_fields: 1,
      input_format_defaults_for_omitted_fields: 1,
      ...(deduplicationToken ? { insert_deduplication_token: deduplicationToken } : {}),
    },
  });
}

/** The highest offset stored from one summary-topic partition (-1 when none): where the sink resumes. */
export async function insertedUpTo(client: ClickHouseClient, topic: string, partition: number): Promise<number> {
  const [row] = await (
    await client.query({
      // max() and count() exactly as the kafka_topic_position projection (0005) holds them, so this reads a few
      // projection rows per part instead of the table. count() tells "no rows" from a stored offset 0.
      query: `SELECT max(_kafka_offset) AS offset, count() AS rows FROM session_replay_events
                WHERE _kafka_topic = {topic:String} AND _kafka_partition = {partition:Int32}`,
      query_params: { topic, partition },
      format: 'JSONEachRow',
    })
  ).json<{ offset: number; rows: number }>();
  return row && row.rows > 0 ? row.offset : -1;
}
