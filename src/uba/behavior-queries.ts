import type { ClickHouseClient } from '@clickhouse/client';
import { behaviorTime, isoTime } from './behavior-rows.ts';

/**
 * The reads of the UBA tables (docs/uba.md, "ClickHouse"), as the analytics API runs them. Roll-ups are read with
 * -Merge over whatever rows the range covers, so a total over hours, days, actions or scenarios is exact for counts
 * and a distinct count of the union for users; never sum per-row unique users.
 */

/** Days as 'YYYY-MM-DD' (UTC), both included. */
export interface DayRange {
  readonly from: string;
  readonly to: string;
}

async function rows<T>(client: ClickHouseClient, query: string, query_params: Record<string, unknown>): Promise<T[]> {
  const params = Object.fromEntries(Object.entries(query_params).filter(([, value]) => value !== undefined));
  return await (await client.query({ query, query_params: params, format: 'JSONEachRow' })).json<T>();
}

export interface TimelineEntry {
  readonly timestamp: string;
  readonly event_id: string;
  readonly action_type: string;
  readonly item_id: string;
  readonly scenario_id: string;
  readonly session_id: string;
  readonly view_id: string;
  readonly watch_duration: number;
  readonly completion_rate: number;
  readonly current_url: string;
  readonly properties: Record<string, string>;
  readonly source: string;
}

/**
 * One user's behaviours, newest first, in (timestamp, event_id) order (ClickHouse's UUID order for ties: see
 * `compareEventIds`), `limit` a page; `before` (the last entry of the previous page) continues. A point lookup in
 * user_behaviors_by_user (0007, sorted by tenant, user, timestamp, event_id): a few granules per month.
 */
export async function userTimeline(
  client: ClickHouseClient,
  tenantId: number,
  userId: string,
  options: {
    readonly limit?: number;
    readonly before?: { readonly timestamp: string; readonly event_id: string };
  } = {},
): Promise<TimelineEntry[]> {
  const before = options.before
    ? `AND timestamp <= {before_ts:DateTime64(3, 'UTC')}
       AND (timestamp, event_id) < ({before_ts:DateTime64(3, 'UTC')}, {before_id:UUID})`
    : '';
  return await rows<TimelineEntry>(
    client,
    `SELECT timestamp, event_id, action_type, item_id, scenario_id, session_id, view_id, watch_duration,
        completion_rate, current_url, properties, source
      FROM user_behaviors_by_user
      WHERE tenant_id = {tenant:Int64} AND user_id = {user:String} ${before}
      ORDER BY timestamp DESC, event_id DESC
      LIMIT {limit:UInt32}`,
    {
      tenant: tenantId,
      user: userId,
      limit: options.limit ?? 100,
      before_ts: options.before?.timestamp,
      before_id: options.before?.event_id,
    },
  );
}

/** A behaviour or posthog-js event of one recorded session, as the player lists it. */
export interface SessionBehavior {
  readonly timestamp: string;
  readonly event_id: string;
  readonly action_type: string;
  readonly item_id: string;
  readonly current_url: string;
  readonly source: string;
}

/**
 * The behaviours and analytics events that carry `sessionId` in [fromMs, toMs], oldest first, at most `limit`, with
 * ISO timestamps; an event stored twice (a redelivery) is listed once. The range keeps the read to the session's days
 * of the tenant.
 */
export async function sessionBehaviors(
  client: ClickHouseClient,
  tenantId: number,
  sessionId: string,
  range: { readonly fromMs: number; readonly toMs: number },
  limit: number,
): Promise<SessionBehavior[]> {
  const found = await rows<SessionBehavior>(
    client,
    `SELECT timestamp, event_id, action_type, item_id, current_url, source
      FROM user_behaviors
      WHERE tenant_id = {tenant:Int64}
        AND date BETWEEN toDate({from:DateTime64(3, 'UTC')}) AND toDate({to:DateTime64(3, 'UTC')})
        AND timestamp BETWEEN {from:DateTime64(3, 'UTC')} AND {to:DateTime64(3, 'UTC')}
        AND session_id = {session:String}
      ORDER BY timestamp, event_id
      LIMIT 1 BY event_id
      LIMIT {limit:UInt32}`,
    { tenant: tenantId, session: sessionId, from: behaviorTime(range.fromMs), to: behaviorTime(range.toMs), limit },
  );
  return found.map((row) => ({ ...row, timestamp: isoTime(row.timestamp) }));
}

export interface HourlyMetric {
  readonly hour: string;
  readonly action_type: string;
  readonly events: number;
  readonly users: number;
}

/** Events and distinct users per hour and action in [from, to) (ms), all scenarios or one. */
export async function hourlyMetrics(
  client: ClickHouseClient,
  tenantId: number,
  range: { readonly from: number; readonly to: number },
  scenarioId?: string,
): Promise<HourlyMetric[]> {
  return await rows<HourlyMetric>(
    client,
    `SELECT hour, action_type, countMerge(events) AS events, uniqCombined64Merge(users) AS users
      FROM uba_hourly_metrics
      WHERE tenant_id = {tenant:Int64} AND hour >= toStartOfHour({from:DateTime64(3, 'UTC')})
        AND hour < {to:DateTime64(3, 'UTC')} ${scenarioId === undefined ? '' : 'AND scenario_id = {scenario:String}'}
      GROUP BY hour, action_type
      ORDER BY hour, action_type`,
    { tenant: tenantId, from: behaviorTime(range.from), to: behaviorTime(range.to), scenario: scenarioId },
  );
}

