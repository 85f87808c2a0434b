-- One user's timeline as a point lookup (the Mux seed's materialized index table): the behaviours again, sorted by
-- (tenant_id, user_id, timestamp, event_id), filled by a materialized view in the same insert as user_behaviors (and
-- deduplicated with it). Chosen over a projection of user_behaviors with bench/uba/order-by.ts (docs/uba.md): on 10 M
-- rows both read 24.6 k rows for a user's latest 100 behaviours (90.1 k without either), p50 11-12 ms, but a
-- projection's columns ignore the table's codecs (LZ4 instead of ZSTD(1)): +481 MB for the copy against +319 MB here,
-- and with a projection every lightweight DELETE (a per-person delete, DESIGN §3.9) would rebuild it in every part it
-- touches. A `_part_offset` projection (an index only) was not used by the planner for ORDER BY ... LIMIT and read as
-- much as no index.
CREATE TABLE IF NOT EXISTS user_behaviors_by_user
(
    tenant_id Int64,
    user_id String CODEC(ZSTD(1)),
    timestamp DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    event_id UUID,
    date Date MATERIALIZED toDate(timestamp),
    item_id String CODEC(ZSTD(1)),
    action_type LowCardinality(String) CODEC(ZSTD(1)),
    scenario_id LowCardinality(String) CODEC(ZSTD(1)),
    session_id String CODEC(ZSTD(1)),
    view_id String CODEC(ZSTD(1)),
    watch_duration Float64 CODEC(ZSTD(1)),
    completion_rate Float64 CODEC(ZSTD(1)),
    experiment_id LowCardinality(String) CODEC(ZSTD(1)),
    experiment_group LowCardinality(String) CODEC(ZSTD(1)),
    device_type LowCardinality(String) CODEC(ZSTD(1)),
    os LowCardinality(String) CODEC(ZSTD(1)),
    location LowCardinality(String) CODEC(ZSTD(1)),
    ip String CODEC(ZSTD(1)),
    current_url String CODEC(ZSTD(1)),
    properties Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    source LowCardinality(String) CODEC(ZSTD(1)),
    captured_at DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(date)
ORDER BY (tenant_id, user_id, timestamp, event_id)
TTL date + INTERVAL 90 DAY
-- insertBehaviors sets deduplicate_blocks_in_dependent_materialized_views: a retried insert reaches this table again
-- and is deduplicated here by the token derived from the insert's own.
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS user_behaviors_by_user_mv TO user_behaviors_by_user AS
SELECT
    tenant_id, user_id, timestamp, event_id, item_id, action_type, scenario_id, session_id, view_id, watch_duration,
    completion_rate, experiment_id, experiment_group, device_type, os, location, ip, current_url, properties, source,
    captured_at
FROM user_behaviors
