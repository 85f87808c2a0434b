import { withTimeout } from '../consumer/backoff.ts';
import { isReplayError } from '../errors/index.ts';
import type { Logger } from '../logging/logger.ts';
import {
  DECAY_EPOCH_MS,
  decayedWeight,
  hotItemsKey,
  logAdd,
  minuteSuffix,
  realtimeMetricsKey,
} from '../uba/realtime/keys.ts';
import type { RedisConnection } from '../uba/realtime/redis-connection.ts';
import type { AnalyticsQueries, HotItem } from './analytics-queries.ts';

/** Scenarios merged into one answer without `scenario` (each is one ZSET read of up to REALTIME_HOT_MAX_ITEMS). */
export const REALTIME_MAX_SCENARIOS = 100;
/** How long a tenant's scenario list is reused: a new scenario shows up within this. */
const SCENARIOS_CACHE_MS = 30_000;
const SCENARIOS_CACHE_TENANTS = 10_000;

export interface RealtimeAnswer {
  readonly source: 'redis' | 'clickhouse';
  /** Why the answer is not from Redis (the catalogue code of its failure), when it is not. */
  readonly fallback_reason?: string;
  readonly scenario: string | null;
  /** The scenarios the answer covers (one, or the tenant's recent ones). */
  readonly scenarios: readonly string[];
  readonly now: string;
  /** Start of the current UTC minute, whose counts `actions` are. */
  readonly minute: string;
  readonly actions: Readonly<Record<string, number>>;
  readonly hot_items: readonly HotItem[];
}

export interface RealtimeViewOptions {
  readonly redis: RedisConnection;
  readonly queries: AnalyticsQueries;
  /** The longest Redis may take for one answer before ClickHouse answers instead (API_REALTIME_REDIS_TIMEOUT_MS). */
  readonly redisTimeoutMs: number;
  /** The realtime sink's scoring (REALTIME_ACTION_WEIGHTS, REALTIME_HALF_LIFE_S), for the fallback and the weights. */
  readonly weights: Readonly<Record<string, number>>;
  readonly halfLifeS: number;
  /** How long a hot-items ZSET lives after its last update (REALTIME_HOT_TTL_S): the scenario lookback. */
  readonly hotTtlS: number;
  readonly log: Logger;
  readonly onAnswer?: (source: RealtimeAnswer['source']) => void;
}

/**
 * The realtime route (DESIGN §3.8): hot items and this minute's action counts from the keys the realtime sink
 * writes (src/uba/realtime/keys.ts). When Redis fails or does not answer within `redisTimeoutMs`, the same answer
 * is computed from ClickHouse (the last hour's behaviours, scored the same way, and this minute's from the raw table)
 * and says so in `source`.
 */
export class RealtimeView {
  private readonly options: RealtimeViewOptions;
  private readonly scenarioCache = new Map<number, { at: number; scenarios: string[] }>();

  constructor(options: RealtimeViewOptions) {
    this.options = options;
  }

  async read(tenant: number, scenario: string | undefined, limit: number, now: number): Promise<RealtimeAnswer> {
    const scenarios = scenario === undefined ? await this.scenarios(tenant, now) : [scenario];
    const minuteMs = Math.floor(now / 60_000) * 60_000;
    const common = {
      scenario: scenario ?? null,
      scenarios,
      now: new Date(now).toISOString(),
      minute: new Date(minuteMs).toISOString(),
    };
    try {
      const fromRedis = await withTimeout(
        this.fromRedis(tenant, scenarios, minuteMs),
        this.options.redisTimeoutMs,
        'the realtime read from Redis',
      );
      this.options.onAnswer?.('redis');
      return {
        source: 'redis',
        ...common,
        actions: fromRedis.actions,
        hot_items: rank(fromRedis.items, limit, now, this.options.halfLifeS),
      };
    } catch (error) {
      const reason = isReplayError(error) ? error.code : 'redis_unavailable';
      this.options.log.debug('realtime answer from ClickHouse', { reason, error: (error as Error).message });
      const [items, actions] = await Promise.all([
        this.options.queries.hotItemsLastHour(tenant, {
          now,
          scenario,
          weights: this.options.weights,
          halfLifeS: this.options.halfLifeS,
          limit,
        }),
        this.options.queries.minuteCounts(tenant, minuteMs, scenario),
      ]);
      this.options.onAnswer?.('clickhouse');
      return {
        source: 'clickhouse',
        fallback_reason: reason,
        ...common,
        actions,
        hot_items: items.map(({ item_id, weight }) => ({
          item_id,
          score: Math.log2(weight) + (now - DECAY_EPOCH_MS) / (this.options.halfLifeS * 1000),
          weight,
        })),
      };
    }
  }

  /**
   * Every scenario's whole hot-items ZSET (capped by the sink at REALTIME_HOT_MAX_ITEMS) and its minute HASH, in one
   * pipeline. Whole sets, so that an item's scores add up across scenarios and ties are ordered by item id here
   * rather than by Redis's reverse lexicographic order.
   */
  private async fromRedis(tenant: number, scenarios: readonly string[], minuteMs: number) {
    const minute = minuteSuffix(minuteMs);
    const replies = await this.options.redis.run('realtime read', (client) =>
      Promise.all(
        scenarios.map((scenario) =>
          Promise.all([
            client.zRangeWithScores(hotItemsKey(tenant, scenario), 0, -1),
            client.hGetAll(realtimeMetricsKey(tenant, scenario, minute)),
          ]),
        ),
      ),
    );
    const items = new Map<string, number>();
    // A Map, not an object: an action is any posthog-js event name, `__proto__` included.
    const actions = new Map<string, number>();
    for (const [members, counts] of replies) {
      // Scores are log2 of sums: adding two scenarios' sums is logAdd, not +.
      for (const { value, score } of members) {
        const seen = items.get(value);
        items.set(value, seen === undefined ? score : logAdd(seen, score));
      }
      for (const [action, count] of Object.entries(counts as Record<string, string>)) {
        actions.set(action, (actions.get(action) ?? 0) + Number(count));
      }
    }
    return { items, actions: Object.fromEntries([...actions].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) };
  }

  /** The tenant's scenarios of the hot-item TTL window, most active first; reused for a few seconds. */
  private async scenarios(tenant: number, now: number): Promise<string[]> {
    const cached = this.scenarioCache.get(tenant);
    if (cached && now - cached.at >= 0 && now - cached.at < SCENARIOS_CACHE_MS) return cached.scenarios;
    let scenarios: string[];
    try {
      scenarios = await this.options.queries.recentScenarios(
        tenant,
        now - this.options.hotTtlS * 1000,
        REALTIME_MAX_SCENARIOS,
      );
    } catch (error) {
      // ClickHouse down while Redis answers: an older list beats no answer.
      if (cached) return cached.scenarios;
      throw error;
    }
    if (this.scenarioCache.size >= SCENARIOS_CACHE_TENANTS) this.scenarioCache.clear();
    this.scenarioCache.set(tenant, { at: now, scenarios });
    return scenarios;
  }
}

/** The top `limit` of merged scores, highest first, ties by item id. */
function rank(items: ReadonlyMap<string, number>, limit: number, now: number, halfLifeS: number): HotItem[] {
  return [...items]
    .sort(([a, x], [b, y]) => y - x || (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, limit)
    .map(([item_id, score]) => ({ item_id, score, weight: decayedWeight(score, now, halfLifeS) }));
}
