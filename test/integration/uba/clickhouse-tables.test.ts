import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { prng } from '../../../bench/shared/prng.ts';
import { openClickHouse } from '../../../src/clickhouse/client.ts';
import { migrateClickHouse } from '../../../src/clickhouse/migrations.ts';
import {
  activeUsers,
  audienceSize,
  experimentMetrics,
  hourlyMetrics,
  topItems,
  userTimeline,
  userWatches,
} from '../../../src/uba/behavior-queries.ts';
import type { BehaviorRecord } from '../../../src/uba/behavior-record.ts';
import {
  behaviorsInsertedUpTo,
  behaviorTime,
  compareEventIds,
  insertBehaviors,
  type PositionedBehavior,
  planBehaviorInsert,
  runBehaviorInsert,
} from '../../../src/uba/behavior-rows.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Recent enough that nothing expires (user_behaviors keeps 90 days) while the test runs. */
const now = Math.floor(Date.now() / HOUR) * HOUR;
const TOPIC = 'user_behaviors';
const UBA_TABLES = [
  'user_behaviors',
  'user_behaviors_by_user',
  'uba_hourly_metrics',
  'uba_item_daily',
  'uba_experiment_daily',
  'user_watches',
  'uba_audiences',
];

function generator(seed: number) {
  const random = prng(seed);
  const hex = (n: number) => Array.from({ length: n }, () => Math.floor(random() * 16).toString(16)).join('');
  const uuid = () => `${hex(8)}-${hex(4)}-4${hex(3)}-${'89ab'[Math.floor(random() * 4)]}${hex(3)}-${hex(12)}`;
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const record = (fields: Partial<BehaviorRecord> & Pick<BehaviorRecord, 'tenant_id' | 'user_id'>): BehaviorRecord => ({
    event_id: uuid(),
    item_id: '',
    action_type: 'click',
    scenario_id: '',
    timestamp: now - 1000,
    session_id: '',
    view_id: '',
    watch_duration: 0,
    completion_rate: 0,
    experiment_id: '',
    experiment_group: '',
    device_type: 'mobile',
    os: 'ios',
    location: 'berlin',
    ip: '10.0.0.1',
    current_url: '',
    properties: {},
    source: 'behaviors-api',
    captured_at: now,
    ...fields,
  });
  return { random, uuid, pick, record };
}

const offsets = new Map<number, number>();
/** Where a sink would have read it: partition by user (the topic's key), the next offset of that partition. */
function positioned(record: BehaviorRecord, partitions = 4): PositionedBehavior {
  let hash = 0;
  for (const c of record.user_id) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  const partition = hash % partitions;
  const offset = offsets.get(partition) ?? 0;
  offsets.set(partition, offset + 1);
  return { record, topic: TOPIC, partition, offset };
}

const dayOf = (ms: number) => behaviorTime(ms).slice(0, 10);
const hourOf = (ms: number) => behaviorTime(Math.floor(ms / HOUR) * HOUR).slice(0, 19);

