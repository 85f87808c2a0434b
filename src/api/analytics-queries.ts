import type { ClickHouseClient } from '@clickhouse/client';
import { ReplayError } from '../errors/index.ts';
import { type TimelineEntry, userTimeline } from '../uba/behavior-queries.ts';
import { behaviorTime } from '../uba/behavior-rows.ts';
import type { TimelineCursor, TimeRange, TopItemsOrder, TrendMetric, Unit } from './analytics-parameters.ts';

/**
 * The ClickHouse reads of the analytics API (docs/analytics.md has each one's SQL). Roll-ups where they can answer
 * (uba_hourly_metrics for the dashboard and trends, uba_item_daily for top items, uba_audiences for audiences, read
 * with -Merge), the raw table only for what they cannot (top items of one scenario, audience members' ids, the
 * realtime fallback). Every value from a request is a typed query parameter; only fixed fragments chosen in code
 * (an interval's function, a metric's expression) are put in the SQL text.
 */

/** `YYYY-MM-DD HH:MM:SS` (a `DateTime('UTC')` parameter) and `YYYY-MM-DD` (a `Date`) of epoch ms. */
const dateTime = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
const date = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** The dashboard's numbers for one period. */
export interface Kpis {
  readonly impressions: number;
  readonly clicks: number;
  /** clicks / impressions; null without impressions. */
  readonly ctr: number | null;
  /** Behaviours with action `order`. */
  readonly conversions: number;
  /** conversions / active_users; null without active users. */
  readonly conversion_rate: number | null;
  /** Distinct users with any behaviour (uniqCombined64: exact up to ~4k users, then ~0.3 % standard error). */
  readonly active_users: number;
}

export interface TrendPoint {
  /** Start of the bucket, UTC ISO. */
  readonly bucket: string;
  /** The metric in the bucket (0 for an empty one); for `ctr`, null without impressions. */
  readonly value: number | null;
}

export interface TopItem {
  readonly item_id: string;
  readonly impressions: number;
  readonly clicks: number;
  readonly ctr: number | null;
  readonly conversions: number;
}

export interface HotItem {
  readonly item_id: string;
  /** log2 of the item's forward-decayed weight (the hot-items ZSET's scale, src/uba/realtime/keys.ts). */
  readonly score: number;
  /** The decayed weight now: Σ weight(action) · 2^((t − now) / half-life). */
  readonly weight: number;
}

const ratio = (numerator: number, denominator: number): number | null =>
  denominator > 0 ? numerator / denominator : null;

const kpis = (impressions: number, clicks: number, conversions: number, activeUsers: number): Kpis => ({
  impressions,
  clicks,
  ctr: ratio(clicks, impressions),
  conversions,
  conversion_rate: ratio(conversions, activeUsers),
  active_users: activeUsers,
});

const bucketStart: Record<Unit, string> = { hour: 'toStartOfHour(hour)', day: 'toStartOfDay(hour)' };
const bucketMs: Record<Unit, number> = { hour: 3_600_000, day: 86_400_000 };

/** A metric as `value` columns of uba_hourly_metrics, and the actions it needs (none: every action). */
function trendColumns(metric: TrendMetric): { columns: string; actions: readonly string[] | undefined } {
  switch (metric.kind) {
    case 'impressions':
      return { columns: 'countMerge(events) AS value', actions: ['impression'] };
    case 'clicks':
      return { columns: 'countMerge(events) AS value', actions: ['click'] };
    case 'conversions':
      return { columns: 'countMerge(events) AS value', actions: ['order'] };
    case 'action':
      return { columns: 'countMerge(events) AS value', actions: [metric.action] };
    case 'ctr':
      return {
        columns: `countMergeIf(events, action_type = 'click') AS clicks,
                  countMergeIf(events, action_type = 'impression') AS impressions`,
        actions: ['click', 'impression'],
      };
    case 'active_users':
      return { columns: 'uniqCombined64Merge(users) AS value', actions: undefined };
  }
}

