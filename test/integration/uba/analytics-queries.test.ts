import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prng } from '../../../bench/shared/prng.ts';
import { openClickHouse } from '../../../src/clickhouse/client.ts';
import { migrateClickHouse } from '../../../src/clickhouse/migrations.ts';
import { isReplayError } from '../../../src/errors/index.ts';
import { experimentResults } from '../../../src/uba/analytics/experiments.ts';
import { type FunnelOptions, type FunnelResult, type FunnelStep, funnel } from '../../../src/uba/analytics/funnel.ts';
import { type PathsOptions, paths } from '../../../src/uba/analytics/paths.ts';
import { type RetentionOptions, retention } from '../../../src/uba/analytics/retention.ts';
import type { BehaviorRecord } from '../../../src/uba/behavior-record.ts';
import { compareEventIds, insertBehaviors, type PositionedBehavior } from '../../../src/uba/behavior-rows.ts';

// Every answer of src/uba/analytics/ is compared with a recomputation from the generated records written here from
// the definitions (doc comments of each function), not with the module's code.

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** Data from ~43 to ~10 days ago: inside the 90-day TTL, never in the future. */
const today = Math.floor(Date.now() / DAY) * DAY;
const base = today - 40 * DAY;

function generator(seed: number) {
  const random = prng(seed);
  const hex = (n: number) => Array.from({ length: n }, () => Math.floor(random() * 16).toString(16)).join('');
  const uuid = () => `${hex(8)}-${hex(4)}-4${hex(3)}-${'89ab'[Math.floor(random() * 4)]}${hex(3)}-${hex(12)}`;
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const record = (fields: Partial<BehaviorRecord> & Pick<BehaviorRecord, 'tenant_id' | 'user_id'>): BehaviorRecord => ({
    event_id: uuid(),
    item_id: 'item-1',
    action_type: 'click',
    scenario_id: 'home',
    timestamp: base,
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
    captured_at: fields.timestamp ?? base,
    ...fields,
  });
  const shuffle = <T>(items: T[]): T[] => {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  };
  return { random, uuid, pick, record, shuffle };
}

let offset = 0;
const positioned = (record: BehaviorRecord): PositionedBehavior => ({
  record,
  topic: 'user_behaviors',
  partition: 0,
  offset: offset++,
});

/** (timestamp, event_id) in ClickHouse's order; the table keeps whole milliseconds. */
const byTime = (a: BehaviorRecord, b: BehaviorRecord) =>
  Math.floor(a.timestamp) - Math.floor(b.timestamp) || compareEventIds(a.event_id, b.event_id);

const NEXT_ACTION: Record<string, readonly string[]> = {
  impression: ['impression', 'impression', 'click', 'click', 'like'],
  click: ['view', 'add_cart', 'add_cart', 'impression', 'click', 'share'],
  view: ['add_cart', 'like', 'click', 'order'],
  add_cart: ['order', 'order', 'click', 'impression', 'add_cart'],
  order: ['impression', 'share', 'order'],
  like: ['share', 'click', 'impression'],
  share: ['impression', 'click'],
};

/**
 * Visits of 2-12 behaviours following NEXT_ACTION, a quarter of them in the same millisecond as the one before (ties
 * ordered by event_id), others seconds to an hour apart, over `days` days from `start`; a visit has a session id or,
 * one in six, none. `plan` and `color` properties on some events (or absent).
 */
