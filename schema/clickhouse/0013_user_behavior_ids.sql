-- Which behaviours are stored, by event_id: the behaviour sink (src/uba/behaviors-sink.ts) looks the event ids of a
-- batch up here before inserting and leaves out those already stored, so a request retried by its client (new Kafka
-- messages, same event ids) is stored once, roll-ups and timeline included. Deduplication tokens cannot do this: they
-- cover one batch read twice, not the same behaviour sent twice. Keyed (tenant_id, event_id) so a batch's lookup is a
-- primary-key read of the ids it holds; a row is a few tens of bytes, and it expires with the behaviour.
CREATE TABLE IF NOT EXISTS user_behavior_ids
(
    tenant_id Int64,
    event_id UUID,
    date Date
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(date)
ORDER BY (tenant_id, event_id)
TTL date + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS user_behavior_ids_mv TO user_behavior_ids AS
SELECT tenant_id, event_id, toDate(timestamp) AS date
FROM user_behaviors
