-- One row per session block (written by the blob consumer's summary rows); AggregatingMergeTree folds the rows of a
-- session into one as parts merge. Read through the session_replay_events_merged view, which merges what has not
-- been merged yet. Non-key columns are all aggregates, so no allow_dimensions_outside_sorting_key is needed.
-- ORDER BY (team_id, session_id) and the minmax index were chosen with bench/clickhouse/order-by.ts (docs/clickhouse.md):
-- fetching a session by id is a binary search without knowing its day, and listing a team's sessions of a day skips
-- granules through the minmax index, since session ids (UUIDv7 from posthog-js) grow with the session's start.
CREATE TABLE IF NOT EXISTS session_replay_events
(
    team_id Int64,
    session_id String,
    distinct_id SimpleAggregateFunction(any, String),
    min_first_timestamp SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    max_last_timestamp SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    -- Aligned block arrays: entry i of each is block i (groupArrayArray concatenates them in the same row order).
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
    INDEX min_first_timestamp_minmax min_first_timestamp TYPE minmax GRANULARITY 1
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(min_first_timestamp)
ORDER BY (team_id, session_id)
-- Lets an insert carry insert_deduplication_token on a non-replicated table: a retried batch is stored once.
SETTINGS non_replicated_deduplication_window = 10000
