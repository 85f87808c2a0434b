import type { BehaviorRecord } from '../behavior-record.ts';

/**
 * The realtime keys in Redis (DESIGN §3.8) and how one behaviour changes them. Pure functions: the sink, the tests
 * and any reader (the analytics API's realtime view) compute keys and scores the same way.
 *
 * - `hot:items:{tenant}:{scenario}`: ZSET of item ids, scored by time-decayed popularity (see `hotScore`).
 * - `metrics:realtime:{tenant}:{scenario}:{yyyyMMddHHmm}`: HASH per UTC minute, one field per action, its count.
 * - `user:recent:{tenant}:{user}`: LIST of the item ids the user acted on, newest first, capped. Tenant-isolated: user
 *   ids are chosen by each tenant (a `distinct_id`), so without the tenant two teams' users "42" would share a list.
 *
 * Every part but the last is a number or a fixed word, and the minute suffix has a fixed width, so no scenario or
 * user id (which may hold `:`) can make two different keys collide.
 */

export const hotItemsKey = (tenant: number, scenario: string) => `hot:items:${tenant}:${scenario}`;
export const realtimeMetricsKey = (tenant: number, scenario: string, minute: string) =>
  `metrics:realtime:${tenant}:${scenario}:${minute}`;
export const userRecentKey = (tenant: number, user: string) => `user:recent:${tenant}:${user}`;
/** The applied-offset key of one partition: the highest offset whose updates Redis holds. */
export const appliedOffsetKey = (group: string, topic: string, partition: number) =>
  `realtime:offset:${group}:${topic}:${partition}`;

/**
 * The fixed epoch t0 of the decayed scores (2024-01-01T00:00:00Z). Scores are never rewritten as time passes: a
 * behaviour at t weighs 2^((t − t0)/half-life), so a newer one weighs more, which is the same ranking as decaying
 * every older score.
 */
export const DECAY_EPOCH_MS = Date.UTC(2024, 0, 1);

/**
 * The score one behaviour adds, in log2 space: log2(weight · 2^((t − t0)/H)) = log2(weight) + (t − t0)/H.
 *
 * A ZSET member's score is log2 of the sum of its behaviours' forward-decayed weights, Σ weight · 2^((t − t0)/H),
 * added in log space by the script (`logAdd`). Plain ZINCRBY of 2^((t − t0)/H) would overflow a double once t − t0
 * passes ~1000 half-lives (42 days at a 1 h half-life); log space never does and keeps the ranking. A reader turns a
 * score into today's decayed weight with 2^(score − (now − t0)/H).
 */
export function hotScore(weight: number, timeMs: number, halfLifeS: number): number {
  return Math.log2(weight) + (timeMs - DECAY_EPOCH_MS) / (halfLifeS * 1000);
}

/** log2(2^a + 2^b), without overflow: what adding a behaviour to a stored score does. */
export function logAdd(a: number, b: number): number {
  const hi = Math.max(a, b);
  const lo = Math.min(a, b);
  return hi + Math.log2(1 + 2 ** (lo - hi));
}

/** A member's decayed weight at `nowMs` (what the score means to a reader). */
export const decayedWeight = (score: number, nowMs: number, halfLifeS: number): number =>
  2 ** (score - (nowMs - DECAY_EPOCH_MS) / (halfLifeS * 1000));

/** The UTC minute of a time as `yyyyMMddHHmm`. */
export function minuteSuffix(timeMs: number): string {
  const d = new Date(Math.floor(timeMs / 60_000) * 60_000);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}${two(d.getUTCHours())}${two(d.getUTCMinutes())}`;
}

/**
 * The time a behaviour counts at: its own timestamp, but never later than when capture accepted it. A client clock
 * ahead (or a forged timestamp) must not put an item on top of the hot list for days, nor count in a future minute.
 */
export const effectiveTime = (record: Pick<BehaviorRecord, 'timestamp' | 'captured_at'>): number =>
  Math.min(record.timestamp, record.captured_at);

/** How behaviours change the realtime keys: weights per action and the decay half-life. */
export interface RealtimeRules {
  /** Weight per action; an action not listed (or 0) does not heat items and is not a "recent" item. */
  readonly weights: Readonly<Record<string, number>>;
  readonly halfLifeS: number;
}

/** One key change a behaviour makes. */
export type KeyUpdate =
  | { readonly kind: 'zset'; readonly key: string; readonly member: string; readonly score: number }
  | { readonly kind: 'hash'; readonly key: string; readonly field: string; readonly minuteMs: number }
  | { readonly kind: 'list'; readonly key: string; readonly member: string };

/**
 * What one behaviour changes, in order: its minute's action count always; with an item id and an action of positive
 * weight, the item's hot score and the user's recent items too.
 */
export function keyUpdates(record: BehaviorRecord, rules: RealtimeRules): KeyUpdate[] {
  const t = effectiveTime(record);
  const minuteMs = Math.floor(t / 60_000) * 60_000;
  const updates: KeyUpdate[] = [
    {
      kind: 'hash',
      key: realtimeMetricsKey(record.tenant_id, record.scenario_id, minuteSuffix(t)),
      field: record.action_type,
      minuteMs,
    },
  ];
  const weight = rules.weights[record.action_type] ?? 0;
  if (record.item_id !== '' && weight > 0) {
    updates.push({
      kind: 'zset',
      key: hotItemsKey(record.tenant_id, record.scenario_id),
      member: record.item_id,
      score: hotScore(weight, t, rules.halfLifeS),
    });
    updates.push({ kind: 'list', key: userRecentKey(record.tenant_id, record.user_id), member: record.item_id });
  }
  return updates;
}