const topItemsOrder: Record<TopItemsOrder, string> = {
  clicks: 'clicks DESC',
  impressions: 'impressions DESC',
  conversions: 'conversions DESC',
  ctr: 'clicks / impressions DESC',
};
/** The rows an order ranks: an item without any of its metric is not a "top" item; CTR needs the impressions guard. */
const topItemsHaving: Record<TopItemsOrder, string> = {
  clicks: 'clicks > 0',
  impressions: 'impressions > 0',
  conversions: 'conversions > 0',
  ctr: 'impressions >= greatest({min_impressions:UInt64}, 1)',
};

export class AnalyticsQueries {
  private readonly client: ClickHouseClient;
  private readonly maxExecutionS: number;

  constructor(client: ClickHouseClient, options: { readonly maxExecutionS: number }) {
    this.client = client;
    this.maxExecutionS = options.maxExecutionS;
  }

  /**
   * The KPIs of `range` and of the period of the same length before it, in one read of uba_hourly_metrics (both
   * periods' hours, each aggregate restricted to its own by -If).
   */
  async dashboard(tenant: number, range: TimeRange, scenario?: string): Promise<{ current: Kpis; previous: Kpis }> {
    const [row] = await this.rows<Record<string, number>>(
      `SELECT
          countMergeIf(events, action_type = 'impression' AND hour >= {from:DateTime('UTC')}) AS impressions,
          countMergeIf(events, action_type = 'click' AND hour >= {from:DateTime('UTC')}) AS clicks,
          countMergeIf(events, action_type = 'order' AND hour >= {from:DateTime('UTC')}) AS conversions,
          uniqCombined64MergeIf(users, hour >= {from:DateTime('UTC')}) AS active_users,
          countMergeIf(events, action_type = 'impression' AND hour < {from:DateTime('UTC')}) AS previous_impressions,
          countMergeIf(events, action_type = 'click' AND hour < {from:DateTime('UTC')}) AS previous_clicks,
          countMergeIf(events, action_type = 'order' AND hour < {from:DateTime('UTC')}) AS previous_conversions,
          uniqCombined64MergeIf(users, hour < {from:DateTime('UTC')}) AS previous_active_users
        FROM uba_hourly_metrics
        WHERE tenant_id = {tenant:Int64}
          AND hour >= {previous_from:DateTime('UTC')} AND hour < {to:DateTime('UTC')}
          ${scenario === undefined ? '' : 'AND scenario_id = {scenario:String}'}`,
      {
        tenant,
        from: dateTime(range.from),
        to: dateTime(range.to),
        previous_from: dateTime(range.from - (range.to - range.from)),
        scenario,
      },
    );
    const n = (name: string) => Number(row?.[name] ?? 0);
    return {
      current: kpis(n('impressions'), n('clicks'), n('conversions'), n('active_users')),
      previous: kpis(
        n('previous_impressions'),
        n('previous_clicks'),
        n('previous_conversions'),
        n('previous_active_users'),
      ),
    };
  }

  /** One metric per hour or day of `range`, every bucket present (those without rows are 0, CTR null). */
  async trend(
    tenant: number,
    metric: TrendMetric,
    interval: Unit,
    range: TimeRange,
    scenario?: string,
  ): Promise<TrendPoint[]> {
    const { columns, actions } = trendColumns(metric);
    const rows = await this.rows<{ bucket_ms: number; value?: number; clicks?: number; impressions?: number }>(
      `SELECT toUnixTimestamp(${bucketStart[interval]}) * 1000 AS bucket_ms, ${columns}
        FROM uba_hourly_metrics
        WHERE tenant_id = {tenant:Int64} AND hour >= {from:DateTime('UTC')} AND hour < {to:DateTime('UTC')}
          ${actions === undefined ? '' : 'AND action_type IN {actions:Array(String)}'}
          ${scenario === undefined ? '' : 'AND scenario_id = {scenario:String}'}
        GROUP BY bucket_ms
        ORDER BY bucket_ms`,
      { tenant, from: dateTime(range.from), to: dateTime(range.to), actions, scenario },
    );
    const byBucket = new Map(rows.map((row) => [Number(row.bucket_ms), row]));
    // Filled here rather than WITH FILL: the buckets are known from the range alone, and a missing one is 0 (or null).
    const points: TrendPoint[] = [];
    for (let t = range.from; t < range.to; t += bucketMs[interval]) {
      const row = byBucket.get(t);
      const value =
        metric.kind === 'ctr'
          ? ratio(Number(row?.clicks ?? 0), Number(row?.impressions ?? 0))
          : Number(row?.value ?? 0);
      points.push({ bucket: new Date(t).toISOString(), value });
    }
    return points;
  }

