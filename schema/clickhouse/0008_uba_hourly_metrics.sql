-- Hourly metrics per tenant, scenario and action: events and unique users, for the dashboard and trends. An
-- AggregatingMergeTree of -State columns, fed by a materialized view on user_behaviors (written by the same insert),
-- read with -Merge: uniqCombined64Merge over any set of rows (hours, actions, scenarios) is the number of distinct
-- users of the union, however many inserts and parts the rows came from (a SummingMergeTree over per-insert
-- uniqExact counts a user once per insert block). Every GROUP BY key of the view is in the ORDER BY, so merges fold
-- exactly the rows of one group; every other column is an aggregate state.
CREATE TABLE IF NOT EXISTS uba_hourly_metrics
(
    tenant_id Int64,
    hour DateTime('UTC'),
    action_type LowCardinality(String),
    scenario_id LowCardinality(String),
    events AggregateFunction(count),
    users AggregateFunction(uniqCombined64, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (tenant_id, hour, action_type, scenario_id)
-- Longer than the raw rows' 90 days: period-over-period and year-over-year trends.
TTL toDate(hour) + INTERVAL 400 DAY
-- insertBehaviors sets deduplicate_blocks_in_dependent_materialized_views: a retried insert reaches this table again
-- and is deduplicated here by the token derived from the insert's own.
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS uba_hourly_metrics_mv TO uba_hourly_metrics AS
SELECT
    tenant_id,
    toStartOfHour(timestamp) AS hour,
    action_type,
    scenario_id,
    countState() AS events,
    uniqCombined64State(user_id) AS users
FROM user_behaviors
GROUP BY tenant_id, hour, action_type, scenario_id
