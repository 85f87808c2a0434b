-- Daily metrics per tenant, experiment and group: users, converting users (an order) and events. uniqExact, not
-- uniqCombined64: the experiments page computes lift, confidence intervals and p-values from these counts, and an
-- approximate count (~0.5 % error above ~10k users) would bias them. Merging the days of a range gives the distinct
-- users of the whole range, as the statistics need.
CREATE TABLE IF NOT EXISTS uba_experiment_daily
(
    tenant_id Int64,
    experiment_id LowCardinality(String),
    experiment_group LowCardinality(String),
    date Date,
    users AggregateFunction(uniqExact, String),
    converted_users AggregateFunction(uniqExact, String),
    events AggregateFunction(count)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(date)
ORDER BY (tenant_id, experiment_id, experiment_group, date)
TTL date + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS uba_experiment_daily_mv TO uba_experiment_daily AS
SELECT
    tenant_id,
    experiment_id,
    experiment_group,
    date,
    uniqExactState(user_id) AS users,
    uniqExactStateIf(user_id, action_type = 'order') AS converted_users,
    countState() AS events
FROM user_behaviors
WHERE experiment_id != ''
GROUP BY tenant_id, experiment_id, experiment_group, date