function visits(
  g: ReturnType<typeof generator>,
  tenant: number,
  users: number,
  start: number,
  days: number,
): BehaviorRecord[] {
  const out: BehaviorRecord[] = [];
  for (let u = 0; u < users; u++) {
    const user = `user-${u}`;
    const count = 1 + Math.floor(g.random() * 8);
    for (let v = 0; v < count; v++) {
      const session = g.random() < 1 / 6 ? '' : `s-${tenant}-${u}-${v}`;
      let t = start + Math.floor(g.random() * days * DAY);
      let action = g.random() < 0.7 ? 'impression' : g.pick(['click', 'view', '$pageview']);
      const length = 2 + Math.floor(g.random() * 11);
      for (let i = 0; i < length; i++) {
        const properties: Record<string, string> = {};
        if (g.random() < 0.6) properties.plan = g.pick(['free', 'pro', 'team']);
        if (g.random() < 0.5) properties.color = g.pick(['red', 'blue']);
        out.push(
          g.record({
            tenant_id: tenant,
            user_id: user,
            action_type: action,
            timestamp: t,
            session_id: session,
            properties,
          }),
        );
        const gap = g.random();
        t +=
          gap < 0.25
            ? 0
            : gap < 0.6
              ? Math.floor(g.random() * 5 * SECOND)
              : gap < 0.9
                ? Math.floor(g.random() * 10 * MINUTE)
                : Math.floor(g.random() * 2 * HOUR);
        // Fractional milliseconds are cut by the table: still a tie.
        if (gap < 0.05) t += 0.4;
        action = g.pick(NEXT_ACTION[action] ?? ['impression']);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Brute force, from the definitions.

const matchesStep = (r: BehaviorRecord, step: FunnelStep) =>
  r.action_type === step.action &&
  Object.entries(step.properties ?? {}).every(([k, v]) => Object.hasOwn(r.properties, k) && r.properties[k] === v);

/**
 * A user's funnel over their events (sorted), each with the steps it matches: windowFunnel's level as the longest
 * chain e1 < e2 < ... (distinct events in order, e_s matching step s, all within `window` of e1), and the chain the
 * answer reports: for a completed funnel, the chain whose last event comes first (of those, the latest start); else
 * the latest start reaching the furthest level, and the last event of that step ending any chain of that level.
 */
function bestChain(
  events: readonly { ts: number; steps: ReadonlySet<number> }[],
  k: number,
  window: number,
): { level: number; start: number; end: number } {
  // From each start, the earliest extension reaches furthest and ends earliest.
  const reach = events.map((e, i) => {
    const at = [i]; // at[s-1]: index of the event filling step s
    if (!e.steps.has(1)) return at.slice(0, 0);
    for (let s = 2; s <= k; s++) {
      let j = at[s - 2]! + 1;
      while (j < events.length && !(events[j]!.steps.has(s) && events[j]!.ts <= e.ts + window)) {
        if (events[j]!.ts > e.ts + window) j = events.length;
        else j++;
      }
      if (j >= events.length) break;
      at.push(j);
    }
    return at;
  });
  const level = Math.max(0, ...reach.map((at) => at.length));
  if (level === 0) return { level, start: -1, end: -1 };
  if (level === k) {
    const end = Math.min(...reach.filter((at) => at.length === k).map((at) => at[k - 1]!));
    const start = Math.max(...reach.flatMap((at, i) => (at.length === k && at[k - 1] === end ? [i] : [])));
    return { level, start, end };
  }
  const start = Math.max(...reach.flatMap((at, i) => (at.length === level ? [i] : [])));
  // The last event of step `level` that ends some chain of that level.
  let end = -1;
  events.forEach((e, q) => {
    if (!e.steps.has(level)) return;
    const ends = reach.some((at, i) => {
      if (level === 1) return i === q;
      return at.length >= level - 1 && at[level - 2]! < q && e.ts <= events[i]!.ts + window;
    });
    if (ends) end = q;
  });
  return { level, start, end };
}

function quantileInclusive(sorted: readonly number[], p: number): number {
  // Linear interpolation between closest ranks (numpy's default, ClickHouse's quantileExactInclusive).
  const h = p * (sorted.length - 1);
  const lo = Math.floor(h);
  if (lo >= sorted.length - 1) return sorted[sorted.length - 1]!;
  return sorted[lo]! + (h - lo) * (sorted[lo + 1]! - sorted[lo]!);
}

interface ExpectedGroup {
  breakdown: string | null;
  reached: number[];
  times: number[];
  /** Per step 2..k: the sorted distinct non-empty sessions of users whose furthest step is the previous one. */
  dropped: string[][];
}

function funnelBrute(records: readonly BehaviorRecord[], o: FunnelOptions): ExpectedGroup[] {
  const k = o.steps.length;
  const actions = new Set(o.steps.map((s) => s.action));
  const byUser = new Map<string, BehaviorRecord[]>();
  for (const r of records) {
    if (r.tenant_id !== o.tenantId || !actions.has(r.action_type) || r.timestamp < o.from || r.timestamp >= o.to)
      continue;
    const list = byUser.get(r.user_id);
    if (list) list.push(r);
    else byUser.set(r.user_id, [r]);
  }
  const groups = new Map<string, { reached: number[]; times: number[]; dropped: Set<string>[] }>();
  for (const list of byUser.values()) {
    let events = list.sort(byTime).map((r) => ({
      r,
      ts: Math.floor(r.timestamp),
      steps: new Set(o.steps.flatMap((s, i) => (matchesStep(r, s) ? [i + 1] : []))),
    }));
    if (!o.strictOrder) events = events.filter((e) => e.steps.size > 0);
    else {
      // strict_order: the search ends at the first event after a step-1 event that matches no step, or whose highest
      // step's previous step is not reached by what came before.
      for (let c = 0; c < events.length; c++) {
        const before = events.slice(0, c);
        if (!before.some((e) => e.steps.has(1))) continue;
        const highest = Math.max(0, ...events[c]!.steps);
        if (highest === 0 || (highest >= 2 && bestChain(before, k, o.windowMs).level < highest - 1)) {
          events = before;
          break;
        }
      }
    }
    const chain = bestChain(events, k, o.windowMs);
    if (chain.level === 0) continue;
    const bd = o.breakdown === undefined ? '' : (events[chain.start]!.r.properties[o.breakdown] ?? '');
    const group = groups.get(bd) ?? {
      reached: Array<number>(k).fill(0),
      times: [] as number[],
      dropped: Array.from({ length: k }, () => new Set<string>()),
    };
    groups.set(bd, group);
    for (let s = 0; s < chain.level; s++) group.reached[s] = group.reached[s]! + 1;
    if (chain.level === k) group.times.push(events[chain.end]!.ts - events[chain.start]!.ts);
    else {
      const session = events[chain.end]!.r.session_id;
      if (session !== '') group.dropped[chain.level]!.add(session);
    }
  }
  return [...groups]
    .map(([bd, g]) => ({
      breakdown: o.breakdown === undefined ? null : bd,
      reached: g.reached,
      times: g.times.sort((a, b) => a - b),
      dropped: g.dropped.slice(1).map((s) => [...s].sort()),
    }))
    .sort((a, b) => b.reached[0]! - a.reached[0]! || ((a.breakdown ?? '') < (b.breakdown ?? '') ? -1 : 1));
}

/** The answer's figures against the recomputation, the first drop-off page of every step included. */
function expectFunnel(result: FunnelResult, expected: ExpectedGroup[], o: FunnelOptions) {
  const limit = o.breakdownLimit ?? 25;
  expect(result.breakdownValues).toBe(expected.length);
  expect(result.groups.map((g) => g.breakdown)).toEqual(expected.slice(0, limit).map((g) => g.breakdown));
  result.groups.forEach((group, gi) => {
    const e = expected[gi]!;
    expect(group.steps.map((s) => s.users)).toEqual(e.reached);
    group.steps.forEach((s, i) => {
      expect(s.action).toBe(o.steps[i]!.action);
      expect(s.conversionFromFirst).toBeCloseTo(e.reached[i]! / e.reached[0]!, 12);
      expect(s.conversionFromPrevious).toBeCloseTo(
        i === 0 ? 1 : e.reached[i - 1] ? e.reached[i]! / e.reached[i - 1]! : 0,
        12,
      );
      if (i === 0) expect(s.dropOff).toBeNull();
      else {
        expect(s.dropOff!.users).toBe(e.reached[i - 1]! - e.reached[i]!);
        expect(s.dropOff!.sessionIds).toEqual(e.dropped[i - 1]!.slice(0, o.dropOffPageSize));
        expect(s.dropOff!.nextCursor === null).toBe(e.dropped[i - 1]!.length <= o.dropOffPageSize);
      }
    });
    if (e.times.length === 0) expect(group.timeToConvertMs).toEqual({ median: null, p90: null });
    else {
      expect(group.timeToConvertMs.median).toBeCloseTo(quantileInclusive(e.times, 0.5), 6);
      expect(group.timeToConvertMs.p90).toBeCloseTo(quantileInclusive(e.times, 0.9), 6);
    }
  });
}

function pathsBrute(records: readonly BehaviorRecord[], o: PathsOptions) {
  const depth = o.depth ?? 3;
  const topK = o.topK ?? 10;
  const byUser = new Map<string, BehaviorRecord[]>();
  for (const r of records) {
    if (r.tenant_id !== o.tenantId || r.timestamp < o.from || r.timestamp >= o.to) continue;
    const list = byUser.get(r.user_id);
    if (list) list.push(r);
    else byUser.set(r.user_id, [r]);
  }
  const userPaths: string[][] = [];
  for (const list of byUser.values()) {
    const events = list.sort(byTime);
    const anchor =
      o.direction === 'next'
        ? events.findIndex((e) => e.action_type === o.action)
        : events.findLastIndex((e) => e.action_type === o.action);
    if (anchor < 0) continue;
    const session = events[anchor]!.session_id;
    const sameSession = (e: BehaviorRecord) => !o.sameSession || (session !== '' && e.session_id === session);
    const steps =
      o.direction === 'next'
        ? events
            .slice(anchor + 1)
            .filter(sameSession)
            .slice(0, depth)
        : events.slice(0, anchor).filter(sameSession).reverse().slice(0, depth);
    userPaths.push(steps.map((e) => e.action_type));
  }
  const keep: Set<string>[] = [];
  for (let d = 1; d <= depth; d++) {
    const counts = new Map<string, number>();
    for (const p of userPaths) if (p[d - 1] !== undefined) counts.set(p[d - 1]!, (counts.get(p[d - 1]!) ?? 0) + 1);
    keep[d] = new Set(
      [...counts]
        .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
        .slice(0, topK)
        .map(([a]) => a),
    );
  }
  const name = (d: number, a: string) => (d === 0 || keep[d]!.has(a) ? a : null);
  const nodes = new Map<string, { id: string; name: string; depth: number; value: number; other: boolean }>();
  const links = new Map<string, { source: string; target: string; value: number }>();
  for (const p of userPaths) {
    const ids = [o.action, ...p].map((a, d) => {
      const n = name(d, a);
      const id = `${d}:${n ?? ''}`;
      const node = nodes.get(id) ?? { id, name: n ?? 'other', depth: d, value: 0, other: n === null };
      node.value++;
      nodes.set(id, node);
      return id;
    });
    for (let d = 1; d < ids.length; d++) {
      const [source, target] = o.direction === 'next' ? [ids[d - 1]!, ids[d]!] : [ids[d]!, ids[d - 1]!];
      const link = links.get(`${source}>${target}`) ?? { source, target, value: 0 };
      link.value++;
      links.set(`${source}>${target}`, link);
    }
  }
  const byId = <T extends { id?: string; source?: string; target?: string }>(items: T[]) =>
    items.sort((a, b) => {
      const x = a.id ?? `${a.source}>${a.target}`;
      const y = b.id ?? `${b.source}>${b.target}`;
      return x < y ? -1 : x > y ? 1 : 0;
    });
  return { users: userPaths.length, nodes: byId([...nodes.values()]), links: byId([...links.values()]) };
}

function retentionBrute(records: readonly BehaviorRecord[], o: RetentionOptions) {
  const length = o.period === 'day' ? DAY : 7 * DAY;
  const startOf = (ms: number) => {
    const day = Math.floor(ms / DAY) * DAY;
    return o.period === 'day' ? day : day - ((new Date(day).getUTCDay() + 6) % 7) * DAY;
  };
  const first = startOf(o.from);
  const last = startOf(o.to - 1);
  const cohortOf = new Map<string, number>();
  for (const r of records) {
    if (r.tenant_id !== o.tenantId || r.action_type !== o.startAction || r.timestamp < o.from || r.timestamp >= o.to)
      continue;
    const p = startOf(r.timestamp);
    cohortOf.set(r.user_id, Math.min(cohortOf.get(r.user_id) ?? p, p));
  }
  const returned = new Set<string>(); // user/offset
  for (const r of records) {
    if (r.tenant_id !== o.tenantId || r.action_type !== o.returnAction) continue;
    const cohort = cohortOf.get(r.user_id);
    if (cohort === undefined || r.timestamp < first || r.timestamp >= last + (o.periods + 1) * length) continue;
    const n = (startOf(r.timestamp) - cohort) / length;
    if (n >= 0 && n <= o.periods) returned.add(`${r.user_id}/${n}`);
  }
  const cohorts = [];
  for (let p = first; p <= last; p += length) {
    const members = [...cohortOf].filter(([, c]) => c === p).map(([u]) => u);
    cohorts.push({
      period: new Date(p).toISOString().slice(0, 10),
      users: members.length,
      retained: Array.from({ length: o.periods + 1 }, (_, n) => {
        const users = members.filter((u) => returned.has(`${u}/${n}`)).length;
        return { offset: n, users, rate: members.length ? users / members.length : 0 };
      }),
    });
  }
  return { period: o.period, periods: o.periods, cohorts };
}

/** Φ by Abramowitz & Stegun 26.2.17 (|error| < 7.5e-8): independent of the module's erfc. */
function normalCdf(z: number): number {
  const t = 1 / (1 + 0.2316419 * Math.abs(z));
  const poly = t * (0.31938153 + t * (-0.356563782 + t * (1.781477937 + t * (-1.821255978 + t * 1.330274429))));
  const upper = (Math.exp((-z * z) / 2) / Math.sqrt(2 * Math.PI)) * poly;
  return z >= 0 ? 1 - upper : upper;
}

function experimentBrute(
  records: readonly BehaviorRecord[],
  o: { tenantId: number; experimentId: string; from: number; to: number; conversionAction?: string },
) {
  const conversion = o.conversionAction ?? 'order';
  const groups = new Map<string, { users: Set<string>; converted: Set<string> }>();
  for (const r of records) {
    if (r.tenant_id !== o.tenantId || r.experiment_id !== o.experimentId || r.experiment_group === '') continue;
    if (r.timestamp < o.from || r.timestamp >= o.to) continue;
    const g = groups.get(r.experiment_group) ?? { users: new Set(), converted: new Set() };
    groups.set(r.experiment_group, g);
    g.users.add(r.user_id);
    if (r.action_type === conversion) g.converted.add(r.user_id);
  }
  const names = [...groups.keys()].sort();
  const control = names.includes('control') ? 'control' : names[0]!;
  const c = groups.get(control)!;
  return names.map((name) => {
    const g = groups.get(name)!;
    const [n1, x1, n2, x2] = [c.users.size, c.converted.size, g.users.size, g.converted.size];
    const [p1, p2] = [x1 / n1, x2 / n2];
    const pooled = (x1 + x2) / (n1 + n2);
    const se0 = Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
    const z = se0 > 0 ? (p2 - p1) / se0 : null;
    const se = Math.sqrt((p1 * (1 - p1)) / n1 + (p2 * (1 - p2)) / n2);
    return {
      group: name,
      users: n2,
      converted: x2,
      rate: p2,
      isControl: name === control,
      vs:
        name === control
          ? null
          : {
              difference: p2 - p1,
              lift: p1 > 0 ? (p2 - p1) / p1 : null,
              low: p2 - p1 - 1.959964 * se,
              high: p2 - p1 + 1.959964 * se,
              z,
              p: z === null ? null : 2 * (1 - normalCdf(Math.abs(z))),
            },
    };
  });
}

// ---------------------------------------------------------------------------------------------------------------

describe('UBA analytics on the raw behaviours (chDB)', () => {
  let dir: string;
  let clickhouse: ClickHouseClient;
  const records: BehaviorRecord[] = [];
  /** Tenant 11 holds tenant 1's rows (same event ids), inserted in another order and other batches. */
  const SHUFFLED = 11;

  const insertInBatches = async (list: BehaviorRecord[], g: ReturnType<typeof generator>, max: number) => {
    for (let i = 0; i < list.length; ) {
      const size = 1 + Math.floor(g.random() * max);
      await insertBehaviors(clickhouse, list.slice(i, i + size).map(positioned));
      i += size;
    }
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'uba-analytics-'));
    clickhouse = openClickHouse({ kind: 'chdb', path: join(dir, 'db') });
    await migrateClickHouse(clickhouse);

    const g = generator(12);
    // Tenants 1 and 2 share user ids, session ids differ; tenant 3 is small. From 3 days before `base` to 30 after.
    for (const [tenant, users] of [
      [1, 60],
      [2, 40],
      [3, 10],
    ] as const) {
      records.push(...visits(g, tenant, users, base - 3 * DAY, 33));
    }
    // Experiments on tenants 1 and 2: a user's group by their number, exposures and conversions tagged.
    records.forEach((r, i) => {
      const n = Number(r.user_id.slice(5));
      if (r.tenant_id === 3 || n % 5 === 4) return; // not in the experiment
      // n % 17 = 3: tagged without a group, so in no group.
      const group = n % 17 === 3 ? '' : ['control', 'blue', 'green'][n % 3]!;
      records[i] = { ...r, experiment_id: 'exp-1', experiment_group: group };
    });
    // Late events: the oldest fifth of the behaviours arrives after all the others.
    const sorted = [...records].sort(byTime);
    const late = sorted.slice(0, Math.floor(sorted.length / 5));
    const lateIds = new Set(late.map((r) => r.event_id));
    await insertInBatches(g.shuffle(records.filter((r) => !lateIds.has(r.event_id))), g, 200);
    await insertInBatches(g.shuffle([...late]), g, 200);

    const copy = g.shuffle(records.filter((r) => r.tenant_id === 1).map((r) => ({ ...r, tenant_id: SHUFFLED })));
    await insertInBatches(copy, g, 60);
    records.push(...copy);
  });
  afterAll(async () => {
    await clickhouse?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('has the data this test relies on: ties, sessions, several tenants', () => {
    const t1 = records.filter((r) => r.tenant_id === 1).sort(byTime);
    const ties = t1.filter(
      (r, i) =>
        i > 0 && r.user_id === t1[i - 1]!.user_id && Math.floor(r.timestamp) === Math.floor(t1[i - 1]!.timestamp),
    );
    expect(ties.length).toBeGreaterThan(100);
    expect(t1.some((r) => r.session_id === '')).toBe(true);
    expect(records.length).toBeGreaterThan(4000);
  });

  const range = { from: base + 5 * HOUR + 123, to: base + 21 * DAY - 7 * HOUR };
  const funnels: (Omit<FunnelOptions, 'tenantId'> & { name: string })[] = [
    {
      name: '4 steps, 1 h window',
      ...range,
      steps: [{ action: 'impression' }, { action: 'click' }, { action: 'add_cart' }, { action: 'order' }],
      windowMs: HOUR,
      strictOrder: false,
      dropOffPageSize: 4,
    },
    {
      name: '4 steps, strict order',
      ...range,
      steps: [{ action: 'impression' }, { action: 'click' }, { action: 'add_cart' }, { action: 'order' }],
      windowMs: HOUR,
      strictOrder: true,
      dropOffPageSize: 4,
    },
    {
      name: 'property filters and a breakdown',
      ...range,
      steps: [
        { action: 'click', properties: { plan: 'pro' } },
        { action: 'add_cart' },
        { action: 'order', properties: { color: 'red' } },
      ],
      windowMs: 2 * HOUR,
      strictOrder: false,
      breakdown: 'plan',
      dropOffPageSize: 2,
    },
    {
      name: 'property filters, strict (unmatched clicks break the chain)',
      ...range,
      steps: [{ action: 'impression' }, { action: 'click', properties: { color: 'blue' } }, { action: 'add_cart' }],
      windowMs: 30 * MINUTE,
      strictOrder: true,
      breakdown: 'color',
      dropOffPageSize: 3,
    },
    {
      name: 'one event matching two steps (click → click → order), breakdown',
      ...range,
      steps: [{ action: 'click' }, { action: 'click' }, { action: 'order' }],
      windowMs: 20 * MINUTE,
      strictOrder: false,
      breakdown: 'color',
      dropOffPageSize: 5,
    },
    {
      name: 'same, strict',
      ...range,
      steps: [{ action: 'click' }, { action: 'click' }, { action: 'order' }],
      windowMs: 20 * MINUTE,
      strictOrder: true,
      breakdown: 'color',
      dropOffPageSize: 5,
    },
    {
      name: 'a short window where ties decide (click → add_cart within 1 ms)',
      ...range,
      steps: [{ action: 'click' }, { action: 'add_cart' }],
      windowMs: 1,
      strictOrder: false,
      dropOffPageSize: 10,
    },
    {
      name: 'ten steps, a breakdown limit',
      ...range,
      steps: [
        { action: 'impression' },
        { action: 'click' },
        { action: 'view' },
        { action: 'add_cart' },
        { action: 'order' },
        { action: 'impression' },
        { action: 'click' },
        { action: 'add_cart' },
        { action: 'order' },
        { action: 'share' },
      ],
      windowMs: 3 * DAY,
      strictOrder: false,
      breakdown: 'plan',
      breakdownLimit: 2,
      dropOffPageSize: 1,
    },
  ];

  it.each(funnels)('funnel: $name equals the recomputation', async ({ name: _, ...options }) => {
    for (const tenantId of [1, 2]) {
      const o = { ...options, tenantId };
      const expected = funnelBrute(records, o);
      expect(expected.length).toBeGreaterThan(0);
      expectFunnel(await funnel(clickhouse, o), expected, o);
    }
  });

  it('funnel: the drop-off cursor pages through each list, the other lists staying on their first page', async () => {
    const o: FunnelOptions = { ...funnels[0]!, tenantId: 1, dropOffPageSize: 3 };
    const expected = funnelBrute(records, o)[0]!;
    const first = await funnel(clickhouse, o);
    let longest = 0;
    for (let step = 2; step <= o.steps.length; step++) {
      const all = expected.dropped[step - 2]!;
      const pages: string[] = [...first.groups[0]!.steps[step - 1]!.dropOff!.sessionIds];
      let cursor = first.groups[0]!.steps[step - 1]!.dropOff!.nextCursor;
      while (cursor !== null) {
        const next = await funnel(clickhouse, { ...o, dropOffCursor: cursor });
        next.groups[0]!.steps.forEach((s, i) => {
          if (i > 0 && i !== step - 1) expect(s.dropOff).toEqual(first.groups[0]!.steps[i]!.dropOff);
          expect(s.users).toBe(first.groups[0]!.steps[i]!.users);
        });
        const page = next.groups[0]!.steps[step - 1]!.dropOff!;
        expect(page.sessionIds.length).toBeLessThanOrEqual(3);
        pages.push(...page.sessionIds);
        cursor = page.nextCursor;
      }
      expect(pages).toEqual(all);
      longest = Math.max(longest, all.length);
    }
    expect(longest).toBeGreaterThan(2 * 3); // several pages

    // A breakdown's cursor pages only its own value's list.
    const bo: FunnelOptions = { ...funnels[2]!, tenantId: 1, dropOffPageSize: 1 };
    const broken = await funnel(clickhouse, bo);
    const paged = broken.groups.find((g) => g.steps[1]!.dropOff!.nextCursor !== null)!;
    const next = await funnel(clickhouse, { ...bo, dropOffCursor: paged.steps[1]!.dropOff!.nextCursor! });
    const expectedLists = funnelBrute(records, bo);
    for (const group of next.groups) {
      const list = expectedLists.find((e) => e.breakdown === group.breakdown)!.dropped[0]!;
      expect(group.steps[1]!.dropOff!.sessionIds).toEqual(
        group.breakdown === paged.breakdown ? list.slice(1, 2) : list.slice(0, 1),
      );
    }
  });

  it('funnel: same as windowFunnel on sequence_ts where that is exact (no ties, no event matching two steps)', async () => {
    // A tenant whose users never have two behaviours in one second, at whole seconds: sequence_ts orders them as
    // (timestamp, event_id) does, and a window of W ms + 500 never falls on an event.
    const g = generator(44);
    const tenant = 4;
    const rows: BehaviorRecord[] = [];
    for (let u = 0; u < 80; u++) {
      let t = base + Math.floor((g.random() * 5 * DAY) / SECOND) * SECOND;
      for (let i = 0; i < 20; i++) {
        rows.push(
          g.record({
            tenant_id: tenant,
            user_id: `u-${u}`,
            action_type: g.pick(['impression', 'click', 'add_cart', 'order', 'like']),
            timestamp: t,
          }),
        );
        t += (1 + Math.floor(g.random() * 600)) * SECOND;
      }
    }
    await insertBehaviors(clickhouse, g.shuffle(rows).map(positioned));
    const steps = ['impression', 'click', 'add_cart', 'order'];
    const windowMs = 20 * MINUTE + 500;
    for (const strict of [false, true]) {
      const ours = await funnel(clickhouse, {
        tenantId: tenant,
        from: base,
        to: base + 10 * DAY,
        steps: steps.map((action) => ({ action })),
        windowMs,
        strictOrder: strict,
        dropOffPageSize: 0,
      });
      const levels = await (
        await clickhouse.query({
          query: `SELECT level, count() AS users FROM (
                    SELECT windowFunnel(${BigInt(windowMs) * 1048576n}${strict ? ", 'strict_order'" : ''})(sequence_ts,
                      action_type = 'impression', action_type = 'click', action_type = 'add_cart', action_type = 'order') AS level
                    FROM user_behaviors WHERE tenant_id = ${tenant} AND action_type IN ('impression', 'click', 'add_cart', 'order')
                    GROUP BY user_id) GROUP BY level`,
          format: 'JSONEachRow',
        })
      ).json<{ level: number; users: number }>();
      const reached = steps.map((_, i) =>
        levels.filter((l) => l.level >= i + 1).reduce((s, l) => s + Number(l.users), 0),
      );
      expect(ours.groups[0]!.steps.map((s) => s.users)).toEqual(reached);
      expect(reached[3]).toBeGreaterThan(0);
    }
  });

  const pathCases: (Omit<PathsOptions, 'tenantId'> & { name: string })[] = [
    { name: 'next after click, depth 3, top 3', ...range, action: 'click', direction: 'next', depth: 3, topK: 3 },
    { name: 'previous before order, depth 3', ...range, action: 'order', direction: 'previous', depth: 3, topK: 20 },
    {
      name: 'next after impression, same session',
      ...range,
      action: 'impression',
      direction: 'next',
      topK: 4,
      sameSession: true,
    },
    {
      name: 'previous before add_cart, same session, depth 2',
      ...range,
      action: 'add_cart',
      direction: 'previous',
      depth: 2,
      topK: 2,
      sameSession: true,
    },
  ];

  it.each(pathCases)('paths: $name equals the recomputation', async ({ name: _, ...options }) => {
    for (const tenantId of [1, 2]) {
      const o = { ...options, tenantId };
      const expected = pathsBrute(records, o);
      const result = await paths(clickhouse, o);
      expect(result.users).toBe(expected.users);
      const sortById = <T extends { id: string }>(items: T[]) => [...items].sort((a, b) => (a.id < b.id ? -1 : 1));
      expect(sortById(result.nodes)).toEqual(expected.nodes);
      expect(
        [...result.links].sort((a, b) => (`${a.source}>${a.target}` < `${b.source}>${b.target}` ? -1 : 1)),
      ).toEqual(expected.links);
      // Ordered by depth, then paths: the anchor first.
      expect(result.nodes[0]).toEqual({
        id: `0:${o.action}`,
        name: o.action,
        depth: 0,
        value: expected.users,
        other: false,
      });
      expect(result.nodes.map((n) => n.depth)).toEqual([...result.nodes.map((n) => n.depth)].sort());
      if (o.topK! < 5) expect(result.nodes.some((n) => n.other)).toBe(true);
    }
  });

  it('gives identical funnel and path answers for the same rows inserted in another order', async () => {
    for (const o of funnels) {
      const [a, b] = [
        await funnel(clickhouse, { ...o, tenantId: 1 }),
        await funnel(clickhouse, { ...o, tenantId: SHUFFLED }),
      ];
      expect(b).toEqual(a);
    }
    for (const o of pathCases) {
      expect(await paths(clickhouse, { ...o, tenantId: SHUFFLED })).toEqual(
        await paths(clickhouse, { ...o, tenantId: 1 }),
      );
    }
  });

  it('never shows another tenant', async () => {
    const empty = { ...range, tenantId: 999 };
    expect(await funnel(clickhouse, { ...funnels[0]!, ...empty })).toEqual({ groups: [], breakdownValues: 0 });
    expect(await paths(clickhouse, { ...pathCases[0]!, ...empty })).toEqual({
      direction: 'next',
      users: 0,
      nodes: [],
      links: [],
    });
    const r = await retention(clickhouse, {
      ...empty,
      period: 'day',
      periods: 3,
      startAction: 'click',
      returnAction: 'click',
    });
    expect(r.cohorts.every((c) => c.users === 0)).toBe(true);
    expect((await experimentResults(clickhouse, { ...empty, experimentId: 'exp-1' })).groups).toEqual([]);
    // Tenant 1's drop-off sessions are its own (session ids carry the tenant).
    const t1 = await funnel(clickhouse, { ...funnels[0]!, tenantId: 1, dropOffPageSize: 1000 });
    const sessions = t1.groups.flatMap((g) => g.steps.flatMap((s) => s.dropOff?.sessionIds ?? []));
    expect(sessions.length).toBeGreaterThan(0);
    expect(sessions.every((s) => s.startsWith('s-1-'))).toBe(true);
  });

  it.each([
    { period: 'day' as const, periods: 7, startAction: 'impression', returnAction: 'order' },
    { period: 'day' as const, periods: 31, startAction: 'click', returnAction: 'click' },
    { period: 'week' as const, periods: 3, startAction: 'impression', returnAction: 'add_cart' },
    { period: 'week' as const, periods: 12, startAction: 'view', returnAction: 'impression' },
  ])('retention: $period, N = $periods, $startAction → $returnAction equals the recomputation', async (p) => {
    for (const tenantId of [1, 2]) {
      const o: RetentionOptions = { tenantId, ...range, ...p };
      const expected = retentionBrute(records, o);
      expect(expected.cohorts.some((c) => c.retained.some((r) => r.offset > 0 && r.users > 0))).toBe(true);
      const result = await retention(clickhouse, o);
      expect(
        result.cohorts.map((c) => ({
          ...c,
          retained: c.retained.map((r) => ({ ...r, rate: Number(r.rate.toFixed(12)) })),
        })),
      ).toEqual(
        expected.cohorts.map((c) => ({
          ...c,
          retained: c.retained.map((r) => ({ ...r, rate: Number(r.rate.toFixed(12)) })),
        })),
      );
      if (p.period === 'day') expect(result.cohorts[0]!.period).toBe(new Date(range.from).toISOString().slice(0, 10));
      else expect(new Date(`${result.cohorts[0]!.period}T00:00:00Z`).getUTCDay()).toBe(1);
    }
  });

  it('experiments: a hand-computed case, 1000/100 (control) against 1000/130', async () => {
    const g = generator(5);
    const tenant = 5;
    const rows: BehaviorRecord[] = [];
    for (const [group, converted] of [
      ['control', 100],
      ['test', 130],
    ] as const) {
      for (let u = 0; u < 1000; u++) {
        const user = `${group}-${u}`;
        const t = base + 2 * DAY + u * MINUTE;
        const tag = { tenant_id: tenant, user_id: user, experiment_id: 'exp-hand', experiment_group: group };
        rows.push(g.record({ ...tag, action_type: 'impression', timestamp: t }));
        if (u % 3 === 0) rows.push(g.record({ ...tag, action_type: 'click', timestamp: t + 1 }));
        if (u < converted)
          rows.push(
            g.record({ ...tag, action_type: 'order', timestamp: t + 2 }),
            g.record({ ...tag, action_type: 'order', timestamp: t + 3 }),
          );
      }
    }
    // Noise: the same experiment on another tenant, and an order outside the range.
    rows.push(
      g.record({
        tenant_id: 6,
        user_id: 'control-1',
        experiment_id: 'exp-hand',
        experiment_group: 'control',
        action_type: 'order',
        timestamp: base + 2 * DAY,
      }),
    );
    rows.push(
      g.record({
        tenant_id: tenant,
        user_id: 'test-999',
        experiment_id: 'exp-hand',
        experiment_group: 'test',
        action_type: 'order',
        timestamp: base + 9 * DAY,
      }),
    );
    // An experiment without a group named control: the first by name is the control.
    for (const [user, group, action] of [
      ['x-1', 'beta', 'order'],
      ['x-2', 'alpha', 'impression'],
      ['x-3', 'alpha', 'order'],
      ['x-4', 'beta', 'impression'],
    ] as const) {
      rows.push(
        g.record({
          tenant_id: tenant,
          user_id: user,
          experiment_id: 'exp-ab',
          experiment_group: group,
          action_type: action,
          timestamp: base + 3 * DAY,
        }),
      );
    }
    await insertBehaviors(clickhouse, g.shuffle(rows).map(positioned));

    // p₁ = 0.10, p₂ = 0.13, difference 0.03, lift 0.3. Pooled p = 230/2000 = 0.115:
    // SE₀ = √(0.115 · 0.885 · (1/1000 + 1/1000)) = √0.00020355 = 0.0142671651...; z = 0.03 / SE₀ = 2.1027406056...;
    // p = 2(1 − Φ(2.10274)) = erfc(2.10274/√2) = 0.0354884505...
    // Unpooled SE = √(0.1 · 0.9/1000 + 0.13 · 0.87/1000) = √0.0002031 = 0.0142512280...; 95 % CI = 0.03 ± 1.959964 · SE
    // = [0.0020679344, 0.0579320656].
    const days = { from: base, to: base + 7 * DAY };
    for (const [options, source] of [
      [{ ...days }, 'uba_experiment_daily'],
      [{ from: base + 1, to: base + 7 * DAY }, 'user_behaviors'],
    ] as const) {
      const result = await experimentResults(clickhouse, { tenantId: tenant, experimentId: 'exp-hand', ...options });
      expect(result.source).toBe(source);
      expect(result.control).toBe('control');
      expect(result.test).toMatch(/two-proportion z-test/);
      const [control, test] = result.groups;
      expect(control).toEqual({
        group: 'control',
        users: 1000,
        converted: 100,
        rate: 0.1,
        isControl: true,
        vsControl: null,
      });
      expect(test).toMatchObject({ group: 'test', users: 1000, converted: 130, rate: 0.13, isControl: false });
      const vs = test!.vsControl!;
      expect(vs.difference).toBeCloseTo(0.03, 14);
      expect(vs.lift).toBeCloseTo(0.3, 13);
      expect(vs.z).toBeCloseTo(2.102740605622114, 12);
      expect(vs.pValue).toBeCloseTo(0.03548845046647473, 12);
      expect(vs.ci95.low).toBeCloseTo(0.0020679344393763656, 12);
      expect(vs.ci95.high).toBeCloseTo(0.057932065560623636, 12);
    }
    // Another control, asked for: the comparison turns around.
    const flipped = await experimentResults(clickhouse, {
      tenantId: tenant,
      experimentId: 'exp-hand',
      ...days,
      control: 'test',
    });
    expect(flipped.groups[0]!.vsControl!.difference).toBeCloseTo(-0.03, 14);
    expect(flipped.groups[0]!.vsControl!.pValue).toBeCloseTo(0.03548845046647473, 12);
    const ab = await experimentResults(clickhouse, { tenantId: tenant, experimentId: 'exp-ab', ...days });
    expect(ab.control).toBe('alpha');
    expect(ab.groups.map((x) => [x.group, x.users, x.converted, x.isControl])).toEqual([
      ['alpha', 2, 1, true],
      ['beta', 2, 1, false],
    ]);
    // Equal rates: no difference, p = 1.
    expect(ab.groups[1]!.vsControl).toMatchObject({ difference: 0, lift: 0, z: 0, pValue: 1 });
    // A control that has no users: no comparison.
    const none = await experimentResults(clickhouse, {
      tenantId: tenant,
      experimentId: 'exp-ab',
      ...days,
      control: 'gamma',
    });
    expect(none.control).toBeNull();
    expect(none.groups.every((x) => x.vsControl === null && !x.isControl)).toBe(true);
  });

  it.each([
    { name: 'whole days, order (the roll-up)', from: base, to: base + 20 * DAY, source: 'uba_experiment_daily' },
    { name: 'a range cut inside days (raw)', ...range, source: 'user_behaviors' },
    {
      name: 'another conversion action (raw)',
      from: base,
      to: base + 20 * DAY,
      conversionAction: 'add_cart',
      source: 'user_behaviors',
    },
  ])('experiments: $name equals the recomputation', async ({ name: _, source, ...options }) => {
    for (const tenantId of [1, 2]) {
      const o = { tenantId, experimentId: 'exp-1', ...options };
      const expected = experimentBrute(records, o);
      const result = await experimentResults(clickhouse, o);
      expect(result.source).toBe(source);
      expect(result.control).toBe('control');
      expect(result.groups.map((g) => [g.group, g.users, g.converted, g.isControl])).toEqual(
        expected.map((e) => [e.group, e.users, e.converted, e.isControl]),
      );
      result.groups.forEach((g, i) => {
        const e = expected[i]!;
        expect(g.rate).toBeCloseTo(e.rate, 12);
        if (e.vs === null) expect(g.vsControl).toBeNull();
        else {
          expect(g.vsControl!.difference).toBeCloseTo(e.vs.difference, 12);
          for (const [ours, theirs, digits] of [
            [g.vsControl!.lift, e.vs.lift, 12],
            [g.vsControl!.z, e.vs.z, 10],
            [g.vsControl!.pValue, e.vs.p, 6],
          ] as const) {
            if (theirs === null) expect(ours).toBeNull();
            else expect(ours).toBeCloseTo(theirs, digits);
          }
          expect(g.vsControl!.ci95.low).toBeCloseTo(e.vs.low, 6);
          expect(g.vsControl!.ci95.high).toBeCloseTo(e.vs.high, 6);
        }
      });
    }
  });

  it('funnels and retention read only their actions: the primary key narrows action_type', async () => {
    let last: Parameters<ClickHouseClient['query']>[0] | undefined;
    const capturing = new Proxy(clickhouse, {
      get(target, name, receiver) {
        if (name !== 'query') return Reflect.get(target, name, receiver);
        return (params: Parameters<ClickHouseClient['query']>[0]) => {
          last = params;
          return target.query(params);
        };
      },
    });
    const primaryKey = async () => {
      const plan = await (
        await clickhouse.query({ ...last!, query: `EXPLAIN indexes = 1 ${last!.query}`, format: 'JSONEachRow' })
      ).json<{ explain: string }>();
      const lines = plan.map((l) => l.explain.trim());
      const at = lines.indexOf('PrimaryKey');
      return {
        keys: lines.slice(at + 2, at + 6),
        condition: lines.find((l, i) => i > at && l.startsWith('Condition:')),
      };
    };
    await funnel(capturing, { ...funnels[0]!, tenantId: 1 });
    expect((await primaryKey()).keys.slice(0, 3)).toEqual(['tenant_id', 'date', 'action_type']);
    expect((await primaryKey()).condition).toContain('action_type in 4-element set');
    await retention(capturing, {
      tenantId: 1,
      ...range,
      period: 'day',
      periods: 3,
      startAction: 'click',
      returnAction: 'order',
    });
    expect((await primaryKey()).keys.slice(0, 3)).toEqual(['tenant_id', 'date', 'action_type']);
    expect((await primaryKey()).condition).toContain('action_type in 2-element set');
  });

  it('answers numbers, also when ClickHouse quotes 64-bit integers', async () => {
    // A server with output_format_json_quote_64bit_integers = 1 sends counts as strings.
    const quoting = new Proxy(clickhouse, {
      get(target, name, receiver) {
        if (name !== 'query') return Reflect.get(target, name, receiver);
        return (params: Parameters<ClickHouseClient['query']>[0]) =>
          target.query({ ...params, clickhouse_settings: { output_format_json_quote_64bit_integers: 1 } });
      },
    });
    const raw = await (
      await quoting.query({ query: 'SELECT count() AS n FROM user_behaviors', format: 'JSONEachRow' })
    ).json<{ n: unknown }>();
    expect(typeof raw[0]!.n).toBe('string');
    const f = { ...funnels[2]!, tenantId: 1 };
    expect(await funnel(quoting, f)).toEqual(await funnel(clickhouse, f));
    const p = { ...pathCases[0]!, tenantId: 1 };
    expect(await paths(quoting, p)).toEqual(await paths(clickhouse, p));
    const r: RetentionOptions = {
      tenantId: 1,
      ...range,
      period: 'week',
      periods: 2,
      startAction: 'click',
      returnAction: 'order',
    };
    expect(await retention(quoting, r)).toEqual(await retention(clickhouse, r));
    for (const e of [
      { tenantId: 1, experimentId: 'exp-1', from: base, to: base + 20 * DAY },
      { tenantId: 1, experimentId: 'exp-1', ...range },
    ]) {
      expect(await experimentResults(quoting, e)).toEqual(await experimentResults(clickhouse, e));
    }
  });

  it('refuses options outside their bounds', async () => {
    const refused = async (call: Promise<unknown>) => {
      const error = await call.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isReplayError(error, 'invalid_parameter')).toBe(true);
    };
    const f = { ...funnels[0]!, tenantId: 1 };
    await refused(funnel(clickhouse, { ...f, to: f.from + 94 * DAY }));
    await refused(funnel(clickhouse, { ...f, to: f.from }));
    await refused(funnel(clickhouse, { ...f, steps: [{ action: 'click' }] }));
    await refused(funnel(clickhouse, { ...f, steps: Array(11).fill({ action: 'click' }) }));
    await refused(funnel(clickhouse, { ...f, steps: [{ action: '' }, { action: 'click' }] }));
    await refused(funnel(clickhouse, { ...f, windowMs: 0 }));
    await refused(funnel(clickhouse, { ...f, dropOffPageSize: 1001 }));
    await refused(funnel(clickhouse, { ...f, dropOffCursor: 'not-a-cursor' }));
    await refused(funnel(clickhouse, { ...f, dropOffCursor: Buffer.from('[9,"","s-1"]').toString('base64url') }));
    await refused(
      retention(clickhouse, { tenantId: 1, ...range, period: 'day', periods: 32, startAction: 'a', returnAction: 'b' }),
    );
    await refused(
      retention(clickhouse, {
        tenantId: 1,
        ...range,
        period: 'week',
        periods: 13,
        startAction: 'a',
        returnAction: 'b',
      }),
    );
    await refused(paths(clickhouse, { ...pathCases[0]!, tenantId: 1, depth: 4 }));
    await refused(paths(clickhouse, { ...pathCases[0]!, tenantId: 1, topK: 21 }));
    await refused(experimentResults(clickhouse, { tenantId: 1, experimentId: '', ...range }));
  });
});
