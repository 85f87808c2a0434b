import { type ErrorCode, ReplayError } from '../errors/index.ts';
import { MAX_BEHAVIORS_PER_REQUEST } from './behavior-bounds.ts';
import type { BehaviorRecord } from './behavior-record.ts';

/**
 * What one request's behaviours became: the records to produce, and the behaviours refused alone for an input bound
 * (DESIGN §3.5.1), each with its index in the request. Both readers (behaviors-request.ts, posthog-events.ts) give
 * this; capture produces the records in one transaction and answers with the rejections.
 */
export interface BehaviorRejection {
  /** The behaviour's index in the request (0 for a body that is one object). */
  readonly index: number;
  readonly code: ErrorCode;
  readonly detail: string;
}

export interface BehaviorBatch {
  readonly records: BehaviorRecord[];
  readonly rejected: BehaviorRejection[];
  /** posthog-js property values left out of the records for their size (the events were kept). */
  readonly omittedProperties: number;
}

/** Where and when a request's behaviours are recorded: the team the token resolved to, and capture's clock. */
export interface BehaviorContext {
  readonly tenantId: number;
  readonly capturedAt: number;
  /** Event ids for behaviours that bring none (default: random UUIDs). */
  readonly newEventId?: () => string;
}

/** A request body read so far: its token (if any) and its items, not yet validated one by one. */
export interface BehaviorItems {
  readonly token: string | undefined;
  readonly items: readonly unknown[];
}

export type Json = Record<string, unknown>;

export function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A token field as `JSON.parse` gave it: a string, or a finite number as its `String`. */
export function tokenString(value: unknown): string | undefined {
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

/** The body's JSON, or 400 `invalid_json`. */
export function parseJsonBody(json: Buffer): unknown {
  try {
    return JSON.parse(json.toString('utf8'));
  } catch (error) {
    throw new ReplayError('invalid_json', `body is not valid JSON: ${(error as Error).message}`);
  }
}

/** Refuses a request with more than `MAX_BEHAVIORS_PER_REQUEST` events (413 `too_many_events`), before any is read. */
export function expectFewEnough(count: number): void {
  if (count > MAX_BEHAVIORS_PER_REQUEST) {
    throw new ReplayError(
      'too_many_events',
      `the request holds ${count} events; at most ${MAX_BEHAVIORS_PER_REQUEST} are accepted at once`,
    );
  }
}

/**
 * The one token of a request's items: `found` gives each item's own (or undefined). Items that carry different
 * tokens refuse the request (400 `invalid_payload`): one request is one tenant.
 */
export function oneToken(first: string | undefined, items: readonly unknown[], found: (item: unknown) => unknown) {
  let token = first;
  for (const item of items) {
    const own = tokenString(found(item));
    if (own === undefined) continue;
    if (token !== undefined && token !== own) {
      throw new ReplayError('invalid_payload', 'items of one request carry different tokens');
    }
    token = own;
  }
  return token;
}

/** Nothing of the request was accepted: it fails with the first rejection's code (400), naming the first few. */
export function expectSomeAccepted(batch: BehaviorBatch): void {
  if (batch.records.length > 0 || batch.rejected.length === 0) return;
  const first = batch.rejected[0]!;
  const named = batch.rejected
    .slice(0, 5)
    .map((r) => `${r.index}: ${r.code}`)
    .join(', ');
  throw new ReplayError(
    first.code,
    `all ${batch.rejected.length} events were refused (${named}${batch.rejected.length > 5 ? ', ...' : ''}); the first: ${first.detail}`,
  );
}
