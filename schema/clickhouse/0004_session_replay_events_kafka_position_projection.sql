-- How far the sink has inserted, per summary-topic partition, without scanning the table: a projection keeps
-- max(_kafka_offset) and a row count per partition inside every part, written in the same part as the rows (so it
-- can never disagree with them) and rebuilt when parts merge. The sink asks this on every partition assignment.
ALTER TABLE session_replay_events MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild';
ALTER TABLE session_replay_events ADD PROJECTION IF NOT EXISTS kafka_position
(
    SELECT _kafka_partition, max(_kafka_offset), count() GROUP BY _kafka_partition
);
-- Parts written before this migration get the projection too (a no-op on an empty table).
ALTER TABLE session_replay_events MATERIALIZE PROJECTION kafka_position
