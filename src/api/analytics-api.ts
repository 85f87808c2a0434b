import { Counter, type Registry } from 'prom-client';
import { sendJson, sendRevalidatedJson } from '../http/respond.ts';
import type { RouteContext, Router } from '../http/router.ts';
import type { Logger } from '../logging/logger.ts';
import type { RedisConnection } from '../uba/realtime/redis-connection.ts';
import {
  encodeAudienceCursor,
  encodeTimelineCursor,
  parseAudienceQuery,
  parseDashboardQuery,
  parseRealtimeQuery,
  parseTimelineQuery,
  parseTopItemsQuery,
  parseTrendsQuery,
  type TimeRange,
} from './analytics-parameters.ts';
import type { AnalyticsQueries, Kpis } from './analytics-queries.ts';
import type { ApiKeyStore } from './api-keys.ts';
import { authorisedTeam } from './authentication.ts';
import { RealtimeView } from './realtime-view.ts';

export interface AnalyticsApiOptions {
  readonly keys: ApiKeyStore;
  readonly queries: AnalyticsQueries;
  readonly redis: RedisConnection;
  /** API_REALTIME_REDIS_TIMEOUT_MS: past it, the realtime route answers from ClickHouse. */
  readonly redisTimeoutMs: number;
  /** The realtime sink's settings (REALTIME_ACTION_WEIGHTS, REALTIME_HALF_LIFE_S, REALTIME_HOT_TTL_S). */
  readonly realtime: {
    readonly weights: Readonly<Record<string, number>>;
    readonly halfLifeS: number;
    readonly hotTtlS: number;
  };
  readonly registry: Registry;
  readonly log: Logger;
  readonly now?: () => number;
}

/** Every analytics route lives under this path (DESIGN §3.8). */
export const analyticsPath = '/api/projects/:team/analytics';

/** What a route handler returns: the JSON body, and whether it may be revalidated (ETag) or never cached. */
interface Answer {
  readonly body: unknown;
  readonly cache?: 'revalidate' | 'no-store';
}

type AnalyticsHandler = (teamId: number, context: RouteContext) => Promise<Answer>;

/**
 * The analytics API of DESIGN §3.8 on `router` (docs/analytics.md): the same personal API keys as the replay API,
 * another team's project answering 404. Every route authenticates and resolves the team first, then parses its query
 * string (src/api/analytics-parameters.ts: unknown parameters refused, every value bounded), then reads ClickHouse
 * through AnalyticsQueries (values as query parameters only) or Redis.
 */
