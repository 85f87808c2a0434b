/**
 * UBA query bench: p50/p99 and rows read of every analytics read at 10M behaviours (DESIGN §5: dashboard, trends and
 * top items p99 ≤ 150 ms, funnels and retention p99 ≤ 600 ms, one user's timeline p99 ≤ 20 ms; at 100M KPIs ≤ 500 ms,
 * funnels ≤ 3 s).
 *
 *   node bench/uba/queries.ts [--rows 10000000] [--runs 30] [--quick] [--keep DIR | --reuse DIR]   (--help)
 *
 * Data: N behaviours generated from a seed (same N and seed, same rows): several tenants, one of them half of all
 * rows; per tenant Zipf users and items; visits of impressions, some clicked, watched (1-4 growing updates of one
 * view_id), liked, shared, carted and ordered, a posthog-js $pageview at the start of some; one session id per visit;
 * experiments on a share of users; 30 days with a diurnal curve and a weekly swing. Loaded with `insertBehaviors`
 * (the behaviour sink's own insert path: watches, dedup tokens, the materialized views that fill the timeline index
 * and the roll-ups) in batches of `--batch`, then background merges are waited for (bounded): a steady state, not
 * a fresh pile of parts.
 *
 * Reads: the routes that exist (dashboard, trends, top-items, users/:user/timeline, audiences, realtime) through the
 * real API (`runApi`: HTTP on loopback, personal API key in PGlite, the same ClickHouse client), timed from request to
 * the last body byte; funnel, retention, paths and experiments (no routes yet) by calling their functions. Each is
 * warmed up once per parameter variant, then run `--runs` times cycling through the variants (large tenant mostly,
 * 1-30 day ranges). Rows read: chDB has no system.query_log and its client summary holds result rows, so every
 * ClickHouse query a variant sent (recorded by a wrapper round the client) is run again once with FORMAT JSON and the
 * query condition cache off; its `statistics` give rows read and ClickHouse's own time.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { ApiKeyStore } from '../../src/api/api-keys.ts';
import { runApi } from '../../src/cli/api-command.ts';
import { openClickHouse } from '../../src/clickhouse/client.ts';
import { migrateClickHouse } from '../../src/clickhouse/migrations.ts';
import { loadConfig } from '../../src/config/index.ts';
import { freePort } from '../../src/harness/ports.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { openPostgres } from '../../src/postgres/database.ts';
import { migratePostgres } from '../../src/postgres/migrations.ts';
import { FsBlobStore } from '../../src/storage/fs-blob-store.ts';
import { TeamStore } from '../../src/teams/team-store.ts';
import { experimentResults } from '../../src/uba/analytics/experiments.ts';
import { funnel } from '../../src/uba/analytics/funnel.ts';
import { paths } from '../../src/uba/analytics/paths.ts';
import { retention } from '../../src/uba/analytics/retention.ts';
import type { BehaviorRecord } from '../../src/uba/behavior-record.ts';
import { insertBehaviors, type PositionedBehavior } from '../../src/uba/behavior-rows.ts';
import { benchArgs } from '../shared/args.ts';
import { outOptionUsage, writeBenchResult } from '../shared/bench-result.ts';
import { ascending, percentile } from '../shared/percentile.ts';
import { prng } from '../shared/prng.ts';

const usage = `UBA query bench: generate behaviours, load them with insertBehaviors into chDB, then time every analytics
route (over HTTP on loopback) and analytics function, hot, with rows read, against DESIGN §5.

  node bench/uba/queries.ts [options]

  --rows N          behaviours to generate (default 10000000; 1000000 with --quick); 100000000 works (hours, ~40 GB)
  --runs N          timed runs per route after one warm-up per parameter variant (default 30; 10 with --quick)
  --quick           smoke check: 1M rows, 10 runs, ≤ 3 minutes
  --batch N         behaviours per insertBehaviors call (default 200000)
  --days N          days of data (default 30)
  --seed N          seed of the generated data (default 1)
  --keep DIR        load into DIR and keep it (chDB data and meta.json) for --reuse
  --reuse DIR       skip generation and load: read the chDB directory an earlier --keep left
  --load-only       with --keep: stop after the load (time the reads later with --reuse, e.g. on a quieter machine)
  --route-seconds S most seconds of timed runs per route (default 120; 30 with --quick): fewer runs past it
  --max-minutes M   bound on the whole run (default: 20 + 3 per million rows; 3 with --quick)
${outOptionUsage('uba-queries', 20)}
  --help            this text

Prints one table (each read beside its DESIGN §5 target) and writes the JSON.`;

const args = benchArgs(usage, {
  rows: { type: 'string', default: '' },
  runs: { type: 'string', default: '' },
  quick: { type: 'boolean', default: false },
  batch: { type: 'string', default: '200000' },
  days: { type: 'string', default: '30' },
  seed: { type: 'string', default: '1' },
  keep: { type: 'string', default: '' },
  reuse: { type: 'string', default: '' },
  'load-only': { type: 'boolean', default: false },
  'route-seconds': { type: 'string', default: '' },
  'max-minutes': { type: 'string', default: '' },
  out: { type: 'string', default: '' },
});
const quick = args.quick;
if (args.rows === '') args.rows = quick ? '1000000' : '10000000';
if (args.runs === '') args.runs = quick ? '10' : '30';
if (args['route-seconds'] === '') args['route-seconds'] = quick ? '30' : '120';
const rowTarget = Math.floor(args.number('rows', 1000));
const runs = Math.floor(args.number('runs'));
const batchSize = Math.floor(args.number('batch', 1000));
const dayCount = Math.floor(args.number('days', 8));
const seed = Math.floor(args.number('seed', 0));
const routeSeconds = args.number('route-seconds');
if (args['max-minutes'] === '') args['max-minutes'] = String(quick ? 3 : 20 + Math.ceil((3 * rowTarget) / 1e6));
const maxMinutes = args.number('max-minutes');
if (args.keep && args.reuse) {
  process.stderr.write('error: --keep and --reuse exclude each other (a reused directory is kept anyway)\n');
  process.exit(2);
}
if (args['load-only'] && !args.keep) {
  process.stderr.write('error: --load-only needs --keep DIR (the data are what it leaves behind)\n');
  process.exit(2);
}

/** Ends a --load-only run after the load, through the same cleanup as a full run. */
class LoadOnly extends Error {}

