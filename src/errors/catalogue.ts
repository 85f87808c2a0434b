/**
 * Every error code the project emits, in one table. Codes are stable API: add new ones, never rename or reuse.
 * `type` groups codes for clients (validation_error, authentication_error, ...); `httpStatus` applies at the HTTP edge;
 * `retriable` tells a caller (or a consumer's backoff loop) whether trying again can help.
 */
export const errorCatalogue = {
  config_invalid: { type: 'configuration_error', httpStatus: 500, retriable: false },
  prerequisite_missing: { type: 'environment_error', httpStatus: 500, retriable: false },
  service_start_failed: { type: 'environment_error', httpStatus: 500, retriable: true },
  service_timeout: { type: 'environment_error', httpStatus: 503, retriable: true },

  // HTTP edge, any service
  not_found: { type: 'invalid_request', httpStatus: 404, retriable: false },
  internal_error: { type: 'server_error', httpStatus: 500, retriable: true },
  method_not_allowed: { type: 'invalid_request', httpStatus: 405, retriable: false },

  // Capture: the request (400, 413, 415)
  empty_body: { type: 'validation_error', httpStatus: 400, retriable: false },
  invalid_json: { type: 'validation_error', httpStatus: 400, retriable: false },
  invalid_payload: { type: 'validation_error', httpStatus: 400, retriable: false },
  invalid_event: { type: 'validation_error', httpStatus: 400, retriable: false },
  missing_session_id: { type: 'validation_error', httpStatus: 400, retriable: false },
  invalid_session_id: { type: 'validation_error', httpStatus: 400, retriable: false },
  invalid_window_id: { type: 'validation_error', httpStatus: 400, retriable: false },
  body_too_large: { type: 'payload_too_large', httpStatus: 413, retriable: false },
  decompressed_too_large: { type: 'payload_too_large', httpStatus: 413, retriable: false },
  decompression_ratio_exceeded: { type: 'payload_too_large', httpStatus: 413, retriable: false },
  event_too_large: { type: 'payload_too_large', httpStatus: 413, retriable: false },
  unsupported_encoding: { type: 'unsupported_media_type', httpStatus: 415, retriable: false },
  invalid_compression: { type: 'unsupported_media_type', httpStatus: 415, retriable: false },
  // Capture: who is sending (401, 429)
  missing_token: { type: 'authentication_error', httpStatus: 401, retriable: false },
  invalid_token: { type: 'authentication_error', httpStatus: 401, retriable: false },
  recordings_disabled: { type: 'authentication_error', httpStatus: 401, retriable: false },
  rate_limited: { type: 'rate_limited', httpStatus: 429, retriable: true },
  // Capture: downstream (503: nothing was written, the client retries)
  kafka_unavailable: { type: 'server_error', httpStatus: 503, retriable: true },
  team_lookup_failed: { type: 'server_error', httpStatus: 503, retriable: true },
} as const satisfies Record<string, { type: string; httpStatus: number; retriable: boolean }>;

export type ErrorCode = keyof typeof errorCatalogue;
