import type { ClickHouseClient } from '@clickhouse/client';
import { Counter, type Registry } from 'prom-client';
import { ReplayError } from '../errors/index.ts';
import { sendJson, sendRevalidatedJson } from '../http/respond.ts';
import type { RouteContext, Router } from '../http/router.ts';
import type { Logger } from '../logging/logger.ts';
import { experimentResults } from '../uba/analytics/experiments.ts';
import { funnel } from '../uba/analytics/funnel.ts';
import { paths } from '../uba/analytics/paths.ts';
import { retention } from '../uba/analytics/retention.ts';
import { isoTime } from '../uba/behavior-rows.ts';
import type { RedisConnection } from '../uba/realtime/redis-connection.ts';
import {
  encodeAudienceCursor,
  encodeTimelineCursor,
  parseAudienceQuery,
  parseDashboardQuery,
  parseExperimentQuery,
  parseFunnelQuery,
  parsePathsQuery,
  parseRealtimeQuery,
  parseRetentionQuery,
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
  /** The raw-table analytics of src/uba/analytics/ (funnel, retention, paths, experiments) take the client itself. */
  readonly clickhouse: ClickHouseClient;
  /** API_ANALYTICS_MAX_EXECUTION_S, applied to those reads as AnalyticsQueries applies it to its own. */
  readonly maxExecutionS: number;
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
/** The analytics API's metrics (docs/metrics.md is generated from these factories). */
export function createAnalyticsMetrics(registry: Registry) {
  return {
    answers: new Counter({
      name: 'replay_api_realtime_answers_total',
      help: 'Answers of the analytics realtime route by source: redis, or clickhouse when Redis failed or was too slow.',
      labelNames: ['source'],
      registers: [registry],
    }),
  };
}

export function addAnalyticsRoutes(router: Router, options: AnalyticsApiOptions): Router {
  const now = options.now ?? Date.now;
  const { queries } = options;
  const { answers } = createAnalyticsMetrics(options.registry);
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

  // The raw-table analytics (src/uba/analytics/): options mapped 1:1 from the parsed query, answers in snake_case.
  const clickhouse = limitedClient(options.clickhouse, options.maxExecutionS);

  route('funnel', async (teamId, context) => {
    const query = parseFunnelQuery(context.url.searchParams, now());
    const result = await guard(() =>
      funnel(clickhouse, {
        tenantId: teamId,
        from: query.range.from,
        to: query.range.to,
        steps: query.steps,
        windowMs: query.windowS * 1000,
        strictOrder: query.strict,
        breakdown: query.breakdown,
        breakdownLimit: query.breakdownLimit,
        dropOffPageSize: query.dropOffLimit,
        dropOffCursor: query.dropOffCursor,
      }),
    );
    return {
      body: {
        steps: query.steps,
        window_s: query.windowS,
        strict: query.strict,
        breakdown: query.breakdown ?? null,
        breakdown_limit: query.breakdownLimit,
        ...isoRange(query.range),
        drop_off_limit: query.dropOffLimit,
        breakdown_values: result.breakdownValues,
        groups: result.groups.map((group) => ({
          breakdown: group.breakdown,
          steps: group.steps.map((step) => ({
            step: step.step,
            action: step.action,
            users: step.users,
            conversion_from_first: step.conversionFromFirst,
            conversion_from_previous: step.conversionFromPrevious,
            drop_off: step.dropOff && {
              users: step.dropOff.users,
              // Each session opens in the player, which reads `team` and `session` from its hash (player/player-app.js).
              sessions: step.dropOff.sessionIds.map((id) => ({ session_id: id, player_url: playerUrl(teamId, id) })),
              ...nextPage(context, step.dropOff.nextCursor, 'drop_off_cursor'),
            },
          })),
          time_to_convert_ms: group.timeToConvertMs,
        })),
      },
    };
  });

  route('retention', async (teamId, { url }) => {
    const query = parseRetentionQuery(url.searchParams, now());
    const result = await guard(() =>
      retention(clickhouse, {
        tenantId: teamId,
        from: query.range.from,
        to: query.range.to,
        period: query.period,
        periods: query.periods,
        startAction: query.startAction,
        returnAction: query.returnAction,
      }),
    );
    return {
      body: {
        start: query.startAction,
        return: query.returnAction,
        period: result.period,
        periods: result.periods,
        ...isoRange(query.range),
        cohorts: result.cohorts,
      },
    };
  });

  route('paths', async (teamId, { url }) => {
    const query = parsePathsQuery(url.searchParams, now());
    const result = await guard(() =>
      paths(clickhouse, {
        tenantId: teamId,
        from: query.range.from,
        to: query.range.to,
        action: query.action,
        direction: query.direction,
        depth: query.depth,
        topK: query.topK,
        sameSession: query.sameSession,
      }),
    );
    return {
      body: {
        action: query.action,
        direction: result.direction,
        depth: query.depth,
        top: query.topK,
        same_session: query.sameSession,
        ...isoRange(query.range),
        users: result.users,
        nodes: result.nodes,
        links: result.links,
      },
    };
  });

  route('experiments/:experiment', async (teamId, context) => {
    const query = parseExperimentQuery(context.params.experiment!, context.url.searchParams, now());
    const result = await guard(() =>
      experimentResults(clickhouse, {
        tenantId: teamId,
        experimentId: query.experimentId,
        from: query.range.from,
        to: query.range.to,
        conversionAction: query.conversionAction,
        control: query.control,
      }),
    );
    return {
      body: {
        experiment_id: result.experimentId,
        conversion: result.conversionAction,
        control: result.control,
        ...isoRange(query.range),
        source: result.source,
        test: result.test,
        groups: result.groups.map((group) => ({
          group: group.group,
          users: group.users,
          converted: group.converted,
          rate: group.rate,
          is_control: group.isControl,
          vs_control: group.vsControl && {
            difference: group.vsControl.difference,
            lift: group.vsControl.lift,
            ci95: group.vsControl.ci95,
            z: group.vsControl.z,
            p_value: group.vsControl.pValue,
          },
        })),
      },
    };
  });
  return router;
}

/** The player page on one session (its key comes from sessionStorage, where this page and the player keep it). */
export const playerUrl = (teamId: number, sessionId: string): string =>
  `/player#team=${teamId}&session=${encodeURIComponent(sessionId)}`;

/**
 * `client` with every query stopped by ClickHouse past `maxExecutionS`, as AnalyticsQueries' reads are: the
 * src/uba/analytics/ functions take a client and set no limit of their own.
 */
function limitedClient(client: ClickHouseClient, maxExecutionS: number): ClickHouseClient {
  const query = ((params: Parameters<ClickHouseClient['query']>[0]) =>
    client.query({
      ...params,
      clickhouse_settings: { ...params.clickhouse_settings, max_execution_time: maxExecutionS },
    })) as ClickHouseClient['query'];
  return new Proxy(client, {
    get(target, name) {
      if (name === 'query') return query;
      const value = Reflect.get(target, name, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** Every request value is checked before a read, so a failing query is ClickHouse's trouble: 503, retriable. */
async function guard<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    // The functions' own checks (a funnel cursor that is not one of theirs) stay what they are: 400.
    if (error instanceof ReplayError) throw error;
    throw new ReplayError('clickhouse_unavailable', `analytics query failed: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

const isoRange = (range: TimeRange) => ({
  date_from: new Date(range.from).toISOString(),
  date_to: new Date(range.to).toISOString(),
});

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
function nextPage({ url }: RouteContext, cursor: string | null, name = 'cursor') {
  if (!cursor) return { next_cursor: null, next: null };
  const query = new URLSearchParams(url.searchParams);
  query.set(name, cursor);
  return { next_cursor: cursor, next: `${url.pathname}?${query}` };
}