const DAY = 86_400_000;
const HOUR = 3_600_000;
const started = performance.now();
const deadline = started + maxMinutes * 60_000;
const log = (message: string) =>
  process.stderr.write(
    `[bench:uba-queries ${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${message}\n`,
  );
// Last resort: a hang still ends the run (the directory may stay behind then; the normal path cleans it).
setTimeout(
  () => {
    log('run exceeded its time bound by 60 s; exiting');
    process.exit(3);
  },
  maxMinutes * 60_000 + 60_000,
).unref();

// ---------------------------------------------------------------------------------------------------------------
// Data.

/** Tenants' shares of all behaviours: one large tenant, a few mid-sized, a tail. */
const TENANT_SHARES = [0.5, 0.18, 0.1, 0.07, 0.05, 0.04, 0.03, 0.02, 0.01];
const SCENARIOS: readonly [string, number][] = [
  ['home_feed', 0.4],
  ['search', 0.25],
  ['detail_related', 0.15],
  ['category', 0.15],
  ['push', 0.05],
];
const SCENARIO_CUMULATIVE = SCENARIOS.map((_, i) =>
  SCENARIOS.slice(0, i + 1).reduce((sum, [, share]) => sum + share, 0),
);
const DEVICES = ['mobile', 'mobile', 'mobile', 'desktop', 'tablet'];
const OSES = ['android', 'ios', 'windows', 'macos', 'linux'];
const CITIES = ['shanghai', 'beijing', 'shenzhen', 'hangzhou', 'chengdu', 'berlin', 'paris', 'london', 'new york'];
/** Experiments per tenant index: id, share of users in it, groups (the first is control), order-rate lift per group. */
const EXPERIMENTS: Record<number, readonly { id: string; share: number; groups: readonly [string, number][] }[]> = {
  0: [
    {
      id: 'rec-model-v3',
      share: 0.4,
      groups: [
        ['control', 1],
        ['test', 1.15],
      ],
    },
    {
      id: 'feed-layout',
      share: 0.2,
      groups: [
        ['control', 1],
        ['grid', 0.95],
        ['cards', 1.05],
      ],
    },
  ],
  1: [
    {
      id: 'search-ranking',
      share: 0.5,
      groups: [
        ['control', 1],
        ['test', 1.1],
      ],
    },
  ],
};

