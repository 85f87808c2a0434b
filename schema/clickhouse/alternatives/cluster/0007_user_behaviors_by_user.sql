-- 0007 on a cluster. The view reads user_behaviors_local and writes user_behaviors_by_user_local of the same shard,
-- so a user's timeline index sits beside their behaviours. Its Distributed table has no sharding key: nothing inserts
-- into it (on more than one shard ClickHouse refuses an insert into a Distributed table without one), rows arrive
-- only through the view.
CREATE TABLE IF NOT EXISTS user_behaviors_by_user_local ON CLUSTER '{cluster}'
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
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(date)
ORDER BY (tenant_id, user_id, timestamp, event_id)
TTL date + INTERVAL 90 DAY
SETTINGS replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS user_behaviors_by_user ON CLUSTER '{cluster}'
(
    tenant_id Int64,
    user_id String,
    timestamp DateTime64(3, 'UTC'),
    event_id UUID,
    date Date MATERIALIZED toDate(timestamp),
    item_id String,
    action_type LowCardinality(String),
    scenario_id LowCardinality(String),
    session_id String,
    view_id String,
    watch_duration Float64,
    completion_rate Float64,
    experiment_id LowCardinality(String),
    experiment_group LowCardinality(String),
    device_type LowCardinality(String),
    os LowCardinality(String),
    location LowCardinality(String),
    ip String,
    current_url String,
    properties Map(LowCardinality(String), String),
    source LowCardinality(String),
    captured_at DateTime64(3, 'UTC')
)
ENGINE = Distributed('{cluster}', currentDatabase(), user_behaviors_by_user_local);

CREATE MATERIALIZED VIEW IF NOT EXISTS user_behaviors_by_user_mv ON CLUSTER '{cluster}' TO user_behaviors_by_user_local AS
SELECT
    tenant_id, user_id, timestamp, event_id, item_id, action_type, scenario_id, session_id, view_id, watch_duration,
    completion_rate, experiment_id, experiment_group, device_type, os, location, ip, current_url, properties, source,
    captured_at
FROM user_behaviors_local
