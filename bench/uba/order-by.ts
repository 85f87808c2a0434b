/**
 * ORDER BY and timeline-index bench for `user_behaviors`: copies of the table, built from the migration's own text
 * (schema/clickhouse/0006_user_behaviors.sql, each copy in its own database, without TTL and projections), that differ
 * only in their sorting key and in how one user's timeline is found (nothing; a projection sorted by user, with every
 * column or only `_part_offset`; the index table user_behaviors_by_user of 0007 and its materialized view), filled
 * with the same synthetic behaviours, then
 * timed on the analytics API's query shapes (DESIGN §3.8) for a large, a mid-sized and a small tenant:
 *
 *   dashboard  impressions, clicks, orders and active users of 7 days and the 7 before (one query, two periods);
 *   trends     hourly clicks and clicking users over 7 days;
 *   top items  one scenario's 20 most clicked items of one day (impressions beside);
 *   funnel     impression → click → add_cart → order within an hour, per user over 7 days (windowFunnel on
 *              sequence_ts, the (timestamp, event_id) tie-broken time);
 *   timeline   one user's latest 100 behaviours, any day, newest first (users drawn by activity, from the large and
 *              the mid-sized tenant, plus each one's most active user).
 *
 * The raw-table reads are what the ORDER BY decides. (The dashboard, trends and top items of the API can read the
 * roll-ups of 0008-0012 instead; the raw table still serves every filter the roll-ups do not keep: a property, a
 * device, a funnel's steps.)
 *
 * Data: behaviours of visits (impressions of Zipf-popular items, some clicked, viewed with watch updates, liked,
 * added to the cart, ordered, and posthog-js $pageviews), tenants Zipf (s = 1.1), each tenant's users (s = 0.8) and
 * items (s = 1.05) Zipf too, over `--days` days with a diurnal curve, inserted one day per insert (time order, as a
 * sink writes them), then OPTIMIZE FINAL (a plain MergeTree: merging changes parts, not rows).
 *
 * Scale: index_granularity 1024 instead of 8192 by default, so that the default 3 M rows make as many granules per
 * tenant and day as 8 times more rows (24 M) at the production granularity; what a sorting key saves is granules
 * not read, so rows read is the figure that carries over. `--rows 10000000 --granularity 8192` is the DESIGN's 10 M
 * target at the production granularity (~10 min), `--rows 100000000` its 100 M option (hours, ~40 GB of disk).
 *
 *   node bench/uba/order-by.ts [--rows 3000000] [--tenants 1000] [--days 30] [--granularity 1024]
 *
 * About six minutes at the defaults on 2 cores (`--only` builds fewer tables). Reported: rows read (the `statistics` of FORMAT JSON: chDB has no
 * system.query_log), p50/p99 latency in process, storage, insert time. Every table must give the same answers.
 * Writes bench/results/uba-order-by-<time>.json.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openClickHouse } from '../../src/clickhouse/client.ts';
import { clickhouseSchemaDir } from '../../src/clickhouse/migrations.ts';
import type { BehaviorRecord } from '../../src/uba/behavior-record.ts';
import { type BehaviorRow, behaviorRow } from '../../src/uba/behavior-rows.ts';
import { benchArgs } from '../shared/args.ts';
import { prng } from '../shared/prng.ts';

const usage = `Usage: node bench/uba/order-by.ts [options]

  --rows N             behaviours to generate (default 3000000)
  --tenants N          tenants, sizes Zipf-distributed (default 1000)
  --days N             days of data, at least 14 (default 30)
  --granularity N      index_granularity of the tables (default 1024: as many granules as 8x the rows at 8192)
  --samples N          days sampled per tenant size and query (default 5)
  --repeat N           timed runs per sample, after one warm-up run (default 5)
  --timeline-users N   users whose timeline is read, per tenant size (default 20)
  --timeline-base NAME the sorting key the timeline variants are built on (default day_action_scenario)
  --only NAMES         comma-separated candidates to build (default all)
  --help               this text
`;
const args = benchArgs(usage, {
  rows: { type: 'string', default: '3000000' },
  tenants: { type: 'string', default: '1000' },
  days: { type: 'string', default: '30' },
  granularity: { type: 'string', default: '1024' },
  samples: { type: 'string', default: '5' },
  repeat: { type: 'string', default: '5' },
  'timeline-users': { type: 'string', default: '20' },
  'timeline-base': { type: 'string', default: 'day_action_scenario' },
  only: { type: 'string', default: '' },
});
const rowTarget = Math.floor(args.number('rows'));
const tenantCount = Math.floor(args.number('tenants'));
const days = Math.floor(args.number('days', 14));
const granularity = Math.floor(args.number('granularity'));
const samples = Math.floor(args.number('samples'));
const repeat = Math.floor(args.number('repeat'));
const timelineUsers = Math.floor(args.number('timeline-users'));

const started = performance.now();
const log = (message: string) =>
  process.stderr.write(
    `[bench:uba-order-by ${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${message}\n`,
  );

const DAY = 86_400_000;
const epoch = Date.UTC(2026, 9, 20); // 30 days cross a month boundary: two partitions

type Timeline = 'none' | 'projection' | 'part_offset' | 'table';
interface Candidate {
  readonly name: string;
  readonly orderBy: string;
  readonly timeline: Timeline;
}
const baseOrders: readonly { name: string; orderBy: string }[] = [
  // The seed's order, with the event_id tie-breaker.
  { name: 'seed', orderBy: '(tenant_id, scenario_id, date, user_id, timestamp, event_id)' },
  { name: 'day_user', orderBy: '(tenant_id, date, user_id, timestamp, event_id)' },
  { name: 'day_action_scenario', orderBy: '(tenant_id, date, action_type, scenario_id, user_id, timestamp, event_id)' },
  { name: 'day_scenario_action', orderBy: '(tenant_id, date, scenario_id, action_type, user_id, timestamp, event_id)' },
  { name: 'user', orderBy: '(tenant_id, user_id, timestamp, event_id)' },
];
const timelineBase = baseOrders.find((o) => o.name === args['timeline-base']);
if (!timelineBase) {
  process.stderr.write(`--timeline-base must be one of ${baseOrders.map((o) => o.name).join(', ')}\n`);
  process.exit(2);
}
const allCandidates: Candidate[] = [
  ...baseOrders.map((o) => ({ ...o, timeline: 'none' as const })),
  ...(['projection', 'part_offset', 'table'] as const).map((timeline) => ({
    name: `${timelineBase.name}+${timeline}`,
    orderBy: timelineBase.orderBy,
    timeline,
  })),
];
const only = args.only ? new Set(args.only.split(',')) : undefined;
const candidates = allCandidates.filter((c) => !only || only.has(c.name));
if (candidates.length === 0) {
  process.stderr.write(`--only matches none of ${allCandidates.map((c) => c.name).join(', ')}\n`);
  process.exit(2);
}
const databaseOf = (c: Candidate) => `bench_${c.name.replace(/\W/g, '_')}`;

// ---------------------------------------------------------------------------------------------------------------
// Data.

const random = prng(20261201);
/** `digits` (≤ 8) random hex digits. */
const hex = (digits: number) =>
  Math.floor(random() * 16 ** digits)
    .toString(16)
    .padStart(digits, '0');
