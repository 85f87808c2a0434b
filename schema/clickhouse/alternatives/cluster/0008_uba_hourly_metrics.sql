-- 0008 on a cluster. The view runs on the shard that stored the behaviours (user_behaviors_local) and writes that
-- shard's uba_hourly_metrics_local: each shard holds partial states for its own users, and a read through the
-- Distributed table merges them with -Merge (uniqCombined64Merge of the shards' states counts the union of their users,
-- as it does for the parts of one node). No sharding key: rows arrive only through the view.
CREATE TABLE IF NOT EXISTS uba_hourly_metrics_local ON CLUSTER '{cluster}'
(
    tenant_id Int64,
    hour DateTime('UTC'),
    action_type LowCardinality(String),
    scenario_id LowCardinality(String),
    events AggregateFunction(count),
    users AggregateFunction(uniqCombined64, String)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(hour)
ORDER BY (tenant_id, hour, action_type, scenario_id)
TTL toDate(hour) + INTERVAL 400 DAY
SETTINGS replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS uba_hourly_metrics ON CLUSTER '{cluster}'
(
    tenant_id Int64,
    hour DateTime('UTC'),
    action_type LowCardinality(String),
    scenario_id LowCardinality(String),
    events AggregateFunction(count),
    users AggregateFunction(uniqCombined64, String)
)
ENGINE = Distributed('{cluster}', currentDatabase(), uba_hourly_metrics_local);

CREATE MATERIALIZED VIEW IF NOT EXISTS uba_hourly_metrics_mv ON CLUSTER '{cluster}' TO uba_hourly_metrics_local AS
SELECT
    tenant_id,
    toStartOfHour(timestamp) AS hour,
    action_type,
    scenario_id,
    countState() AS events,
    uniqCombined64State(user_id) AS users
FROM user_behaviors_local
GROUP BY tenant_id, hour, action_type, scenario_id
