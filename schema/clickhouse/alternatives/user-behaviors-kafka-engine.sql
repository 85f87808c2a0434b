-- ALTERNATIVE to `replay behaviors-sink`, NOT applied by `replay migrate` (which reads only
-- schema/clickhouse/NNNN_*.sql): ClickHouse consumes the user_behaviors topic itself through a Kafka engine table,
-- and materialized views write into user_behaviors the same rows as behaviorRow (src/uba/behavior-rows.ts). The views
-- already on user_behaviors (0007-0012) fire on those inserts, so the timeline index (user_behaviors_by_user),
-- uba_hourly_metrics, uba_item_daily, uba_experiment_daily and uba_audiences fill themselves, as they do for the
-- sink's inserts. Trade-offs against the sink, and how to switch: docs/uba.md ("The Kafka engine alternative").
--
-- What it does NOT do, unlike the sink:
--   * Watches: user_watches (0011) stays empty. Its cancel rows copy the stored state of each watch, which the sink
--     reads back before inserting; no materialized view can. So user_watches_latest is empty, and uba_item_daily's
--     views and watch_time leave out every behaviour with a view_id (they count watches only through user_watches).
--     The behaviours themselves, with their view_id, are stored, in the timeline and in the other roll-ups.
--   * Exactly once: the engine inserts a block, then commits its offsets; a restart in between inserts the block
--     again (it differs: other boundaries, another _inserted_at, so ClickHouse's block deduplication does not catch
--     it), and the roll-ups count it twice. Nor does anything look up event ids: a behaviour produced twice (a
--     client's retry) is stored twice, where the sink leaves out the ids user_behavior_ids (0013) holds. That table
--     still fills (a view on user_behaviors), so the sink knows the engine's behaviours when it takes over.
--   * The DLQ and the error contract: no code looks at a message. A message that does not parse, or breaks the
--     bounds the sink checks (behaviorRecordProblem in src/uba/behavior-record-check.ts, mirrored below), goes to
--     user_behaviors_kafka_errors instead, with its coordinates and the reason; nothing goes to
--     clickhouse_user_behaviors_dlq. An insert ClickHouse refuses is not bisected either: the engine reads the
--     block again on every attempt, and nothing behind it is stored. The case valid records can cause: a block
--     whose rows span more than max_partitions_per_insert_block months (100; the sink cuts its inserts at 50),
--     measured by hand. Capture accepts any timestamp from 1970 to 2299, so one client with a wild clock is enough.
--     Raising the setting (or throw_on_max_partitions_per_insert_block = 0) in the server's default profile should
--     lift the limit for the engine's inserts; not tried here.
--
-- Apply after the migrations (0001..), once, statement by statement (split on ";" at the end of a line), after
-- substituting the placeholders:
--   {kafka_broker_list}  the brokers, host:port[,host:port...]
--   {kafka_topic}        the behaviours topic: user_behaviors (the sink's BEHAVIORS_TOPIC)
--   {kafka_group_name}   the consumer group, e.g. clickhouse-user-behaviors; never the sink's BEHAVIORS_GROUP_ID
-- Every statement is idempotent (IF NOT EXISTS). To stop consuming: DROP user_behaviors_kafka_checked_mv (the only
-- view on the Kafka table) and the Kafka table; the rest can stay or go.
--
-- Isolation: librdkafka reads with isolation.level = read_committed unless the server's <kafka> configuration says
-- otherwise, so behaviours of a capture transaction that aborted are never stored. The integration test checks it.

-- One JSONEachRow BehaviorRecord (src/uba/behavior-record.ts) per message. Every field is Nullable so that an absent
-- one reads as NULL, which the check below refuses as the sink does (a non-Nullable column would take its default).
-- Timestamps are Float64 milliseconds as the record carries them (possibly fractional); the view floors them.
CREATE TABLE IF NOT EXISTS user_behaviors_kafka
(
    event_id Nullable(String),
    tenant_id Nullable(Int64),
    user_id Nullable(String),
    item_id Nullable(String),
    action_type Nullable(String),
    scenario_id Nullable(String),
    timestamp Nullable(Float64),
    session_id Nullable(String),
    view_id Nullable(String),
    watch_duration Nullable(Float64),
    completion_rate Nullable(Float64),
    experiment_id Nullable(String),
    experiment_group Nullable(String),
    device_type Nullable(String),
    os Nullable(String),
    location Nullable(String),
    ip Nullable(String),
    current_url Nullable(String),
    properties Map(String, String),
    source Nullable(String),
    captured_at Nullable(Float64)
)
ENGINE = Kafka
SETTINGS
    kafka_broker_list = '{kafka_broker_list}',
    kafka_topic_list = '{kafka_topic}',
    kafka_group_name = '{kafka_group_name}',
    kafka_format = 'JSONEachRow',
    -- A message that does not parse becomes a row with _error and _raw_message set, which the check turns into an
    -- error row. The other choices stall or lose: with 'default' the block fails and is read again on every attempt,
    -- so nothing behind a bad message is ever stored, kafka_skip_broken_messages = N drops bad messages with only a
    -- log line (with N = 1 it dropped all four of the test's, two of them on one partition), 'dead_letter_queue'
    -- needs system.dead_letter_queue configured on the server (chDB refuses it). Measured by hand on chDB 3.4.
    kafka_handle_error_mode = 'stream',
    -- One insert into user_behaviors per this many ms or rows, whichever comes first.
    kafka_flush_interval_ms = 1000,
    kafka_max_block_size = 65536,
    -- Fields added to BehaviorRecord later are skipped, as the sink ignores them.
    input_format_skip_unknown_fields = 1,
    -- A value of another JSON type (a number, boolean, object or array where the record has a string, including the
    -- values of properties, or "properties": null) is a parse error, where ClickHouse would otherwise convert it:
    -- the sink refuses those records too.
    input_format_json_read_numbers_as_strings = 0,
    input_format_json_read_bools_as_strings = 0,
    input_format_json_read_objects_as_strings = 0,
    input_format_json_read_arrays_as_strings = 0,
    input_format_null_as_default = 0,
    -- The same double as JSON.parse gives the sink, so floor() lands on the same millisecond (the default since 24.x,
    -- pinned for older servers).
    precise_float_parsing = 1;

-- Every message once, with its position and `problem`: '' for a record the sink would store, else why not. A Null
-- table (stores nothing) so that the check is written once and both views below read its result.
CREATE TABLE IF NOT EXISTS user_behaviors_kafka_checked
(
    event_id Nullable(String),
    tenant_id Nullable(Int64),
    user_id Nullable(String),
    item_id Nullable(String),
    action_type Nullable(String),
    scenario_id Nullable(String),
    timestamp Nullable(Float64),
    session_id Nullable(String),
    view_id Nullable(String),
    watch_duration Nullable(Float64),
    completion_rate Nullable(Float64),
    experiment_id Nullable(String),
    experiment_group Nullable(String),
    device_type Nullable(String),
    os Nullable(String),
    location Nullable(String),
    ip Nullable(String),
    current_url Nullable(String),
    properties Map(String, String),
    source Nullable(String),
    captured_at Nullable(Float64),
    _kafka_topic String,
    _kafka_partition Int32,
    _kafka_offset Int64,
    raw_message String,
    problem String
)
ENGINE = Null;

-- The records that passed, as behaviorRow maps them: timestamps floored to the millisecond; _kafka_topic,
-- _kafka_partition and _kafka_offset from the message itself, so the sink can take over from the engine (it resumes
-- after the highest stored offset of each partition). `date` is materialized and `_inserted_at` takes its default,
-- as for the sink's rows. The conversions cannot throw whatever the row (ifNull, accurateCastOrDefault,
-- toUUIDOrZero), since ClickHouse may compute them before the WHERE filters: an exception here would stall the engine.
CREATE MATERIALIZED VIEW IF NOT EXISTS user_behaviors_kafka_mv TO user_behaviors AS
SELECT
    ifNull(c.tenant_id, 0) AS tenant_id,
    fromUnixTimestamp64Milli(accurateCastOrDefault(floor(ifNull(c.timestamp, 0)), 'Int64'), 'UTC') AS timestamp,
    toUUIDOrZero(ifNull(c.event_id, '')) AS event_id,
    ifNull(c.user_id, '') AS user_id,
    ifNull(c.item_id, '') AS item_id,
    ifNull(c.action_type, '') AS action_type,
    ifNull(c.scenario_id, '') AS scenario_id,
    ifNull(c.session_id, '') AS session_id,
    ifNull(c.view_id, '') AS view_id,
    ifNull(c.watch_duration, 0) AS watch_duration,
    ifNull(c.completion_rate, 0) AS completion_rate,
    ifNull(c.experiment_id, '') AS experiment_id,
    ifNull(c.experiment_group, '') AS experiment_group,
    ifNull(c.device_type, '') AS device_type,
    ifNull(c.os, '') AS os,
    ifNull(c.location, '') AS location,
    ifNull(c.ip, '') AS ip,
    ifNull(c.current_url, '') AS current_url,
    c.properties AS properties,
    ifNull(c.source, '') AS source,
    fromUnixTimestamp64Milli(accurateCastOrDefault(floor(ifNull(c.captured_at, 0)), 'Int64'), 'UTC') AS captured_at,
    c._kafka_topic AS _kafka_topic,
    c._kafka_partition AS _kafka_partition,
    c._kafka_offset AS _kafka_offset
FROM user_behaviors_kafka_checked AS c
WHERE c.problem = '';

-- Messages that did not parse or broke a bound, with where they came from and why, kept 30 days. `message` is the
-- value as received when it did not parse; otherwise the fields as read (absent ones null), since the engine keeps
-- the raw bytes only of messages that fail to parse. A block read again (a failed insert, a restart before the
-- commit) records its errors again: one row per position once merged, so read it with FINAL.
CREATE TABLE IF NOT EXISTS user_behaviors_kafka_errors
(
    received_at DateTime64(3, 'UTC'),
    topic String,
    partition Int64,
    offset Int64,
    message String,
    error String
)
ENGINE = ReplacingMergeTree(received_at)
ORDER BY (topic, partition, offset)
TTL toDateTime(received_at) + INTERVAL 30 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS user_behaviors_kafka_errors_mv TO user_behaviors_kafka_errors AS
SELECT
    now64(3) AS received_at,
    _kafka_topic AS topic,
    toInt64(_kafka_partition) AS partition,
    _kafka_offset AS offset,
    if(length(raw_message) > 0, raw_message, formatRowNoNewline('JSONEachRow', event_id, tenant_id, user_id, item_id,
        action_type, scenario_id, timestamp, session_id, view_id, watch_duration, completion_rate, experiment_id,
        experiment_group, device_type, os, location, ip, current_url, properties, source, captured_at)) AS message,
    problem AS error
FROM user_behaviors_kafka_checked
WHERE problem != '';

-- Created last: the engine starts consuming once a view reads the Kafka table, and every view downstream must
-- exist by then, or the first blocks would reach none of them.
--
-- behaviorRecordProblem in SQL, the same checks in the same order with the same messages (the test compares them).
-- Lengths are JavaScript's (UTF-16 code units: a character above U+FFFF counts two), the properties' size is the byte
-- length of JSON.stringify(properties). Where the typed columns cannot follow the sink: a number sent as a JSON string
-- ("7") is read as the number and an absent properties as {}, both refused by the sink; 7.0 for tenant_id, which the
-- sink takes as 7, does not parse (an error row).
CREATE MATERIALIZED VIEW IF NOT EXISTS user_behaviors_kafka_checked_mv TO user_behaviors_kafka_checked AS
WITH
    [user_id, action_type, item_id, scenario_id, view_id, experiment_id, experiment_group, device_type, os, location,
        ip] AS texts,
    ['user_id', 'action_type', 'item_id', 'scenario_id', 'view_id', 'experiment_id', 'experiment_group',
        'device_type', 'os', 'location', 'ip'] AS text_names,
    -- The first text field out of its bounds (1-based, 0 for none): user_id and action_type need 1-200 units, the
    -- others at most 200.
    arrayFirstIndex(
        (s, i) -> ifNull(
            lengthUTF8(s) + countMatches(s, '[\\x{10000}-\\x{10FFFF}]') NOT BETWEEN if(i <= 2, 1, 0) AND 200, 1),
        texts, arrayEnumerate(texts)) AS bad_text,
    -- JSON.stringify's output for a string: quotes, the text, one more byte for each of " \ \b \t \n \f \r, five more
    -- for any other control character (\u00XX).
    2 + length(properties) + greatest(length(properties) - 1, 0) + arraySum(
        s -> 2 + length(s) + countMatches(s, '["\\\\\\x08\\x09\\x0a\\x0c\\x0d]')
            + 5 * countMatches(s, '[\\x00-\\x07\\x0b\\x0e-\\x1f]'),
        arrayConcat(mapKeys(properties), mapValues(properties))) AS properties_bytes
SELECT
    event_id, tenant_id, user_id, item_id, action_type, scenario_id, timestamp, session_id, view_id, watch_duration,
    completion_rate, experiment_id, experiment_group, device_type, os, location, ip, current_url, properties, source,
    captured_at,
    _topic AS _kafka_topic,
    toInt32(_partition) AS _kafka_partition,
    toInt64(_offset) AS _kafka_offset,
    _raw_message AS raw_message,
    multiIf(
        length(_error) > 0, _error,
        ifNull(NOT match(event_id, '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'), 1),
            'event_id is not a UUID',
        ifNull(tenant_id NOT BETWEEN 1 AND 9007199254740991, 1), 'tenant_id is not a positive integer',
        bad_text > 0, concat(text_names[bad_text],
            if(bad_text <= 2, ' is not a string of 1-200 characters', ' is not a string of at most 200 characters')),
        ifNull(NOT (isFinite(timestamp) AND timestamp > 0 AND timestamp <= 10413791999999), 1),
            'timestamp is not a time in ms inside DateTime64 range',
        ifNull(NOT (isFinite(captured_at) AND captured_at > 0 AND captured_at <= 10413791999999), 1),
            'captured_at is not a time in ms inside DateTime64 range',
        ifNull(NOT match(session_id, '^[A-Za-z0-9-]{0,70}$'), 1),
            'session_id is not up to 70 characters of [A-Za-z0-9-]',
        ifNull(NOT (isFinite(watch_duration) AND watch_duration BETWEEN 0 AND 604800), 1),
            'watch_duration is not a number of seconds from 0 to 604800',
        ifNull(NOT (isFinite(completion_rate) AND completion_rate BETWEEN 0 AND 1), 1),
            'completion_rate is not a number from 0 to 1',
        ifNull(lengthUTF8(current_url) + countMatches(current_url, '[\\x{10000}-\\x{10FFFF}]') > 8192, 1),
            'current_url is not a string of at most 8192 characters',
        ifNull(source NOT IN ('behaviors-api', 'posthog-js'), 1), 'source is not behaviors-api or posthog-js',
        arrayExists(k -> k = '' OR lengthUTF8(k) + countMatches(k, '[\\x{10000}-\\x{10FFFF}]') > 200,
            mapKeys(properties)),
            'properties holds a key that is empty or longer than 200 characters, or a value that is not a string',
        properties_bytes > 16384, 'properties is more than 16384 bytes of JSON',
        '') AS problem
FROM user_behaviors_kafka;