/** Distinct users of [from, to) (ms) over every action and scenario: the dashboard's active users. */
export async function activeUsers(
  client: ClickHouseClient,
  tenantId: number,
  range: { readonly from: number; readonly to: number },
): Promise<number> {
  const [row] = await rows<{ users: number }>(
    client,
    `SELECT uniqCombined64Merge(users) AS users FROM uba_hourly_metrics
      WHERE tenant_id = {tenant:Int64} AND hour >= toStartOfHour({from:DateTime64(3, 'UTC')})
        AND hour < {to:DateTime64(3, 'UTC')}`,
    { tenant: tenantId, from: behaviorTime(range.from), to: behaviorTime(range.to) },
  );
  return row?.users ?? 0;
}

export interface ItemStats {
  readonly item_id: string;
  readonly impressions: number;
  readonly clicks: number;
  readonly views: number;
  readonly orders: number;
  readonly users: number;
  /** Seconds, each watch counted once with its latest watch_duration. */
  readonly watch_time: number;
}

/** Items of a day range, most clicked first (ties by impressions, then id). */
export async function topItems(
  client: ClickHouseClient,
  tenantId: number,
  days: DayRange,
  limit = 20,
): Promise<ItemStats[]> {
  return await rows<ItemStats>(
    client,
    `SELECT item_id, countMerge(impressions) AS impressions, countMerge(clicks) AS clicks, sumMerge(views) AS views,
        countMerge(orders) AS orders, uniqCombined64Merge(users) AS users, sumMerge(watch_time) AS watch_time
      FROM uba_item_daily
      WHERE tenant_id = {tenant:Int64} AND date BETWEEN {from:Date} AND {to:Date}
      GROUP BY item_id
      ORDER BY clicks DESC, impressions DESC, item_id
      LIMIT {limit:UInt32}`,
    { tenant: tenantId, from: days.from, to: days.to, limit },
  );
}

export interface ExperimentGroupMetrics {
  readonly experiment_group: string;
  readonly users: number;
  readonly converted_users: number;
  readonly events: number;
}

/** Per group of one experiment over a day range: distinct users, distinct users with an order, events. */
export async function experimentMetrics(
  client: ClickHouseClient,
  tenantId: number,
  experimentId: string,
  days: DayRange,
): Promise<ExperimentGroupMetrics[]> {
  return await rows<ExperimentGroupMetrics>(
    client,
    `SELECT experiment_group, uniqExactMerge(users) AS users, uniqExactMerge(converted_users) AS converted_users,
        countMerge(events) AS events
      FROM uba_experiment_daily
      WHERE tenant_id = {tenant:Int64} AND experiment_id = {experiment:String} AND date BETWEEN {from:Date} AND {to:Date}
      GROUP BY experiment_group
      ORDER BY experiment_group`,
    { tenant: tenantId, experiment: experimentId, from: days.from, to: days.to },
  );
}

/**
 * How many users did every one of `actions` (each on any day of the range, not necessarily the same day): the AND of
 * the actions' merged bitmaps. One action: its distinct users.
 */
export async function audienceSize(
  client: ClickHouseClient,
  tenantId: number,
  actions: readonly string[],
  days: DayRange,
): Promise<number> {
  if (actions.length === 0) throw new Error('audienceSize needs at least one action');
  const states = actions.map((_, i) => `groupBitmapMergeStateIf(users, action_type = {a${i}:String})`);
  const expression =
    states.length === 1
      ? `bitmapCardinality(${states[0]})`
      : states.length === 2
        ? `bitmapAndCardinality(${states[0]}, ${states[1]})`
        : `bitmapCardinality(${states.slice(1).reduce((acc, s) => `bitmapAnd(${acc}, ${s})`, states[0]!)})`;
  const [row] = await rows<{ users: number }>(
    client,
    `SELECT ${expression} AS users FROM uba_audiences
      WHERE tenant_id = {tenant:Int64} AND action_type IN {actions:Array(String)}
        AND date BETWEEN {from:Date} AND {to:Date}`,
    {
      tenant: tenantId,
      actions: [...actions],
      from: days.from,
      to: days.to,
      ...Object.fromEntries(actions.map((a, i) => [`a${i}`, a])),
    },
  );
  return row?.users ?? 0;
}

export interface WatchState {
  readonly tenant_id: number;
  readonly user_id: string;
  readonly view_id: string;
  readonly item_id: string;
  readonly timestamp: string;
  readonly watch_duration: number;
  readonly completion_rate: number;
  /** States written for this watch (its version). */
  readonly updates: number;
}

/** One user's watches, each once with its latest state (user_watches_latest: sum(sign) > 0), newest first. */
export async function userWatches(client: ClickHouseClient, tenantId: number, userId: string): Promise<WatchState[]> {
  return await rows<WatchState>(
    client,
    `SELECT tenant_id, user_id, view_id, item_id, timestamp, watch_duration, completion_rate, updates
      FROM user_watches_latest
      WHERE tenant_id = {tenant:Int64} AND user_id = {user:String}
      ORDER BY timestamp DESC, view_id`,
    { tenant: tenantId, user: userId },
  );
}
