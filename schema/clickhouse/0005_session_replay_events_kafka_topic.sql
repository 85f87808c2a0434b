-- The summary topic a row came from, so the sink's resume point is per topic and partition: two sinks reading
-- different topics into this table never take each other's offsets. Rows stored before this column existed came from
-- the default summary topic, which is what they read as.
ALTER TABLE session_replay_events ADD COLUMN IF NOT EXISTS _kafka_topic SimpleAggregateFunction(any, LowCardinality(String)) DEFAULT 'clickhouse_session_replay_events';
ALTER TABLE session_replay_events ADD PROJECTION IF NOT EXISTS kafka_topic_position
(
    SELECT _kafka_topic, _kafka_partition, max(_kafka_offset), count() GROUP BY _kafka_topic, _kafka_partition
);
ALTER TABLE session_replay_events MATERIALIZE PROJECTION kafka_topic_position;
ALTER TABLE session_replay_events DROP PROJECTION IF EXISTS kafka_position