describe('UBA tables on the ClickHouse engine (chDB)', () => {
  let dir: string;
  let clickhouse: ClickHouseClient;
  const select = async <T = Record<string, unknown>>(query: string): Promise<T[]> =>
    await (await clickhouse.query({ query, format: 'JSONEachRow' })).json<T>();
  const statistics = async (query: string, query_params: Record<string, unknown> = {}) => {
    const result = (await (
      await clickhouse.query({
        query,
        query_params,
        format: 'JSON',
        clickhouse_settings: { use_query_condition_cache: 0 },
      })
    ).json()) as unknown as { data: Record<string, unknown>[]; statistics: { rows_read: number } };
    return result;
  };
  const optimizeAll = async () => {
    for (const table of UBA_TABLES) await clickhouse.command({ query: `OPTIMIZE TABLE ${table} FINAL` });
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'uba-ch-'));
    clickhouse = openClickHouse({ kind: 'chdb', path: join(dir, 'db') });
  });
  afterAll(async () => {
    await clickhouse.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('migrates idempotently, also when run twice at once', async () => {
    const [first, second] = await Promise.all([migrateClickHouse(clickhouse), migrateClickHouse(clickhouse)]);
    expect([...first, ...second]).toContain('0006_user_behaviors.sql');
    const schema = async () =>
      await select(
        `SELECT name, engine, create_table_query FROM system.tables
          WHERE database = currentDatabase() AND (name LIKE 'uba_%' OR name LIKE 'user_%') ORDER BY name`,
      );
    const before = await schema();
    expect(await migrateClickHouse(clickhouse)).toEqual([]);
    // Applying the files again, statement by statement, changes nothing either (each statement is idempotent).
    await clickhouse.command({ query: "DELETE FROM schema_migrations WHERE name >= '0006' AND name < '0014'" });
    expect(await migrateClickHouse(clickhouse)).toEqual([
      '0006_user_behaviors.sql',
      '0007_user_behaviors_by_user.sql',
      '0008_uba_hourly_metrics.sql',
      '0009_uba_item_daily.sql',
      '0010_uba_experiment_daily.sql',
      '0011_user_watches.sql',
      '0012_uba_audiences.sql',
      '0013_user_behavior_ids.sql',
    ]);
    expect(await schema()).toEqual(before);
    expect(before.map((t) => [t.name, t.engine])).toEqual([
      ['uba_audiences', 'AggregatingMergeTree'],
      ['uba_audiences_mv', 'MaterializedView'],
      ['uba_experiment_daily', 'AggregatingMergeTree'],
      ['uba_experiment_daily_mv', 'MaterializedView'],
      ['uba_hourly_metrics', 'AggregatingMergeTree'],
      ['uba_hourly_metrics_mv', 'MaterializedView'],
      ['uba_item_daily', 'AggregatingMergeTree'],
      ['uba_item_daily_mv', 'MaterializedView'],
      ['uba_item_daily_watches_mv', 'MaterializedView'],
      ['user_behavior_ids', 'MergeTree'],
      ['user_behavior_ids_mv', 'MaterializedView'],
      ['user_behaviors', 'MergeTree'],
      ['user_behaviors_by_user', 'MergeTree'],
      ['user_behaviors_by_user_mv', 'MaterializedView'],
      ['user_watches', 'VersionedCollapsingMergeTree'],
      ['user_watches_latest', 'View'],
    ]);
  });

  it('keeps roll-ups equal to a recomputation from the raw behaviours after many parts and OPTIMIZE FINAL', async () => {
    // The seed's shape, as a regression guard: a SummingMergeTree summing each insert block's uniqExact.
    await clickhouse.command({
      query: `CREATE TABLE seed_item_daily (tenant_id Int64, date Date, item_id String, clicks UInt64, unique_users UInt64)
              ENGINE = SummingMergeTree ORDER BY (tenant_id, date, item_id)`,
    });
    await clickhouse.command({
      query: `CREATE MATERIALIZED VIEW seed_item_daily_mv TO seed_item_daily AS
              SELECT tenant_id, date, item_id, countIf(action_type = 'click') AS clicks, uniqExact(user_id) AS unique_users
              FROM user_behaviors WHERE item_id != '' GROUP BY tenant_id, date, item_id`,
    });

    const g = generator(1);
    const tenants = [1, 2, 3];
    const actions = [
      'impression',
      'impression',
      'impression',
      'click',
      'click',
      'view',
      'like',
      'share',
      'add_cart',
      'order',
    ];
    const records: BehaviorRecord[] = [];
    for (let i = 0; i < 1500; i++) {
      const tenant = g.pick(tenants);
      const user = `user-${Math.floor(g.random() ** 2 * 40)}`;
      const inExperiment = tenant !== 3 && g.random() < 0.7;
      const action = g.random() < 0.08 ? '$pageview' : g.pick(actions);
      records.push(
        g.record({
          tenant_id: tenant,
          user_id: user,
          item_id: action === '$pageview' ? '' : `item-${Math.floor(g.random() ** 2 * 15)}`,
          action_type: action,
          scenario_id: g.pick(['home', 'search', '']),
          // Over ~10 days, fractional milliseconds included.
          timestamp: now - g.random() * 10 * DAY,
          watch_duration: action === 'view' ? Math.floor(g.random() * 300) : 0,
          experiment_id: inExperiment ? g.pick(['exp-a', 'exp-b']) : '',
          experiment_group: inExperiment ? (user.length % 2 ? 'control' : 'test') : '',
          properties: { position: String(i % 10) },
        }),
      );
    }
    // Watches updated as they continue: 1-5 states each, some crossing midnight, delivered in any order.
    for (let v = 0; v < 40; v++) {
      const tenant = g.pick(tenants);
      const user = `user-${Math.floor(g.random() * 40)}`;
      const item = `item-${Math.floor(g.random() * 15)}`;
      const start = now - 2 * HOUR - g.random() * 10 * DAY;
      const updates = 1 + Math.floor(g.random() * 5);
      for (let u = 1; u <= updates; u++) {
        records.push(
          g.record({
            tenant_id: tenant,
            user_id: user,
            item_id: item,
            action_type: 'view',
            view_id: `view-${v}`,
            timestamp: start + u * 20 * 60_000,
            watch_duration: 15 * u,
            completion_rate: u / 5,
          }),
        );
      }
    }
    for (let i = records.length - 1; i > 0; i--) {
      const j = Math.floor(g.random() * (i + 1));
      [records[i], records[j]] = [records[j]!, records[i]!];
    }
    // Many small inserts (a part each in every table, before merges).
    const behaviors = records.map((r) => positioned(r));
    let batches = 0;
    for (let i = 0; i < behaviors.length; batches++) {
      const size = 5 + Math.floor(g.random() * 40);
      await insertBehaviors(clickhouse, behaviors.slice(i, i + size), `rollup-test-${batches}`);
      i += size;
    }
    expect(batches).toBeGreaterThan(50);
    await optimizeAll();
    await clickhouse.command({ query: 'OPTIMIZE TABLE seed_item_daily FINAL' });

    // Brute force, in TypeScript, from the records themselves.
    const groupBy = <K extends string>(key: (r: BehaviorRecord) => K | undefined) => {
      const groups = new Map<K, BehaviorRecord[]>();
      for (const r of records) {
        const k = key(r);
        if (k === undefined) continue;
        groups.set(k, [...(groups.get(k) ?? []), r]);
      }
      return groups;
    };
    const distinctUsers = (rs: readonly BehaviorRecord[]) => new Set(rs.map((r) => r.user_id)).size;
    const sortRows = <T>(rows: T[]) => rows.sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
    const where = 'tenant_id IN (1, 2, 3)';

    // Hourly metrics.
    const hourly = [
      ...groupBy((r) => JSON.stringify([r.tenant_id, hourOf(r.timestamp), r.action_type, r.scenario_id])).entries(),
    ].map(([k, rs]) => {
      const [tenant_id, hour, action_type, scenario_id] = JSON.parse(k);
      return { tenant_id, hour, action_type, scenario_id, events: rs.length, users: distinctUsers(rs) };
    });
    expect(
      await select(
        `SELECT tenant_id, toString(hour) AS hour, action_type, scenario_id, countMerge(events) AS events,
           uniqCombined64Merge(users) AS users
         FROM uba_hourly_metrics WHERE ${where} GROUP BY tenant_id, hour, action_type, scenario_id
         ORDER BY tenant_id, hour, action_type, scenario_id`,
      ).then(sortRows),
    ).toEqual(sortRows(hourly));
    // Merged over a whole range: distinct users of the union, not a sum of the hours' users.
    for (const tenant of tenants) {
      const range = { from: now - 11 * DAY, to: now + HOUR };
      expect(await activeUsers(clickhouse, tenant, range)).toBe(
        distinctUsers(records.filter((r) => r.tenant_id === tenant)),
      );
      const clicks = (await hourlyMetrics(clickhouse, tenant, range)).filter((m) => m.action_type === 'click');
      expect(clicks.reduce((n, m) => n + m.events, 0)).toBe(
        records.filter((r) => r.tenant_id === tenant && r.action_type === 'click').length,
      );
    }

    // Daily item stats: each watch once, with its latest state, on the day of that state.
    const latestWatch = new Map<string, BehaviorRecord>();
    for (const r of records) {
      if (r.view_id === '') continue;
      const key = JSON.stringify([r.tenant_id, r.user_id, r.view_id]);
      const seen = latestWatch.get(key);
      if (!seen || r.timestamp > seen.timestamp) latestWatch.set(key, r);
    }
    const items = [
      ...groupBy((r) =>
        r.item_id ? JSON.stringify([r.tenant_id, dayOf(r.timestamp), r.item_id]) : undefined,
      ).entries(),
    ].map(([k, rs]) => {
      const [tenant_id, date, item_id] = JSON.parse(k);
      const watches = [...latestWatch.values()].filter(
        (w) => w.tenant_id === tenant_id && w.item_id === item_id && dayOf(w.timestamp) === date,
      );
      const count = (action: string) => rs.filter((r) => r.action_type === action).length;
      const single = rs.filter((r) => r.view_id === '');
      return {
        tenant_id,
        date,
        item_id,
        impressions: count('impression'),
        clicks: count('click'),
        views: single.filter((r) => r.action_type === 'view').length + watches.length,
        orders: count('order'),
        users: distinctUsers(rs),
        watch_time:
          single.reduce((n, r) => n + r.watch_duration, 0) + watches.reduce((n, w) => n + w.watch_duration, 0),
      };
    });
    const storedItems = await select<{ tenant_id: number; date: string; item_id: string }>(
      `SELECT tenant_id, toString(date) AS date, item_id, countMerge(impressions) AS impressions,
         countMerge(clicks) AS clicks, sumMerge(views) AS views, countMerge(orders) AS orders,
         uniqCombined64Merge(users) AS users, sumMerge(watch_time) AS watch_time
       FROM uba_item_daily WHERE ${where} GROUP BY tenant_id, date, item_id`,
    );
    expect(sortRows(storedItems)).toEqual(sortRows(items));
    for (const tenant of tenants) {
      const days = { from: dayOf(now - 11 * DAY), to: dayOf(now) };
      const top = await topItems(clickhouse, tenant, days, 3);
      const expected = [...groupBy((r) => (r.tenant_id === tenant && r.item_id ? r.item_id : undefined)).entries()]
        .map(([item, rs]) => ({
          item,
          clicks: rs.filter((r) => r.action_type === 'click').length,
          impressions: rs.filter((r) => r.action_type === 'impression').length,
          users: distinctUsers(rs),
        }))
        .sort((a, b) => b.clicks - a.clicks || b.impressions - a.impressions || (a.item < b.item ? -1 : 1))
        .slice(0, 3);
      expect(
        top.map((t) => ({ item: t.item_id, clicks: t.clicks, impressions: t.impressions, users: t.users })),
      ).toEqual(expected);
    }

    // Experiment metrics.
    const experiments = [
      ...groupBy((r) =>
        r.experiment_id
          ? JSON.stringify([r.tenant_id, r.experiment_id, r.experiment_group, dayOf(r.timestamp)])
          : undefined,
      ).entries(),
    ].map(([k, rs]) => {
      const [tenant_id, experiment_id, experiment_group, date] = JSON.parse(k);
      return {
        tenant_id,
        experiment_id,
        experiment_group,
        date,
        users: distinctUsers(rs),
        converted_users: distinctUsers(rs.filter((r) => r.action_type === 'order')),
        events: rs.length,
      };
    });
    expect(
      sortRows(
        await select(
          `SELECT tenant_id, experiment_id, experiment_group, toString(date) AS date, uniqExactMerge(users) AS users,
             uniqExactMerge(converted_users) AS converted_users, countMerge(events) AS events
           FROM uba_experiment_daily WHERE ${where} GROUP BY tenant_id, experiment_id, experiment_group, date`,
        ),
      ),
    ).toEqual(sortRows(experiments));
    const whole = await experimentMetrics(clickhouse, 1, 'exp-a', { from: dayOf(now - 11 * DAY), to: dayOf(now) });
    expect(whole).toEqual(
      ['control', 'test']
        .map((group) => {
          const rs = records.filter(
            (r) => r.tenant_id === 1 && r.experiment_id === 'exp-a' && r.experiment_group === group,
          );
          return {
            experiment_group: group,
            users: distinctUsers(rs),
            converted_users: distinctUsers(rs.filter((r) => r.action_type === 'order')),
            events: rs.length,
          };
        })
        .filter((g) => g.events > 0),
    );

    // Audiences: per tenant, action and day, the distinct users; and "did X and Y" as a set intersection.
    const audiences = [
      ...groupBy((r) => JSON.stringify([r.tenant_id, r.action_type, dayOf(r.timestamp)])).entries(),
    ].map(([k, rs]) => {
      const [tenant_id, action_type, date] = JSON.parse(k);
      return { tenant_id, action_type, date, users: distinctUsers(rs) };
    });
    expect(
      sortRows(
        await select(
          `SELECT tenant_id, action_type, toString(date) AS date, groupBitmapMerge(users) AS users
           FROM uba_audiences WHERE ${where} GROUP BY tenant_id, action_type, date`,
        ),
      ),
    ).toEqual(sortRows(audiences));
    const usersWho = (tenant: number, action: string, from: string, to: string) =>
      new Set(
        records
          .filter((r) => r.tenant_id === tenant && r.action_type === action)
          .filter((r) => dayOf(r.timestamp) >= from && dayOf(r.timestamp) <= to)
          .map((r) => r.user_id),
      );
    for (const tenant of tenants) {
      for (const [x, y, from, to] of [
        ['click', 'order', dayOf(now - 11 * DAY), dayOf(now)],
        ['add_cart', 'share', dayOf(now - 5 * DAY), dayOf(now - 2 * DAY)],
        ['impression', 'like', dayOf(now - 3 * DAY), dayOf(now)],
      ] as const) {
        const xs = usersWho(tenant, x, from, to);
        const both = [...usersWho(tenant, y, from, to)].filter((u) => xs.has(u)).length;
        expect(await audienceSize(clickhouse, tenant, [x, y], { from, to })).toBe(both);
      }
      const three = [...usersWho(tenant, 'click', dayOf(now - 11 * DAY), dayOf(now))].filter(
        (u) =>
          usersWho(tenant, 'order', dayOf(now - 11 * DAY), dayOf(now)).has(u) &&
          usersWho(tenant, 'impression', dayOf(now - 11 * DAY), dayOf(now)).has(u),
      ).length;
      expect(
        await audienceSize(clickhouse, tenant, ['click', 'order', 'impression'], {
          from: dayOf(now - 11 * DAY),
          to: dayOf(now),
        }),
      ).toBe(three);
    }

    // The seed's SummingMergeTree over per-insert uniqExact counts a user once per insert block: it over-counts.
    const seed = await select<{
      tenant_id: number;
      date: string;
      item_id: string;
      clicks: number;
      unique_users: number;
    }>(
      `SELECT tenant_id, toString(date) AS date, item_id, sum(clicks) AS clicks, sum(unique_users) AS unique_users
       FROM seed_item_daily WHERE ${where} GROUP BY tenant_id, date, item_id`,
    );
    const truth = new Map(items.map((r) => [JSON.stringify([r.tenant_id, r.date, r.item_id]), r]));
    let overCounted = 0;
    for (const row of seed) {
      const t = truth.get(JSON.stringify([row.tenant_id, row.date, row.item_id]))!;
      expect(row.clicks).toBe(t.clicks); // counts sum correctly
      expect(row.unique_users).toBeGreaterThanOrEqual(t.users);
      if (row.unique_users > t.users) overCounted++;
    }
    expect(overCounted).toBeGreaterThan(10);
    const seedUsers = seed.reduce((n, r) => n + r.unique_users, 0);
    expect(seedUsers).not.toBe(items.reduce((n, r) => n + r.users, 0));
  });

  it('counts a watch updated five times once, with its last state', async () => {
    const g = generator(2);
    const tenant = 50;
    const start = now - 2 * HOUR;
    const states = [1, 2, 3, 4, 5].map((u) =>
      g.record({
        tenant_id: tenant,
        user_id: 'watcher',
        item_id: 'film',
        action_type: 'view',
        view_id: 'view-1',
        timestamp: start + u * 60_000,
        watch_duration: 60 * u,
        completion_rate: u / 5,
      }),
    );
    // Five updates in five batches (each a sink batch of its own), then a stale one (an older state sent late),
    // then the third update read again in another batch (a re-read after a crash: another token).
    for (const [i, state] of states.entries()) await insertBehaviors(clickhouse, [positioned(state)], `watch-${i}`);
    await insertBehaviors(clickhouse, [positioned({ ...states[1]!, event_id: g.uuid(), watch_duration: 70 })], 'late');
    await insertBehaviors(clickhouse, [positioned(states[2]!)], 'reread');
    // A second watch: all five updates in one batch.
    const second = [1, 2, 3, 4, 5].map((u) =>
      g.record({
        tenant_id: tenant,
        user_id: 'watcher',
        item_id: 'film',
        action_type: 'view',
        view_id: 'view-2',
        timestamp: start + 30 * 60_000 + u * 60_000,
        watch_duration: 100 * u,
        completion_rate: u / 5,
      }),
    );
    const result = await insertBehaviors(clickhouse, second.map((r) => positioned(r)).reverse(), 'watch-batch');
    expect(result.watchRows).toBe(1); // only the batch's latest state: intermediate ones would cancel out

    const check = async () => {
      expect(await userWatches(clickhouse, tenant, 'watcher')).toEqual([
        expect.objectContaining({ view_id: 'view-2', watch_duration: 500, completion_rate: 1, updates: 1 }),
        expect.objectContaining({ view_id: 'view-1', watch_duration: 300, completion_rate: 1, updates: 5 }),
      ]);
      // The read of the collapsing table itself: sum(sign) per watch.
      expect(
        await select(
          `SELECT view_id, sum(sign) AS watches, sum(sign * watch_duration) AS watch_duration
           FROM user_watches WHERE tenant_id = ${tenant} GROUP BY view_id HAVING sum(sign) > 0 ORDER BY view_id`,
        ),
      ).toEqual([
        { view_id: 'view-1', watches: 1, watch_duration: 300 },
        { view_id: 'view-2', watches: 1, watch_duration: 500 },
      ]);
      const [stats] = await topItems(clickhouse, tenant, { from: dayOf(start), to: dayOf(now) });
      expect(stats).toMatchObject({ item_id: 'film', views: 2, watch_time: 800, users: 1 });
    };
    await check();
    await optimizeAll();
    await check();
    // Merges collapsed every cancelled state: one row per watch.
    expect(
      await select(`SELECT view_id, sign, version FROM user_watches WHERE tenant_id = ${tenant} ORDER BY view_id`),
    ).toEqual([
      { view_id: 'view-1', sign: 1, version: 5 },
      { view_id: 'view-2', sign: 1, version: 1 },
    ]);
    // The raw table keeps every update (12 behaviours): the timeline shows them all.
    const [raw] = await select<{ n: number }>(`SELECT count() AS n FROM user_behaviors WHERE tenant_id = ${tenant}`);
    expect(raw!.n).toBe(12);
  });

  it("looks up one user's timeline in (timestamp, event_id) order, reading a few granules", async () => {
    const g = generator(3);
    const tenant = 60;
    const records: BehaviorRecord[] = [];
    // 150k behaviours of 5,000 users over 30 days, and one user (target) with 120, three of which share a millisecond.
    for (let i = 0; i < 150_000; i++) {
      records.push(
        g.record({
          tenant_id: tenant,
          user_id: `u-${Math.floor(g.random() * 5000)}`,
          action_type: g.pick(['impression', 'click', 'view']),
          timestamp: now - g.random() * 30 * DAY,
        }),
      );
    }
    const tie = now - 5 * DAY + 0.25;
    for (let i = 0; i < 120; i++) {
      records.push(
        g.record({
          tenant_id: tenant,
          user_id: 'target',
          item_id: `item-${i}`,
          action_type: g.pick(['impression', 'click', 'order']),
          timestamp: i < 3 ? tie + i * 0.3 : now - g.random() * 30 * DAY,
        }),
      );
    }
    const behaviors = records.map((r) => positioned(r));
    for (let i = 0; i < behaviors.length; i += 50_000) {
      await insertBehaviors(clickhouse, behaviors.slice(i, i + 50_000), `timeline-${i}`);
    }
    await optimizeAll();

    const expected = records
      .filter((r) => r.user_id === 'target')
      .map((r) => ({ timestamp: behaviorTime(r.timestamp), event_id: r.event_id }))
      .sort((a, b) =>
        a.timestamp !== b.timestamp ? (a.timestamp < b.timestamp ? 1 : -1) : -compareEventIds(a.event_id, b.event_id),
      );
    const page1 = await userTimeline(clickhouse, tenant, 'target', { limit: 100 });
    const page2 = await userTimeline(clickhouse, tenant, 'target', { limit: 100, before: page1.at(-1)! });
    expect([...page1, ...page2].map((e) => ({ timestamp: e.timestamp, event_id: e.event_id }))).toEqual(expected);
    // The three events of one millisecond are in event_id order (ClickHouse's UUID order, which compareEventIds is).
    const tied = expected.filter((e) => e.timestamp === behaviorTime(tie));
    expect(tied).toHaveLength(3);
    const [fromClickHouse] = await select<{ ids: string[] }>(
      `SELECT arraySort(groupArray(event_id)) AS ids FROM user_behaviors WHERE tenant_id = ${tenant} AND user_id = 'target'
         AND timestamp = '${behaviorTime(tie)}'`,
    );
    expect(fromClickHouse!.ids).toEqual(tied.map((e) => e.event_id).reverse());
    // sequence_ts (for windowFunnel) sorts as (timestamp, event_id) does.
    const [sequence] = await select<{ by_key: string[]; by_sequence: string[] }>(
      `SELECT arrayMap(x -> x.2, arraySort(groupArray((timestamp, event_id)))) AS by_key,
              arrayMap(x -> x.2, arraySort(groupArray((sequence_ts, event_id)))) AS by_sequence
       FROM user_behaviors WHERE tenant_id = ${tenant} AND user_id = 'target'`,
    );
    expect(sequence!.by_sequence).toEqual(sequence!.by_key);

    // A point lookup: user_behaviors_by_user's key narrows the read to a granule or two per part (one part per month
    // after OPTIMIZE FINAL), where user_behaviors' own key (tenant, date, action, ...) reads every granule of the tenant.
    const timelineOn = (table: string) => `SELECT timestamp, event_id, action_type, item_id FROM ${table}
      WHERE tenant_id = {tenant:Int64} AND user_id = {user:String} ORDER BY timestamp DESC, event_id DESC LIMIT 100`;
    const plan = await select<{ explain: string }>(
      `EXPLAIN indexes = 1 ${timelineOn('user_behaviors_by_user').replace('{tenant:Int64}', String(tenant)).replace('{user:String}', "'target'")}`,
    );
    expect(plan.map((l) => l.explain.replace(/^[\s│├└─]+/, ''))).toEqual(
      expect.arrayContaining(['ReadFromMergeTree (default.user_behaviors_by_user)', 'PrimaryKey', 'user_id']),
    );
    const lookup = await statistics(timelineOn('user_behaviors_by_user'), { tenant, user: 'target' });
    expect(lookup.data).toEqual(
      expected.slice(0, 100).map((e) => expect.objectContaining({ timestamp: e.timestamp, event_id: e.event_id })),
    );
    const [months] = await select<{ parts: number }>(
      `SELECT count() AS parts FROM system.parts WHERE active AND table = 'user_behaviors_by_user'`,
    );
    expect(lookup.statistics.rows_read).toBeLessThanOrEqual(2 * 8192 * months!.parts);
    const scan = await statistics(timelineOn('user_behaviors'), { tenant, user: 'target' });
    expect(scan.data).toEqual(lookup.data);
    expect(scan.statistics.rows_read).toBeGreaterThanOrEqual(records.length);
    expect(lookup.statistics.rows_read * 4).toBeLessThan(scan.statistics.rows_read);
  });

  it('stores a retried insert once, also when earlier attempts reached only some tables', async () => {
    const g = generator(4);
    const tenant = 70;
    const batch = Array.from({ length: 30 }, (_, i) =>
      positioned(
        g.record({
          tenant_id: tenant,
          user_id: `u-${i % 7}`,
          item_id: `item-${i % 3}`,
          action_type: g.pick(['impression', 'click', 'order']),
          timestamp: now - i * 60_000,
          experiment_id: 'exp',
          experiment_group: i % 2 ? 'a' : 'b',
          view_id: i % 10 === 0 ? `view-${i}` : '',
          watch_duration: i % 10 === 0 ? 42 : 0,
        }),
      ),
    );
    const totals = async () =>
      await select(
        `SELECT
           (SELECT count() FROM user_behaviors WHERE tenant_id = ${tenant}) AS raw,
           (SELECT countMerge(events) FROM uba_hourly_metrics WHERE tenant_id = ${tenant}) AS hourly,
           (SELECT countMerge(impressions) + countMerge(clicks) + countMerge(orders) FROM uba_item_daily WHERE tenant_id = ${tenant}) AS items,
           (SELECT sumMerge(watch_time) FROM uba_item_daily WHERE tenant_id = ${tenant}) AS watch_time,
           (SELECT countMerge(events) FROM uba_experiment_daily WHERE tenant_id = ${tenant}) AS experiments,
           (SELECT count() FROM user_watches WHERE tenant_id = ${tenant}) AS watch_rows,
           (SELECT count() FROM user_behaviors_by_user WHERE tenant_id = ${tenant}) AS timeline,
           (SELECT groupBitmapMerge(users) FROM uba_audiences WHERE tenant_id = ${tenant}) AS audience`,
      );
    const once = {
      raw: 30,
      hourly: 30,
      items: 30,
      watch_time: 3 * 42,
      experiments: 30,
      watch_rows: 3,
      timeline: 30,
      audience: 7,
    };

    const refuse = async (table: string, refused: boolean) =>
      await clickhouse.command({
        query: refused
          ? `ALTER TABLE ${table} MODIFY SETTING max_parts_in_total = 0`
          : `ALTER TABLE ${table} RESET SETTING max_parts_in_total`,
      });
    // The sink seals the batch (its plan: rows and tokens) once, and retries that plan until it succeeds.
    const plan = await planBehaviorInsert(clickhouse, batch, 'retry-token');
    onTestFinished(async () => {
      await refuse('uba_item_daily', false);
      await refuse('uba_hourly_metrics', false);
    });
    expect(plan.result).toEqual({ rows: 30, watchRows: 3, inserts: 1 });
    // First attempt: ClickHouse refuses the item roll-up's parts (TOO_MANY_PARTS) and the hourly one's: the watches'
    // insert (whose view feeds uba_item_daily) fails, and nothing after it runs.
    await refuse('uba_item_daily', true);
    await refuse('uba_hourly_metrics', true);
    await expect(runBehaviorInsert(clickhouse, plan)).rejects.toThrow(/TOO_MANY_PARTS|Too many parts/);
    expect((await totals())[0]).toMatchObject({ raw: 0, watch_time: 0 });
    // Second attempt: the item roll-up is back; the watches are written, the behaviours' insert stores the raw rows
    // (and the views that ran before the hourly one), and the hourly roll-up refuses.
    await refuse('uba_item_daily', false);
    await expect(runBehaviorInsert(clickhouse, plan)).rejects.toThrow(/TOO_MANY_PARTS|Too many parts/);
    expect((await totals())[0]).toMatchObject({ raw: 30, hourly: 0, watch_rows: 3, watch_time: 126 });
    // Third attempt: everything that was missing is written, nothing twice.
    await refuse('uba_hourly_metrics', false);
    await runBehaviorInsert(clickhouse, plan);
    expect(await totals()).toEqual([once]);
    // Again (a lost reply), and the same behaviours planned again with the same token, in another order: nothing.
    await runBehaviorInsert(clickhouse, plan);
    await insertBehaviors(clickhouse, [...batch].reverse(), 'retry-token');
    await optimizeAll();
    expect(await totals()).toEqual([once]);
    // The default token is made of the batch's positions: the same behaviours map to the same token.
    await insertBehaviors(clickhouse, batch);
    await insertBehaviors(clickhouse, [...batch].reverse());
    expect((await totals())[0]).toMatchObject({ raw: 60, watch_rows: 3 });
  });

  it('answers how far a topic partition is stored from the kafka_topic_position projection', async () => {
    const g = generator(5);
    expect(await behaviorsInsertedUpTo(clickhouse, 'other_topic', 0)).toBe(-1);
    const at = (offset: number, partition: number, months: number): PositionedBehavior => ({
      record: g.record({ tenant_id: 80, user_id: 'u', timestamp: now - months * 31 * DAY + offset }),
      topic: 'other_topic',
      partition,
      offset,
    });
    // Three months in a batch with at most one month per insert: three inserts, in offset order.
    const batch = [at(10, 0, 0), at(11, 0, 1), at(12, 0, 2), at(13, 0, 0), at(5, 1, 2)];
    const result = await insertBehaviors(clickhouse, batch, 'positions', { maxMonthsPerInsert: 1 });
    expect(result.inserts).toBeGreaterThanOrEqual(3);
    expect(await behaviorsInsertedUpTo(clickhouse, 'other_topic', 0)).toBe(13);
    expect(await behaviorsInsertedUpTo(clickhouse, 'other_topic', 1)).toBe(5);
    expect(await behaviorsInsertedUpTo(clickhouse, 'other_topic', 2)).toBe(-1);
    const plan = await select<{ explain: string }>(
      "EXPLAIN SELECT max(_kafka_offset), count() FROM user_behaviors WHERE _kafka_topic = 'other_topic' AND _kafka_partition = 0",
    );
    expect(plan.map((l) => l.explain).join('\n')).toContain('ReadFromMergeTree (kafka_topic_position)');
  });
});