/** Zipf(s) over ranks 0..n-1: draws by binary search over the cumulative weights. */
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
  draw(random: () => number): number {
    const x = random() * this.cumulative[this.cumulative.length - 1]!;
    let [lo, hi] = [0, this.cumulative.length - 1];
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.cumulative[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

interface DataShape {
  readonly rows: number;
  readonly days: number;
  readonly seed: number;
  /** First day's midnight (UTC), ms: the data cover [epoch, epoch + days). */
  readonly epoch: number;
  /** Team ids, by tenant index (index 0 is the large tenant). */
  readonly tenants: readonly number[];
}

/**
 * Behaviours in visits, deterministic for a seed. `visitsOfDay` yields one day's visits until that day's share of
 * the rows is reached; rows of a visit stay together (a watch's updates in one batch, as a sink mostly sees them).
 */
class Generator {
  private readonly random: () => number;
  private readonly users: Zipf[];
  private readonly items: Zipf[];
  private readonly tenantPick: number[];
  private readonly dayWeights: number[];
  private readonly offsets = new Array<number>(16).fill(0);
  generated = 0;
  /** Per large and second tenant, a reservoir of users drawn by activity (a row's user, each row equally likely). */
  readonly reservoirs = [
    { seen: 0, users: [] as string[] },
    { seen: 0, users: [] as string[] },
  ];
  private readonly pickUsers: () => number;
  private readonly shape: DataShape;

  constructor(shape: DataShape) {
    this.shape = shape;
    this.random = prng(shape.seed);
    this.pickUsers = prng(shape.seed + 7); // its own stream: the rows do not depend on who is sampled
    // ≈ 30 behaviours per user and 25 per item over the period, at least a few hundred of each.
    this.users = TENANT_SHARES.map((share) => new Zipf(Math.max(200, Math.round((shape.rows * share) / 30)), 0.8));
    this.items = TENANT_SHARES.map((share) => new Zipf(Math.max(200, Math.round((shape.rows * share) / 25)), 1.05));
    // Cumulative shares for picking a visit's tenant.
    this.tenantPick = TENANT_SHARES.map((_, i) => TENANT_SHARES.slice(0, i + 1).reduce((a, b) => a + b, 0));
    // Weekends a fifth lighter, and a slow upward trend over the period.
    this.dayWeights = Array.from({ length: shape.days }, (_, d) => {
      const weekday = new Date(shape.epoch + d * DAY).getUTCDay();
      return (weekday === 0 || weekday === 6 ? 0.8 : 1) * (1 + (0.2 * d) / shape.days);
    });
  }

  rowsForDay(day: number): number {
    const total = this.dayWeights.reduce((a, b) => a + b, 0);
    const upTo = this.dayWeights.slice(0, day + 1).reduce((a, b) => a + b, 0);
    return day === this.shape.days - 1 ? this.shape.rows : Math.round((this.shape.rows * upTo) / total);
  }

  private hex(digits: number): string {
    return Math.floor(this.random() * 16 ** digits)
      .toString(16)
      .padStart(digits, '0');
  }
  private uuid(): string {
    const variant = (8 + Math.floor(this.random() * 4)).toString(16);
    return `${this.hex(8)}-${this.hex(4)}-4${this.hex(3)}-${variant}${this.hex(3)}-${this.hex(6)}${this.hex(6)}`;
  }
  private timeOfDay(): number {
    // Diurnal: rejection sampling, a third of the afternoon's traffic at night.
    for (;;) {
      const t = this.random() * DAY;
      if (this.random() < 0.35 + 0.65 * Math.sin((Math.PI * t) / DAY) ** 2) return t;
    }
  }

  /** One visit of `day`, in time order. */
  visit(day: number): PositionedBehavior[] {
    const r = this.random;
    const x = r();
    let tenantIndex = this.tenantPick.findIndex((upTo) => x < upTo);
    if (tenantIndex < 0) tenantIndex = TENANT_SHARES.length - 1;
    const tenant = this.shape.tenants[tenantIndex]!;
    const rank = this.users[tenantIndex]!.draw(r);
    const user = `u${tenant}-${((rank * 2654435761) >>> 0).toString(36)}-${rank}`;
    const scenarioDraw = r();
    const scenario = SCENARIOS[SCENARIO_CUMULATIVE.findIndex((upTo) => scenarioDraw < upTo)]?.[0] ?? 'home_feed';
    // An experiment by the user's rank (stable per user), a group by a hash of it.
    const experiment = (EXPERIMENTS[tenantIndex] ?? []).find(
      (e, i) => ((rank * (i + 3) * 7919) % 1000) / 1000 < e.share,
    );
    const group = experiment?.groups[(rank * 104729) % experiment.groups.length];
    const lift = group?.[1] ?? 1;
    const session = this.uuid();
    const partition = (rank * 31 + tenant) % this.offsets.length;
    let t = this.shape.epoch + day * DAY + this.timeOfDay();
    const base = {
      tenant_id: tenant,
      user_id: user,
      scenario_id: scenario,
      session_id: session,
      view_id: '',
      watch_duration: 0,
      completion_rate: 0,
      experiment_id: experiment?.id ?? '',
      experiment_group: group?.[0] ?? '',
      device_type: DEVICES[rank % DEVICES.length]!,
      os: OSES[rank % OSES.length]!,
      location: CITIES[(rank * 7) % CITIES.length]!,
      ip: `10.${tenant % 256}.${(rank >> 8) % 256}.${rank % 256}`,
      current_url: '',
      source: 'behaviors-api' as const,
    };
    const out: PositionedBehavior[] = [];
    const push = (fields: Partial<BehaviorRecord> & Pick<BehaviorRecord, 'action_type'>) => {
      const record: BehaviorRecord = {
        ...base,
        event_id: this.uuid(),
        item_id: '',
        timestamp: t,
        properties: {},
        captured_at: t + 50 + Math.floor(r() * 500),
        ...fields,
      };
      const offset = this.offsets[partition]!;
      this.offsets[partition] = offset + 1;
      out.push({ record, topic: 'user_behaviors', partition, offset });
    };
    if (r() < 0.15) {
      push({
        action_type: '$pageview',
        source: 'posthog-js',
        current_url: `https://shop-${tenant}.example.com/${scenario}`,
        properties: { $browser: 'Chrome', $lib: 'web', $referring_domain: 'search.example' },
      });
      t += 300 + r() * 2000;
    }
    const model = rank % 3 === 0 ? 'v1' : 'v2';
    const impressions = 4 + Math.floor(r() * 12);
    for (let k = 0; k < impressions; k++) {
      const item = `item-${tenant}-${this.items[tenantIndex]!.draw(r).toString(36)}`;
      push({ action_type: 'impression', item_id: item, properties: { position: String(k), rec_model: model } });
      t += 100 + r() * 1400;
      if (r() >= 0.1) continue;
      push({ action_type: 'click', item_id: item, properties: { position: String(k) } });
      t += 500 + r() * 3000;
      if (r() < 0.7) {
        const viewId = this.uuid();
        const length = 30 + r() * 600;
        const updates = 1 + Math.floor(r() * 4);
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
      if (r() < 0.05) push({ action_type: 'like', item_id: item });
      if (r() < 0.02) push({ action_type: 'share', item_id: item, properties: { channel: 'wechat' } });
      if (r() < 0.06) {
        push({ action_type: 'add_cart', item_id: item });
        t += 2000 + r() * 20_000;
        if (r() < 0.4 * lift) {
          push({ action_type: 'order', item_id: item, properties: { amount: (r() * 200).toFixed(2) } });
        }
      }
    }
    this.generated += out.length;
    if (tenantIndex < 2) {
      const reservoir = this.reservoirs[tenantIndex]!;
      for (let i = 0; i < out.length; i++) {
        reservoir.seen++;
        if (reservoir.users.length < 25) reservoir.users.push(user);
        else if (this.pickUsers() < 25 / reservoir.seen) reservoir.users[Math.floor(this.pickUsers() * 25)] = user;
      }
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Setup: directory, teams and key, chDB.

const keepDir = args.keep ? resolve(args.keep) : args.reuse ? resolve(args.reuse) : undefined;
const dir = keepDir ?? (await mkdtemp(join(tmpdir(), 'uba-bench-queries-')));
const metaFile = join(dir, 'meta.json');
if (args.keep && existsSync(metaFile)) {
  process.stderr.write(`error: ${dir} already holds a loaded data set: use --reuse ${args.keep}\n`);
  process.exit(2);
}
if (args.reuse && !existsSync(metaFile)) {
  process.stderr.write(`error: ${dir} holds no data set of this bench (no meta.json): load one with --keep\n`);
  process.exit(2);
}
await mkdir(dir, { recursive: true });

const db = await openPostgres({ kind: 'pglite', dataDir: 'memory://' });
await migratePostgres(db);
const teams = new TeamStore(db);
const teamIds: number[] = [];
for (const [i] of TENANT_SHARES.entries()) {
  const team = await teams.create({
    name: `bench-tenant-${i}`,
    apiToken: `phc_bench_${randomUUID()}`,
    sessionRecordingEnabled: true,
    retention: '30d',
    consoleLogCaptureEnabled: false,
  });
  teamIds.push(team.id);
}
const apiKey = (await new ApiKeyStore(db).create('bench', teamIds)).key;

const clickhouse = openClickHouse({ kind: 'chdb', path: join(dir, 'chdb') });

/** The ClickHouse queries issued while `recording` is set (the bench and the API share this process and client). */
interface RecordedQuery {
  readonly query: string;
  readonly query_params?: Record<string, unknown>;
  readonly clickhouse_settings?: Record<string, unknown>;
}
let recording: RecordedQuery[] | undefined;
const recordingClient = new Proxy(clickhouse, {
  get(target, property, receiver) {
    const value = Reflect.get(target, property, receiver);
    if (property === 'query') {
      return (params: RecordedQuery & Parameters<ClickHouseClient['query']>[0]) => {
        recording?.push({
          query: params.query,
          query_params: params.query_params,
          clickhouse_settings: params.clickhouse_settings,
        });
        return target.query(params);
      };
    }
    return typeof value === 'function' ? value.bind(target) : value;
  },
}) as ClickHouseClient;

let shape: DataShape;
let load: { seconds: number; rowsPerSecond: number; batches: number; watchRows: number } | undefined;
let timelineUsers: { large: string[]; second: string[] };
let api: Awaited<ReturnType<typeof runApi>> | undefined;
const result: Record<string, unknown> = {};

try {
  if (args.reuse) {
    const meta = JSON.parse(await readFile(metaFile, 'utf8')) as {
      shape: DataShape;
      timelineUsers: typeof timelineUsers;
      load: typeof load;
    };
    shape = meta.shape;
    timelineUsers = meta.timelineUsers;
    load = meta.load;
    // A fresh PGlite hands out the same team ids; the data's tenant ids must be them.
    if (JSON.stringify(shape.tenants) !== JSON.stringify(teamIds)) {
      throw new Error(`the kept data's tenants ${shape.tenants} are not this run's teams ${teamIds}`);
    }
    log(`reusing ${dir}: ${shape.rows} behaviours over ${shape.days} days from ${new Date(shape.epoch).toISOString()}`);
  } else {
    // The last day is yesterday: recent enough for the tables' 90-day TTL.
    const epoch = Math.floor(Date.now() / DAY) * DAY - dayCount * DAY;
    shape = { rows: rowTarget, days: dayCount, seed, epoch, tenants: teamIds };
    await migrateClickHouse(clickhouse);
    const generator = new Generator(shape);
    log(
      `loading ${rowTarget} behaviours (${TENANT_SHARES.length} tenants, ${dayCount} days) in batches of ${batchSize}`,
    );
    const loadStart = performance.now();
    let batches = 0;
    let watchRows = 0;
    let batch: PositionedBehavior[] = [];
    let inserting: Promise<void> | undefined;
    let lastLog = 0;
    let inserted = 0;
    const flush = async () => {
      // Generation of the next batch overlaps chDB's native work on this one.
      await inserting;
      const rows = batch;
      batch = [];
      inserting = insertBehaviors(clickhouse, rows).then((r) => {
        batches++;
        watchRows += r.watchRows;
        inserted += rows.length;
        const done = inserted;
        const seconds = (performance.now() - loadStart) / 1000;
        if (performance.now() - lastLog > 10_000 || done >= rowTarget) {
          lastLog = performance.now();
          const rate = done / seconds;
          log(
            `  ${(done / 1e6).toFixed(2)} M / ${(rowTarget / 1e6).toFixed(2)} M, ${(rate / 1000).toFixed(1)}k/s, ` +
              `ETA ${Math.max(0, (rowTarget - done) / rate).toFixed(0)} s`,
          );
        }
      });
    };
    for (let day = 0; day < dayCount; day++) {
      const upTo = generator.rowsForDay(day);
      while (generator.generated < upTo) {
        batch.push(...generator.visit(day));
        if (batch.length >= batchSize) await flush();
      }
    }
    if (batch.length > 0) await flush();
    await inserting;
    const seconds = (performance.now() - loadStart) / 1000;
    load = {
      seconds: Number(seconds.toFixed(1)),
      rowsPerSecond: Math.round(generator.generated / seconds),
      batches,
      watchRows,
    };
    shape = { ...shape, rows: generator.generated };
    timelineUsers = {
      large: generator.reservoirs[0]!.users,
      second: generator.reservoirs[1]!.users.slice(0, 5),
    };
    log(`loaded ${generator.generated} behaviours in ${load.seconds} s (${load.rowsPerSecond}/s, ${batches} inserts)`);
    // Background merges settle (bounded), as they would on a server that has been ingesting for a month.
    const settleUntil = performance.now() + (quick ? 20_000 : 180_000);
    for (;;) {
      const [m] = await select<{ merges: number }>('SELECT count() AS merges FROM system.merges');
      if (Number(m?.merges) === 0 || performance.now() > settleUntil) break;
      await new Promise((done) => setTimeout(done, 1000));
    }
    if (keepDir) await writeFile(metaFile, `${JSON.stringify({ shape, timelineUsers, load }, null, 2)}\n`);
  }
  const { rows: loaded } = (await select<{ rows: number }>('SELECT count() AS rows FROM user_behaviors'))[0]!;
  const parts = await select<{ table: string; parts: number; rows: number; bytes: number }>(
    `SELECT table, count() AS parts, sum(rows) AS rows, sum(bytes_on_disk) AS bytes FROM system.parts
      WHERE active AND database = currentDatabase() GROUP BY table ORDER BY table`,
  );
  log(
    `user_behaviors holds ${loaded} rows; parts: ${parts.map((p) => `${p.table} ${p.parts} (${(Number(p.bytes) / 1e6).toFixed(0)} MB)`).join(', ')}`,
  );
  result.tables = parts;
  if (args['load-only']) throw new LoadOnly();

  // -------------------------------------------------------------------------------------------------------------
  // Reads.

  const large = shape.tenants[0]!;
  const second = shape.tenants[1]!;
  const end = shape.epoch + shape.days * DAY;
  const iso = (ms: number) => new Date(ms).toISOString();
  /** [end - days, end) shifted back by `backDays`. */
  const last = (days: number, backDays = 0) => ({ from: end - (days + backDays) * DAY, to: end - backDays * DAY });
  const rangeQuery = (r: { from: number; to: number }) => `date_from=${iso(r.from)}&date_to=${iso(r.to)}`;

  const config = loadConfig({ HOME: '/nonexistent', API_HOST: '127.0.0.1', API_PORT: '0' });
  // Redis unreachable on purpose: no realtime sink runs here, so the realtime route answers from ClickHouse (its
  // fallback), the read this bench can time. "Now" is pinned to the data's last hour.
  const now = end - 10 * 60_000;
  api = await runApi(config, createLogger('error', 'api'), {
    db,
    clickhouse: recordingClient,
    store: new FsBlobStore(join(dir, 'blobs')),
    redisUrl: `redis://127.0.0.1:${await freePort()}`,
    now: () => now,
  });
  const base = `${api.service.url}/api/projects`;
  const get = async (path: string) => {
    const response = await fetch(`${base}/${path}`, { headers: { authorization: `Bearer ${apiKey}` } });
    const body = await response.text();
    if (response.status !== 200) throw new Error(`GET ${path}: ${response.status} ${body.slice(0, 300)}`);
    return body;
  };

  /** The heaviest users: a point lookup's worst case. */
  const heaviest = (
    await select<{ user_id: string }>(
      `SELECT user_id FROM user_behaviors_by_user WHERE tenant_id = ${large} GROUP BY user_id ORDER BY count() DESC, user_id LIMIT 2`,
    )
  ).map((r) => r.user_id);
  // Second pages: the cursor of each user's first page.
  const timelinePaths = [...heaviest, ...timelineUsers.large].map(
    (u) => `${large}/analytics/users/${encodeURIComponent(u)}/timeline`,
  );
  timelinePaths.push(...timelineUsers.second.map((u) => `${second}/analytics/users/${encodeURIComponent(u)}/timeline`));
  for (const user of heaviest) {
    const first = JSON.parse(await get(`${large}/analytics/users/${encodeURIComponent(user)}/timeline?limit=50`)) as {
      next: string | null;
    };
    if (first.next) timelinePaths.push(first.next.replace('/api/projects/', ''));
  }

  type Kind = 'route' | 'function';
  interface Read {
    readonly name: string;
    readonly kind: Kind;
    /** DESIGN §5 group: its p99 target depends on the data size. */
    readonly target: 'kpi' | 'funnel' | 'timeline' | undefined;
    /** What the read does, for the line that says what bounds a missed target. */
    readonly does: string;
    readonly variants: readonly { readonly label: string; readonly run: () => Promise<unknown> }[];
  }
  const route = (path: string) => ({ label: path, run: () => get(path) });
  const steps4 = [{ action: 'impression' }, { action: 'click' }, { action: 'add_cart' }, { action: 'order' }];
  const reads: Read[] = [
    {
      name: 'dashboard',
      kind: 'route',
      target: 'kpi',
      does: 'KPIs of the range and the previous period from uba_hourly_metrics (-Merge of count and uniqCombined64 states)',
      variants: [
        route(`${large}/analytics/dashboard?${rangeQuery(last(7))}`),
        route(`${large}/analytics/dashboard?${rangeQuery(last(7, 7))}`),
        route(`${large}/analytics/dashboard?${rangeQuery(last(30))}`),
        route(`${large}/analytics/dashboard?${rangeQuery(last(1))}`),
        route(`${large}/analytics/dashboard?${rangeQuery(last(14))}&scenario=home_feed`),
        route(`${second}/analytics/dashboard?${rangeQuery(last(7))}`),
      ],
    },
    {
      name: 'trends',
      kind: 'route',
      target: 'kpi',
      does: 'one metric per hour or day from uba_hourly_metrics, zero-filled',
      variants: [
        route(`${large}/analytics/trends?metric=clicks&interval=hour&${rangeQuery(last(7))}`),
        route(`${large}/analytics/trends?metric=ctr&interval=day&${rangeQuery(last(30))}`),
        route(`${large}/analytics/trends?metric=active_users&interval=day&${rangeQuery(last(30))}`),
        route(`${large}/analytics/trends?metric=active_users&interval=hour&${rangeQuery(last(7))}`),
        route(`${large}/analytics/trends?metric=action:view&interval=hour&${rangeQuery(last(7, 3))}`),
        route(`${large}/analytics/trends?metric=conversions&interval=day&${rangeQuery(last(30))}&scenario=search`),
      ],
    },
    {
      name: 'top-items',
      kind: 'route',
      target: 'kpi',
      does: 'items ranked over whole days from uba_item_daily; with a scenario from the raw user_behaviors',
      variants: [
        route(`${large}/analytics/top-items?by=clicks&${rangeQuery(last(7))}`),
        route(`${large}/analytics/top-items?by=ctr&${rangeQuery(last(30))}`),
        route(`${large}/analytics/top-items?by=conversions&${rangeQuery(last(30))}`),
        route(`${large}/analytics/top-items?by=clicks&${rangeQuery(last(7))}&scenario=home_feed`),
        route(`${large}/analytics/top-items?by=impressions&${rangeQuery(last(1, 2))}&scenario=search`),
        route(`${second}/analytics/top-items?by=clicks&${rangeQuery(last(7))}&limit=50`),
      ],
    },
    {
      name: 'timeline',
      kind: 'route',
      target: 'timeline',
      does: 'one user’s latest behaviours from user_behaviors_by_user (sorted by tenant, user, time)',
      variants: timelinePaths.map(route),
    },
    {
      name: 'audiences',
      kind: 'route',
      target: undefined,
      does: 'groupBitmap states of uba_audiences ANDed per action, then the page’s ids from user_behaviors',
      variants: [
        route(`${large}/analytics/audiences?did=click,order&${rangeQuery(last(7))}`),
        route(`${large}/analytics/audiences?did=add_cart&not=order&${rangeQuery(last(30))}`),
        route(`${large}/analytics/audiences?did=impression,click,like&${rangeQuery(last(7, 7))}`),
      ],
    },
    {
      name: 'realtime (ClickHouse fallback)',
      kind: 'route',
      target: undefined,
      does: 'Redis down: the last hour’s hot items and this minute’s counts from the raw user_behaviors',
      variants: [route(`${large}/analytics/realtime`), route(`${large}/analytics/realtime?scenario=home_feed`)],
    },
    {
      name: 'funnel',
      kind: 'function',
      target: 'funnel',
      does: 'per user, the funnel actions’ rows of the range from the raw user_behaviors, sorted and scanned per step',
      variants: (
        [
          ['4 steps, 1 h window, 7 d', { ...last(7), steps: steps4, windowMs: HOUR, strictOrder: false }],
          ['4 steps, 1 d window, 30 d', { ...last(30), steps: steps4, windowMs: DAY, strictOrder: false }],
          ['4 steps strict, 7 d', { ...last(7, 7), steps: steps4, windowMs: HOUR, strictOrder: true }],
          [
            '4 steps by rec_model, 7 d',
            { ...last(7), steps: steps4, windowMs: HOUR, strictOrder: false, breakdown: 'rec_model' },
          ],
          [
            'click → share{channel}, 14 d',
            {
              ...last(14),
              steps: [{ action: 'click' }, { action: 'share', properties: { channel: 'wechat' } }],
              windowMs: DAY,
              strictOrder: false,
            },
          ],
        ] as const
      ).map(([label, o]) => ({
        label,
        run: () => funnel(recordingClient, { tenantId: large, dropOffPageSize: 20, ...o }),
      })),
    },
    {
      name: 'retention',
      kind: 'function',
      target: 'funnel',
      does: 'per user, first start action and return periods from the raw user_behaviors (two actions’ rows)',
      variants: (
        [
          ['day ×7, click → click, 7 d', { ...last(14, 7), period: 'day', periods: 7, start: 'click', ret: 'click' }],
          [
            'week ×3, add_cart → order, 28 d',
            { ...last(28), period: 'week', periods: 3, start: 'add_cart', ret: 'order' },
          ],
          [
            'day ×14, impression → click, 14 d',
            { ...last(14), period: 'day', periods: 14, start: 'impression', ret: 'click' },
          ],
        ] as const
      ).map(([label, o]) => ({
        label,
        run: () =>
          retention(recordingClient, {
            tenantId: large,
            from: o.from,
            to: o.to,
            period: o.period,
            periods: o.periods,
            startAction: o.start,
            returnAction: o.ret,
          }),
      })),
    },
    {
      name: 'paths',
      kind: 'function',
      target: undefined,
      does: 'every behaviour of the anchor’s users in the range from the raw user_behaviors, sorted per user',
      variants: (
        [
          ['next after add_cart, 7 d', { ...last(7), action: 'add_cart', direction: 'next' }],
          ['previous before order, 7 d', { ...last(7, 7), action: 'order', direction: 'previous' }],
          [
            'next after click, same session, 1 d',
            { ...last(1), action: 'click', direction: 'next', sameSession: true },
          ],
        ] as const
      ).map(([label, o]) => ({ label, run: () => paths(recordingClient, { tenantId: large, ...o }) })),
    },
    {
      name: 'experiments',
      kind: 'function',
      target: undefined,
      does: 'uba_experiment_daily for whole days and orders; otherwise every row of the range from user_behaviors',
      variants: (
        [
          ['rec-model-v3, 30 d (roll-up)', { ...last(30), experimentId: 'rec-model-v3' }],
          ['feed-layout, 7 d (roll-up)', { ...last(7), experimentId: 'feed-layout' }],
          [
            'rec-model-v3, 7 d cut at an hour (raw)',
            { from: end - 7 * DAY + HOUR, to: end, experimentId: 'rec-model-v3' },
          ],
          [
            'rec-model-v3, add_cart, 7 d (raw)',
            { ...last(7), experimentId: 'rec-model-v3', conversionAction: 'add_cart' },
          ],
        ] as const
      ).map(([label, o]) => ({ label, run: () => experimentResults(recordingClient, { tenantId: large, ...o }) })),
    },
  ];

  // §5: the 10M targets; with 100M rows or more, the 100M option's.
  const big = shape.rows >= 100_000_000;
  const targets = { kpi: big ? 500 : 150, funnel: big ? 3000 : 600, timeline: 20 } as const;
  const quantile = (values: readonly number[], q: number) => percentile(ascending(values), q * 100);

  interface Figure {
    name: string;
    kind: Kind;
    runs: number;
    p50: number;
    p99: number;
    /** Per variant: rows read and ClickHouse ms of all its queries (the re-run with statistics). */
    variants: { label: string; queries: number; rowsRead: number; bytesRead: number; clickhouseMs: number }[];
    rowsReadMedian: number;
    rowsReadMax: number;
    clickhouseMsMedian: number;
    tables: string[];
    target: number | undefined;
    met: boolean | undefined;
    does: string;
  }
  const figures: Figure[] = [];
  const loadBefore = loadavg()[0]!;
  for (const read of reads) {
    if (performance.now() > deadline - 20_000) {
      log(`time bound reached: ${read.name} and later reads not run`);
      break;
    }
    // Warm-up: one run per variant, recording the ClickHouse queries each sends.
    const sent: RecordedQuery[][] = [];
    for (const variant of read.variants) {
      recording = [];
      await variant.run();
      sent.push(recording);
      recording = undefined;
    }
    const ms: number[] = [];
    const until = Math.min(performance.now() + routeSeconds * 1000, deadline - 15_000);
    for (let i = 0; i < runs && (i === 0 || performance.now() < until); i++) {
      const variant = read.variants[i % read.variants.length]!;
      const t0 = performance.now();
      await variant.run();
      ms.push(performance.now() - t0);
    }
    // Rows read: each variant's queries again, with statistics, without the query condition cache.
    const variants: Figure['variants'] = [];
    const tables = new Set<string>();
    for (const [i, queries] of sent.entries()) {
      let [rowsRead, bytesRead, clickhouseMs] = [0, 0, 0];
      for (const q of queries) {
        for (const m of q.query.matchAll(/\bFROM\s+([a-z_][a-z0-9_]*)/gi)) tables.add(m[1]!);
        const answer = await (
          await clickhouse.query({
            query: q.query,
            query_params: q.query_params,
            format: 'JSON',
            clickhouse_settings: { ...q.clickhouse_settings, use_query_condition_cache: 0 },
          })
        ).json<{ statistics: { rows_read: number; bytes_read: number; elapsed: number } }>();
        const statistics = answer.statistics;
        if (!statistics) throw new Error(`no statistics for ${q.query.slice(0, 80)}`);
        rowsRead += statistics.rows_read;
        bytesRead += statistics.bytes_read;
        clickhouseMs += statistics.elapsed * 1000;
      }
      variants.push({
        label: read.variants[i]!.label,
        queries: queries.length,
        rowsRead,
        bytesRead,
        clickhouseMs: Number(clickhouseMs.toFixed(1)),
      });
    }
    const target = read.target === undefined ? undefined : targets[read.target];
    const p99 = quantile(ms, 0.99);
    const figure: Figure = {
      name: read.name,
      kind: read.kind,
      runs: ms.length,
      p50: Number(quantile(ms, 0.5).toFixed(1)),
      p99: Number(p99.toFixed(1)),
      variants,
      rowsReadMedian: quantile(
        variants.map((v) => v.rowsRead),
        0.5,
      ),
      rowsReadMax: Math.max(...variants.map((v) => v.rowsRead)),
      clickhouseMsMedian: Number(
        quantile(
          variants.map((v) => v.clickhouseMs),
          0.5,
        ).toFixed(1),
      ),
      tables: [...tables].filter((t) => !/^(system)$/.test(t)),
      target,
      met: target === undefined ? undefined : p99 <= target,
      does: read.does,
    };
    figures.push(figure);
    log(
      `  ${read.name}: ${ms.length} runs, p50 ${figure.p50} ms, p99 ${figure.p99} ms, rows read ${human(figure.rowsReadMedian)} (max ${human(figure.rowsReadMax)})`,
    );
  }
  const loadAfter = loadavg()[0]!;

  // -------------------------------------------------------------------------------------------------------------
  // Report.

  const [{ version }] = (await select<{ version: string }>('SELECT version() AS version')) as [{ version: string }];
  console.log(
    `\n${shape.rows} behaviours (${TENANT_SHARES.length} tenants, the large one ${TENANT_SHARES[0]! * 100} %), ` +
      `${shape.days} days; chDB ${version}; load average ${loadBefore.toFixed(1)} → ${loadAfter.toFixed(1)}` +
      (load ? `; loaded in ${load.seconds} s (${(load.rowsPerSecond / 1000).toFixed(1)}k/s)` : '') +
      `\np99 of ${runs} runs is the slowest run (under 100 runs); rows read summed over a request's queries, median (max) of its variants\n`,
  );
  console.log('| read | via | runs | p50 ms | p99 ms | ClickHouse ms | rows read | tables | §5 target p99 |');
  console.log('|---|---|---:|---:|---:|---:|---:|---|---|');
  for (const f of figures) {
    const verdict = f.target === undefined ? '—' : `≤ ${f.target} ms: ${f.met ? 'met' : '**not met**'}`;
    console.log(
      `| ${f.name} | ${f.kind === 'route' ? 'HTTP' : 'function'} | ${f.runs} | ${f.p50.toFixed(1)} | ${f.p99.toFixed(1)} | ` +
        `${f.clickhouseMsMedian.toFixed(1)} | ${human(f.rowsReadMedian)} (${human(f.rowsReadMax)}) | ${f.tables.join(', ')} | ${verdict} |`,
    );
  }
  const missed = figures.filter((f) => f.met === false);
  if (missed.length > 0) console.log('\nMissed:');
  for (const f of missed) {
    const worst = [...f.variants].sort((a, b) => b.clickhouseMs - a.clickhouseMs)[0]!;
    console.log(
      `- ${f.name}: p99 ${f.p99.toFixed(0)} ms > ${f.target} ms; ${f.does}; reads ${human(f.rowsReadMedian)} rows ` +
        `(median; max ${human(f.rowsReadMax)}), ClickHouse ${f.clickhouseMsMedian.toFixed(0)} ms of the p50 ` +
        `${f.p50.toFixed(0)} ms; slowest variant "${worst.label}" (${human(worst.rowsRead)} rows, ${worst.clickhouseMs.toFixed(0)} ms).`,
    );
  }
  Object.assign(result, {
    date: new Date().toISOString(),
    command: `node bench/uba/queries.ts ${process.argv.slice(2).join(' ')}`.trim(),
    machine: '2 cores shared with other work; chDB in process, API on loopback in the same process',
    engine: version,
    loadAverage: { before: loadBefore, after: loadAfter },
    shape,
    load,
    runs,
    targets,
    figures,
  });
  log(`wrote ${await writeBenchResult('uba-queries', result, args.out)}`);
} catch (error) {
  if (!(error instanceof LoadOnly)) throw error;
} finally {
  await api?.stop();
  await clickhouse.close();
  await db.close();
  if (!keepDir) await rm(dir, { recursive: true, force: true });
  else log(`kept ${dir} (node bench/uba/queries.ts --reuse ${dir})`);
}

async function select<T>(query: string): Promise<T[]> {
  return await (await clickhouse.query({ query, format: 'JSONEachRow' })).json<T>();
}

function human(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : String(Math.round(n));
}
