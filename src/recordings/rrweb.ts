import type { ErrorCode } from '../errors/index.ts';
import { timestampProblem } from './bounds.ts';

/** The parts of rrweb's event model the pipeline reads. Everything else in an event is carried through untouched. */
export const EventType = { FullSnapshot: 2, IncrementalSnapshot: 3, Meta: 4, Custom: 5, Plugin: 6 } as const;

export const IncrementalSource = {
  Mutation: 0,
  MouseMove: 1,
  MouseInteraction: 2,
  Scroll: 3,
  ViewportResize: 4,
  Input: 5,
  TouchMove: 6,
  MediaInteraction: 7,
  Drag: 12,
} as const;

export const MouseInteraction = { Click: 2, ContextMenu: 3, DblClick: 4, TouchEnd: 9 } as const;

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
