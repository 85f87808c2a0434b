-- ALTERNATIVE to `replay sink`, NOT applied by `replay migrate` (which reads only schema/clickhouse/NNNN_*.sql):
-- ClickHouse consumes the summary topic itself through a Kafka engine table, and a materialized view builds the same
-- aggregate states as insertSummaryRows (src/clickhouse/session-replay-events.ts) into session_replay_events.
-- Trade-offs against the sink, and how to switch: docs/clickhouse.md ("The Kafka engine alternative").
--
-- Apply after the migrations (0001..), once, statement by statement (split on ";" at the end of a line), after
-- substituting the placeholders:
--   {kafka_broker_list}  the brokers, host:port[,host:port...]
--   {kafka_topic}        the summary topic: clickhouse_session_replay_events
--   {kafka_group_name}   the consumer group, e.g. clickhouse-session-replay-events; never the sink's SINK_GROUP_ID
-- Every statement is idempotent (IF NOT EXISTS). To stop consuming: DROP the two materialized views, then the table.
--
-- Isolation: librdkafka, which the engine uses, reads with isolation.level = read_committed unless the server
-- configuration overrides it (<kafka><isolation_level> in config.xml: librdkafka properties cannot be set per table),
-- so rows of a blob-consumer transaction that aborted are never inserted. The integration test checks it.

-- One JSONEachRow SummaryRow (src/recordings/summary-row.ts) per message. Fields added to SummaryRow later are skipped.
CREATE TABLE IF NOT EXISTS session_replay_events_kafka
(
    team_id Int64,
    session_id String,
    distinct_id String,
    first_timestamp DateTime64(3, 'UTC'),
    last_timestamp DateTime64(3, 'UTC'),
    block_url String,
    first_url Nullable(String),
    first_url_timestamp Nullable(DateTime64(3, 'UTC')),
    urls Array(String),
    click_count Int64,
    keypress_count Int64,
    mouse_activity_count Int64,
    active_milliseconds Int64,
    console_log_count Int64,
    console_warn_count Int64,
    console_error_count Int64,
    size Int64,
    event_count Int64,
    message_count Int64,
    snapshot_source String,
    snapshot_library String,
    retention_period_days Int64
)
ENGINE = Kafka
SETTINGS
    kafka_broker_list = '{kafka_broker_list}',
    kafka_topic_list = '{kafka_topic}',
    kafka_group_name = '{kafka_group_name}',
    kafka_format = 'JSONEachRow',
    -- A message that does not parse becomes a row with defaults and _error set instead of stopping the consumer:
    -- the views below send it to session_replay_events_kafka_errors and keep it out of session_replay_events.
    kafka_handle_error_mode = 'stream',
    -- One insert into session_replay_events per this many ms or rows, whichever comes first.
    kafka_flush_interval_ms = 1000,
    kafka_max_block_size = 65536,
    input_format_skip_unknown_fields = 1;

-- Messages that did not parse, with where they came from, kept 30 days.
CREATE TABLE IF NOT EXISTS session_replay_events_kafka_errors
(
    received_at DateTime64(3, 'UTC'),
    topic String,
    partition Int64,
    offset Int64,
    raw_message String,
    error String
)
ENGINE = MergeTree
ORDER BY (topic, partition, offset)
TTL toDateTime(received_at) + INTERVAL 30 DAY;

-- The same columns and states as insertSummaryRows; source columns are qualified (k.) where an output column of the
-- same name is an aggregate state built from them. _kafka_partition/_kafka_offset come from the message itself, so
-- `replay sink` can take over from the engine (it resumes after the highest stored offset of each partition).
CREATE MATERIALIZED VIEW IF NOT EXISTS session_replay_events_kafka_mv TO session_replay_events AS
SELECT
    k.team_id AS team_id,
    k.session_id AS session_id,
    k.distinct_id AS distinct_id,
    k.first_timestamp AS min_first_timestamp,
    k.last_timestamp AS max_last_timestamp,
    [k.first_timestamp] AS block_first_timestamps,
    [k.last_timestamp] AS block_last_timestamps,
    [k.block_url] AS block_urls,
    arrayReduce('argMinState', [k.first_url], [coalesce(k.first_url_timestamp, k.first_timestamp)]) AS first_url,
    k.urls AS all_urls,
    k.click_count AS click_count,
    k.keypress_count AS keypress_count,
    k.mouse_activity_count AS mouse_activity_count,
    k.active_milliseconds AS active_milliseconds,
    k.console_log_count AS console_log_count,
    k.console_warn_count AS console_warn_count,
    k.console_error_count AS console_error_count,
    k.size AS size,
    k.event_count AS event_count,
    k.message_count AS message_count,
    arrayReduce('argMinState', [toLowCardinality(k.snapshot_source)], [k.first_timestamp]) AS snapshot_source,
    arrayReduce('argMinState', [k.snapshot_library], [k.first_timestamp]) AS snapshot_library,
    k.retention_period_days AS retention_period_days,
    toUInt8(0) AS is_deleted,
    now64(3) AS _inserted_at,
    toInt32(k._partition) AS _kafka_partition,
    toInt64(k._offset) AS _kafka_offset,
    k._topic AS _kafka_topic
FROM session_replay_events_kafka AS k
WHERE length(k._error) = 0;

-- Created last: the engine starts consuming with the first view that reads it, and a block read before the main view
-- existed would reach only this one (its good rows lost).
CREATE MATERIALIZED VIEW IF NOT EXISTS session_replay_events_kafka_errors_mv TO session_replay_events_kafka_errors AS
SELECT
    now64(3) AS received_at,
    _topic AS topic,
    toInt64(_partition) AS partition,
    toInt64(_offset) AS offset,
    _raw_message AS raw_message,
    _error AS error
FROM session_replay_events_kafka
WHERE length(_error) > 0;
