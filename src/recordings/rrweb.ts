import type { ErrorCode } from '../errors/index.ts';
import { timestampProblem } from './bounds.ts';

/** An rrweb event as the SDK sends it: `type` and `timestamp` are required, the rest is opaque. */
export interface RrwebEvent {
  readonly type: number;
  readonly timestamp: number;
  readonly data?: unknown;
  readonly [key: string]: unknown;
}

/**
 * Why a value is not an rrweb event the pipeline can carry (a catalogue code: `invalid_event`, `invalid_timestamp`,
 * `timestamp_out_of_range`), or undefined when it is one.
 */
export function rrwebEventProblem(value: unknown): ErrorCode | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'invalid_event';
  const event = value as { type?: unknown; timestamp?: unknown };
  if (typeof event.type !== 'number' || !Number.isSafeInteger(event.type) || event.type < 0) return 'invalid_event';
  return timestampProblem(event.timestamp);
}

export function isRrwebEvent(value: unknown): value is RrwebEvent {
  return rrwebEventProblem(value) === undefined;
}

/** Session and window ids go into Kafka keys, S3 block lists, SQL and API paths: only this shape is accepted. */
export const SESSION_ID_PATTERN = /^[A-Za-z0-9-]{1,70}$/;