  /**
   * Items of whole days ranked by `by`, ties by item id. All scenarios: uba_item_daily. One scenario: the raw table
   * (the item roll-up has no scenario), whose sorting key (tenant, date, action, scenario, ...) keeps the read to the
   * three actions of that scenario.
   */
  async topItems(
    tenant: number,
    options: {
      readonly by: TopItemsOrder;
      readonly range: TimeRange;
      readonly scenario: string | undefined;
      readonly limit: number;
      readonly minImpressions: number;
    },
  ): Promise<TopItem[]> {
    const source =
      options.scenario === undefined
        ? `SELECT item_id, countMerge(impressions) AS impressions, countMerge(clicks) AS clicks,
              countMerge(orders) AS conversions
            FROM uba_item_daily
            WHERE tenant_id = {tenant:Int64} AND date >= {from:Date} AND date < {to:Date}`
        : `SELECT item_id, countIf(action_type = 'impression') AS impressions, countIf(action_type = 'click') AS clicks,
              countIf(action_type = 'order') AS conversions
            FROM user_behaviors
            WHERE tenant_id = {tenant:Int64} AND date >= {from:Date} AND date < {to:Date}
              AND action_type IN ('impression', 'click', 'order') AND scenario_id = {scenario:String} AND item_id != ''`;
    const rows = await this.rows<{ item_id: string; impressions: number; clicks: number; conversions: number }>(
      `${source}
        GROUP BY item_id
        HAVING impressions >= {min_impressions:UInt64} AND ${topItemsHaving[options.by]}
        ORDER BY ${topItemsOrder[options.by]}, item_id
        LIMIT {limit:UInt32}`,
      {
        tenant,
        from: date(options.range.from),
        to: date(options.range.to),
        scenario: options.scenario,
        min_impressions: options.minImpressions,
        limit: options.limit,
      },
    );
    return rows.map((row) => {
      const [impressions, clicks, conversions] = [Number(row.impressions), Number(row.clicks), Number(row.conversions)];
      return { item_id: row.item_id, impressions, clicks, ctr: ratio(clicks, impressions), conversions };
    });
  }

  /** A page of one user's timeline, newest first (the point lookup of user_behaviors_by_user: `userTimeline`). */
  async timeline(
    tenant: number,
    userId: string,
    limit: number,
    before: TimelineCursor | undefined,
  ): Promise<TimelineEntry[]> {
    return await this.guard(() =>
      userTimeline(this.client, tenant, userId, {
        limit,
        ...(before ? { before: { timestamp: behaviorTime(before.timestampMs), event_id: before.eventId } } : {}),
      }),
    );
  }

