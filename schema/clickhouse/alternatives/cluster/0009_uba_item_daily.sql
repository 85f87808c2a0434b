-- 0009 on a cluster: filled on each shard by the view below (from user_behaviors_local) and by the one on
-- user_watches_local (0011), both writing that shard's uba_item_daily_local. An item's rows are spread over the shards
-- of the users who touched it; a read through the Distributed table merges them. No sharding key: rows arrive only
-- through the views.
CREATE TABLE IF NOT EXISTS uba_item_daily_local ON CLUSTER '{cluster}'
(
    tenant_id Int64,
    date Date,
    item_id String CODEC(ZSTD(1)),
    impressions AggregateFunction(count),
    clicks AggregateFunction(count),
    views AggregateFunction(sum, Int64),
    orders AggregateFunction(count),
    users AggregateFunction(uniqCombined64, String),
    watch_time AggregateFunction(sum, Float64)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(date)
ORDER BY (tenant_id, date, item_id)
TTL date + INTERVAL 400 DAY
SETTINGS replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS uba_item_daily ON CLUSTER '{cluster}'
(
    tenant_id Int64,
    date Date,
    item_id String,
    impressions AggregateFunction(count),
    clicks AggregateFunction(count),
    views AggregateFunction(sum, Int64),
    orders AggregateFunction(count),
    users AggregateFunction(uniqCombined64, String),
    watch_time AggregateFunction(sum, Float64)
)
ENGINE = Distributed('{cluster}', currentDatabase(), uba_item_daily_local);

CREATE MATERIALIZED VIEW IF NOT EXISTS uba_item_daily_mv ON CLUSTER '{cluster}' TO uba_item_daily_local AS
SELECT
    tenant_id,
    date,
    item_id,
    countStateIf(action_type = 'impression') AS impressions,
    countStateIf(action_type = 'click') AS clicks,
    sumState(toInt64(action_type = 'view' AND view_id = '')) AS views,
    countStateIf(action_type = 'order') AS orders,
    uniqCombined64State(user_id) AS users,
    sumState(if(view_id = '', watch_duration, 0)) AS watch_time
FROM user_behaviors_local
WHERE item_id != ''
GROUP BY tenant_id, date, item_id
