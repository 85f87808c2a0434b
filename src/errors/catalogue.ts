/**
 * Every error code the project emits, in one table. Codes are stable API: add new ones, never rename or reuse.
 * `type` groups codes for clients (validation_error, authentication_error, ...); `httpStatus` applies at the HTTP edge;
 * `retriable` tells a caller (or a consumer's backoff loop) whether trying again can help. docs/errors.md is generated
 * from this table.
 */
interface ErrorSpec {
  readonly type: string;
  readonly httpStatus: number;
  readonly retriable: boolean;
  readonly doc: string;
}

const spec = (type: string, httpStatus: number, retriable: boolean, doc: string): ErrorSpec => ({
  type,
  httpStatus,
  retriable,
  doc,
});

export const errorCatalogue = {
  // Process and environment
  config_invalid: spec('configuration_error', 500, false, 'An environment variable has an invalid value.'),
  prerequisite_missing: spec('environment_error', 500, false, 'A program a local service needs is not installed.'),
  service_start_failed: spec('environment_error', 500, true, 'A local service exited while starting.'),
  service_timeout: spec('environment_error', 503, true, 'A local service did not become ready in time.'),

  // HTTP edge, any service
  not_found: spec('invalid_request', 404, false, 'No such route or resource.'),
  method_not_allowed: spec('invalid_request', 405, false, 'The route exists but not for this HTTP method.'),
  internal_error: spec('server_error', 500, true, 'An unexpected failure; the server log has the details.'),

  // Capture: the request
  empty_body: spec('validation_error', 400, false, 'The body is empty (before or after decoding).'),
  invalid_json: spec('validation_error', 400, false, 'The decoded body is not JSON.'),
  invalid_payload: spec('validation_error', 400, false, 'The JSON is not a batch of `$snapshot` events.'),
  invalid_event: spec(
    'validation_error',
    400,
    false,
    'An rrweb event lacks a numeric `type` or a positive `timestamp`.',
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
  // Capture: who is sending
  missing_token: spec('authentication_error', 401, false, 'The request carries no project token.'),
  invalid_token: spec('authentication_error', 401, false, 'The project token is unknown.'),
  recordings_disabled: spec('authentication_error', 401, false, 'The project has session recording turned off.'),
  rate_limited: spec('rate_limited', 429, true, 'The project is over its request rate; retry after `Retry-After`.'),
  // Capture: downstream (nothing was written; the client retries)
  kafka_unavailable: spec('server_error', 503, true, 'Kafka did not commit the request; nothing of it was written.'),
  team_lookup_failed: spec('server_error', 503, true, 'Postgres could not be asked about the token.'),

  // Replay API
  missing_api_key: spec(
    'authentication_error',
    401,
    false,
    'The request carries no personal API key (`Authorization: Bearer rpk_...`).',
  ),
  invalid_api_key: spec('authentication_error', 401, false, 'The personal API key is unknown, malformed or revoked.'),
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
  clickhouse_unavailable: spec('server_error', 503, true, 'ClickHouse failed a query; try again.'),

  // Blob storage
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
    'The blob store failed a read or write; retried with backoff.',
  ),
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorCatalogue;

/** The catalogue as a Markdown table (docs/errors.md is this output). */
export function errorReferenceMarkdown(): string {
  const rows = Object.entries(errorCatalogue).map(
    ([code, e]) => `| \`${code}\` | ${e.httpStatus} | \`${e.type}\` | ${e.retriable ? 'yes' : 'no'} | ${e.doc} |`,
  );
  return [
    '# Error codes',
    '',
    'Every error the services answer with is JSON `{"type": ..., "code": ..., "detail": ...}`. Branch on `code`:',
    'codes are stable; `detail` is for people and may change. Generated from `src/errors/catalogue.ts`',
    '(`node bin/replay.ts errors --markdown`); a unit test fails when this file drifts.',
    '',
    '| code | HTTP | type | retriable | meaning |',
    '|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}