  /**
   * Users who did every action of `did` and none of `not` on the days of `range`: the count and a page of their
   * keys (sipHash64 of the user id, ascending, after `after`) from the merged bitmaps of uba_audiences, then those
   * keys' user ids from the raw table (a bitmap holds keys only). Each action's bitmap is the OR of its days'.
   */
  async audience(
    tenant: number,
    options: {
      readonly did: readonly string[];
      readonly not: readonly string[];
      readonly range: TimeRange;
      readonly limit: number;
      readonly after: bigint | undefined;
    },
  ): Promise<{ count: number; users: string[]; lastKey: bigint | undefined; more: boolean }> {
    const state = (name: string) => `groupBitmapMergeStateIf(users, action_type = {${name}:String})`;
    const did = options.did.map((_, i) => state(`did${i}`));
    const not = options.not.map((_, i) => state(`not${i}`));
    const all = did.length === 1 ? did[0]! : did.slice(1).reduce((acc, s) => `bitmapAnd(${acc}, ${s})`, did[0]!);
    const none = not.length === 0 ? undefined : not.slice(1).reduce((acc, s) => `bitmapOr(${acc}, ${s})`, not[0]!);
    const audience = none === undefined ? all : `bitmapAndnot(${all}, ${none})`;
    const range = { from: date(options.range.from), to: date(options.range.to) };
    // bitmapSubsetLimit/InRange mishandle keys of 2^63 and above (half of all sipHash64 values) on ClickHouse 26.7:
    // the page is cut from the sorted member array instead.
    const keys = `arraySort(bitmapToArray(audience))`;
    const page = options.after === undefined ? keys : `arrayFilter(k -> k > {after:UInt64}, ${keys})`;
    const [row] = await this.rows<{ count: number; page: string[]; remaining: number }>(
      `WITH ${audience} AS audience
        SELECT bitmapCardinality(audience) AS count,
          arrayMap(k -> toString(k), arraySlice(${page}, 1, {limit:UInt32})) AS page, length(${page}) AS remaining
        FROM uba_audiences
        WHERE tenant_id = {tenant:Int64} AND action_type IN {actions:Array(String)}
          AND date >= {from:Date} AND date < {to:Date}`,
      {
        tenant,
        actions: [...options.did, ...options.not],
        ...range,
        limit: options.limit,
        after: options.after,
        ...Object.fromEntries(options.did.map((action, i) => [`did${i}`, action])),
        ...Object.fromEntries(options.not.map((action, i) => [`not${i}`, action])),
      },
    );
    const count = Number(row?.count ?? 0);
    const pageKeys = (row?.page ?? []).map((key) => BigInt(key));
    const lastKey = pageKeys.at(-1);
    const more = Number(row?.remaining ?? 0) > pageKeys.length;
    if (pageKeys.length === 0) return { count, users: [], lastKey, more };
    // Every member did did[0] in the range, so its rows of that action hold its id; the sorting key keeps the read
    // to that action's rows of those days.
    const names = await this.rows<{ key: string; user_id: string }>(
      `SELECT DISTINCT toString(sipHash64(user_id)) AS key, user_id
        FROM user_behaviors
        WHERE tenant_id = {tenant:Int64} AND date >= {from:Date} AND date < {to:Date}
          AND action_type = {action:String} AND sipHash64(user_id) IN {keys:Array(UInt64)}`,
      { tenant, ...range, action: options.did[0], keys: pageKeys },
    );
    const idsByKey = new Map<string, string[]>();
    for (const { key, user_id } of names) idsByKey.set(key, [...(idsByKey.get(key) ?? []), user_id].sort());
    // A key whose raw rows are gone (expired between the two reads) is left out of the page but not of the count.
    const users = pageKeys.flatMap((key) => idsByKey.get(key.toString()) ?? []);
    return { count, users, lastKey, more };
  }

  /**
   * The scenarios that can hold hot-item keys: those of the tenant's behaviours since `sinceMs` (the hot-item TTL),
   * most active first, at most `limit`. Read from uba_hourly_metrics (a few rows per hour).
   */
  async recentScenarios(tenant: number, sinceMs: number, limit: number): Promise<string[]> {
    const rows = await this.rows<{ scenario_id: string }>(
      `SELECT scenario_id FROM uba_hourly_metrics
        WHERE tenant_id = {tenant:Int64} AND hour >= toStartOfHour({since:DateTime('UTC')})
        GROUP BY scenario_id
        ORDER BY countMerge(events) DESC, scenario_id
        LIMIT {limit:UInt32}`,
      { tenant, since: dateTime(sinceMs), limit },
    );
    return rows.map((row) => row.scenario_id);
  }

