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
} as const satisfies Record<string, { type: string; httpStatus: number; retriable: boolean }>;

export type ErrorCode = keyof typeof errorCatalogue;
