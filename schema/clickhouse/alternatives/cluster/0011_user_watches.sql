-- 0011 on a cluster. The behaviour sink inserts into user_watches itself (no view fills it), so its Distributed table
-- has a sharding key: the watch's tenant and user, part of its key, so that a state's +1 row and the -1 rows that
-- cancel it always meet on one shard and collapse there. It needs no topic partition: a watch state not newer than
-- the stored one is a no-op, so nothing here depends on a resume point.
CREATE TABLE IF NOT EXISTS user_watches_local ON CLUSTER '{cluster}'
(
    tenant_id Int64,
    user_id String CODEC(ZSTD(1)),
    view_id String CODEC(ZSTD(1)),
    version UInt64,
    sign Int8,
    date Date MATERIALIZED toDate(timestamp),
    timestamp DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    event_id UUID,
    item_id String CODEC(ZSTD(1)),
    scenario_id LowCardinality(String) CODEC(ZSTD(1)),
    session_id String CODEC(ZSTD(1)),
    watch_duration Float64,
    completion_rate Float64
)
ENGINE = ReplicatedVersionedCollapsingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', sign, version)
PARTITION BY toYYYYMM(date)
ORDER BY (tenant_id, user_id, view_id)
TTL date + INTERVAL 90 DAY
SETTINGS replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS user_watches ON CLUSTER '{cluster}'
(
    tenant_id Int64,
    user_id String,
    view_id String,
    version UInt64,
    sign Int8,
    date Date MATERIALIZED toDate(timestamp),
    timestamp DateTime64(3, 'UTC'),
    event_id UUID,
    item_id String,
    scenario_id LowCardinality(String),
    session_id String,
    watch_duration Float64,
    completion_rate Float64
)
ENGINE = Distributed('{cluster}', currentDatabase(), user_watches_local, cityHash64(tenant_id, user_id));

-- On the shard that stored the watch rows, into that shard's uba_item_daily_local (0009).
CREATE MATERIALIZED VIEW IF NOT EXISTS uba_item_daily_watches_mv ON CLUSTER '{cluster}' TO uba_item_daily_local AS
SELECT
    tenant_id,
    date,
    item_id,
    sumState(toInt64(sign)) AS views,
    sumState(sign * watch_duration) AS watch_time
FROM user_watches_local
WHERE item_id != ''
GROUP BY tenant_id, date, item_id;

-- Over the Distributed table: a watch's rows are on one shard, so the single-node answer.
CREATE VIEW IF NOT EXISTS user_watches_latest ON CLUSTER '{cluster}' AS
SELECT
    tenant_id,
    user_id,
    view_id,
    argMax(item_id, version) AS item_id,
    argMax(scenario_id, version) AS scenario_id,
    argMax(session_id, version) AS session_id,
    argMax(event_id, version) AS event_id,
    argMax(timestamp, version) AS timestamp,
    sum(sign * watch_duration) AS watch_duration,
    sum(sign * completion_rate) AS completion_rate,
    max(version) AS updates
FROM user_watches
GROUP BY tenant_id, user_id, view_id
HAVING sum(sign) > 0
