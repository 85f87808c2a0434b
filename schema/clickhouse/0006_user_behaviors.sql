-- One row per behaviour (src/uba/behavior-record.ts, as the user_behaviors topic carries it), written by the
-- behaviour sink through insertBehaviors (src/uba/behavior-rows.ts). The timeline index (0007) and the roll-ups
-- (0008-0012) are materialized views on this table, so the same insert writes them and deduplicates them with it.
--
-- ORDER BY (tenant_id, date, action_type, scenario_id, user_id, timestamp, event_id), chosen with
-- bench/uba/order-by.ts (docs/uba.md, "ClickHouse"): the analytics reads are a tenant, a date range and a few actions
-- (clicks for trends, the funnel's steps, impressions and clicks of one scenario for top items), so action_type right
-- after the day skips the other actions' granules: on 10 M rows, trends read 90 k rows where the seed's (tenant_id,
-- scenario_id, date, user_id, timestamp) reads 508 k, funnels 423 k against 508 k, dashboards 852 k against 926 k,
-- top items the same. One user's timeline is a point lookup in user_behaviors_by_user (0007). Same-timestamp ties
-- sort by event_id, here and there, so reads that order by (timestamp, event_id) get one order whatever the arrival
-- order.
CREATE TABLE IF NOT EXISTS user_behaviors
(
    tenant_id Int64,
    date Date MATERIALIZED toDate(timestamp),
    timestamp DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    event_id UUID,
    user_id String CODEC(ZSTD(1)),
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
    captured_at DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    -- Where the row came from on the user_behaviors topic: the sink resumes after max(_kafka_offset) of a partition.
    _kafka_topic LowCardinality(String) CODEC(ZSTD(1)),
    _kafka_partition Int32 CODEC(ZSTD(1)),
    _kafka_offset Int64 CODEC(ZSTD(1)),
    _inserted_at DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(DoubleDelta, ZSTD(1)),
    -- (timestamp, event_id) as one UInt64 for windowFunnel/sequence* (which take no tie-breaker): the millisecond in
    -- the high 44 bits, the top 20 bits of event_id in ClickHouse's UUID order (its low 64 bits first) below, so the
    -- value sorts as (timestamp, event_id) does except for two events of one millisecond sharing those 20 bits.
    -- A window of W ms is W * 1048576 in these units.
    sequence_ts UInt64 ALIAS bitOr(
        bitShiftLeft(toUInt64(toUnixTimestamp64Milli(timestamp)), 20),
        toUInt64(bitShiftRight(bitAnd(toUInt128(event_id), toUInt128('18446744073709551615')), 44))),
    INDEX properties_keys mapKeys(properties) TYPE bloom_filter(0.01) GRANULARITY 1,
    -- How far the sink has inserted per topic partition, without scanning the table (as kafka_topic_position on
    -- session_replay_events, 0005).
    PROJECTION kafka_topic_position
    (
        SELECT _kafka_topic, _kafka_partition, max(_kafka_offset), count() GROUP BY _kafka_topic, _kafka_partition
    )
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(date)
ORDER BY (tenant_id, date, action_type, scenario_id, user_id, timestamp, event_id)
TTL date + INTERVAL 90 DAY
SETTINGS
    -- Lets an insert carry insert_deduplication_token on a non-replicated table: a retried batch is stored once.
    non_replicated_deduplication_window = 10000,
    -- The projection is rebuilt on merges that drop rows (TTL) and on lightweight deletes (per-person delete, DESIGN
    -- §3.9): a query setting is not enough for the latter, the table must say it.
    deduplicate_merge_projection_mode = 'rebuild',
    lightweight_mutation_projection_mode = 'rebuild'