const uuid = () =>
  `${hex(8)}-${hex(4)}-4${hex(3)}-${(8 + Math.floor(random() * 4)).toString(16)}${hex(3)}-${hex(6)}${hex(6)}`;

/** Zipf(s) over ranks 1..n (returned 0-based), by binary search in the cumulative weights. */
class Zipf {
  private readonly cumulative: Float64Array;
  constructor(n: number, s: number) {
    this.cumulative = new Float64Array(n);
    let total = 0;
    for (let k = 0; k < n; k++) {
      total += (k + 1) ** -s;
      this.cumulative[k] = total;
    }
  }
  get size(): number {
    return this.cumulative.length;
  }
  weight(rank: number): number {
    return (this.cumulative[rank]! - (rank > 0 ? this.cumulative[rank - 1]! : 0)) / this.cumulative.at(-1)!;
  }
  draw(): number {
    const x = random() * this.cumulative.at(-1)!;
    let lo = 0;
    let hi = this.cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.cumulative[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
const zipfCache = new Map<string, Zipf>();
const zipf = (n: number, s: number) => {
  const key = `${n}:${s}`;
  let z = zipfCache.get(key);
  if (!z) {
    z = new Zipf(n, s);
    zipfCache.set(key, z);
  }
  return z;
};

// Tenant ids shuffled, so the largest tenant is not tenant 1.
const tenantIds = Array.from({ length: tenantCount }, (_, i) => i + 1);
for (let i = tenantIds.length - 1; i > 0; i--) {
  const j = Math.floor(random() * (i + 1));
  [tenantIds[i], tenantIds[j]] = [tenantIds[j]!, tenantIds[i]!];
}
const tenantZipf = zipf(tenantCount, 1.1);
/** Per tenant: its users (≈ 30 behaviours each over the period) and catalogue (≈ 1 item per 25 behaviours). */
const tenantShape = tenantIds.map((_, rank) => {
  const expected = rowTarget * tenantZipf.weight(rank);
  return {
    users: zipf(Math.max(20, Math.round(expected / 30)), 0.8),
    items: zipf(Math.max(20, Math.round(expected / 25)), 1.05),
  };
});
const scenarios = ['home_feed', 'search', 'detail_related', 'category', 'push'];
const scenarioWeights = [0.4, 0.25, 0.15, 0.15, 0.05];
const pickScenario = () => {
  let x = random();
  for (const [i, w] of scenarioWeights.entries()) {
    x -= w;
    if (x < 0) return scenarios[i]!;
  }
  return scenarios[0]!;
};
const devices = ['mobile', 'mobile', 'mobile', 'desktop', 'tablet'];
const oses = ['android', 'ios', 'windows', 'macos', 'linux'];
const cities = ['shanghai', 'beijing', 'shenzhen', 'hangzhou', 'chengdu', 'berlin', 'paris', 'london', 'new york'];
/** Diurnal traffic: more in the (UTC) afternoon than at night. */
function drawTimeOfDay(): number {
  for (;;) {
    const t = random() * DAY;
    if (random() < 0.35 + 0.65 * Math.sin((Math.PI * t) / DAY) ** 2) return t;
  }
}
const userId = (tenant: number, rank: number) =>
  `${tenant.toString(36)}-${((rank * 2654435761) >>> 0).toString(16)}-${rank}`;
const itemId = (tenant: number, rank: number) => `item-${tenant}-${((rank * 40503) % 1000003).toString(36)}`;

const PARTITIONS = 16;
const offsets: number[] = Array(PARTITIONS).fill(0);

/** One visit's behaviours, in time order. */
function visit(): BehaviorRow[] {
  const tenantRank = tenantZipf.draw();
  const tenant = tenantIds[tenantRank]!;
  const shape = tenantShape[tenantRank]!;
  const userRank = shape.users.draw();
  const user = userId(tenant, userRank);
  const day = Math.floor(random() * days);
  let t = epoch + day * DAY + drawTimeOfDay();
  const scenario = pickScenario();
  const session = uuid();
  const inExperiment = tenant % 4 === 0;
  const partition = (userRank * 31 + tenant) % PARTITIONS;
  const base = {
    tenant_id: tenant,
    user_id: user,
    scenario_id: scenario,
    session_id: session,
    view_id: '',
    watch_duration: 0,
    completion_rate: 0,
    experiment_id: inExperiment ? `exp-${tenant}` : '',
    experiment_group: inExperiment ? (userRank % 2 ? 'test' : 'control') : '',
    device_type: devices[userRank % devices.length]!,
    os: oses[userRank % oses.length]!,
    location: cities[(userRank * 7) % cities.length]!,
    ip: `10.${tenant % 256}.${(userRank >> 8) % 256}.${userRank % 256}`,
    current_url: '',
    source: 'behaviors-api' as const,
  };
  const rows: BehaviorRow[] = [];
  const push = (fields: Partial<BehaviorRecord> & Pick<BehaviorRecord, 'action_type'>) => {
    const record: BehaviorRecord = {
      ...base,
      event_id: uuid(),
      item_id: '',
      timestamp: t,
      properties: {},
      captured_at: t + 50 + Math.floor(random() * 500),
      ...fields,
    };
    const offset = offsets[partition]!;
    offsets[partition] = offset + 1;
    rows.push(behaviorRow({ record, topic: 'user_behaviors', partition, offset }));
  };
  if (random() < 0.15) {
    push({
      action_type: '$pageview',
      source: 'posthog-js',
      current_url: `https://shop-${tenant}.example.com/${scenario}`,
      properties: { $browser: 'Chrome', $browser_version: '142', $lib: 'web', $referring_domain: 'search.example' },
    });
    t += 300 + random() * 2000;
  }
  const impressions = 4 + Math.floor(random() * 12);
  for (let k = 0; k < impressions; k++) {
    const item = itemId(tenant, shape.items.draw());
    const position = String(k);
    push({ action_type: 'impression', item_id: item, properties: { position, rec_model: 'v2' } });
    t += 100 + random() * 1400;
    if (random() >= 0.1) continue;
    push({ action_type: 'click', item_id: item, properties: { position } });
    t += 500 + random() * 3000;
    if (random() < 0.7) {
      const viewId = uuid();
      const length = 30 + random() * 600;
      const updates = 1 + Math.floor(random() * 4);
      for (let u = 1; u <= updates; u++) {
        const watched = Math.round((length * u) / updates);
        push({
          action_type: 'view',
          item_id: item,
          view_id: viewId,
          watch_duration: watched,
          completion_rate: Math.min(1, watched / length),
        });
        t += 10_000;
      }
    }
    if (random() < 0.05) push({ action_type: 'like', item_id: item });
    if (random() < 0.02) push({ action_type: 'share', item_id: item, properties: { channel: 'wechat' } });
    if (random() < 0.06) {
      push({ action_type: 'add_cart', item_id: item });
      t += 2000 + random() * 20_000;
      if (random() < 0.4)
        push({ action_type: 'order', item_id: item, properties: { amount: (random() * 200).toFixed(2) } });
    }
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------------------------
// Tables: the migrations' text, per candidate.

/** Drops `PROJECTION name (...)` clauses (with their balanced parentheses) from a CREATE TABLE. */
function withoutProjections(sql: string): string {
  let out = sql;
  for (;;) {
    const at = out.search(/,\s*PROJECTION\s/);
    if (at < 0) return out;
    const open = out.indexOf('(', at);
    let depth = 0;
    let end = open;
    for (; end < out.length; end++) {
      if (out[end] === '(') depth++;
      else if (out[end] === ')' && --depth === 0) break;
    }
    out = out.slice(0, at) + out.slice(end + 1);
  }
}
/** A migration's statements, comments dropped. */
async function statementsOf(file: string): Promise<string[]> {
  const text = await readFile(join(clickhouseSchemaDir, file), 'utf8');
  return text
    .replace(/--.*$/gm, '')
    .split(/;\s*$/m)
    .map((s) => s.trim())
    .filter(Boolean);
}
/**
 * 0006's CREATE TABLE user_behaviors in `database` as `table`, with `orderBy`, without TTL (fixed dates: nothing
 * may expire while the bench runs) and projections, at the bench's granularity.
 */
async function createTableSql(database: string, table: string, orderBy: string): Promise<string> {
  const create = (await statementsOf('0006_user_behaviors.sql')).find((s) =>
    /CREATE TABLE IF NOT EXISTS user_behaviors\b/.test(s),
  );
  if (!create) throw new Error('0006 has no CREATE TABLE user_behaviors');
  return atGranularity(withoutProjections(create))
    .replace('CREATE TABLE IF NOT EXISTS user_behaviors', `CREATE TABLE ${database}.${table}`)
    .replace(/^ORDER BY .*$/m, `ORDER BY ${orderBy}`);
}
const atGranularity = (create: string) =>
  create
    .replace(/^TTL .*$/m, '')
    .replace(/^SETTINGS\b/m, `SETTINGS index_granularity = ${granularity},`)
    .replace(/,\s*\)\s*ENGINE/, '\n)\nENGINE');
/** 0007 (user_behaviors_by_user and its materialized view) in `database`. */
async function timelineTableSql(database: string): Promise<string[]> {
  return (await statementsOf('0007_user_behaviors_by_user.sql')).map((s) =>
    atGranularity(s)
      .replace('CREATE TABLE IF NOT EXISTS user_behaviors_by_user', `CREATE TABLE ${database}.user_behaviors_by_user`)
      .replace(
        /CREATE MATERIALIZED VIEW IF NOT EXISTS user_behaviors_by_user_mv TO user_behaviors_by_user/,
        `CREATE MATERIALIZED VIEW ${database}.user_behaviors_by_user_mv TO ${database}.user_behaviors_by_user`,
      )
      .replace(/\bFROM user_behaviors\b/, `FROM ${database}.user_behaviors`),
  );
}

// ---------------------------------------------------------------------------------------------------------------

const dir = await mkdtemp(join(tmpdir(), 'uba-bench-order-by-'));
const clickhouse = openClickHouse({ kind: 'chdb', path: join(dir, 'db') });
const run = (query: string, settings: Record<string, string | number> = {}) =>
  clickhouse.command({ query, clickhouse_settings: settings });
const select = async <T>(query: string) => (await clickhouse.query({ query, format: 'JSONEachRow' })).json<T>();

try {
  log(`generating ${rowTarget} behaviours over ${days} days for ${tenantCount} tenants`);
  await run('CREATE DATABASE bench_source');
  await run(await createTableSql('bench_source', 'user_behaviors', '(timestamp)'));
  const rowsByTenant = new Map<number, number>();
  /** Reservoir of (tenant, user) per tenant, drawn by activity: a row's user, each row equally likely. */
  const reservoirs = new Map<number, { seen: number; users: string[] }>();
  const pickUsers = prng(99); // its own generator: the data do not depend on --timeline-users
  let generated = 0;
  let chunk: BehaviorRow[] = [];
  const flush = async () => {
    await clickhouse.insert({
      table: 'bench_source.user_behaviors',
      values: chunk,
      format: 'JSONEachRow',
      clickhouse_settings: { async_insert: 0 },
    });
    chunk = [];
  };
  while (generated < rowTarget) {
    for (const row of visit()) {
      chunk.push(row);
      generated++;
      rowsByTenant.set(row.tenant_id, (rowsByTenant.get(row.tenant_id) ?? 0) + 1);
      const r = reservoirs.get(row.tenant_id) ?? { seen: 0, users: [] };
      reservoirs.set(row.tenant_id, r);
      r.seen++;
      if (r.users.length < timelineUsers) r.users.push(row.user_id);
      else if (pickUsers() < timelineUsers / r.seen) r.users[Math.floor(pickUsers() * timelineUsers)] = row.user_id;
    }
    if (chunk.length >= 100_000) {
      await flush();
      log(`  ${generated} behaviours`);
    }
  }
  if (chunk.length > 0) await flush();
  const bySize = [...rowsByTenant.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  const tiers = {
    large: bySize[0]!,
    medium: bySize[Math.floor(bySize.length / 20)]!,
    small: bySize[Math.floor(bySize.length / 2)]!,
  };
  for (const [tier, [tenant, rows]] of Object.entries(tiers)) {
    log(`  ${tier} tenant ${tenant}: ${rows} behaviours (${((100 * rows) / generated).toFixed(1)} %)`);
  }
  // Each timeline tier's most active user too (the worst case of a point lookup).
  const heaviest = async (tenant: number) =>
    (
      await select<{ user_id: string }>(
        `SELECT user_id FROM bench_source.user_behaviors WHERE tenant_id = ${tenant} GROUP BY user_id ORDER BY count() DESC, user_id LIMIT 1`,
      )
    )[0]!.user_id;

  const storage: Record<string, { rows: number; bytes: number; insertSeconds: number; optimizeSeconds: number }> = {};
  for (const c of candidates) {
    const database = databaseOf(c);
    log(`building ${c.name}: ORDER BY ${c.orderBy}, timeline ${c.timeline}`);
    await run(`CREATE DATABASE ${database}`);
    await run(await createTableSql(database, 'user_behaviors', c.orderBy));
    if (c.timeline === 'projection') {
      await run(
        `ALTER TABLE ${database}.user_behaviors ADD PROJECTION by_user (SELECT * ORDER BY tenant_id, user_id, timestamp, event_id)`,
      );
    } else if (c.timeline === 'part_offset') {
      await run(
        `ALTER TABLE ${database}.user_behaviors ADD PROJECTION by_user (SELECT tenant_id, user_id, timestamp, event_id, _part_offset ORDER BY tenant_id, user_id, timestamp, event_id)`,
      );
    } else if (c.timeline === 'table') {
      // The materialized index table of 0007, filled by its materialized view on every insert.
      for (const statement of await timelineTableSql(database)) await run(statement);
    }
    const t0 = performance.now();
    // One day per insert; the last also takes the visits that ran past the last midnight.
    for (let d = 0; d <= days; d++) {
      await run(
        `INSERT INTO ${database}.user_behaviors SELECT * FROM bench_source.user_behaviors
          WHERE timestamp >= fromUnixTimestamp64Milli(${epoch + d * DAY}, 'UTC') AND timestamp < fromUnixTimestamp64Milli(${d === days ? 8e12 : epoch + (d + 1) * DAY}, 'UTC')`,
      );
    }
    const t1 = performance.now();
    await run(`OPTIMIZE TABLE ${database}.user_behaviors FINAL`);
    if (c.timeline === 'table') await run(`OPTIMIZE TABLE ${database}.user_behaviors_by_user FINAL`);
    const t2 = performance.now();
    const [parts] = await select<{ rows: number; bytes: number }>(
      `SELECT sum(if(table = 'user_behaviors', rows, 0)) AS rows, sum(bytes_on_disk) AS bytes FROM system.parts
        WHERE database = '${database}' AND active`,
    );
    if (parts!.rows !== generated) throw new Error(`${c.name} holds ${parts!.rows} rows, not ${generated}`);
    storage[c.name] = {
      rows: parts!.rows,
      bytes: parts!.bytes,
      insertSeconds: Number(((t1 - t0) / 1000).toFixed(1)),
      optimizeSeconds: Number(((t2 - t1) / 1000).toFixed(1)),
    };
    log(`  ${(parts!.bytes / 1e6).toFixed(1)} MB, insert ${storage[c.name]!.insertSeconds} s`);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Reads.

  const sampler = prng(7);
  const dateOf = (day: number) => new Date(epoch + day * DAY).toISOString().slice(0, 10);
  type Kind = 'dashboard' | 'trends' | 'top items' | 'funnel' | 'timeline';
  interface Read {
    readonly kind: Kind;
    readonly tier: string;
    readonly sql: (c: Candidate) => string;
  }
  const reads: Read[] = [];
  const table = (c: Candidate) => `${databaseOf(c)}.user_behaviors`;
  for (const [tier, [tenant]] of Object.entries(tiers)) {
    for (let s = 0; s < samples; s++) {
      const d = 13 + Math.floor(sampler() * (days - 13));
      const [day, weekStart, prevStart] = [dateOf(d), dateOf(d - 6), dateOf(d - 13)];
      reads.push({
        kind: 'dashboard',
        tier,
        sql: (c) => `SELECT if(date >= '${weekStart}', 'current', 'previous') AS period,
            countIf(action_type = 'impression') AS impressions, countIf(action_type = 'click') AS clicks,
            countIf(action_type = 'order') AS orders, uniq(user_id) AS active_users
          FROM ${table(c)} WHERE tenant_id = ${tenant} AND date BETWEEN '${prevStart}' AND '${day}'
          GROUP BY period ORDER BY period`,
      });
      reads.push({
        kind: 'trends',
        tier,
        sql: (c) => `SELECT toStartOfHour(timestamp) AS hour, count() AS clicks, uniq(user_id) AS users
          FROM ${table(c)} WHERE tenant_id = ${tenant} AND action_type = 'click' AND date BETWEEN '${weekStart}' AND '${day}'
          GROUP BY hour ORDER BY hour`,
      });
      reads.push({
        kind: 'top items',
        tier,
        sql: (
          c,
        ) => `SELECT item_id, countIf(action_type = 'click') AS clicks, countIf(action_type = 'impression') AS impressions
          FROM ${table(c)} WHERE tenant_id = ${tenant} AND scenario_id = 'home_feed'
            AND action_type IN ('impression', 'click') AND date = '${day}'
          GROUP BY item_id ORDER BY clicks DESC, impressions DESC, item_id LIMIT 20`,
      });
      reads.push({
        kind: 'funnel',
        tier,
        sql: (c) => `SELECT level, count() AS users FROM (
            SELECT user_id, windowFunnel(${3_600_000 * 1_048_576})(sequence_ts, action_type = 'impression',
              action_type = 'click', action_type = 'add_cart', action_type = 'order') AS level
            FROM ${table(c)} WHERE tenant_id = ${tenant} AND date BETWEEN '${weekStart}' AND '${day}'
              AND action_type IN ('impression', 'click', 'add_cart', 'order')
            GROUP BY user_id)
          GROUP BY level ORDER BY level`,
      });
    }
  }
  const timelineTenants: Record<string, { tenant: number; users: string[] }> = {};
  for (const tier of ['large', 'medium'] as const) {
    const tenant = tiers[tier][0];
    const users = [await heaviest(tenant), ...reservoirs.get(tenant)!.users.slice(0, timelineUsers - 1)];
    timelineTenants[tier] = { tenant, users };
    for (const user of users) {
      reads.push({
        kind: 'timeline',
        tier,
        sql: (
          c,
        ) => `SELECT timestamp, event_id, action_type, item_id, scenario_id, session_id, view_id, watch_duration, properties
          FROM ${c.timeline === 'table' ? `${databaseOf(c)}.user_behaviors_by_user` : table(c)}
          WHERE tenant_id = ${tenant} AND user_id = '${user}'
          ORDER BY timestamp DESC, event_id DESC LIMIT 100`,
      });
    }
  }

  interface Stats {
    elapsed: number;
    rows_read: number;
    bytes_read: number;
  }
  const quantile = (values: number[], q: number) => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  };
  const samplesBy = new Map<string, { ms: number[]; rows: number[]; bytes: number[] }>();
  log(`timing ${reads.length} reads × ${candidates.length} tables × ${repeat + 1} runs`);
  for (const [i, read] of reads.entries()) {
    let answer: string | undefined;
    let answeredBy = '';
    for (const c of candidates) {
      const key = `${c.name}|${read.kind}|${read.kind === 'timeline' ? 'all' : read.tier}`;
      const acc = samplesBy.get(key) ?? { ms: [], rows: [], bytes: [] };
      samplesBy.set(key, acc);
      for (let r = 0; r <= repeat; r++) {
        const t0 = performance.now();
        const result = await (
          await clickhouse.query({
            query: read.sql(c),
            format: 'JSON',
            // Repeating a read would otherwise skip the granules the first run found empty.
            clickhouse_settings: { use_query_condition_cache: 0 },
          })
        ).json<Record<string, unknown>>();
        const ms = performance.now() - t0;
        const statistics = (result as unknown as { statistics: Stats }).statistics;
        if (r === 0) {
          // Warm-up run: also the correctness check (every table gives the same answer).
          const got = JSON.stringify(result.data);
          // A small tenant may have no clicks of one scenario on the sampled day; a timeline always has rows.
          if (result.data.length === 0 && (read.kind === 'timeline' || read.tier === 'large')) {
            throw new Error(`${read.kind} #${i} found nothing`);
          }
          if (answer === undefined) [answer, answeredBy] = [got, c.name];
          else if (got !== answer) throw new Error(`${c.name} answers ${read.kind} #${i} unlike ${answeredBy}`);
          continue;
        }
        acc.ms.push(ms);
        acc.rows.push(statistics.rows_read);
        acc.bytes.push(statistics.bytes_read);
      }
    }
    if ((i + 1) % 10 === 0) log(`  ${i + 1}/${reads.length} reads`);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Report.

  type Figure = { rowsRead: number; bytesRead: number; p50: number; p99: number; runs: number };
  const figures: Record<string, Record<string, Figure>> = {};
  const columns: string[] = [];
  for (const c of candidates) {
    figures[c.name] = {};
    for (const kind of ['dashboard', 'trends', 'top items', 'funnel', 'timeline'] as const) {
      for (const tier of kind === 'timeline' ? ['all'] : Object.keys(tiers)) {
        const acc = samplesBy.get(`${c.name}|${kind}|${tier}`);
        if (!acc) continue;
        const column = kind === 'timeline' ? kind : `${kind} ${tier}`;
        if (!columns.includes(column)) columns.push(column);
        figures[c.name]![column] = {
          rowsRead: quantile(acc.rows, 0.5),
          bytesRead: quantile(acc.bytes, 0.5),
          p50: Number(quantile(acc.ms, 0.5).toFixed(1)),
          p99: Number(quantile(acc.ms, 0.99).toFixed(1)),
          runs: acc.ms.length,
        };
      }
    }
  }
  const human = (n: number) =>
    n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : String(Math.round(n));
  console.log(`\nrows read, median (p50 / p99 ms, in process); ${generated} behaviours, granularity ${granularity}\n`);
  console.log(`| table | MB | insert s | ${columns.join(' | ')} |`);
  console.log(`|---|${'---:|'.repeat(2 + columns.length)}`);
  for (const c of candidates) {
    const s = storage[c.name]!;
    const cells = columns.map((k) => {
      const f = figures[c.name]![k]!;
      return `${human(f.rowsRead)} (${f.p50.toFixed(0)} / ${f.p99.toFixed(0)})`;
    });
    console.log(`| ${c.name} | ${(s.bytes / 1e6).toFixed(0)} | ${s.insertSeconds} | ${cells.join(' | ')} |`);
  }
  const result = {
    date: new Date().toISOString(),
    machine: '2 cores shared with other work; chDB in process',
    engine: (await select<{ v: string }>('SELECT version() AS v'))[0]!.v,
    behaviours: generated,
    tenants: tenantCount,
    days,
    granularity,
    samples,
    repeat,
    tiers: Object.fromEntries(Object.entries(tiers).map(([tier, [tenant, rows]]) => [tier, { tenant, rows }])),
    timelineTenants,
    candidates,
    storage,
    figures,
  };
  await mkdir('bench/results', { recursive: true });
  const file = `bench/results/uba-order-by-${Date.now()}.json`;
  await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
  log(`wrote ${file}`);
} finally {
  await clickhouse.close();
  await rm(dir, { recursive: true, force: true });
}
