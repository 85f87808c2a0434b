-- Daily stats per tenant and item: impressions, clicks, views, orders, unique users and watch time, for top items.
-- Fed by a materialized view on user_behaviors (this file) and, for watches updated as they continue (view_id set),
-- by one on user_watches (0011), which adds each watch once with its latest state: views and watch_time are sums so
-- that a cancelled state (sign -1) subtracts. Read with -Merge, grouped by whatever range of days is asked.
CREATE TABLE IF NOT EXISTS uba_item_daily
(
    tenant_id Int64,
    date Date,
    item_id String CODEC(ZSTD(1)),
    impressions AggregateFunction(count),
    clicks AggregateFunction(count),
    -- Views without a view_id (one row each) plus watches (one per view_id, from user_watches).
    views AggregateFunction(sum, Int64),
    orders AggregateFunction(count),
    users AggregateFunction(uniqCombined64, String),
    -- Seconds: watch_duration of behaviours without a view_id plus each watch's latest watch_duration.
    watch_time AggregateFunction(sum, Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(date)
ORDER BY (tenant_id, date, item_id)
TTL date + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS uba_item_daily_mv TO uba_item_daily AS
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
FROM user_behaviors
WHERE item_id != ''
GROUP BY tenant_id, date, item_id
