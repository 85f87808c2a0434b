-- 0013 on a cluster: each shard's view records the event ids of the behaviours that shard stored. The sink's lookup
-- (storedEventIds) reads through the Distributed table: one primary-key read on every shard. No sharding key: rows
-- arrive only through the view.
CREATE TABLE IF NOT EXISTS user_behavior_ids_local ON CLUSTER '{cluster}'
(
    tenant_id Int64,
    event_id UUID,
    date Date
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(date)
ORDER BY (tenant_id, event_id)
TTL date + INTERVAL 90 DAY
SETTINGS replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS user_behavior_ids ON CLUSTER '{cluster}'
(
    tenant_id Int64,
    event_id UUID,
    date Date
)
ENGINE = Distributed('{cluster}', currentDatabase(), user_behavior_ids_local);

CREATE MATERIALIZED VIEW IF NOT EXISTS user_behavior_ids_mv ON CLUSTER '{cluster}' TO user_behavior_ids_local AS
SELECT tenant_id, event_id, toDate(timestamp) AS date
FROM user_behaviors_local
