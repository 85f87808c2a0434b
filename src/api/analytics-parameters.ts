import { ReplayError } from '../errors/index.ts';
import { parseCount, parseTime, rejectUnknownParameters } from './parameters.ts';

/**
 * The query strings of the analytics routes (docs/analytics.md). Every value is checked here, typed and bounded,
 * before it reaches ClickHouse (as a query parameter) or Redis; anything else in the query string is refused.
 */

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** The widest range one analytics request may ask for. */
export const ANALYTICS_MAX_DAYS = 93;
/** The range when the request names none: the last 7 days up to the end of the current hour (or day). */
export const ANALYTICS_DEFAULT_DAYS = 7;
/** Dates outside this window are refused (the roll-ups' DateTime covers 1970-2106; nothing real lies outside). */
const EARLIEST_MS = Date.UTC(2000, 0, 1);
const LATEST_MS = Date.UTC(2100, 0, 1);
/** Longest action, scenario and user id: the bounds capture enforces (src/uba/behavior-bounds.ts). */
const MAX_ID_LENGTH = 200;

export type Unit = 'hour' | 'day';
const unitMs: Record<Unit, number> = { hour: HOUR_MS, day: DAY_MS };

/** A half-open time range [from, to) in epoch ms, on whole hours or days (UTC). */
export interface TimeRange {
  readonly from: number;
  readonly to: number;
}

/**
 * `date_from` and `date_to` (ISO dates or date-times, UTC unless an offset is given): the range [date_from, date_to).
 * The roll-ups hold hours (and days), so both ends must fall on a whole `unit`; a range that would cut one would
 * count part of it as all of it. Default: the 7 days before the end of the current unit; at most 93 days.
 */
export function parseRange(query: URLSearchParams, now: number, unit: Unit): TimeRange {
  const step = unitMs[unit];
  const rawFrom = query.get('date_from');
  const rawTo = query.get('date_to');
  const to = rawTo ? parseTime('date_to', rawTo) : Math.floor(now / step) * step + step;
  const from = rawFrom ? parseTime('date_from', rawFrom) : to - ANALYTICS_DEFAULT_DAYS * DAY_MS;
  for (const [name, ms] of [
    ['date_from', from],
    ['date_to', to],
  ] as const) {
    if (ms < EARLIEST_MS || ms > LATEST_MS) {
      throw new ReplayError('invalid_parameter', `${name} must lie between 2000-01-01 and 2100-01-01`);
    }
    if (ms % step !== 0) {
      throw new ReplayError(
        'invalid_parameter',
        `${name} must fall on a whole ${unit} (UTC): this route reads ${unit}ly roll-ups`,
      );
    }
  }
  if (from >= to) throw new ReplayError('invalid_parameter', 'date_from must be before date_to');
  if (to - from > ANALYTICS_MAX_DAYS * DAY_MS) {
    throw new ReplayError('invalid_parameter', `date_from and date_to are at most ${ANALYTICS_MAX_DAYS} days apart`);
  }
  return { from, to };
}

/** `scenario`: one scenario id (an empty value is the scenario of behaviours sent without one), or all when absent. */
export function parseScenario(query: URLSearchParams): string | undefined {
  const scenario = query.get('scenario');
  if (scenario === null) return undefined;
  if (scenario.length > MAX_ID_LENGTH) {
    throw new ReplayError('invalid_scenario_id', `scenario is longer than ${MAX_ID_LENGTH} characters`);
  }
  return scenario;
}

/** An action name: the event names posthog-js sends as well as the seven behaviour actions. */
function parseAction(name: string, raw: string): string {
  if (raw.length === 0 || raw.length > MAX_ID_LENGTH) {
    throw new ReplayError('invalid_action_type', `${name}: an action name is 1-${MAX_ID_LENGTH} characters`);
  }
  return raw;
}

function parseLimit(query: URLSearchParams, max: number, fallback: number): number {
  const limit = parseCount('limit', query.get('limit'), max) ?? fallback;
  if (limit < 1) throw new ReplayError('invalid_parameter', `limit must be from 1 to ${max}`);
  return limit;
}

