-- Watches updated as they continue (behaviours with a view_id, growing watch_duration/completion_rate): each view
-- counts once, with its latest state. insertBehaviors (src/uba/behavior-rows.ts) writes, per view and batch, the
-- batch's latest state as sign +1 with version = the stored state's version + 1, and a cancel row (sign -1): an exact
-- copy of the stored state, version included, read back from this table. So at any time, before or after merges,
-- sum(sign) is 1 per view and sum(sign * x) is x of the latest state. Merges collapse each +1/-1 pair (same key and
-- version; a pair shares its date, so its partition) and keep one row per view.
-- Writing a state not newer than the stored one is a no-op, so a batch read again after a crash changes nothing.
CREATE TABLE IF NOT EXISTS user_watches
(
    tenant_id Int64,
    user_id String CODEC(ZSTD(1)),
    view_id String CODEC(ZSTD(1)),
    version UInt64,
    sign Int8,
    date Date MATERIALIZED toDate(timestamp),
    timestamp DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    event_id UUID,
    item_id String CODEC(ZSTD(1)),
    scenario_id LowCardinality(String) CODEC(ZSTD(1)),
    session_id String CODEC(ZSTD(1)),
    watch_duration Float64,
    completion_rate Float64
)
ENGINE = VersionedCollapsingMergeTree(sign, version)
PARTITION BY toYYYYMM(date)
-- The user is part of a watch's identity: a user's behaviours travel through one topic partition (key = user id), so
-- one sink at a time writes a given watch, and its stored state is a key lookup.
ORDER BY (tenant_id, user_id, view_id)
TTL date + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 10000;

-- Views and watch time per item and day in uba_item_daily: the cancel row subtracts what its state added. The other
-- columns take their defaults (empty states).
CREATE MATERIALIZED VIEW IF NOT EXISTS uba_item_daily_watches_mv TO uba_item_daily AS
SELECT
    tenant_id,
    date,
    item_id,
    sumState(toInt64(sign)) AS views,
    sumState(sign * watch_duration) AS watch_time
FROM user_watches
WHERE item_id != ''
GROUP BY tenant_id, date, item_id;

-- One row per watch, its latest state, whatever has been merged: the highest version of a view is its live +1 row
-- (a cancel row carries the version of the state it cancels), so argMax(x, version) = sum(sign * x).
CREATE VIEW IF NOT EXISTS user_watches_latest AS
SELECT
    tenant_id,
    user_id,
    view_id,
    argMax(item_id, version) AS item_id,
    argMax(scenario_id, version) AS scenario_id,
    argMax(session_id, version) AS session_id,
    argMax(event_id, version) AS event_id,
    argMax(timestamp, version) AS timestamp,
    sum(sign * watch_duration) AS watch_duration,
    sum(sign * completion_rate) AS completion_rate,
    max(version) AS updates
FROM user_watches
GROUP BY tenant_id, user_id, view_id
HAVING sum(sign) > 0
