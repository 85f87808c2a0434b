-- Audiences: per tenant, action and day, the users who did it as a groupBitmap (RoaringBitmap) state over a stable
-- 64-bit key of the user, sipHash64(user_id) (the same key in every table and run). "Users who did X and Y in a
-- range" is bitmapAndCardinality of the two merged states; OR, AND NOT and the member keys (bitmapToArray) work the
-- same way. Two distinct user ids of one tenant share a key with probability ~ n^2 / 2^65 (3e-4 for 10^8 users).
CREATE TABLE IF NOT EXISTS uba_audiences
(
    tenant_id Int64,
    action_type LowCardinality(String),
    date Date,
    users AggregateFunction(groupBitmap, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(date)
ORDER BY (tenant_id, action_type, date)
-- Keys of persons: kept no longer than the raw behaviours they come from.
TTL date + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS uba_audiences_mv TO uba_audiences AS
SELECT
    tenant_id,
    action_type,
    date,
    groupBitmapState(sipHash64(user_id)) AS users
FROM user_behaviors
GROUP BY tenant_id, action_type, date