  /**
   * The realtime fallback's hot items: the forward-decayed weight of each item's behaviours of the last hour, as the
   * realtime sink scores them (the action's weight, at min(timestamp, captured_at)), from the raw table.
   */
  async hotItemsLastHour(
    tenant: number,
    options: {
      readonly now: number;
      readonly scenario: string | undefined;
      readonly weights: Readonly<Record<string, number>>;
      readonly halfLifeS: number;
      readonly limit: number;
    },
  ): Promise<{ item_id: string; weight: number }[]> {
    const weighted = Object.entries(options.weights).filter(([, weight]) => weight > 0);
    if (weighted.length === 0) return [];
    const since = options.now - 3_600_000;
    const rows = await this.rows<{ item_id: string; weight: number }>(
      `SELECT item_id,
          sum(transform(action_type, {actions:Array(String)}, {weights:Array(Float64)}, 0.)
            * exp2((toUnixTimestamp64Milli(least(timestamp, captured_at)) - {now:Int64}) / {half_life_ms:Float64})) AS weight
        FROM user_behaviors
        WHERE tenant_id = {tenant:Int64} AND date >= toDate({since:DateTime64(3, 'UTC')})
          AND action_type IN {actions:Array(String)} AND item_id != ''
          ${options.scenario === undefined ? '' : 'AND scenario_id = {scenario:String}'}
          AND timestamp >= {since:DateTime64(3, 'UTC')} AND least(timestamp, captured_at) >= {since:DateTime64(3, 'UTC')}
        GROUP BY item_id
        ORDER BY weight DESC, item_id
        LIMIT {limit:UInt32}`,
      {
        tenant,
        actions: weighted.map(([action]) => action),
        weights: weighted.map(([, weight]) => weight),
        now: options.now,
        half_life_ms: options.halfLifeS * 1000,
        since: behaviorTime(since),
        scenario: options.scenario,
        limit: options.limit,
      },
    );
    return rows.map((row) => ({ item_id: row.item_id, weight: Number(row.weight) }));
  }

  /**
   * Behaviours per action in the minute starting at `minuteMs`, counted at min(timestamp, captured_at) as the realtime
   * sink counts them, from the raw table. (A behaviour's effective time is never after its timestamp, so the
   * `timestamp >=` bound is implied and lets the sorting key skip older days.)
   */
  async minuteCounts(tenant: number, minuteMs: number, scenario: string | undefined): Promise<Record<string, number>> {
    const rows = await this.rows<{ action_type: string; events: number }>(
      `SELECT action_type, count() AS events
        FROM user_behaviors
        WHERE tenant_id = {tenant:Int64} AND date >= toDate({from:DateTime64(3, 'UTC')})
          ${scenario === undefined ? '' : 'AND scenario_id = {scenario:String}'}
          AND timestamp >= {from:DateTime64(3, 'UTC')}
          AND least(timestamp, captured_at) >= {from:DateTime64(3, 'UTC')}
          AND least(timestamp, captured_at) < {to:DateTime64(3, 'UTC')}
        GROUP BY action_type
        ORDER BY action_type`,
      { tenant, from: behaviorTime(minuteMs), to: behaviorTime(minuteMs + 60_000), scenario },
    );
    return Object.fromEntries(rows.map((row) => [row.action_type, Number(row.events)]));
  }

  private async rows<T>(query: string, params: Record<string, unknown>): Promise<T[]> {
    const query_params = Object.fromEntries(Object.entries(params).filter(([, value]) => value !== undefined));
    return await this.guard(async () => {
      const result = await this.client.query({
        query,
        query_params,
        format: 'JSONEachRow',
        clickhouse_settings: { max_execution_time: this.maxExecutionS },
      });
      return await result.json<T>();
    });
  }

  /** Every request value is checked before it gets here, so a failing query is ClickHouse's trouble: 503, retriable. */
  private async guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof ReplayError) throw error;
      throw new ReplayError('clickhouse_unavailable', `analytics query failed: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
}
