-- Retention (DESIGN §3.9): every row (one session block) is deleted retention_period_days after its block's first
-- event, the same clock as the bucket's lifecycle rules, which expire the block's object by its creation date. Once
-- a session's rows are merged, the row expires at the session's start plus its longest retention. TTL merges delete
-- expired rows in the background (at most every merge_with_ttl_timeout, 4 hours, per partition; OPTIMIZE ... FINAL
-- at once); until then the replay API answers recording_expired for such a session. Setting the same TTL again
-- changes nothing, so the statement is idempotent; on a table holding rows it also rewrites them (materialize_ttl_
-- after_modify), once.
ALTER TABLE session_replay_events MODIFY TTL toDateTime(min_first_timestamp) + toIntervalDay(retention_period_days)
