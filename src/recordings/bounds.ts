import type { ErrorCode } from '../errors/index.ts';

/**
 * The input bounds of DESIGN §3.5.1, in one place: capture enforces them at the edge (an event that breaks one is
 * dropped alone and counted), and consumers check the same bounds again on what they read (messages from older
 * producers or other clients), so nothing accepted can fail later in ClickHouse or in a date conversion.
 */

/** The last millisecond ClickHouse `DateTime64(3)` holds (2299-12-31 23:59:59.999 UTC). */
export const MAX_TIMESTAMP_MS = Date.UTC(2299, 11, 31, 23, 59, 59, 999);
export const MAX_TOKEN_LENGTH = 200;
export const MAX_DISTINCT_ID_LENGTH = 200;
/** `$lib` longer than this is cut, not refused. */
export const MAX_LIBRARY_LENGTH = 1000;
/** Distinct windows of one session in one request (and so in one message). */
export const MAX_WINDOWS_PER_SESSION = 100;
export const MAX_REQUEST_ID_LENGTH = 100;

/**
 * Why a timestamp (ms since the epoch) is unusable, or undefined when it is fine. Fractional milliseconds are valid:
 * posthog-js and mobile SDKs send them, and every consumer of a timestamp copes with them.
 */
export function timestampProblem(value: unknown): ErrorCode | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) return 'invalid_timestamp';
  if (value > MAX_TIMESTAMP_MS) return 'timestamp_out_of_range';
  return undefined;
}

export const isTimestamp = (value: unknown): value is number => timestampProblem(value) === undefined;

/** A count that fits ClickHouse Int64 exactly through JSON (a safe integer), and is not negative. */
export const isCount = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
