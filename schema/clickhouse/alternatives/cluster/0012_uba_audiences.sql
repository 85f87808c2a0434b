-- 0012 on a cluster: each shard's view writes groupBitmap states of its own users; a read through the Distributed
-- table ORs the shards' bitmaps (groupBitmapMerge), and since a user is on one shard the bitmaps are disjoint. No
-- sharding key: rows arrive only through the view.
CREATE TABLE IF NOT EXISTS uba_audiences_local ON CLUSTER '{cluster}'
(
    tenant_id Int64,
    action_type LowCardinality(String),
    date Date,
    users AggregateFunction(groupBitmap, UInt64)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(date)
ORDER BY (tenant_id, action_type, date)
TTL date + INTERVAL 90 DAY
SETTINGS replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS uba_audiences ON CLUSTER '{cluster}'
(
    tenant_id Int64,
    action_type LowCardinality(String),
    date Date,
    users AggregateFunction(groupBitmap, UInt64)
)
ENGINE = Distributed('{cluster}', currentDatabase(), uba_audiences_local);

CREATE MATERIALIZED VIEW IF NOT EXISTS uba_audiences_mv ON CLUSTER '{cluster}' TO uba_audiences_local AS
SELECT
    tenant_id,
    action_type,
    date,
    groupBitmapState(sipHash64(user_id)) AS users
FROM user_behaviors_local
GROUP BY tenant_id, action_type, date
