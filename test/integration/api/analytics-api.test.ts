import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { prng } from '../../../bench/shared/prng.ts';
import { ApiKeyStore } from '../../../src/api/api-keys.ts';
import { runApi } from '../../../src/cli/api-command.ts';
import { openClickHouse } from '../../../src/clickhouse/client.ts';
import { migrateClickHouse } from '../../../src/clickhouse/migrations.ts';
import { type Config, loadConfig } from '../../../src/config/index.ts';
import { freePort } from '../../../src/harness/ports.ts';
import { createLogger } from '../../../src/logging/logger.ts';
import { openPostgres, type SqlDatabase } from '../../../src/postgres/database.ts';
import { migratePostgres } from '../../../src/postgres/migrations.ts';
import { FsBlobStore } from '../../../src/storage/fs-blob-store.ts';
import { type Team, TeamStore } from '../../../src/teams/team-store.ts';
import { experimentResults } from '../../../src/uba/analytics/experiments.ts';
import { type FunnelResult, funnel } from '../../../src/uba/analytics/funnel.ts';
import { paths } from '../../../src/uba/analytics/paths.ts';
import { retention } from '../../../src/uba/analytics/retention.ts';
import type { BehaviorRecord } from '../../../src/uba/behavior-record.ts';
import { insertBehaviors } from '../../../src/uba/behavior-rows.ts';
import { APPLY_SCRIPT, scriptCall } from '../../../src/uba/realtime/apply-script.ts';
import { appliedOffsetKey, keyUpdates } from '../../../src/uba/realtime/keys.ts';
import { sampleBehavior } from '../../support/behaviors.ts';
import { createTestTeam } from '../../support/teams.ts';

// The analytics API against real services: keys and teams in PGlite, behaviours in chDB through the behaviour sink's
// insert path (roll-ups filled by their materialized views), realtime keys in the stack's redis-server written by the
// realtime sink's own script. Every expected answer is computed below from the behaviours this file wrote, by plain
// TypeScript (never by the module's SQL).

const stack = inject('stack');
const HOUR = 3_600_000;
const DAY = 86_400_000;
/** The API's clock, pinned: defaults, "this minute" and the decay of hot items are all relative to it. */
const NOW = Date.now();
const TODAY = Math.floor(NOW / DAY) * DAY;
/** The main data set lies around day0 (before the hot-item lookback of 2 days, so realtime sees only its own). */
const DAY0 = TODAY - 10 * DAY;

// biome-ignore lint/suspicious/noExplicitAny: the tests read arbitrary API answers
type Json = Record<string, any>;

const behavior = (tenant: number, overrides: Partial<BehaviorRecord>): BehaviorRecord => {
  const record = sampleBehavior({ tenant_id: tenant, ...overrides });
  return { ...record, captured_at: overrides.captured_at ?? record.timestamp };
};

/** Mixed behaviours of one tenant from day0 − 3 d to day0 + 6 d: Zipf-ish users and items, three scenarios. */
function dataset(tenant: number, seed: number, count: number): BehaviorRecord[] {
  const random = prng(seed);
  const actions: [string, number][] = [
    ['impression', 0.5],
    ['click', 0.2],
    ['view', 0.08],
    ['like', 0.05],
    ['add_cart', 0.05],
    ['order', 0.06],
    ['$pageview', 0.06],
  ];
  const out: BehaviorRecord[] = [];
  for (let i = 0; i < count; i++) {
    const r = random();
    const cumulative = actions.map(([action], i) => [action, actions.slice(0, i + 1).reduce((s, [, p]) => s + p, 0)]);
    const action = (cumulative.find(([, upTo]) => r < (upTo as number))?.[0] as string | undefined) ?? 'impression';
    const fraction = i % 17 === 0 ? 0.6 : 0; // fractional milliseconds are cut by the table
    out.push(
      behavior(tenant, {
        user_id: `u${Math.floor(random() ** 2 * 25)}`,
        item_id: action === '$pageview' ? '' : `item-${Math.floor(random() ** 1.5 * 12)}`,
        action_type: action,
        scenario_id: ['home', 'feed', ''][Math.floor(random() * 3)]!,
        source: action === '$pageview' ? 'posthog-js' : 'behaviors-api',
        timestamp: DAY0 - 3 * DAY + Math.floor(random() * 9 * DAY) + fraction,
      }),
    );
  }
  return out;
}

/** Behaviours crafted for ties: one millisecond shared by many, equal CTRs, equal click counts. */
function crafted(tenant: number): BehaviorRecord[] {
  const tie = DAY0 + DAY + 5 * HOUR + 123;
  const out: BehaviorRecord[] = [];
  for (const [i, action] of ['impression', 'click', 'view', 'like', 'click', 'order', 'impression'].entries()) {
    out.push(behavior(tenant, { user_id: 'tie-user', action_type: action, item_id: `tie-${i}`, timestamp: tie }));
  }
  // 0.4 ms later: the same stored millisecond.
  out.push(behavior(tenant, { user_id: 'tie-user', action_type: 'share', item_id: 'tie-x', timestamp: tie + 0.4 }));
  out.push(behavior(tenant, { user_id: 'tie-user', action_type: 'click', item_id: 'tie-y', timestamp: tie - 1 }));
  out.push(behavior(tenant, { user_id: 'tie-user', action_type: 'click', item_id: 'tie-z', timestamp: tie + 1 }));
  // ctr-a and ctr-b: 120 impressions, 30 clicks each (CTR 0.25, equal); ctr-c: 99 impressions, 90 clicks (under the
  // default guard of 100 impressions).
  for (const [item, impressions, clicks] of [
    ['ctr-a', 120, 30],
    ['ctr-b', 120, 30],
    ['ctr-c', 99, 90],
  ] as const) {
    for (let i = 0; i < impressions + clicks; i++) {
      out.push(
        behavior(tenant, {
          user_id: `c${i % 40}`,
          item_id: item,
          action_type: i < impressions ? 'impression' : 'click',
          scenario_id: 'home',
          timestamp: DAY0 + 2 * DAY + i * 1000,
        }),
      );
    }
  }
  // An audience of its own: aud-0..5 click and order (on different days), aud-6..7 like too, aud-8 only clicks.
  for (let i = 0; i < 9; i++) {
    const user = `aud-${i}`;
    out.push(behavior(tenant, { user_id: user, action_type: 'click', timestamp: DAY0 + i * HOUR }));
    if (i < 8) out.push(behavior(tenant, { user_id: user, action_type: 'order', timestamp: DAY0 + DAY + i * HOUR }));
    if (i >= 6 && i < 8) out.push(behavior(tenant, { user_id: user, action_type: 'like', timestamp: DAY0 + 2 * DAY }));
  }
  return out;
}

/** ClickHouse's UUID order (its last 64 bits first), written out here rather than imported. */
function uuidOrder(a: string, b: string): number {
  const key = (id: string) => {
    const hex = id.replaceAll('-', '');
    return hex.slice(16) + hex.slice(0, 16);
  };
  return key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;
}

const ms = (b: BehaviorRecord) => Math.floor(b.timestamp);
const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

// ---- brute force over the raw behaviours ----------------------------------------------------------------------

function select(all: readonly BehaviorRecord[], tenant: number, from: number, to: number, scenario?: string) {
  return all.filter(
    (b) =>
      b.tenant_id === tenant && ms(b) >= from && ms(b) < to && (scenario === undefined || b.scenario_id === scenario),
  );
}

