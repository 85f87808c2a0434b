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

export function isRrwebEvent(value: unknown): value is RrwebEvent {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const event = value as { type?: unknown; timestamp?: unknown };
  return (
    typeof event.type === 'number' &&
    Number.isInteger(event.type) &&
    typeof event.timestamp === 'number' &&
    Number.isFinite(event.timestamp) &&
    event.timestamp > 0
  );
}

/** Session and window ids go into Kafka keys, S3 block lists, SQL and API paths: only this shape is accepted. */
export const SESSION_ID_PATTERN = /^[A-Za-z0-9-]{1,70}$/;
