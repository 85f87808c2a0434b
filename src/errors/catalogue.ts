/**
 * Every error code the project emits, in one table. Codes are stable API: add new ones, never rename or reuse.
 * `type` groups codes for clients (validation_error, authentication_error, ...); `httpStatus` applies at the HTTP edge;
 * `retriable` tells a caller (or a consumer's backoff loop) whether trying again can help; `fatal` marks the few codes
 * after which a process must exit (the orchestrator restarts it). Together they give every code its class in the
 * error contract (DESIGN §3.5.1, `errorClass`): fatal, transient (retriable) or poison (neither). docs/errors.md is
 * generated from this table.
 */
interface ErrorSpec {
  readonly type: string;
  readonly httpStatus: number;
  readonly retriable: boolean;
  readonly fatal: boolean;
  readonly doc: string;
}

const spec = (type: string, httpStatus: number, retriable: boolean, doc: string): ErrorSpec => ({
  type,
  httpStatus,
  retriable,
  fatal: false,
  doc,
});
const fatal = (type: string, doc: string): ErrorSpec => ({ type, httpStatus: 500, retriable: false, fatal: true, doc });

export const errorCatalogue = {
  // Process and environment
  config_invalid: fatal('configuration_error', 'An environment variable has an invalid value.'),
  prerequisite_missing: fatal('environment_error', 'A program a local service needs is not installed.'),
  producer_fenced: fatal(
    'configuration_error',
    'Another process took over this transactional id (a restarted instance, or two instances configured with one id): this one exits.',
  ),
  kafka_client_fatal: fatal(
    'dependency_error',
    'The Kafka client hit an unrecoverable error (librdkafka "fatal", e.g. a static member fenced by a newer one after a broker restart): it can never fetch again, so the process exits and its restart takes over.',
  ),
  service_start_failed: spec('environment_error', 500, true, 'A local service exited while starting.'),
  service_timeout: spec('environment_error', 503, true, 'A local service did not become ready in time.'),

  // HTTP edge, any service
  not_found: spec('invalid_request', 404, false, 'No such route or resource.'),
  method_not_allowed: spec('invalid_request', 405, false, 'The route exists but not for this HTTP method.'),
  internal_error: spec('server_error', 500, true, 'An unexpected failure; the server log has the details.'),
  request_timeout: spec(
    'invalid_request',
    408,
    true,
    'The request body did not arrive in time (a slow or stalled client).',
  ),

  // Capture: the request
  empty_body: spec('validation_error', 400, false, 'The body is empty (before or after decoding).'),
  invalid_json: spec('validation_error', 400, false, 'The decoded body is not JSON.'),
  invalid_payload: spec(
    'validation_error',
    400,
    false,
    "The JSON is not a batch of the route's events (`$snapshot` events at `/s/`, behaviours at `/api/v1/behaviors`, posthog-js events at `/e/`), or its items carry different tokens.",
  ),
  // Capture: one event or item breaking an input bound (DESIGN §3.5.1) is dropped alone and counted under its code
  // (`dropped` in the 200 answer); the request fails with the code only when nothing of it is left.
  invalid_event: spec('validation_error', 400, false, 'An rrweb event is not an object with an integer `type`.'),
  invalid_timestamp: spec(
    'validation_error',
    400,
    false,
    "An event's `timestamp` is missing, not a number, not finite, or not above 0.",
  ),
  timestamp_out_of_range: spec(
    'validation_error',
    400,
    false,
    "An event's timestamp lies past ClickHouse DateTime64's range (2299-12-31).",
  ),
  distinct_id_too_long: spec('validation_error', 400, false, '`distinct_id` is longer than 200 characters.'),
  too_many_windows: spec(
    'validation_error',
    400,
    false,
    'A session holds events of more windows in one request than `$window_id` allows (100).',
  ),
  missing_session_id: spec('validation_error', 400, false, 'A `$snapshot` event has no `$session_id`.'),
  invalid_session_id: spec(
    'validation_error',
    400,
    false,
    'A session id (`$session_id` at capture, a path segment in the replay API) is not 1-70 characters of `[A-Za-z0-9-]`.',
  ),
  invalid_window_id: spec('validation_error', 400, false, '`$window_id` is not 1-70 characters of `[A-Za-z0-9-]`.'),
  body_too_large: spec('payload_too_large', 413, false, 'The body as sent exceeds `CAPTURE_MAX_BODY_BYTES` (25 MB).'),
  decompressed_too_large: spec(
    'payload_too_large',
    413,
    false,
    'The decompressed body exceeds `CAPTURE_MAX_DECOMPRESSED_BYTES` (64 MB).',
  ),
  decompression_ratio_exceeded: spec(
    'payload_too_large',
    413,
    false,
    'The body inflates more than `CAPTURE_MAX_COMPRESSION_RATIO` times: a gzip bomb.',
  ),
  event_too_large: spec('payload_too_large', 413, false, 'One event alone exceeds the Kafka message limit (20 MB).'),
  unsupported_encoding: spec(
    'unsupported_media_type',
    415,
    false,
    'A Content-Encoding or `compression` not supported.',
  ),
  invalid_compression: spec(
    'unsupported_media_type',
    415,
    false,
    'The body claims gzip or base64 but does not decode.',
  ),
  // Capture: one behaviour (`POST /api/v1/behaviors`) or posthog-js analytics event (`/e/`) breaking an input bound
  // (DESIGN §3.8, src/uba/behavior-bounds.ts) is refused alone, with its index; the rest of its request is accepted.
  invalid_behavior: spec(
    'validation_error',
    400,
    false,
    'A behaviour (or a posthog-js analytics event, or its `properties`) is not a JSON object.',
  ),
  missing_user_id: spec(
    'validation_error',
    400,
    false,
    'A behaviour has no `user_id` (a posthog-js event no `distinct_id`), or an empty one.',
  ),
  invalid_user_id: spec(
    'validation_error',
    400,
    false,
    '`user_id` is not a string or a number, or is longer than 200 characters.',
  ),
  missing_item_id: spec('validation_error', 400, false, 'A behaviour has no `item_id`, or an empty one.'),
  invalid_item_id: spec(
    'validation_error',
    400,
    false,
    '`item_id` is not a string or a number, or is longer than 200 characters.',
  ),
  invalid_action_type: spec(
    'validation_error',
    400,
    false,
    '`action_type` is not one of impression, click, view, like, share, add_cart, order; or a posthog-js event name is missing, not a string, or longer than 200 characters.',
  ),
  invalid_scenario_id: spec(
    'validation_error',
    400,
    false,
    '`scenario_id` is not a string or a number, or is longer than 200 characters.',
  ),
  invalid_view_id: spec(
    'validation_error',
    400,
    false,
    '`view_id` is not a string or a number, or is longer than 200 characters.',
  ),
  invalid_experiment_id: spec(
    'validation_error',
    400,
    false,
    '`experiment_id` is not a string or a number, or is longer than 200 characters.',
  ),
  invalid_experiment_group: spec(
    'validation_error',
    400,
    false,
    '`experiment_group` is not a string or a number, or is longer than 200 characters.',
  ),
  invalid_watch_duration: spec(
    'validation_error',
    400,
    false,
    '`watch_duration` is not a finite number of seconds from 0 to 604800 (7 days).',
  ),
  invalid_completion_rate: spec('validation_error', 400, false, '`completion_rate` is not a number from 0 to 1.'),
  invalid_context: spec(
    'validation_error',
    400,
    false,
    '`context` is not an object, or its `device_type`, `os`, `location` or `ip` is not a string of at most 200 characters.',
  ),
  invalid_extra_data: spec(
    'validation_error',
    400,
    false,
    '`extra_data` is not a JSON object, or one of its keys is empty or longer than 200 characters.',
  ),
  extra_data_too_large: spec(
    'validation_error',
    400,
    false,
    '`extra_data`, flattened to string values, is more than 16 KiB of JSON.',
  ),
  invalid_event_id: spec('validation_error', 400, false, '`event_id` is not a UUID.'),
  too_many_events: spec(
    'payload_too_large',
    413,
    false,
    'A behaviours request (or a posthog-js analytics batch) holds more than 1000 events: split it.',
  ),
  // Capture: who is sending
  missing_token: spec('authentication_error', 401, false, 'The request carries no project token.'),
  invalid_token: spec(
    'authentication_error',
    401,
    false,
    'The project token is unknown (or longer than 200 characters).',
  ),
  recordings_disabled: spec('authentication_error', 401, false, 'The project has session recording turned off.'),
  rate_limited: spec('rate_limited', 429, true, 'The project is over its request rate; retry after `Retry-After`.'),
  // Capture: downstream (nothing was written; the client retries)
  kafka_unavailable: spec(
    'server_error',
    503,
    true,
    'Kafka did not answer in time or refused the operation (at capture: nothing of the request was written).',
  ),
  team_lookup_failed: spec('server_error', 503, true, 'Postgres could not be asked about the token.'),
  capture_overloaded: spec(
    'server_error',
    503,
    true,
    'Capture holds its limit of request bytes in flight (`CAPTURE_MAX_INFLIGHT_BYTES`); retry after `Retry-After`.',
  ),

  // Replay API
  missing_api_key: spec(
    'authentication_error',
    401,
    false,
    'The request carries no personal API key (`Authorization: Bearer rpk_...`).',
  ),
  invalid_api_key: spec('authentication_error', 401, false, 'The personal API key is unknown, malformed or revoked.'),
  insufficient_scope: spec(
    'authorization_error',
    403,
    false,
    'The API key may read this team but lacks the scope the route needs (`delete`: `replay api-key create --scope delete`).',
  ),
  invalid_parameter: spec(
    'validation_error',
    400,
    false,
    'A query or path parameter is malformed or out of range (dates, limits, cursor, team id).',
  ),
  invalid_block_range: spec(
    'validation_error',
    400,
    false,
    '`blocks` is not `i` or `i-j` inside the session, or spans more than `API_MAX_BLOCKS_PER_REQUEST` blocks.',
  ),
  clickhouse_unavailable: spec(
    'server_error',
    503,
    true,
    'ClickHouse failed a query or insert for a reason that can pass (network, timeout, overload, too many parts).',
  ),
  recording_expired: spec(
    'not_found',
    410,
    false,
    "The session is past its retention: its start plus its retention class's days (`retention_period_days`) is before now. Its data is deleted (or about to be) and does not come back.",
  ),
  recording_deleted: spec(
    'not_found',
    404,
    false,
    'The session was deleted (`DELETE` of the session, its person, or a date range): its blocks are erased and it does not come back. A 404 like any missing session (DESIGN §3.9), with a code of its own so that the player can say so.',
  ),
  api_overloaded: spec(
    'server_error',
    503,
    true,
    'The replay API is decoding its limit of blocks at once (`API_MAX_CONCURRENT_DECODES`); retry after `Retry-After`.',
  ),

  // Blob storage
  bucket_missing: fatal(
    'configuration_error',
    '`S3_BUCKET` names a bucket that does not exist. `replay migrate` does not create it: create it with its region, encryption and access policy, then run migrate again.',
  ),
  blob_not_found: spec('not_found', 404, false, 'The object holding a block is gone (deleted or expired).'),
  block_corrupt: spec(
    'server_error',
    500,
    false,
    'A stored block does not decode (compression or JSON damaged); the replay API marks it missing.',
  ),
  blob_store_unavailable: spec(
    'server_error',
    503,
    true,
    'The blob store failed a read or write, or did not answer in time; retried with backoff.',
  ),
  object_corrupt: spec(
    'server_error',
    500,
    false,
    'A blob object does not parse (trailer, footer checksum or version): `reindex` skips it.',
  ),
  block_too_large: spec(
    'server_error',
    500,
    false,
    'A stored block decompresses past `API_MAX_BLOCK_BYTES`; the replay API marks it missing.',
  ),

  // Consumers: transient conditions (waited for, never skipped)
  disk_full: spec(
    'server_error',
    503,
    true,
    'The spool disk is full (ENOSPC) or below `BLOB_MIN_FREE_DISK_BYTES`: intake pauses until a flush frees space.',
  ),
  kafka_commit_unknown: spec(
    'server_error',
    503,
    true,
    'A transaction commit timed out or lost its reply: it is resolved (retried, or read back) before anything is re-sent.',
  ),
  redis_unavailable: spec(
    'server_error',
    503,
    true,
    'Redis did not answer in time, is unreachable, or refused for now (LOADING, BUSY, OOM, READONLY): the realtime sink keeps its batch and retries with backoff.',
  ),

  // Consumers: poison (quarantined to the DLQ under this code, with the source coordinates; the stream goes on)
  message_truncated: spec('poison_message', 422, false, 'A recordings message is empty or shorter than it declares.'),
  message_bad_magic: spec('poison_message', 422, false, 'A recordings message does not start with "RPLM".'),
  message_unsupported_version: spec(
    'poison_message',
    422,
    false,
    'A recordings message has an envelope version this build does not read.',
  ),
  message_header_corrupt: spec(
    'poison_message',
    422,
    false,
    'A recordings message header is not JSON, too long, or fails its checksum.',
  ),
  message_header_invalid: spec(
    'poison_message',
    422,
    false,
    'A recordings message header breaks an input bound (a timestamp out of range, a field too long, a count not an Int64).',
  ),
  legacy_message_invalid: spec(
    'poison_message',
    422,
    false,
    "A message without our envelope is not PostHog's JSON snapshot message, or breaks an input bound.",
  ),
  payload_corrupt: spec(
    'poison_message',
    422,
    false,
    "A message's LZ4 payload does not decode (truncated or damaged).",
  ),
  summary_row_invalid: spec(
    'poison_message',
    422,
    false,
    'A summary-topic message is not a summary row within the bounds of `session_replay_events`.',
  ),
  clickhouse_rejected: spec(
    'poison_message',
    422,
    false,
    'ClickHouse refused a row for its content (a type, parse or range error); the rest of its batch is inserted.',
  ),
  behavior_record_invalid: spec(
    'poison_message',
    422,
    false,
    'A `user_behaviors` message is not JSON, or not a behaviour record within the input bounds (src/uba/behavior-record.ts).',
  ),
  redis_rejected: spec(
    'poison_message',
    422,
    false,
    'Redis holds a key the realtime sink would update with another type (WRONGTYPE); the behaviour is quarantined, the rest of its batch applied.',
  ),
  unhandled_error: spec(
    'poison_message',
    422,
    false,
    'A sink failed on the same message with an unclassified error several times in a row; quarantined so the partition goes on.',
  ),
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorCatalogue;

/** The three kinds of failure of the error contract (DESIGN §3.5.1). */
export type ErrorClass = 'transient' | 'poison' | 'fatal';

/** A code's class: decided by the catalogue alone, never by a message. */
export function classOfCode(code: ErrorCode): ErrorClass {
  const entry: ErrorSpec = errorCatalogue[code];
  return entry.fatal ? 'fatal' : entry.retriable ? 'transient' : 'poison';
}

/** The catalogue as a Markdown table (docs/errors.md is this output). */
export function errorReferenceMarkdown(): string {
  const rows = Object.entries(errorCatalogue).map(
    ([code, e]) =>
      `| \`${code}\` | ${e.httpStatus} | \`${e.type}\` | ${classOfCode(code as ErrorCode)} | ${e.retriable ? 'yes' : 'no'} | ${e.doc} |`,
  );
  return [
    '# Error codes',
    '',
    'Every error the services answer with is JSON `{"type": ..., "code": ..., "detail": ...}`. Branch on `code`:',
    'codes are stable; `detail` is for people and may change. Generated from `src/errors/catalogue.ts`',
    '(`scripts/replay errors --markdown`); a unit test fails when this file drifts.',
    '',
    'The class is what a consumer does with the failure (DESIGN §3.5.1): **transient** is retried with jittered',
    'backoff while intake pauses (nothing is skipped); **poison** is quarantined to the DLQ with the code in',
    '`dlq_reason` and the stream goes on; **fatal** exits the process with one line naming the code. At the HTTP edge',
    'the same codes answer with their status (poison codes never reach a client).',
    '',
    '| code | HTTP | type | class | retriable | meaning |',
    '|---|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}