function expectedKpis(events: readonly BehaviorRecord[]) {
  const count = (action: string) => events.filter((b) => b.action_type === action).length;
  const [impressions, clicks, conversions] = [count('impression'), count('click'), count('order')];
  const active = new Set(events.map((b) => b.user_id)).size;
  return {
    impressions,
    clicks,
    ctr: impressions ? clicks / impressions : null,
    conversions,
    conversion_rate: active ? conversions / active : null,
    active_users: active,
  };
}

function expectedTrend(
  events: readonly BehaviorRecord[],
  metric: string,
  from: number,
  to: number,
  step: number,
): { bucket: string; value: number | null }[] {
  const out = [];
  for (let t = from; t < to; t += step) {
    const bucket = events.filter((b) => ms(b) >= t && ms(b) < t + step);
    const kpis = expectedKpis(bucket);
    const value =
      metric === 'impressions'
        ? kpis.impressions
        : metric === 'clicks'
          ? kpis.clicks
          : metric === 'conversions'
            ? kpis.conversions
            : metric === 'ctr'
              ? kpis.ctr
              : metric === 'active_users'
                ? kpis.active_users
                : bucket.filter((b) => b.action_type === metric.slice('action:'.length)).length;
    out.push({ bucket: new Date(t).toISOString(), value });
  }
  return out;
}

function expectedTopItems(
  events: readonly BehaviorRecord[],
  by: 'clicks' | 'impressions' | 'ctr' | 'conversions',
  limit: number,
  minImpressions: number,
) {
  const items = new Map<string, { item_id: string; impressions: number; clicks: number; conversions: number }>();
  for (const b of events) {
    if (b.item_id === '') continue;
    const item = items.get(b.item_id) ?? { item_id: b.item_id, impressions: 0, clicks: 0, conversions: 0 };
    if (b.action_type === 'impression') item.impressions++;
    if (b.action_type === 'click') item.clicks++;
    if (b.action_type === 'order') item.conversions++;
    items.set(b.item_id, item);
  }
  const value = (i: { impressions: number; clicks: number; conversions: number }) =>
    by === 'ctr' ? i.clicks / i.impressions : i[by];
  return [...items.values()]
    .filter((i) => i.impressions >= minImpressions && (by === 'ctr' ? i.impressions >= 1 : value(i) > 0))
    .sort((a, b) => value(b) - value(a) || byText(a.item_id, b.item_id))
    .slice(0, limit)
    .map((i) => ({ ...i, ctr: i.impressions ? i.clicks / i.impressions : null }))
    .map(({ item_id, impressions, clicks, ctr, conversions }) => ({ item_id, impressions, clicks, ctr, conversions }));
}

function expectedTimeline(all: readonly BehaviorRecord[], tenant: number, user: string) {
  return all
    .filter((b) => b.tenant_id === tenant && b.user_id === user)
    .sort((a, b) => ms(b) - ms(a) || uuidOrder(b.event_id, a.event_id))
    .map((b) => ({
      timestamp: new Date(ms(b)).toISOString(),
      event_id: b.event_id,
      action_type: b.action_type,
      item_id: b.item_id,
      scenario_id: b.scenario_id,
    }));
}

function expectedAudience(events: readonly BehaviorRecord[], did: string[], not: string[]): string[] {
  const users = (action: string) => new Set(events.filter((b) => b.action_type === action).map((b) => b.user_id));
  const excluded = new Set(not.flatMap((action) => [...users(action)]));
  return [...users(did[0]!)]
    .filter((u) => did.every((action) => users(action).has(u)) && !excluded.has(u))
    .sort(byText);
}

/** Σ weight · 2^((t − now) / H) per item, t = min(timestamp, captured_at): the hot-item weight, computed directly. */
function expectedHot(
  events: readonly BehaviorRecord[],
  config: Config,
  options: { sinceMs?: number; floor?: boolean },
) {
  const weights = new Map<string, number>();
  for (const b of events) {
    const w = config.realtimeActionWeights[b.action_type] ?? 0;
    const t = options.floor ? Math.min(ms(b), Math.floor(b.captured_at)) : Math.min(b.timestamp, b.captured_at);
    if (w <= 0 || b.item_id === '' || (options.sinceMs !== undefined && t < options.sinceMs)) continue;
    weights.set(b.item_id, (weights.get(b.item_id) ?? 0) + w * 2 ** ((t - NOW) / (config.realtimeHalfLifeS * 1000)));
  }
  return [...weights].sort(([a, x], [b, y]) => y - x || byText(a, b));
}

function expectedMinute(events: readonly BehaviorRecord[], floor: boolean): Record<string, number> {
  const minute = Math.floor(NOW / 60_000) * 60_000;
  const counts: Record<string, number> = {};
  for (const b of events) {
    const t = floor ? Math.min(ms(b), Math.floor(b.captured_at)) : Math.min(b.timestamp, b.captured_at);
    if (t >= minute && t < minute + 60_000) counts[b.action_type] = (counts[b.action_type] ?? 0) + 1;
  }
  return counts;
}

// ---------------------------------------------------------------------------------------------------------------

