-- 0002 on every node, over the Distributed table: each shard merges its part of the GROUP BY, the node that took the
-- query merges the shards' states. A session's rows all sit on one shard (0001), so the answer is the single-node one.
CREATE VIEW IF NOT EXISTS session_replay_events_merged ON CLUSTER '{cluster}' AS
SELECT
    team_id,
    session_id,
    any(distinct_id) AS distinct_id,
    min(min_first_timestamp) AS start_time,
    max(max_last_timestamp) AS end_time,
    dateDiff('millisecond', start_time, end_time) AS duration_ms,
    groupArrayArray(block_first_timestamps) AS block_first_timestamps,
    groupArrayArray(block_last_timestamps) AS block_last_timestamps,
    groupArrayArray(block_urls) AS block_urls,
    argMinMerge(first_url) AS first_url,
    groupUniqArrayArray(all_urls) AS all_urls,
    sum(click_count) AS click_count,
    sum(keypress_count) AS keypress_count,
    sum(mouse_activity_count) AS mouse_activity_count,
    sum(active_milliseconds) AS active_milliseconds,
    sum(console_log_count) AS console_log_count,
    sum(console_warn_count) AS console_warn_count,
    sum(console_error_count) AS console_error_count,
    sum(size) AS size,
    sum(event_count) AS event_count,
    sum(message_count) AS message_count,
    argMinMerge(snapshot_source) AS snapshot_source,
    argMinMerge(snapshot_library) AS snapshot_library,
    max(retention_period_days) AS retention_period_days
FROM session_replay_events
GROUP BY team_id, session_id
HAVING max(is_deleted) = 0
