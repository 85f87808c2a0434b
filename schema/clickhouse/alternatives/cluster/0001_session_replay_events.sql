-- ClickHouse cluster variant of the schema (docs/scaling.md, "ClickHouse on a cluster"). Every table of
-- schema/clickhouse/NNNN_*.sql becomes two: `<name>_local`, created on every replica of every shard with the
-- Replicated* engine matching the original (same columns, sorting key, partitions, TTL, indices, projections), and a
-- Distributed table under the original name, which is what the sinks insert into and the API reads, so the code runs
-- unchanged. Materialized views sit on each shard between local tables: an insert reaches the shard's
-- `user_behaviors_local`, and its views write that shard's `*_local` roll-ups (then replication copies the parts).
--
-- Apply on a fresh cluster, in file order, statement by statement (split on ";" at the end of a line, as
-- migrateClickHouse does), INSTEAD of schema/clickhouse/NNNN_*.sql. Nothing may apply those to the cluster (`replay
-- migrate`, and the sinks and `replay reindex`, which migrate at start): run first, they would create single-node
-- tables under the names these Distributed tables take; run after, they fail at 0004 (docs/scaling.md, §7). Every
-- statement is idempotent (IF NOT EXISTS) and runs ON CLUSTER '{cluster}'; each server's config provides the
-- {cluster}, {shard} and {replica} macros ({database} and {table} are filled in by ClickHouse). The cluster's
-- internal_replication must be true: the Replicated engines copy parts, not the Distributed tables.
--
-- This file is 0001 and the state 0003-0005, 0014 and 0015 leave it in: the _kafka_* columns (same order, same
-- defaults), the kafka_topic_position projection (0004's kafka_position was dropped by 0005), the retention TTL
-- (0014) and lightweight_mutation_projection_mode (0015). A new single-node migration needs its counterpart in these
-- files: test/unit/clickhouse-cluster-ddl.test.ts compares the two schemas and fails on any difference.
CREATE TABLE IF NOT EXISTS session_replay_events_local ON CLUSTER '{cluster}'
(
    team_id Int64,
    session_id String,
    distinct_id SimpleAggregateFunction(any, String),
    min_first_timestamp SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    max_last_timestamp SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    block_first_timestamps SimpleAggregateFunction(groupArrayArray, Array(DateTime64(3, 'UTC'))),
    block_last_timestamps SimpleAggregateFunction(groupArrayArray, Array(DateTime64(3, 'UTC'))),
    block_urls SimpleAggregateFunction(groupArrayArray, Array(String)),
    first_url AggregateFunction(argMin, Nullable(String), DateTime64(3, 'UTC')),
    all_urls SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    click_count SimpleAggregateFunction(sum, Int64),
    keypress_count SimpleAggregateFunction(sum, Int64),
    mouse_activity_count SimpleAggregateFunction(sum, Int64),
    active_milliseconds SimpleAggregateFunction(sum, Int64),
    console_log_count SimpleAggregateFunction(sum, Int64),
    console_warn_count SimpleAggregateFunction(sum, Int64),
    console_error_count SimpleAggregateFunction(sum, Int64),
    size SimpleAggregateFunction(sum, Int64),
    event_count SimpleAggregateFunction(sum, Int64),
    message_count SimpleAggregateFunction(sum, Int64),
    snapshot_source AggregateFunction(argMin, LowCardinality(String), DateTime64(3, 'UTC')),
    snapshot_library AggregateFunction(argMin, String, DateTime64(3, 'UTC')),
    retention_period_days SimpleAggregateFunction(max, Int64),
    is_deleted SimpleAggregateFunction(max, UInt8),
    _inserted_at SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    _kafka_partition SimpleAggregateFunction(any, Int32) DEFAULT -1,
    _kafka_offset SimpleAggregateFunction(max, Int64) DEFAULT -1,
    _kafka_topic SimpleAggregateFunction(any, LowCardinality(String)) DEFAULT 'clickhouse_session_replay_events',
    INDEX min_first_timestamp_minmax min_first_timestamp TYPE minmax GRANULARITY 1,
    PROJECTION kafka_topic_position
    (
        SELECT _kafka_topic, _kafka_partition, max(_kafka_offset), count() GROUP BY _kafka_topic, _kafka_partition
    )
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(min_first_timestamp)
ORDER BY (team_id, session_id)
TTL toDateTime(min_first_timestamp) + toIntervalDay(retention_period_days)
SETTINGS
    -- The replicated counterpart of non_replicated_deduplication_window: insert_deduplication_token works on
    -- Replicated tables through Keeper, for the last 10,000 blocks (and at most replicated_deduplication_window_seconds).
    replicated_deduplication_window = 10000,
    deduplicate_merge_projection_mode = 'rebuild',
    -- Lightweight DELETEs (0015) rebuild the projection in the parts they touch. They must target this table ON
    -- CLUSTER: ClickHouse refuses a DELETE on a Distributed table.
    lightweight_mutation_projection_mode = 'rebuild';

-- Sharded by the summary-topic partition the row came through, not by team. Every row of a session travels through one
-- partition (the topic is keyed by team and session), so a session's blocks fold on one shard; and every row of a
-- partition lands on one shard, so the sink's resume point (max(_kafka_offset) of a partition, insertedUpTo) is read
-- from the one shard that holds that partition's rows, exact even when an insert reached some shards and not others.
-- cityHash64(team_id) would keep a team on one shard, but a partition's rows would then be spread over every shard,
-- and a crash after a partly failed insert would make the resume point skip rows (docs/scaling.md). Rows written by
-- `replay reindex` carry _kafka_partition -1 and all go to one shard.
CREATE TABLE IF NOT EXISTS session_replay_events ON CLUSTER '{cluster}'
(
    team_id Int64,
    session_id String,
    distinct_id SimpleAggregateFunction(any, String),
    min_first_timestamp SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    max_last_timestamp SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    block_first_timestamps SimpleAggregateFunction(groupArrayArray, Array(DateTime64(3, 'UTC'))),
    block_last_timestamps SimpleAggregateFunction(groupArrayArray, Array(DateTime64(3, 'UTC'))),
    block_urls SimpleAggregateFunction(groupArrayArray, Array(String)),
    first_url AggregateFunction(argMin, Nullable(String), DateTime64(3, 'UTC')),
    all_urls SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    click_count SimpleAggregateFunction(sum, Int64),
    keypress_count SimpleAggregateFunction(sum, Int64),
    mouse_activity_count SimpleAggregateFunction(sum, Int64),
    active_milliseconds SimpleAggregateFunction(sum, Int64),
    console_log_count SimpleAggregateFunction(sum, Int64),
    console_warn_count SimpleAggregateFunction(sum, Int64),
    console_error_count SimpleAggregateFunction(sum, Int64),
    size SimpleAggregateFunction(sum, Int64),
    event_count SimpleAggregateFunction(sum, Int64),
    message_count SimpleAggregateFunction(sum, Int64),
    snapshot_source AggregateFunction(argMin, LowCardinality(String), DateTime64(3, 'UTC')),
    snapshot_library AggregateFunction(argMin, String, DateTime64(3, 'UTC')),
    retention_period_days SimpleAggregateFunction(max, Int64),
    is_deleted SimpleAggregateFunction(max, UInt8),
    _inserted_at SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    _kafka_partition SimpleAggregateFunction(any, Int32) DEFAULT -1,
    _kafka_offset SimpleAggregateFunction(max, Int64) DEFAULT -1,
    _kafka_topic SimpleAggregateFunction(any, LowCardinality(String)) DEFAULT 'clickhouse_session_replay_events'
)
ENGINE = Distributed('{cluster}', currentDatabase(), session_replay_events_local, _kafka_partition)
