-- 0006 on a cluster: user_behaviors_local (ReplicatedMergeTree, same columns, key, partitions, TTL, index, projection)
-- on every replica, and the Distributed user_behaviors the behaviour sink inserts into and the analytics read.
CREATE TABLE IF NOT EXISTS user_behaviors_local ON CLUSTER '{cluster}'
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
    _kafka_topic LowCardinality(String) CODEC(ZSTD(1)),
    _kafka_partition Int32 CODEC(ZSTD(1)),
    _kafka_offset Int64 CODEC(ZSTD(1)),
    _inserted_at DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(DoubleDelta, ZSTD(1)),
    sequence_ts UInt64 ALIAS bitOr(
        bitShiftLeft(toUInt64(toUnixTimestamp64Milli(timestamp)), 20),
        toUInt64(bitShiftRight(bitAnd(toUInt128(event_id), toUInt128('18446744073709551615')), 44))),
    INDEX properties_keys mapKeys(properties) TYPE bloom_filter(0.01) GRANULARITY 1,
    PROJECTION kafka_topic_position
    (
        SELECT _kafka_topic, _kafka_partition, max(_kafka_offset), count() GROUP BY _kafka_topic, _kafka_partition
    )
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(date)
ORDER BY (tenant_id, date, action_type, scenario_id, user_id, timestamp, event_id)
TTL date + INTERVAL 90 DAY
SETTINGS
    replicated_deduplication_window = 10000,
    deduplicate_merge_projection_mode = 'rebuild',
    lightweight_mutation_projection_mode = 'rebuild';

-- Sharded by the topic partition, which is sharding by user: the user_behaviors topic is keyed by user_id, so all of
-- a user's behaviours come through one partition and land on one shard (with their timeline index, their event ids
-- and their share of every roll-up, written there by the views). Per-user sequences (funnels, retention, paths) are
-- then complete on each shard and can be computed there and merged (docs/scaling.md). And, as for
-- session_replay_events, each partition's rows sit on one shard, so behaviorsInsertedUpTo reads an exact resume point.
-- The price: the partition count of user_behaviors is part of where users live; fix it at creation (docs/scaling.md).
-- The alternative, cityHash64(tenant_id, user_id), routes one user's reads to one shard but spreads every partition
-- over all shards.
CREATE TABLE IF NOT EXISTS user_behaviors ON CLUSTER '{cluster}'
(
    tenant_id Int64,
    date Date MATERIALIZED toDate(timestamp),
    timestamp DateTime64(3, 'UTC'),
    event_id UUID,
    user_id String,
    item_id String,
    action_type LowCardinality(String),
    scenario_id LowCardinality(String),
    session_id String,
    view_id String,
    watch_duration Float64,
    completion_rate Float64,
    experiment_id LowCardinality(String),
    experiment_group LowCardinality(String),
    device_type LowCardinality(String),
    os LowCardinality(String),
    location LowCardinality(String),
    ip String,
    current_url String,
    properties Map(LowCardinality(String), String),
    source LowCardinality(String),
    captured_at DateTime64(3, 'UTC'),
    _kafka_topic LowCardinality(String),
    _kafka_partition Int32,
    _kafka_offset Int64,
    _inserted_at DateTime64(3, 'UTC') DEFAULT now64(3),
    sequence_ts UInt64 ALIAS bitOr(
        bitShiftLeft(toUInt64(toUnixTimestamp64Milli(timestamp)), 20),
        toUInt64(bitShiftRight(bitAnd(toUInt128(event_id), toUInt128('18446744073709551615')), 44)))
)
ENGINE = Distributed('{cluster}', currentDatabase(), user_behaviors_local, _kafka_partition)
