import { ReplayError } from '../errors/index.ts';
import {
  DEFAULT_BREAKDOWN_LIMIT,
  type FunnelStep,
  MAX_BREAKDOWN_LIMIT,
  MAX_DROP_OFF_PAGE_SIZE,
  MAX_FUNNEL_STEPS,
  MAX_STEP_PROPERTIES,
  MIN_FUNNEL_STEPS,
} from '../uba/analytics/funnel.ts';
import { DEFAULT_PATH_TOP_K, MAX_PATH_DEPTH, MAX_PATH_TOP_K, type PathDirection } from '../uba/analytics/paths.ts';
import { MAX_PROPERTY_VALUE_LENGTH } from '../uba/analytics/query-support.ts';
import { MAX_RETENTION_PERIODS, type RetentionPeriod } from '../uba/analytics/retention.ts';
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
 * count part of it as all of it. Default: the 7 days before the end of the current unit; at most 93 days. The routes
 * that read the raw table (funnel, retention, paths, experiments) pass `aligned: false`: any millisecond is exact there.
 */
export function parseRange(
  query: URLSearchParams,
  now: number,
  unit: Unit,
  options: { readonly aligned?: boolean } = {},
): TimeRange {
  const step = unitMs[unit];
  const aligned = options.aligned ?? true;
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
    if (aligned && ms % step !== 0) {
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

function parseBoolean(query: URLSearchParams, name: string, fallback?: boolean): boolean {
  const raw = query.get(name);
  if (raw === null || raw === '') {
    if (fallback !== undefined) return fallback;
    throw new ReplayError('invalid_parameter', `${name} is required: true or false`);
  }
  if (raw !== 'true' && raw !== 'false') throw new ReplayError('invalid_parameter', `${name} must be true or false`);
  return raw === 'true';
}

/** A whole number from `min` to `max`; `fallback` when absent (required when there is none). */
function parseBounded(query: URLSearchParams, name: string, min: number, max: number, fallback?: number): number {
  const value = parseCount(name, query.get(name), max) ?? fallback;
  if (value === undefined) throw new ReplayError('invalid_parameter', `${name} is required: a whole number`);
  if (value < min) throw new ReplayError('invalid_parameter', `${name} must be a whole number from ${min} to ${max}`);
  return value;
}

/** A required action parameter (`invalid_action_type` when absent, empty or too long, like every action name). */
function requiredAction(query: URLSearchParams, name: string): string {
  return parseAction(name, query.get(name) ?? '');
}

/** A property key (breakdown): 1-200 characters, like the keys the behaviours carry. */
function parsePropertyKey(name: string, raw: string): string {
  if (raw.length === 0 || raw.length > MAX_ID_LENGTH) {
    throw new ReplayError('invalid_parameter', `${name}: a property key is 1-${MAX_ID_LENGTH} characters`);
  }
  return raw;
}

/** Longest `steps` text: 10 steps with a few properties each fit many times over; a URL rarely holds more. */
export const FUNNEL_MAX_STEPS_TEXT = 8192;
/** Longest `drop_off_cursor`: the funnel's own cursor holds a breakdown value (≤ 8,192 characters) in base64url. */
const FUNNEL_MAX_CURSOR_TEXT = 12_000;
/** The widest conversion window: the widest range. */
export const FUNNEL_MAX_WINDOW_S = ANALYTICS_MAX_DAYS * 86_400;
export const FUNNEL_DEFAULT_DROP_OFF_LIMIT = 20;

/**
 * `steps`: a JSON array of 2-10 `{action, properties?}`, `properties` an object of at most 10 string values (keys
 * 1-200 characters, values at most 8,192). Anything else in a step is refused, as unknown parameters are.
 */
export function parseFunnelSteps(raw: string | null): FunnelStep[] {
  if (raw === null || raw === '') {
    throw new ReplayError('invalid_parameter', 'steps is required: a JSON array of {"action", "properties"?}');
  }
  if (raw.length > FUNNEL_MAX_STEPS_TEXT) {
    throw new ReplayError('invalid_parameter', `steps is longer than ${FUNNEL_MAX_STEPS_TEXT} characters`);
  }
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new ReplayError('invalid_parameter', 'steps is not JSON: a JSON array of {"action", "properties"?}');
  }
  if (!Array.isArray(value) || value.length < MIN_FUNNEL_STEPS || value.length > MAX_FUNNEL_STEPS) {
    throw new ReplayError(
      'invalid_parameter',
      `steps must be a JSON array of ${MIN_FUNNEL_STEPS}-${MAX_FUNNEL_STEPS} steps`,
    );
  }
  return value.map((step: unknown, i): FunnelStep => {
    const name = `steps[${i}]`;
    if (typeof step !== 'object' || step === null || Array.isArray(step)) {
      throw new ReplayError('invalid_parameter', `${name} must be an object {"action", "properties"?}`);
    }
    const fields = step as Record<string, unknown>;
    for (const key of Object.keys(fields)) {
      if (key !== 'action' && key !== 'properties') {
        throw new ReplayError('invalid_parameter', `${name} has an unknown field "${key.slice(0, 40)}"`);
      }
    }
    const action = parseAction(`${name}.action`, typeof fields.action === 'string' ? fields.action : '');
    if (fields.properties === undefined) return { action };
    const properties = fields.properties;
    if (typeof properties !== 'object' || properties === null || Array.isArray(properties)) {
      throw new ReplayError('invalid_parameter', `${name}.properties must be an object of strings`);
    }
    const entries = Object.entries(properties);
    if (entries.length > MAX_STEP_PROPERTIES) {
      throw new ReplayError('invalid_parameter', `${name}.properties holds at most ${MAX_STEP_PROPERTIES} keys`);
    }
    for (const [key, text] of entries) {
      parsePropertyKey(`${name}.properties`, key);
      if (typeof text !== 'string' || text.length > MAX_PROPERTY_VALUE_LENGTH) {
        throw new ReplayError(
          'invalid_parameter',
          `${name}.properties values are strings of at most ${MAX_PROPERTY_VALUE_LENGTH} characters`,
        );
      }
    }
    return { action, properties: Object.fromEntries(entries) as Record<string, string> };
  });
}

export interface FunnelQuery {
  readonly steps: readonly FunnelStep[];
  readonly windowS: number;
  readonly strict: boolean;
  readonly breakdown: string | undefined;
  readonly breakdownLimit: number;
  readonly range: TimeRange;
  readonly dropOffLimit: number;
  readonly dropOffCursor: string | undefined;
}

/**
 * `funnel?steps&window_s&strict[&breakdown][&breakdown_limit][&date_from&date_to][&drop_off_limit][&drop_off_cursor]`:
 * any millisecond range (the raw table); `drop_off_cursor` is the funnel's own, checked by funnel().
 */
export function parseFunnelQuery(query: URLSearchParams, now: number): FunnelQuery {
  rejectUnknownParameters(query, [
    'steps',
    'window_s',
    'strict',
    'breakdown',
    'breakdown_limit',
    'date_from',
    'date_to',
    'drop_off_limit',
    'drop_off_cursor',
  ]);
  const breakdown = query.get('breakdown');
  const cursor = query.get('drop_off_cursor');
  if (cursor && cursor.length > FUNNEL_MAX_CURSOR_TEXT) {
    throw new ReplayError('invalid_parameter', 'drop_off_cursor is not one this API handed out');
  }
  return {
    steps: parseFunnelSteps(query.get('steps')),
    windowS: parseBounded(query, 'window_s', 1, FUNNEL_MAX_WINDOW_S),
    strict: parseBoolean(query, 'strict'),
    breakdown: breakdown === null ? undefined : parsePropertyKey('breakdown', breakdown),
    breakdownLimit: parseBounded(query, 'breakdown_limit', 1, MAX_BREAKDOWN_LIMIT, DEFAULT_BREAKDOWN_LIMIT),
    range: parseRange(query, now, 'hour', { aligned: false }),
    dropOffLimit: parseBounded(query, 'drop_off_limit', 0, MAX_DROP_OFF_PAGE_SIZE, FUNNEL_DEFAULT_DROP_OFF_LIMIT),
    dropOffCursor: cursor || undefined,
  };
}

export interface RetentionQuery {
  readonly startAction: string;
  readonly returnAction: string;
  readonly period: RetentionPeriod;
  readonly periods: number;
  readonly range: TimeRange;
}

/** `retention?start&return&period=day|week&periods[&date_from&date_to]`: periods 0-31 days or 0-12 weeks. */
export function parseRetentionQuery(query: URLSearchParams, now: number): RetentionQuery {
  rejectUnknownParameters(query, ['start', 'return', 'period', 'periods', 'date_from', 'date_to']);
  const period = oneOf(query, 'period', ['day', 'week'] as const);
  return {
    startAction: requiredAction(query, 'start'),
    returnAction: requiredAction(query, 'return'),
    period,
    periods: parseBounded(query, 'periods', 0, MAX_RETENTION_PERIODS[period]),
    range: parseRange(query, now, 'day', { aligned: false }),
  };
}

export interface PathsQuery {
  readonly action: string;
  readonly direction: PathDirection;
  readonly depth: number;
  readonly topK: number;
  readonly sameSession: boolean;
  readonly range: TimeRange;
}

/** `paths?action&direction=next|previous&depth=1..3[&top=1..20][&same_session=true|false][&date_from&date_to]`. */
export function parsePathsQuery(query: URLSearchParams, now: number): PathsQuery {
  rejectUnknownParameters(query, ['action', 'direction', 'depth', 'top', 'same_session', 'date_from', 'date_to']);
  return {
    action: requiredAction(query, 'action'),
    direction: oneOf(query, 'direction', ['next', 'previous'] as const),
    depth: parseBounded(query, 'depth', 1, MAX_PATH_DEPTH),
    topK: parseBounded(query, 'top', 1, MAX_PATH_TOP_K, DEFAULT_PATH_TOP_K),
    sameSession: parseBoolean(query, 'same_session', false),
    range: parseRange(query, now, 'hour', { aligned: false }),
  };
}

export interface ExperimentQuery {
  readonly experimentId: string;
  readonly conversionAction: string | undefined;
  readonly control: string | undefined;
  readonly range: TimeRange;
}

/**
 * `experiments/:id?[conversion][&control][&date_from&date_to]`: the id and the control group 1-200 characters, like
 * the behaviours' own. The default range is whole days, which the experiment roll-up answers.
 */
export function parseExperimentQuery(id: string, query: URLSearchParams, now: number): ExperimentQuery {
  rejectUnknownParameters(query, ['conversion', 'control', 'date_from', 'date_to']);
  if (id.length === 0 || id.length > MAX_ID_LENGTH) {
    throw new ReplayError('invalid_experiment_id', `an experiment id is 1-${MAX_ID_LENGTH} characters`);
  }
  const conversion = query.get('conversion');
  const control = query.get('control');
  if (control !== null && (control.length === 0 || control.length > MAX_ID_LENGTH)) {
    throw new ReplayError('invalid_experiment_group', `control: a group is 1-${MAX_ID_LENGTH} characters`);
  }
  return {
    experimentId: id,
    conversionAction: conversion === null ? undefined : parseAction('conversion', conversion),
    control: control ?? undefined,
    range: parseRange(query, now, 'day', { aligned: false }),
  };
}
