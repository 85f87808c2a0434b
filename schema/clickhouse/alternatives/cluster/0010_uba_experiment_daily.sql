-- 0010 on a cluster: written on each shard by the view from user_behaviors_local. uniqExactMerge over the shards'
-- states is the exact number of distinct users of the union, so lift and p-values see the single-node counts. No
-- sharding key: rows arrive only through the view.
CREATE TABLE IF NOT EXISTS uba_experiment_daily_local ON CLUSTER '{cluster}'
(
    tenant_id Int64,
    experiment_id LowCardinality(String),
    experiment_group LowCardinality(String),
    date Date,
    users AggregateFunction(uniqExact, String),
    converted_users AggregateFunction(uniqExact, String),
    events AggregateFunction(count)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(date)
ORDER BY (tenant_id, experiment_id, experiment_group, date)
TTL date + INTERVAL 400 DAY
SETTINGS replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS uba_experiment_daily ON CLUSTER '{cluster}'
(
    tenant_id Int64,
    experiment_id LowCardinality(String),
    experiment_group LowCardinality(String),
    date Date,
    users AggregateFunction(uniqExact, String),
    converted_users AggregateFunction(uniqExact, String),
    events AggregateFunction(count)
)
ENGINE = Distributed('{cluster}', currentDatabase(), uba_experiment_daily_local);

CREATE MATERIALIZED VIEW IF NOT EXISTS uba_experiment_daily_mv ON CLUSTER '{cluster}' TO uba_experiment_daily_local AS
SELECT
    tenant_id,
    experiment_id,
    experiment_group,
    date,
    uniqExactState(user_id) AS users,
    uniqExactStateIf(user_id, action_type = 'order') AS converted_users,
    countState() AS events
FROM user_behaviors_local
WHERE experiment_id != ''
GROUP BY tenant_id, experiment_id, experiment_group, date