describe('analytics API (real chDB, PGlite, Redis)', () => {
  let dir: string;
  let db: SqlDatabase;
  let clickhouse: ClickHouseClient;
  let config: Config;
  let api: Awaited<ReturnType<typeof runApi>>;
  let apiRedisDown: Awaited<ReturnType<typeof runApi>>;
  let apiRedisHung: Awaited<ReturnType<typeof runApi>>;
  let silent: Server;
  const silentSockets = new Set<Socket>();
  let teamA: Team;
  let teamB: Team;
  let keyA: string;
  let keyB: string;
  /** Every behaviour inserted so far, in insertion order: what the brute force reads. */
  const inserted: BehaviorRecord[] = [];
  let offset = 0;
  /** The realtime behaviours (the last 50 minutes, one 2 hours old), also in Redis. */
  const realtime: BehaviorRecord[] = [];
  let lateForA: BehaviorRecord[] = [];

  const insert = async (records: readonly BehaviorRecord[]) => {
    await insertBehaviors(
      clickhouse,
      records.map((record) => ({ record, topic: 'analytics-test', partition: 0, offset: offset++ })),
    );
    inserted.push(...records);
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'analytics-api-'));
    db = await openPostgres({ kind: 'pglite', dataDir: 'memory://' });
    await migratePostgres(db);
    const teams = new TeamStore(db);
    const team = (name: string) => createTestTeam(teams, { name });
    teamA = await team('A');
    teamB = await team('B');
    const keys = new ApiKeyStore(db);
    keyA = (await keys.create('a', [teamA.id])).key;
    keyB = (await keys.create('b', [teamB.id])).key;

    clickhouse = openClickHouse({ kind: 'chdb', path: join(dir, 'db') });
    await migrateClickHouse(clickhouse);

    // Team B holds the same user and item ids with other behaviours: only the path's team may be read.
    const a = [...dataset(teamA.id, 1, 3000), ...crafted(teamA.id)];
    const b = [...dataset(teamB.id, 2, 1500), ...crafted(teamB.id).slice(0, 10)];
    // Late events: behaviours of the main range that arrive after newer ones (inserted last, in their own parts).
    const random = prng(3);
    lateForA = a.filter(() => random() < 0.1);
    const onTime = a.filter((x) => !lateForA.includes(x));
    // Several inserts (several parts in every table), newest first, so older behaviours keep arriving later.
    onTime.sort((x, y) => y.timestamp - x.timestamp);
    for (let i = 0; i < onTime.length; i += 700) await insert(onTime.slice(i, i + 700));
    await insert(b);

    // Realtime: the last 50 minutes (a few in this minute; one from a client clock a day ahead, which counts when it
    // was captured), and one 2 hours old (in Redis, outside the ClickHouse fallback's hour).
    const minute = Math.floor(NOW / 60_000) * 60_000;
    const rt = prng(4);
    for (let i = 0; i < 120; i++) {
      const action = ['click', 'view', 'order', 'impression', 'like', '$pageview'][i % 6]!;
      const timestamp =
        i % 10 === 0 ? minute + Math.floor(rt() * (NOW - minute + 1)) : NOW - Math.floor(rt() * 50 * 60_000);
      realtime.push(
        behavior(teamA.id, {
          user_id: `r${i % 9}`,
          item_id: action === '$pageview' ? '' : `hot-${Math.floor(rt() ** 2 * 8)}`,
          action_type: action,
          scenario_id: i % 3 === 0 ? 'feed' : 'home',
          timestamp: timestamp + 0.25,
          captured_at: Math.min(timestamp + 500, NOW),
        }),
      );
    }
    realtime.push(
      behavior(teamA.id, {
        user_id: 'ahead',
        item_id: 'hot-ahead',
        action_type: 'order',
        scenario_id: 'home',
        timestamp: NOW + DAY,
        captured_at: NOW - 5000,
      }),
      behavior(teamA.id, { item_id: 'hot-old', action_type: 'order', scenario_id: 'feed', timestamp: NOW - 2 * HOUR }),
      behavior(teamB.id, { item_id: 'hot-b', action_type: 'order', scenario_id: 'home', timestamp: NOW - 60_000 }),
    );
    await insert(realtime);

    config = loadConfig({ HOME: '/nonexistent', API_PORT: '0' });
    const redis = createClient({ url: stack.redis!.url });
    await redis.connect();
    try {
      const rules = { weights: config.realtimeActionWeights, halfLifeS: config.realtimeHalfLifeS };
      const call = scriptCall(
        appliedOffsetKey(`analytics-test-${randomUUID()}`, 'user_behaviors', 0),
        realtime.length - 1,
        realtime.map((record, i) => ({ offset: i, updates: keyUpdates(record, rules) })),
        {
          offsetTtlS: 3600,
          hotMaxItems: config.realtimeHotMaxItems,
          hotTtlS: config.realtimeHotTtlS,
          metricsTtlS: config.realtimeMetricsTtlS,
          recentMax: config.realtimeRecentMax,
          recentTtlS: config.realtimeRecentTtlS,
        },
      );
      const reply = await redis.eval(APPLY_SCRIPT, { keys: call.keys, arguments: call.arguments });
      expect(reply).toEqual(['ok', realtime.length, 0, expect.any(Number), -1]);
    } finally {
      await redis.quit();
    }

    const log = createLogger('warn', 'api');
    const store = new FsBlobStore(join(dir, 'blobs'));
    const now = () => NOW;
    api = await runApi(config, log, { db, clickhouse, store, redisUrl: stack.redis!.url, now });
    // Redis refusing connections (nothing listens on the port), and Redis accepting but never answering.
    apiRedisDown = await runApi(config, log, {
      db,
      clickhouse,
      store,
      redisUrl: `redis://127.0.0.1:${await freePort()}`,
      now,
    });
    silent = createServer((socket) => {
      silentSockets.add(socket);
      socket.on('close', () => silentSockets.delete(socket));
    });
    await new Promise<void>((done) => silent.listen(0, '127.0.0.1', done));
    const silentPort = (silent.address() as { port: number }).port;
    apiRedisHung = await runApi(config, log, {
      db,
      clickhouse,
      store,
      redisUrl: `redis://127.0.0.1:${silentPort}`,
      now,
    });
  });

  afterAll(async () => {
    await api?.stop();
    await apiRedisDown?.stop();
    await apiRedisHung?.stop();
    for (const socket of silentSockets) socket.destroy();
    await new Promise<void>((done) => (silent ? silent.close(() => done()) : done()));
    await clickhouse?.close();
    await db?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const get = async (path: string, key: string | null = keyA, base = api) => {
    const response = await fetch(`${base.service.url}${path}`, {
      headers: key ? { authorization: `Bearer ${key}` } : {},
      signal: AbortSignal.timeout(20_000),
    });
    const text = await response.text();
    let json: Json | undefined;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.status, headers: response.headers, text, json: json as Json };
  };
  const analytics = (team: Team) => `/api/projects/${team.id}/analytics`;
  const iso = (t: number) => new Date(t).toISOString();
  const range = (from: number, to: number) => `date_from=${iso(from)}&date_to=${iso(to)}`;

  it('answers dashboards from the roll-ups equal to the raw behaviours, with the previous period, late events included', async () => {
    const from = DAY0;
    const to = DAY0 + 3 * DAY;
    const check = async (scenario?: string) => {
      const query = `${range(from, to)}${scenario === undefined ? '' : `&scenario=${encodeURIComponent(scenario)}`}`;
      const answer = await get(`${analytics(teamA)}/dashboard?${query}`);
      expect(answer.status).toBe(200);
      const current = expectedKpis(select(inserted, teamA.id, from, to, scenario));
      const previous = expectedKpis(select(inserted, teamA.id, from - 3 * DAY, from, scenario));
      expect(answer.json).toMatchObject({
        date_from: iso(from),
        date_to: iso(to),
        scenario: scenario ?? null,
        current,
        previous_period: { date_from: iso(from - 3 * DAY), date_to: iso(from) },
        previous,
      });
      expect(answer.json.change.clicks).toBeCloseTo((current.clicks - previous.clicks) / previous.clicks, 12);
      expect(current.impressions).toBeGreaterThan(100);
      return answer.json;
    };
    const before = await check();
    // The late behaviours arrive: the same dashboard counts them, exactly.
    await insert(lateForA);
    const after = await check();
    expect(after.current.impressions).toBeGreaterThan(before.current.impressions);
    await check('home');
    await check(''); // the scenario of behaviours sent without one

    // Defaults: the 7 days up to the end of the current hour, and the 7 before.
    const defaults = await get(`${analytics(teamA)}/dashboard`);
    const end = Math.floor(NOW / HOUR) * HOUR + HOUR;
    expect(defaults.json).toMatchObject({
      date_from: iso(end - 7 * DAY),
      date_to: iso(end),
      current: expectedKpis(select(inserted, teamA.id, end - 7 * DAY, end)),
      previous: expectedKpis(select(inserted, teamA.id, end - 14 * DAY, end - 7 * DAY)),
    });
    // Nothing in range: zeros, and null ratios rather than a division by zero.
    const empty = await get(`${analytics(teamA)}/dashboard?${range(DAY0 - 60 * DAY, DAY0 - 59 * DAY)}`);
    expect(empty.json.current).toEqual({
      impressions: 0,
      clicks: 0,
      ctr: null,
      conversions: 0,
      conversion_rate: null,
      active_users: 0,
    });
    expect(empty.json.change.clicks).toBeNull();
  });

  it('answers trends with every bucket present, gaps as zeros, UTC ISO buckets', async () => {
    if (!inserted.includes(lateForA[0]!)) await insert(lateForA);
    const cases: [string, 'hour' | 'day', number, number, string?][] = [
      ['impressions', 'day', DAY0 - 6 * DAY, DAY0 + 9 * DAY], // empty days at both ends
      ['clicks', 'day', DAY0 - 6 * DAY, DAY0 + 9 * DAY, 'feed'],
      ['conversions', 'hour', DAY0, DAY0 + 2 * DAY],
      ['ctr', 'hour', DAY0 + DAY, DAY0 + 2 * DAY, 'home'],
      ['active_users', 'day', DAY0 - 3 * DAY, DAY0 + 6 * DAY],
      ['active_users', 'hour', DAY0 + 2 * DAY, DAY0 + 3 * DAY, 'home'],
      ['action:$pageview', 'hour', DAY0, DAY0 + DAY],
      ['action:share', 'day', DAY0, DAY0 + 3 * DAY],
      ['action:no-such-action', 'day', DAY0, DAY0 + 2 * DAY],
    ];
    for (const [metric, interval, from, to, scenario] of cases) {
      const query = `metric=${encodeURIComponent(metric)}&interval=${interval}&${range(from, to)}${scenario === undefined ? '' : `&scenario=${scenario}`}`;
      const answer = await get(`${analytics(teamA)}/trends?${query}`);
      expect(answer.status, query).toBe(200);
      const step = interval === 'hour' ? HOUR : DAY;
      const expected = expectedTrend(select(inserted, teamA.id, from, to, scenario), metric, from, to, step);
      expect(answer.json, query).toEqual({
        metric,
        interval,
        date_from: iso(from),
        date_to: iso(to),
        scenario: scenario ?? null,
        series: expected,
      });
      expect(answer.json.series).toHaveLength((to - from) / step);
    }
    const daily = await get(
      `${analytics(teamA)}/trends?metric=impressions&interval=day&${range(DAY0 - 6 * DAY, DAY0 + 9 * DAY)}`,
    );
    const values = (daily.json.series as { value: number }[]).map((p) => p.value);
    expect(values.slice(0, 3)).toEqual([0, 0, 0]);
    expect(values.slice(-3)).toEqual([0, 0, 0]);
    const ctr = await get(
      `${analytics(teamA)}/trends?metric=ctr&interval=hour&${range(DAY0 - 30 * DAY, DAY0 - 30 * DAY + 2 * HOUR)}`,
    );
    expect(ctr.json.series).toEqual([
      { bucket: iso(DAY0 - 30 * DAY), value: null },
      { bucket: iso(DAY0 - 30 * DAY + HOUR), value: null },
    ]);
  });

  it('ranks top items by each metric, CTR only above the impressions guard, ties by item id', async () => {
    if (!inserted.includes(lateForA[0]!)) await insert(lateForA);
    const from = DAY0 - 3 * DAY;
    const to = DAY0 + 6 * DAY;
    for (const by of ['clicks', 'impressions', 'ctr', 'conversions'] as const) {
      for (const scenario of [undefined, 'home', '']) {
        for (const [limit, minImpressions] of [
          [20, undefined],
          [3, 50],
          [100, 10],
        ] as const) {
          const query = `by=${by}&${range(from, to)}&limit=${limit}${minImpressions === undefined ? '' : `&min_impressions=${minImpressions}`}${scenario === undefined ? '' : `&scenario=${scenario}`}`;
          const answer = await get(`${analytics(teamA)}/top-items?${query}`);
          expect(answer.status, query).toBe(200);
          const min = minImpressions ?? (by === 'ctr' ? 100 : 0);
          const expected = expectedTopItems(select(inserted, teamA.id, from, to, scenario), by, limit, min);
          expect(answer.json.results, query).toEqual(expected);
          expect(answer.json).toMatchObject({ by, min_impressions: min, scenario: scenario ?? null });
        }
      }
    }
    // The crafted day: ctr-a and ctr-b tie on CTR (0.25) and are ordered by id; ctr-c (90 % on 99 impressions) is
    // under the default guard and ranks first once the guard is lowered.
    const day = range(DAY0 + 2 * DAY, DAY0 + 3 * DAY);
    const guarded = await get(`${analytics(teamA)}/top-items?by=ctr&${day}&scenario=home`);
    const ids = (guarded.json.results as { item_id: string }[]).map((r) => r.item_id);
    expect(ids.slice(0, 2)).toEqual(['ctr-a', 'ctr-b']);
    expect(ids).not.toContain('ctr-c');
    const lowered = await get(`${analytics(teamA)}/top-items?by=ctr&${day}&scenario=home&min_impressions=99`);
    expect((lowered.json.results as { item_id: string }[])[0]!.item_id).toBe('ctr-c');
  });

  it("pages one user's timeline newest first through same-millisecond ties, late events in their place", async () => {
    if (!inserted.includes(lateForA[0]!)) await insert(lateForA);
    const late = behavior(teamA.id, { user_id: 'tie-user', action_type: 'like', timestamp: DAY0 + DAY + 5 * HOUR });
    await insert([late]);
    const expected = expectedTimeline(inserted, teamA.id, 'tie-user');
    expect(expected.length).toBe(11);
    const seen: Json[] = [];
    let next: string | null = `${analytics(teamA)}/users/tie-user/timeline?limit=3`;
    let pages = 0;
    while (next) {
      const page = await get(next);
      expect(page.status).toBe(200);
      expect(page.json.user_id).toBe('tie-user');
      seen.push(...page.json.results);
      next = page.json.next;
      pages++;
    }
    expect(pages).toBe(4);
    expect(
      seen.map(({ timestamp, event_id, action_type, item_id, scenario_id }) => ({
        timestamp,
        event_id,
        action_type,
        item_id,
        scenario_id,
      })),
    ).toEqual(expected);
    expect(seen.at(-1)!.event_id).toBe(late.event_id);

    // A busy user, in one page and in pages of 7; the same id in team B is another user.
    const one = await get(`${analytics(teamA)}/users/u3/timeline?limit=500`);
    const busy = expectedTimeline(inserted, teamA.id, 'u3');
    expect(busy.length).toBeGreaterThan(100);
    expect(one.json.results.map((e: Json) => e.event_id)).toEqual(busy.map((e) => e.event_id));
    expect(one.json.next_cursor).toBeNull();
    const defaultPage = await get(`${analytics(teamA)}/users/u3/timeline`);
    expect(defaultPage.json.results).toHaveLength(Math.min(100, busy.length));
    const other = await get(`${analytics(teamB)}/users/u3/timeline?limit=500`, keyB);
    const otherExpected = expectedTimeline(inserted, teamB.id, 'u3');
    expect(otherExpected.length).toBeGreaterThan(10);
    expect(other.json.results.map((e: Json) => e.event_id)).toEqual(otherExpected.map((e) => e.event_id));
    // A user id with a slash and a space, URL-encoded in the path.
    const odd = behavior(teamA.id, { user_id: 'a/b c', action_type: 'view', timestamp: DAY0 });
    await insert([odd]);
    const oddPage = await get(`${analytics(teamA)}/users/${encodeURIComponent('a/b c')}/timeline`);
    expect(oddPage.json.results.map((e: Json) => e.event_id)).toEqual([odd.event_id]);
    expect((await get(`${analytics(teamA)}/users/nobody/timeline`)).json).toMatchObject({ results: [], next: null });
  });

  it('answers audiences (did all of, none of) from the bitmaps, paged with a cursor', async () => {
    if (!inserted.includes(lateForA[0]!)) await insert(lateForA);
    const from = DAY0 - 3 * DAY;
    const to = DAY0 + 6 * DAY;
    const cases: [string[], string[], number, number][] = [
      [['click'], [], from, to],
      [['click', 'order'], [], from, to],
      [['click', 'order'], ['like'], from, to],
      [['impression', 'add_cart', 'order'], ['like', 'share'], DAY0, DAY0 + 2 * DAY],
      [['order'], ['click'], DAY0 + DAY, DAY0 + 2 * DAY],
      [['no-such-action'], [], from, to],
    ];
    const cursorKeys: bigint[] = [];
    for (const [did, not, start, end] of cases) {
      const expected = expectedAudience(select(inserted, teamA.id, start, end), did, not);
      for (const limit of [4, 1000]) {
        const members: string[] = [];
        let next: string | null =
          `${analytics(teamA)}/audiences?did=${did.join(',')}${not.length ? `&not=${not.join(',')}` : ''}&${range(start, end)}&limit=${limit}`;
        let pages = 0;
        while (next) {
          const page = await get(next);
          expect(page.status, next).toBe(200);
          expect(page.json.count, next).toBe(expected.length);
          expect(page.json.results.length).toBeLessThanOrEqual(limit);
          members.push(...page.json.results);
          next = page.json.next;
          if (page.json.next_cursor)
            cursorKeys.push(BigInt(JSON.parse(Buffer.from(page.json.next_cursor, 'base64url').toString())));
          pages++;
        }
        expect(members.slice().sort(byText), did.join()).toEqual(expected);
        expect(new Set(members).size).toBe(members.length);
        expect(pages).toBe(Math.max(1, Math.ceil(expected.length / limit)));
      }
    }
    // Pages were cut on both sides of 2^63 (keys ClickHouse's bitmapSubsetLimit would get wrong).
    expect(cursorKeys.some((key) => key >= 2n ** 63n) && cursorKeys.some((key) => key < 2n ** 63n)).toBe(true);
    expect(expectedAudience(select(inserted, teamA.id, from, to), ['click', 'order'], ['like']).length).toBeGreaterThan(
      3,
    );
  });

  it('answers realtime from Redis (hot items merged across scenarios, this minute) and from ClickHouse without it', async () => {
    const mine = realtime.filter((b) => b.tenant_id === teamA.id);
    const check = (
      answer: Json,
      events: readonly BehaviorRecord[],
      limit: number,
      floor: boolean,
      sinceMs?: number,
    ) => {
      const hot = expectedHot(events, config, { floor, ...(sinceMs === undefined ? {} : { sinceMs }) }).slice(0, limit);
      expect(answer.hot_items.map((h: Json) => h.item_id)).toEqual(hot.map(([item]) => item));
      hot.forEach(([, weight], i) => {
        expect(answer.hot_items[i].weight / weight).toBeCloseTo(1, 9);
        expect(
          2 ** (answer.hot_items[i].score - (NOW - Date.UTC(2024, 0, 1)) / (config.realtimeHalfLifeS * 1000)),
        ).toBeCloseTo(answer.hot_items[i].weight, 9);
      });
      expect(answer.actions).toEqual(expectedMinute(events, floor));
      expect(answer.minute).toBe(iso(Math.floor(NOW / 60_000) * 60_000));
    };

    // runApi connects to Redis as it starts; a request before the handshake ends answers from ClickHouse.
    for (let tries = 0; (await get(`${analytics(teamA)}/realtime`)).json.source !== 'redis'; tries++) {
      expect(tries).toBeLessThan(50);
      await new Promise((done) => setTimeout(done, 100));
    }
    const all = await get(`${analytics(teamA)}/realtime?limit=100`);
    expect(all.status).toBe(200);
    expect(all.headers.get('cache-control')).toBe('no-store');
    expect(all.json).toMatchObject({ source: 'redis', scenario: null });
    expect([...all.json.scenarios].sort()).toEqual(['feed', 'home']);
    check(all.json, mine, 100, false);
    expect(all.json.hot_items.map((h: Json) => h.item_id)).toContain('hot-old');
    expect(all.json.hot_items.map((h: Json) => h.item_id)).not.toContain('hot-b');
    expect(Object.values(all.json.actions as Record<string, number>).reduce((x, y) => x + y, 0)).toBeGreaterThan(5);

    const home = await get(`${analytics(teamA)}/realtime?scenario=home&limit=3`);
    expect(home.json).toMatchObject({ source: 'redis', scenario: 'home', scenarios: ['home'] });
    check(
      home.json,
      mine.filter((b) => b.scenario_id === 'home'),
      3,
      false,
    );
    const defaults = await get(`${analytics(teamA)}/realtime`);
    expect(defaults.json.hot_items.length).toBeLessThanOrEqual(20);

    // Redis down (connection refused) and Redis hung (accepts, never answers): ClickHouse answers, and says so.
    for (const [name, base] of [
      ['down', apiRedisDown],
      ['hung', apiRedisHung],
    ] as const) {
      const started = performance.now();
      const fallback = await get(`${analytics(teamA)}/realtime?limit=100`, keyA, base);
      const elapsed = performance.now() - started;
      expect(elapsed, name).toBeLessThan(5000);
      // The hung one waited for its bound (API_REALTIME_REDIS_TIMEOUT_MS, 250 ms) before ClickHouse answered.
      if (name === 'hung') expect(elapsed).toBeGreaterThanOrEqual(200);
      expect(fallback.status, name).toBe(200);
      expect(fallback.json, name).toMatchObject({ source: 'clickhouse', fallback_reason: 'redis_unavailable' });
      check(fallback.json, mine, 100, true, NOW - HOUR);
      expect(fallback.json.hot_items.map((h: Json) => h.item_id)).not.toContain('hot-old');
      const feed = await get(`${analytics(teamA)}/realtime?scenario=feed&limit=2`, keyA, base);
      expect(feed.json.source).toBe('clickhouse');
      check(
        feed.json,
        mine.filter((b) => b.scenario_id === 'feed'),
        2,
        true,
        NOW - HOUR,
      );
      // The same minute from either source.
      expect(fallback.json.actions).toEqual(all.json.actions);
    }
    const metrics = await (await fetch(`${apiRedisDown.service.url}/metrics`)).text();
    expect(metrics).toMatch(/^replay_api_realtime_answers_total\{source="clickhouse"[^}]*\} [1-9]/m);
  });

  it("answers 404 to another team's key on every route, and 401 without a key", async () => {
    const paths = [
      `dashboard?${range(DAY0, DAY0 + DAY)}`,
      `trends?metric=clicks&${range(DAY0, DAY0 + DAY)}`,
      `top-items?by=clicks&${range(DAY0, DAY0 + DAY)}`,
      'users/u0/timeline',
      'realtime',
      `audiences?did=click&${range(DAY0, DAY0 + DAY)}`,
      // Even a request with bad parameters: the team is checked first.
      'dashboard?date_from=garbage',
    ];
    for (const path of paths) {
      const other = await get(`${analytics(teamA)}/${path}`, keyB);
      expect({ path, status: other.status, code: other.json?.code }).toEqual({ path, status: 404, code: 'not_found' });
      expect(other.text).not.toContain('item-');
      const none = await get(`${analytics(teamA)}/${path}`, null);
      expect({ path, status: none.status, code: none.json?.code }).toEqual({
        path,
        status: 401,
        code: 'missing_api_key',
      });
      expect((await get(`${analytics(teamA)}/${path}`, `rpk_${'x'.repeat(43)}`)).json.code).toBe('invalid_api_key');
    }
    expect((await get(`/api/projects/999999/analytics/dashboard`, keyA)).status).toBe(404);
    expect((await get(`${analytics(teamB)}/users/u0/timeline`, keyB)).status).toBe(200);
  });

  it('refuses bad parameters with their codes', async () => {
    const day = range(DAY0, DAY0 + DAY);
    const cases: [string, number, string][] = [
      ['/api/projects/1%20OR%201=1/analytics/dashboard', 400, 'invalid_parameter'],
      [`dashboard?${day}&foo=1`, 400, 'invalid_parameter'],
      ['dashboard?date_from=yesterday', 400, 'invalid_parameter'],
      ['dashboard?date_from=2026-11-18T10:30:00Z&date_to=2026-11-19', 400, 'invalid_parameter'],
      ['dashboard?date_from=2026-11-19&date_to=2026-11-18', 400, 'invalid_parameter'],
      ['dashboard?date_from=2026-01-01&date_to=2026-04-05', 400, 'invalid_parameter'],
      ['dashboard?date_from=1900-01-01&date_to=1900-01-02', 400, 'invalid_parameter'],
      [`dashboard?${day}&scenario=${'s'.repeat(201)}`, 400, 'invalid_scenario_id'],
      [`trends?metric=bogus&${day}`, 400, 'invalid_parameter'],
      [`trends?${day}`, 400, 'invalid_parameter'],
      [`trends?metric=action:&${day}`, 400, 'invalid_action_type'],
      [`trends?metric=action:${'a'.repeat(201)}&${day}`, 400, 'invalid_action_type'],
      [`trends?metric=clicks&interval=week&${day}`, 400, 'invalid_parameter'],
      ['trends?metric=clicks&interval=day&date_from=2026-11-18T01:00:00Z&date_to=2026-11-19', 400, 'invalid_parameter'],
      [`top-items?by=views&${day}`, 400, 'invalid_parameter'],
      [`top-items?by=ctr&${day}&limit=101`, 400, 'invalid_parameter'],
      [`top-items?by=ctr&${day}&limit=0`, 400, 'invalid_parameter'],
      [`top-items?by=ctr&${day}&min_impressions=-1`, 400, 'invalid_parameter'],
      ['top-items?by=clicks&date_from=2026-11-18T05:00:00Z&date_to=2026-11-19', 400, 'invalid_parameter'],
      ['users/u0/timeline?limit=501', 400, 'invalid_parameter'],
      ['users/u0/timeline?cursor=garbage', 400, 'invalid_parameter'],
      [`users/u0/timeline?cursor=${Buffer.from('[1,"not-a-uuid"]').toString('base64url')}`, 400, 'invalid_parameter'],
      [`users/${'u'.repeat(201)}/timeline`, 400, 'invalid_user_id'],
      ['users/u0/timeline?date_from=2026-11-18', 400, 'invalid_parameter'],
      ['realtime?limit=0', 400, 'invalid_parameter'],
      ['realtime?limit=101', 400, 'invalid_parameter'],
      [`realtime?scenario=${'s'.repeat(201)}`, 400, 'invalid_scenario_id'],
      ['realtime?date_from=2026-11-18', 400, 'invalid_parameter'],
      [`audiences?${day}`, 400, 'invalid_parameter'],
      [`audiences?did=a,b,c,d,e,f,g,h,i,j,k&${day}`, 400, 'invalid_parameter'],
      [`audiences?did=click&not=${'x'.repeat(201)}&${day}`, 400, 'invalid_action_type'],
      [`audiences?did=click,,order&${day}`, 400, 'invalid_action_type'],
      [`audiences?did=click&${day}&cursor=garbage`, 400, 'invalid_parameter'],
      [
        `audiences?did=click&${day}&cursor=${Buffer.from('"99999999999999999999"').toString('base64url')}`,
        400,
        'invalid_parameter',
      ],
      [`audiences?did=click&${day}&limit=1001`, 400, 'invalid_parameter'],
      ['no-such-route', 404, 'not_found'],
    ];
    for (const [path, status, code] of cases) {
      const answer = await get(path.startsWith('/') ? path : `${analytics(teamA)}/${path}`);
      expect({ path, status: answer.status, code: answer.json?.code }).toEqual({ path, status, code });
    }
  });

  // The raw-table routes (src/uba/analytics/): their correctness against brute force is
  // test/integration/uba/analytics-queries.test.ts; here, that each route maps its parameters onto its function
  // (one answer per route equal to the function's own, end to end), refuses bad ones and keeps teams apart.
  describe('funnel, retention, paths and experiments', () => {
    const from = DAY0 - 3 * DAY;
    const to = DAY0 + 6 * DAY;
    /** Team A's crafted funnel users: sessions (for the drop-off lists) and a `plan` property (for the breakdown). */
    const funnelUsers = 8;

    beforeAll(async () => {
      if (!inserted.includes(lateForA[0]!)) await insert(lateForA);
      const crafted: BehaviorRecord[] = [];
      for (let u = 0; u < funnelUsers; u++) {
        const start = DAY0 + 4 * DAY + u * HOUR;
        // User u reaches step 1 + (u % 4) of impression → click → add_cart → order, in session fs-<u>.
        ['impression', 'click', 'add_cart', 'order'].slice(0, 1 + (u % 4)).forEach((action, i) => {
          crafted.push(
            behavior(teamA.id, {
              user_id: `funnel-${u}`,
              action_type: action,
              timestamp: start + i * 60_000,
              session_id: `fs-${u}`,
              properties: { plan: u % 2 ? 'pro' : 'free' },
            }),
          );
        });
      }
      // One experiment id in both teams: A's control 40 users (10 convert), treatment 40 (18); B's all convert.
      for (const [tenant, group, users, converted] of [
        [teamA.id, 'control', 40, 10],
        [teamA.id, 'treatment', 40, 18],
        [teamB.id, 'control', 5, 5],
        [teamB.id, 'treatment', 5, 5],
      ] as const) {
        for (let u = 0; u < users; u++) {
          const common = { user_id: `exp-${group}-${u}`, experiment_id: 'exp-1', experiment_group: group };
          crafted.push(
            behavior(tenant, { ...common, action_type: 'impression', timestamp: DAY0 + 5 * DAY + u * 1000 }),
          );
          if (u < converted) {
            crafted.push(behavior(tenant, { ...common, action_type: 'order', timestamp: DAY0 + 5 * DAY + HOUR + u }));
          }
        }
      }
      await insert(crafted);
    });

    /** The funnel route's JSON for a funnel() result: snake_case, each drop-off session with its player link. */
    const funnelBody = (result: FunnelResult, team: Team) =>
      result.groups.map((group) => ({
        breakdown: group.breakdown,
        steps: group.steps.map((step) => ({
          step: step.step,
          action: step.action,
          users: step.users,
          conversion_from_first: step.conversionFromFirst,
          conversion_from_previous: step.conversionFromPrevious,
          drop_off: step.dropOff && {
            users: step.dropOff.users,
            sessions: step.dropOff.sessionIds.map((id) => ({
              session_id: id,
              player_url: `/player#team=${team.id}&session=${id}`,
            })),
            next_cursor: step.dropOff.nextCursor,
            next: step.dropOff.nextCursor ? expect.stringContaining('drop_off_cursor=') : null,
          },
        })),
        time_to_convert_ms: group.timeToConvertMs,
      }));

    it('answers funnel as funnel() does, with player links for the drop-offs and pages of them', async () => {
      const steps = [
        { action: 'impression' },
        { action: 'click' },
        { action: 'add_cart' },
        { action: 'order', properties: { plan: 'pro' } },
      ];
      const query = `steps=${encodeURIComponent(JSON.stringify(steps))}&window_s=86400&strict=false&${range(from, to)}&breakdown=plan&drop_off_limit=1`;
      const answer = await get(`${analytics(teamA)}/funnel?${query}`);
      expect(answer.status, answer.text).toBe(200);
      const options = {
        tenantId: teamA.id,
        from,
        to,
        steps,
        windowMs: 86_400_000,
        strictOrder: false,
        breakdown: 'plan',
        dropOffPageSize: 1,
      };
      const direct = await funnel(clickhouse, options);
      expect(answer.json).toEqual({
        steps,
        window_s: 86400,
        strict: false,
        breakdown: 'plan',
        breakdown_limit: 25,
        date_from: iso(from),
        date_to: iso(to),
        drop_off_limit: 1,
        breakdown_values: direct.breakdownValues,
        groups: funnelBody(direct, teamA),
      });
      expect(direct.groups.map((g) => g.breakdown).sort()).toEqual(['', 'free', 'pro']);
      // The crafted users who stopped at click (funnel-1, funnel-5: plan pro) are step 3's drop-offs of `pro`, one
      // per page: the list continues at `next`, as funnel() continues at its cursor.
      const pro = answer.json.groups.find((g: Json) => g.breakdown === 'pro');
      const first = pro.steps[2].drop_off;
      expect(first).toMatchObject({
        users: 2,
        sessions: [{ session_id: 'fs-1', player_url: `/player#team=${teamA.id}&session=fs-1` }],
      });
      // `next` is this request with the cursor added.
      const nextUrl = new URL(first.next, api.service.url);
      expect(nextUrl.pathname).toBe(`${analytics(teamA)}/funnel`);
      expect(Object.fromEntries(nextUrl.searchParams)).toEqual({
        ...Object.fromEntries(new URLSearchParams(query)),
        drop_off_cursor: first.next_cursor,
      });
      const next = await get(first.next);
      expect(next.status).toBe(200);
      const continued = await funnel(clickhouse, { ...options, dropOffCursor: first.next_cursor });
      expect(next.json.groups).toEqual(funnelBody(continued, teamA));
      expect(next.json.groups.find((g: Json) => g.breakdown === 'pro').steps[2].drop_off).toMatchObject({
        sessions: [{ session_id: 'fs-5', player_url: `/player#team=${teamA.id}&session=fs-5` }],
        next_cursor: null,
        next: null,
      });
      // Strict order and no breakdown, the defaults of the optional parameters.
      const strict = await get(
        `${analytics(teamA)}/funnel?steps=${encodeURIComponent(JSON.stringify(steps.slice(0, 3)))}&window_s=3600&strict=true&${range(from, to)}`,
      );
      const strictDirect = await funnel(clickhouse, {
        ...options,
        steps: steps.slice(0, 3),
        windowMs: 3_600_000,
        strictOrder: true,
        breakdown: undefined,
        dropOffPageSize: 20,
      });
      expect(strict.json.groups).toEqual(funnelBody(strictDirect, teamA));
      expect(strict.json).toMatchObject({ breakdown: null, drop_off_limit: 20, breakdown_values: 1 });
    });

    it('answers retention, paths and experiments as their functions do', async () => {
      const retentionAnswer = await get(
        `${analytics(teamA)}/retention?start=impression&return=order&period=day&periods=5&${range(from, to)}`,
      );
      expect(retentionAnswer.status, retentionAnswer.text).toBe(200);
      const cohorts = await retention(clickhouse, {
        tenantId: teamA.id,
        from,
        to,
        period: 'day',
        periods: 5,
        startAction: 'impression',
        returnAction: 'order',
      });
      expect(retentionAnswer.json).toEqual({
        start: 'impression',
        return: 'order',
        period: 'day',
        periods: 5,
        date_from: iso(from),
        date_to: iso(to),
        cohorts: cohorts.cohorts,
      });
      expect(cohorts.cohorts.some((c) => c.users > 0 && c.retained[1]!.users > 0)).toBe(true);

      const pathsAnswer = await get(
        `${analytics(teamA)}/paths?action=click&direction=previous&depth=2&top=3&same_session=false&${range(from, to)}`,
      );
      expect(pathsAnswer.status, pathsAnswer.text).toBe(200);
      const graph = await paths(clickhouse, {
        tenantId: teamA.id,
        from,
        to,
        action: 'click',
        direction: 'previous',
        depth: 2,
        topK: 3,
        sameSession: false,
      });
      expect(pathsAnswer.json).toEqual({
        action: 'click',
        direction: 'previous',
        depth: 2,
        top: 3,
        same_session: false,
        date_from: iso(from),
        date_to: iso(to),
        users: graph.users,
        nodes: graph.nodes,
        links: graph.links,
      });
      expect(graph.nodes.some((n) => n.other)).toBe(true);

      // A range cut inside a day: the raw table answers (a whole-day one reads the roll-up).
      const [expFrom, expTo] = [DAY0 + 5 * DAY - HOUR, DAY0 + 6 * DAY];
      const experimentAnswer = await get(
        `${analytics(teamA)}/experiments/exp-1?conversion=order&control=control&${range(expFrom, expTo)}`,
      );
      expect(experimentAnswer.status, experimentAnswer.text).toBe(200);
      const stats = await experimentResults(clickhouse, {
        tenantId: teamA.id,
        experimentId: 'exp-1',
        from: expFrom,
        to: expTo,
        conversionAction: 'order',
        control: 'control',
      });
      expect(experimentAnswer.json).toEqual({
        experiment_id: 'exp-1',
        conversion: 'order',
        control: 'control',
        date_from: iso(expFrom),
        date_to: iso(expTo),
        source: 'user_behaviors',
        test: stats.test,
        groups: stats.groups.map((g) => ({
          group: g.group,
          users: g.users,
          converted: g.converted,
          rate: g.rate,
          is_control: g.isControl,
          vs_control: g.vsControl && {
            difference: g.vsControl.difference,
            lift: g.vsControl.lift,
            ci95: g.vsControl.ci95,
            z: g.vsControl.z,
            p_value: g.vsControl.pValue,
          },
        })),
      });
      // Team A's own numbers (team B holds the same experiment id, every user converting).
      expect(experimentAnswer.json.groups.map((g: Json) => [g.group, g.users, g.converted])).toEqual([
        ['control', 40, 10],
        ['treatment', 40, 18],
      ]);
      expect(experimentAnswer.json.groups[1].vs_control.lift).toBeCloseTo((18 / 40 - 10 / 40) / (10 / 40), 12);
      // The defaults: conversion `order`, control `control`, the 7 whole days up to the end of today, which the roll-up
      // answers with the same counts.
      const defaults = await get(`${analytics(teamA)}/experiments/exp-1`);
      expect(defaults.json).toMatchObject({
        conversion: 'order',
        control: 'control',
        date_from: iso(TODAY + DAY - 7 * DAY),
        date_to: iso(TODAY + DAY),
        source: 'uba_experiment_daily',
      });
      expect(defaults.json.groups).toEqual(experimentAnswer.json.groups);
      const teamBAnswer = await get(`${analytics(teamB)}/experiments/exp-1?${range(expFrom, expTo)}`, keyB);
      expect(teamBAnswer.json.groups.map((g: Json) => [g.group, g.users, g.converted])).toEqual([
        ['control', 5, 5],
        ['treatment', 5, 5],
      ]);
    });

    it("answers 404 to another team's key on the four routes, before their parameters", async () => {
      const steps = encodeURIComponent(JSON.stringify([{ action: 'impression' }, { action: 'click' }]));
      for (const path of [
        `funnel?steps=${steps}&window_s=3600&strict=false&${range(from, to)}`,
        `retention?start=impression&return=order&period=day&periods=3&${range(from, to)}`,
        `paths?action=click&direction=next&depth=2&${range(from, to)}`,
        `experiments/exp-1?${range(from, to)}`,
        'funnel?steps=garbage',
        'experiments/exp-1?foo=1',
      ]) {
        const other = await get(`${analytics(teamA)}/${path}`, keyB);
        expect({ path, status: other.status, code: other.json?.code }).toEqual({
          path,
          status: 404,
          code: 'not_found',
        });
        expect(other.text).not.toContain('fs-');
        const none = await get(`${analytics(teamA)}/${path}`, null);
        expect({ path, status: none.status }).toEqual({ path, status: 401 });
      }
      // Team B's own funnel has none of team A's crafted sessions.
      const b = await get(
        `${analytics(teamB)}/funnel?steps=${steps}&window_s=86400&strict=false&${range(from, to)}`,
        keyB,
      );
      expect(b.status).toBe(200);
      expect(b.text).not.toContain('fs-');
    });

    it('refuses bad funnel, retention, paths and experiment parameters with their codes', async () => {
      const day = range(from, from + DAY);
      const steps = (value: unknown) =>
        `steps=${encodeURIComponent(typeof value === 'string' ? value : JSON.stringify(value))}`;
      const two = steps([{ action: 'impression' }, { action: 'click' }]);
      const funnelOk = `${two}&window_s=3600&strict=false&${day}`;
      const cases: [string, string][] = [
        [`funnel?window_s=3600&strict=false&${day}`, 'invalid_parameter'], // steps missing
        [`funnel?${steps('not json')}&window_s=3600&strict=false`, 'invalid_parameter'],
        [`funnel?${steps({ action: 'click' })}&window_s=3600&strict=false`, 'invalid_parameter'], // not an array
        [`funnel?${steps([{ action: 'click' }])}&window_s=3600&strict=false`, 'invalid_parameter'], // one step
        [
          `funnel?${steps(Array.from({ length: 11 }, () => ({ action: 'click' })))}&window_s=3600&strict=false`,
          'invalid_parameter',
        ],
        [`funnel?${steps([{ action: 'click' }, { action: '' }])}&window_s=3600&strict=false`, 'invalid_action_type'],
        [
          `funnel?${steps([{ action: 'click' }, { action: 'a'.repeat(201) }])}&window_s=3600&strict=false`,
          'invalid_action_type',
        ],
        [`funnel?${steps([{ action: 'click' }, { action: 7 }])}&window_s=3600&strict=false`, 'invalid_action_type'],
        [`funnel?${steps([{ action: 'click' }, 'order'])}&window_s=3600&strict=false`, 'invalid_parameter'],
        [
          `funnel?${steps([{ action: 'click' }, { action: 'order', filter: 1 }])}&window_s=3600&strict=false`,
          'invalid_parameter',
        ],
        [
          `funnel?${steps([{ action: 'click' }, { action: 'order', properties: { plan: 1 } }])}&window_s=3600&strict=false`,
          'invalid_parameter',
        ],
        [
          `funnel?${steps([{ action: 'click' }, { action: 'order', properties: ['x'] }])}&window_s=3600&strict=false`,
          'invalid_parameter',
        ],
        [
          `funnel?${steps([{ action: 'click' }, { action: 'order', properties: Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`k${i}`, 'v'])) }])}&window_s=3600&strict=false`,
          'invalid_parameter',
        ],
        [
          `funnel?${steps([{ action: 'click' }, { action: 'order', properties: { '': 'v' } }])}&window_s=3600&strict=false`,
          'invalid_parameter',
        ],
        [
          `funnel?${steps([{ action: 'click' }, { action: 'x'.repeat(9000) }])}&window_s=3600&strict=false`,
          'invalid_parameter',
        ], // too long
        [`funnel?${two}&strict=false&${day}`, 'invalid_parameter'], // window_s missing
        [`funnel?${two}&window_s=0&strict=false&${day}`, 'invalid_parameter'],
        [`funnel?${two}&window_s=${93 * 86_400 + 1}&strict=false&${day}`, 'invalid_parameter'],
        [`funnel?${two}&window_s=1.5&strict=false&${day}`, 'invalid_parameter'],
        [`funnel?${two}&window_s=3600&${day}`, 'invalid_parameter'], // strict missing
        [`funnel?${two}&window_s=3600&strict=yes&${day}`, 'invalid_parameter'],
        [`${funnelOk}&breakdown=`, 'invalid_parameter'],
        [`${funnelOk}&breakdown=${'b'.repeat(201)}`, 'invalid_parameter'],
        [`${funnelOk}&breakdown_limit=0`, 'invalid_parameter'],
        [`${funnelOk}&breakdown_limit=101`, 'invalid_parameter'],
        [`${funnelOk}&drop_off_limit=1001`, 'invalid_parameter'],
        [`${funnelOk}&drop_off_cursor=garbage`, 'invalid_parameter'],
        [`${funnelOk}&drop_off_cursor=${Buffer.from('[9,"","fs-1"]').toString('base64url')}`, 'invalid_parameter'],
        [`${funnelOk}&drop_off_cursor=${'c'.repeat(12_001)}`, 'invalid_parameter'],
        [`${funnelOk}&limit=3`, 'invalid_parameter'], // unknown
        [`${two}&window_s=3600&strict=false&date_from=2026-01-01&date_to=2026-04-05`, 'invalid_parameter'], // > 93 days
        [`${two}&window_s=3600&strict=false&date_from=2026-01-02&date_to=2026-01-01`, 'invalid_parameter'],
        [`${two}&window_s=3600&strict=false&date_from=1999-12-31`, 'invalid_parameter'],
        [`retention?return=order&period=day&periods=3&${day}`, 'invalid_action_type'], // start missing
        [`retention?start=impression&period=day&periods=3&${day}`, 'invalid_action_type'], // return missing
        [`retention?start=impression&return=${'r'.repeat(201)}&period=day&periods=3`, 'invalid_action_type'],
        [`retention?start=impression&return=order&periods=3&${day}`, 'invalid_parameter'], // period missing
        [`retention?start=impression&return=order&period=month&periods=3`, 'invalid_parameter'],
        [`retention?start=impression&return=order&period=day&${day}`, 'invalid_parameter'], // periods missing
        [`retention?start=impression&return=order&period=day&periods=32`, 'invalid_parameter'],
        [`retention?start=impression&return=order&period=week&periods=13`, 'invalid_parameter'],
        [`retention?start=impression&return=order&period=day&periods=-1`, 'invalid_parameter'],
        [`retention?start=impression&return=order&period=day&periods=3&cohort=x`, 'invalid_parameter'],
        [`retention?start=impression&return=order&period=day&periods=3&date_from=garbage`, 'invalid_parameter'],
        [`paths?direction=next&depth=2&${day}`, 'invalid_action_type'], // action missing
        [`paths?action=click&depth=2&${day}`, 'invalid_parameter'], // direction missing
        [`paths?action=click&direction=sideways&depth=2`, 'invalid_parameter'],
        [`paths?action=click&direction=next&${day}`, 'invalid_parameter'], // depth missing
        [`paths?action=click&direction=next&depth=0`, 'invalid_parameter'],
        [`paths?action=click&direction=next&depth=4`, 'invalid_parameter'],
        [`paths?action=click&direction=next&depth=2&top=0`, 'invalid_parameter'],
        [`paths?action=click&direction=next&depth=2&top=21`, 'invalid_parameter'],
        [`paths?action=click&direction=next&depth=2&same_session=1`, 'invalid_parameter'],
        [`paths?action=click&direction=next&depth=2&limit=5`, 'invalid_parameter'],
        [`experiments/${'e'.repeat(201)}`, 'invalid_experiment_id'],
        [`experiments/exp-1?conversion=`, 'invalid_action_type'],
        [`experiments/exp-1?conversion=${'o'.repeat(201)}`, 'invalid_action_type'],
        [`experiments/exp-1?control=`, 'invalid_experiment_group'],
        [`experiments/exp-1?control=${'c'.repeat(201)}`, 'invalid_experiment_group'],
        [`experiments/exp-1?group=control`, 'invalid_parameter'],
        [`experiments/exp-1?date_from=2026-01-01&date_to=2026-04-05`, 'invalid_parameter'],
      ];
      for (const [path, code] of cases) {
        const full =
          path.startsWith('funnel') || path.includes('/') || /^(retention|paths)/.test(path) ? path : `funnel?${path}`;
        const answer = await get(`${analytics(teamA)}/${full}`);
        expect({ path: full.slice(0, 160), status: answer.status, code: answer.json?.code }).toEqual({
          path: full.slice(0, 160),
          status: 400,
          code,
        });
      }
    });
  });
});