function oneOf<const T extends string>(query: URLSearchParams, name: string, values: readonly T[], fallback?: T): T {
  const raw = query.get(name);
  if (raw === null || raw === '') {
    if (fallback !== undefined) return fallback;
    throw new ReplayError('invalid_parameter', `${name} is required: one of ${values.join(', ')}`);
  }
  if (!(values as readonly string[]).includes(raw)) {
    throw new ReplayError('invalid_parameter', `${name} must be one of ${values.join(', ')}`);
  }
  return raw as T;
}

/** The base64url cursor of a page; `parse` checks what it decodes to, so a forged cursor is refused, not queried. */
function encodeOpaque(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function decodeOpaque<T>(raw: string, parse: (value: unknown) => T | undefined): T {
  let decoded: T | undefined;
  try {
    if (raw.length <= 400) decoded = parse(JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')));
  } catch {
    decoded = undefined;
  }
  if (decoded === undefined) throw new ReplayError('invalid_parameter', 'cursor is not one this API handed out');
  return decoded;
}

// ---------------------------------------------------------------------------------------------------------------

export interface DashboardQuery {
  readonly range: TimeRange;
  readonly scenario: string | undefined;
}

/** `dashboard?date_from&date_to[&scenario]`: whole hours. */
export function parseDashboardQuery(query: URLSearchParams, now: number): DashboardQuery {
  rejectUnknownParameters(query, ['date_from', 'date_to', 'scenario']);
  return { range: parseRange(query, now, 'hour'), scenario: parseScenario(query) };
}

export type TrendMetric =
  | { readonly kind: 'impressions' | 'clicks' | 'ctr' | 'conversions' | 'active_users' }
  | { readonly kind: 'action'; readonly action: string };

export const TREND_METRICS = ['impressions', 'clicks', 'ctr', 'conversions', 'active_users'] as const;

export interface TrendsQuery {
  readonly metric: TrendMetric;
  readonly interval: Unit;
  readonly range: TimeRange;
  readonly scenario: string | undefined;
}

/** `trends?metric&interval=hour|day&date_from&date_to[&scenario]`: the range on whole intervals. */
export function parseTrendsQuery(query: URLSearchParams, now: number): TrendsQuery {
  rejectUnknownParameters(query, ['metric', 'interval', 'date_from', 'date_to', 'scenario']);
  const raw = query.get('metric') ?? '';
  let metric: TrendMetric;
  if (raw.startsWith('action:'))
    metric = { kind: 'action', action: parseAction('metric', raw.slice('action:'.length)) };
  else if ((TREND_METRICS as readonly string[]).includes(raw)) metric = { kind: raw as (typeof TREND_METRICS)[number] };
  else throw new ReplayError('invalid_parameter', `metric must be one of ${TREND_METRICS.join(', ')} or action:<name>`);
  const interval = oneOf(query, 'interval', ['hour', 'day'] as const, 'day');
  return { metric, interval, range: parseRange(query, now, interval), scenario: parseScenario(query) };
}

export const TOP_ITEMS_ORDERS = ['clicks', 'impressions', 'ctr', 'conversions'] as const;
export type TopItemsOrder = (typeof TOP_ITEMS_ORDERS)[number];
export const TOP_ITEMS_MAX_LIMIT = 100;
/** Below this many impressions an item's CTR is noise (1 click in 2 impressions would top the list). */
export const DEFAULT_MIN_IMPRESSIONS_FOR_CTR = 100;

export interface TopItemsQuery {
  readonly by: TopItemsOrder;
  readonly range: TimeRange;
  readonly scenario: string | undefined;
  readonly limit: number;
  readonly minImpressions: number;
}

/** `top-items?by&date_from&date_to[&scenario][&limit][&min_impressions]`: whole days (the item roll-up is daily). */
export function parseTopItemsQuery(query: URLSearchParams, now: number): TopItemsQuery {
  rejectUnknownParameters(query, ['by', 'date_from', 'date_to', 'scenario', 'limit', 'min_impressions']);
  const by = oneOf(query, 'by', TOP_ITEMS_ORDERS, 'clicks');
  const minImpressions =
    parseCount('min_impressions', query.get('min_impressions'), 1_000_000_000) ??
    (by === 'ctr' ? DEFAULT_MIN_IMPRESSIONS_FOR_CTR : 0);
  return {
    by,
    range: parseRange(query, now, 'day'),
    scenario: parseScenario(query),
    limit: parseLimit(query, TOP_ITEMS_MAX_LIMIT, 20),
    minImpressions,
  };
}

export const TIMELINE_MAX_LIMIT = 500;

/** Where a timeline page stopped: its last entry's time (ms) and event id. */
export interface TimelineCursor {
  readonly timestampMs: number;
  readonly eventId: string;
}

export interface TimelineQuery {
  readonly userId: string;
  readonly limit: number;
  readonly before: TimelineCursor | undefined;
}

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const encodeTimelineCursor = (after: TimelineCursor): string => encodeOpaque([after.timestampMs, after.eventId]);

/** `users/:user/timeline?[limit][&cursor]`: `user` is the user id as sent (1-200 characters, URL-encoded in the path). */
export function parseTimelineQuery(user: string, query: URLSearchParams): TimelineQuery {
  rejectUnknownParameters(query, ['limit', 'cursor']);
  if (user.length === 0 || user.length > MAX_ID_LENGTH) {
    throw new ReplayError('invalid_user_id', `a user id is 1-${MAX_ID_LENGTH} characters`);
  }
  const cursor = query.get('cursor');
  const before = cursor
    ? decodeOpaque(cursor, (value) => {
        const [timestampMs, eventId] = value as [unknown, unknown];
        return Array.isArray(value) &&
          value.length === 2 &&
          Number.isSafeInteger(timestampMs) &&
          (timestampMs as number) >= 0 &&
          typeof eventId === 'string' &&
          UUID_PATTERN.test(eventId)
          ? { timestampMs: timestampMs as number, eventId }
          : undefined;
      })
    : undefined;
  return { userId: user, limit: parseLimit(query, TIMELINE_MAX_LIMIT, 100), before };
}

export const REALTIME_MAX_LIMIT = 100;

export interface RealtimeQuery {
  readonly scenario: string | undefined;
  readonly limit: number;
}

/** `realtime?[scenario][&limit]`. */
export function parseRealtimeQuery(query: URLSearchParams): RealtimeQuery {
  rejectUnknownParameters(query, ['scenario', 'limit']);
  return { scenario: parseScenario(query), limit: parseLimit(query, REALTIME_MAX_LIMIT, 20) };
}

export const AUDIENCE_MAX_ACTIONS = 10;
export const AUDIENCE_MAX_LIMIT = 1000;

export interface AudienceQuery {
  /** Users who did every one of these in the range... */
  readonly did: readonly string[];
  /** ...and none of these. */
  readonly not: readonly string[];
  readonly range: TimeRange;
  readonly limit: number;
  /** The page starts after this user key (sipHash64 of the user id, decimal). */
  readonly after: bigint | undefined;
}

function parseActions(query: URLSearchParams, name: string): string[] {
  const actions = [
    ...new Set(
      query
        .getAll(name)
        .flatMap((value) => value.split(','))
        .map((action) => parseAction(name, action)),
    ),
  ];
  if (actions.length > AUDIENCE_MAX_ACTIONS) {
    throw new ReplayError('invalid_parameter', `${name} names at most ${AUDIENCE_MAX_ACTIONS} actions`);
  }
  return actions;
}

export const encodeAudienceCursor = (after: bigint): string => encodeOpaque(after.toString());

/** `audiences?did=a,b[&not=c]&date_from&date_to[&limit][&cursor]`: whole days (the audience bitmaps are daily). */
export function parseAudienceQuery(query: URLSearchParams, now: number): AudienceQuery {
  rejectUnknownParameters(query, ['did', 'not', 'date_from', 'date_to', 'limit', 'cursor']);
  const did = parseActions(query, 'did');
  if (did.length === 0) throw new ReplayError('invalid_parameter', 'did is required: one or more actions, a,b,...');
  const cursor = query.get('cursor');
  const after = cursor
    ? decodeOpaque(cursor, (value) =>
        typeof value === 'string' && /^\d{1,20}$/.test(value) && BigInt(value) < 2n ** 64n ? BigInt(value) : undefined,
      )
    : undefined;
  return {
    did,
    not: parseActions(query, 'not'),
    range: parseRange(query, now, 'day'),
    limit: parseLimit(query, AUDIENCE_MAX_LIMIT, 100),
    after,
  };
}
