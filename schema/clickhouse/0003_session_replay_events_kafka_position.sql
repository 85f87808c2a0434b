-- Where each row came from in the summary topic. Rows of one session always come through one partition (the topic is
-- keyed by team and session), so max(_kafka_offset) per partition is how far the sink has inserted: after a crash
-- between insert and offset commit, the sink skips what is already stored instead of inserting it twice.
ALTER TABLE session_replay_events ADD COLUMN IF NOT EXISTS _kafka_partition SimpleAggregateFunction(any, Int32) DEFAULT -1;
ALTER TABLE session_replay_events ADD COLUMN IF NOT EXISTS _kafka_offset SimpleAggregateFunction(max, Int64) DEFAULT -1