export function addAnalyticsRoutes(router: Router, options: AnalyticsApiOptions): Router {
  const now = options.now ?? Date.now;
  const { queries } = options;
  const answers = new Counter({
    name: 'replay_api_realtime_answers_total',
    help: 'Answers of the analytics realtime route by source: redis, or clickhouse when Redis failed or was too slow.',
    labelNames: ['source'],
    registers: [options.registry],
  });
  const realtime = new RealtimeView({
    redis: options.redis,
    queries,
    redisTimeoutMs: options.redisTimeoutMs,
    weights: options.realtime.weights,
    halfLifeS: options.realtime.halfLifeS,
    hotTtlS: options.realtime.hotTtlS,
    log: options.log,
    onAnswer: (source) => answers.inc({ source }),
  });

  const route = (path: string, handler: AnalyticsHandler) =>
    router.on('GET', `${analyticsPath}/${path}`, async (context) => {
      // The team first: another team's key learns nothing, not even which parameters would be refused.
      const teamId = await authorisedTeam(options.keys, context);
      const { body, cache = 'revalidate' } = await handler(teamId, context);
      if (cache === 'no-store') sendJson(context.res, 200, body, { 'cache-control': 'no-store' });
      else sendRevalidatedJson(context.req, context.res, body);
    });

  route('dashboard', async (teamId, { url }) => {
    const { range, scenario } = parseDashboardQuery(url.searchParams, now());
    const { current, previous } = await queries.dashboard(teamId, range, scenario);
    const length = range.to - range.from;
    return {
      body: {
        ...isoRange(range),
        scenario: scenario ?? null,
        current,
        previous_period: isoRange({ from: range.from - length, to: range.from }),
        previous,
        change: change(current, previous),
      },
    };
  });

  route('trends', async (teamId, { url }) => {
    const { metric, interval, range, scenario } = parseTrendsQuery(url.searchParams, now());
    const series = await queries.trend(teamId, metric, interval, range, scenario);
    return {
      body: {
        metric: metric.kind === 'action' ? `action:${metric.action}` : metric.kind,
        interval,
        ...isoRange(range),
        scenario: scenario ?? null,
        series,
      },
    };
  });

  route('top-items', async (teamId, { url }) => {
    const query = parseTopItemsQuery(url.searchParams, now());
    const results = await queries.topItems(teamId, query);
    return {
      body: {
        by: query.by,
        ...isoRange(query.range),
        scenario: query.scenario ?? null,
        min_impressions: query.minImpressions,
        results,
      },
    };
  });

  route('users/:user/timeline', async (teamId, context) => {
    const { userId, limit, before } = parseTimelineQuery(context.params.user!, context.url.searchParams);
    // One more than the page: whether a next page exists without a count.
    const entries = await queries.timeline(teamId, userId, limit + 1, before);
    const page = entries.slice(0, limit).map((entry) => ({ ...entry, timestamp: isoTime(entry.timestamp) }));
    const last = page.at(-1);
    const cursor =
      entries.length > limit && last
        ? encodeTimelineCursor({ timestampMs: Date.parse(last.timestamp), eventId: last.event_id })
        : null;
    return { body: { user_id: userId, results: page, ...nextPage(context, cursor) } };
  });

  route('realtime', async (teamId, { url }) => {
    const { scenario, limit } = parseRealtimeQuery(url.searchParams);
    return { body: await realtime.read(teamId, scenario, limit, now()), cache: 'no-store' };
  });

  route('audiences', async (teamId, context) => {
    const query = parseAudienceQuery(context.url.searchParams, now());
    const { count, users, lastKey, more } = await queries.audience(teamId, query);
    const cursor = more && lastKey !== undefined ? encodeAudienceCursor(lastKey) : null;
    return {
      body: {
        did: query.did,
        not: query.not,
        ...isoRange(query.range),
        count,
        results: users,
        ...nextPage(context, cursor),
      },
    };
  });

  // Funnel, retention, paths and experiments (DESIGN §3.8, issue 12) come next, from the query functions of
  // src/uba/analytics/. Each is one `route(...)` here, written like the ones above: its parameters parsed and bounded
  // in analytics-parameters.ts (rejectUnknownParameters, parseRange), the team already checked by `route`:
  //   route('funnel', ...)            route('retention', ...)
  //   route('paths', ...)             route('experiments/:experiment', ...)
  return router;
}

const isoRange = (range: TimeRange) => ({
  date_from: new Date(range.from).toISOString(),
  date_to: new Date(range.to).toISOString(),
});

/** ClickHouse's `2026-11-18 12:00:00.123` (UTC) as ISO. */
const isoTime = (value: string) => `${value.replace(' ', 'T')}Z`;

/** Relative change against the previous period, per metric; null where the previous value is 0 or null. */
function change(current: Kpis, previous: Kpis): Record<keyof Kpis, number | null> {
  const keys = Object.keys(current) as (keyof Kpis)[];
  return Object.fromEntries(
    keys.map((key) => {
      const [now, before] = [current[key], previous[key]];
      return [key, now === null || before === null || before === 0 ? null : (now - before) / before];
    }),
  ) as Record<keyof Kpis, number | null>;
}

/** `next_cursor` and `next` (the path of the following page, this request's query with the cursor replaced). */
function nextPage({ url }: RouteContext, cursor: string | null) {
  if (!cursor) return { next_cursor: null, next: null };
  const query = new URLSearchParams(url.searchParams);
  query.set('cursor', cursor);
  return { next_cursor: cursor, next: `${url.pathname}?${query}` };
}
