/**
 * UBA ingest throughput: behaviours per second per core from capture's `POST /api/v1/behaviors` to a row that
 * `SELECT count() FROM user_behaviors` sees (DESIGN §5: ≥ 50k behaviours/s per core), and what each stage costs.
 *
 *   node bench/uba/throughput.ts [--behaviors 500000] [--quick] [--cpu-prof] ...   (--help for all options)
 *
 * Everything is real and on loopback: a Kafka broker, PostgreSQL (the team token) and a redis-server from the harness
 * (src/harness), chDB in a temporary directory, and the three stages as child processes — `replay capture`,
 * `replay realtime-sink`, and the behaviour sink (bench/uba/behaviors-sink-host.ts: `runBehaviorsSink` as the command
 * runs it, plus an endpoint for the bench's count query, since chDB locks its directory to one process). Each
 * stage's CPU is utime + stime of its own process from /proc/<pid>/stat, all threads, so the load generator (this
 * process) is not counted; the broker's and redis-server's are reported beside.
 *
 * After a warm-up (two requests, waited for in ClickHouse and Redis, so consumer-group joins and first-use costs
 * stay out), N behaviours go out in requests of 500 (alternately gzip and plain JSON, a mix of actions, Zipf users
 * and items, extra_data, watches with growing durations) from a few concurrent clients. T0 is the first request;
 * "queryable" is when `count()` for the tenant reaches everything sent; "realtime complete" is when every per-minute
 * counter in Redis holds its expected count. Writes bench/results/uba-throughput-<date>.json.
 */
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { createClient } from 'redis';
import { loadConfig } from '../../src/config/index.ts';
import { ManagedProcess } from '../../src/harness/child-process.ts';
import { freePort, LOOPBACK } from '../../src/harness/ports.ts';
import { startLocalStack } from '../../src/harness/stack.ts';
import { openPostgres, postgresTargetFromUrl } from '../../src/postgres/database.ts';
import { migratePostgres } from '../../src/postgres/migrations.ts';
import { TeamStore } from '../../src/teams/team-store.ts';
import { minuteSuffix, realtimeMetricsKey } from '../../src/uba/realtime/keys.ts';
import { benchArgs } from '../shared/args.ts';
import { outOptionUsage, writeBenchResult } from '../shared/bench-result.ts';
import { ascending, percentile } from '../shared/percentile.ts';
import { prng } from '../shared/prng.ts';
import { cpuSeconds, peakRssMb } from '../shared/proc-stats.ts';
import { metric, parseMetrics, type Sample } from '../shared/prometheus-text.ts';
import { newestProfile, type ProfileSummary, profileLine, summariseProfile } from './cpu-profile.ts';

const usage = `UBA ingest throughput: capture POST /api/v1/behaviors → Kafka → behaviour sink → chDB (and the realtime
sink → Redis), each stage its own process, real broker and redis-server on loopback.

  node bench/uba/throughput.ts [options]

  --behaviors N     behaviours to send after the warm-up (default 500000; 100000 with --quick)
  --quick           100k behaviours, bounded to 1 minute
  --batch N         behaviours per request (default 500; capture accepts at most 1000)
  --concurrency N   concurrent clients (default 4)
  --partitions N    partitions of user_behaviors (default 4)
  --max-seconds S   bound on the whole run (default 300; 60 with --quick); stops and reports what it reached
  --cpu-prof        run each stage with node --cpu-prof and summarise where its main thread went
                    (profiling slows the stages: take the throughput figures from a run without it)
  --seed N          seed of the generated behaviours (default 1)
  --keep            keep the temporary directory (service logs, chDB, profiles)
${outOptionUsage('uba-throughput', 20)}
  --help            this text

Prints one table (each figure beside its DESIGN §5 target where there is one) and writes the JSON.`;

const args = benchArgs(usage, {
  behaviors: { type: 'string', default: '' },
  quick: { type: 'boolean', default: false },
  batch: { type: 'string', default: '500' },
  concurrency: { type: 'string', default: '4' },
  partitions: { type: 'string', default: '4' },
  'max-seconds': { type: 'string', default: '' },
  'cpu-prof': { type: 'boolean', default: false },
  seed: { type: 'string', default: '1' },
  keep: { type: 'boolean', default: false },
  out: { type: 'string', default: '' },
});
const quick = args.quick;
if (args.behaviors === '') args.behaviors = quick ? '100000' : '500000';
if (args['max-seconds'] === '') args['max-seconds'] = quick ? '60' : '300';
const total = Math.floor(args.number('behaviors'));
const batchSize = Math.floor(args.number('batch'));
if (batchSize > 1000) {
  process.stderr.write('error: --batch must be at most 1000 (capture refuses larger requests)\n');
  process.exit(2);
}
const concurrency = Math.floor(args.number('concurrency'));
const partitions = Math.floor(args.number('partitions'));
const maxSeconds = args.number('max-seconds', 20);
const profiling = args['cpu-prof'];
const seed = Math.floor(args.number('seed', 0));

/** DESIGN §5 targets. */
const TARGET_PER_CORE = 50_000;
const TARGET_CPU_PER_MILLION = 1e6 / TARGET_PER_CORE;
const TARGET_INSERTS_PER_SECOND = 1;

const root = fileURLToPath(new URL('../../', import.meta.url));
const benchStart = performance.now();
/** Everything after this is shutdown and reporting (the broker alone may take seconds to stop). */
const deadline = benchStart + (maxSeconds - 8) * 1000;
const elapsed = () => `${((performance.now() - benchStart) / 1000).toFixed(0).padStart(3)} s`;
const log = (message: string) => process.stderr.write(`[bench:uba-throughput ${elapsed()}] ${message}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
// A last resort: a run that hangs past its bound still ends (the services die with it: pdeathsig).
setTimeout(
  () => {
    log('run exceeded its time bound by 30 s; exiting');
    process.exit(3);
  },
  (maxSeconds + 30) * 1000,
).unref();

// ---- /proc and /metrics ----

/** CPU seconds of each live thread of a process, by thread id, with its name (comm). */
async function threadCpu(pid: number): Promise<Map<number, { name: string; cpu: number }>> {
  const threads = new Map<number, { name: string; cpu: number }>();
  for (const tid of await readdir(`/proc/${pid}/task`).catch(() => [])) {
    const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => undefined);
    if (!stat) continue; // exited meanwhile
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const name = Number(tid) === pid ? 'main thread' : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    threads.set(Number(tid), { name, cpu: (Number(fields[11]) + Number(fields[12])) / 100 });
  }
  return threads;
}

/**
 * Where a process's CPU went between two thread snapshots, by thread name (numbers folded: "rdk:broker1" and
 * "rdk:broker2" are one group). CPU of threads that started and ended in between is only in the process total: it is
 * reported as "(threads gone)".
 */
function threadShares(
  start: Map<number, { name: string; cpu: number }>,
  end: Map<number, { name: string; cpu: number }>,
  processCpu: number,
): { name: string; seconds: number }[] {
  const byName = new Map<string, number>();
  for (const [tid, t] of end) {
    const name = t.name.replace(/\d+/g, '#');
    byName.set(name, (byName.get(name) ?? 0) + t.cpu - (start.get(tid)?.cpu ?? 0));
  }
  const counted = [...byName.values()].reduce((n, v) => n + v, 0);
  if (processCpu - counted > 0.05) byName.set('(threads gone)', processCpu - counted);
  return [...byName]
    .filter(([, seconds]) => seconds >= 0.01)
    .sort((a, b) => b[1] - a[1])
    .map(([name, seconds]) => ({ name, seconds: Number(seconds.toFixed(2)) }));
}

async function scrape(port: number): Promise<Sample[]> {
  const res = await fetch(`http://${LOOPBACK}:${port}/metrics`);
  return parseMetrics(await res.text());
}

// ---- services ----

const dir = await mkdtemp(join(tmpdir(), 'replay-bench-uba-throughput-'));
const config = loadConfig();
log(`starting Kafka (${partitions} partitions), PostgreSQL and redis-server in ${dir}`);
const stack = await startLocalStack(config, {
  dir,
  kafka: true,
  minio: false,
  // A real PostgreSQL, as in production: PGlite would put a WASM Postgres inside capture (its memory and CPU).
  postgres: true,
  redis: true,
  topicPartitions: partitions,
  onProgress: log,
});
const databaseUrl = stack.postgres!.url;
const team = await (async () => {
  const db = await openPostgres(postgresTargetFromUrl(databaseUrl));
  try {
    await migratePostgres(db);
    return await new TeamStore(db).create({
      name: 'bench-uba',
      apiToken: 'phc_bench_uba_throughput',
      sessionRecordingEnabled: true,
      retention: '30d',
      consoleLogCaptureEnabled: false,
    });
  } finally {
    await db.close();
  }
})();
const kafka = stack.kafka!;
const redisServer = stack.redis!;
const tenant = team.id;

interface Stage {
  readonly name: string;
  readonly process: ManagedProcess;
  readonly profileDir: string;
}

async function startStage(name: string, script: string[], env: Record<string, string>): Promise<Stage> {
  const profileDir = join(dir, `profile-${name}`);
  if (profiling) await mkdir(profileDir, { recursive: true });
  const process_ = new ManagedProcess({
    name,
    command: process.execPath,
    args: [...(profiling ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []), ...script],
    cwd: root,
    env: { LOG_LEVEL: 'info', KAFKA_BROKERS: kafka.brokers, ...env },
    logFile: join(dir, `${name}.log`),
  });
  return { name, process: process_, profileDir };
}

const ports = {
  capture: await freePort(),
  sink: await freePort(),
  sinkQuery: await freePort(),
  realtime: await freePort(),
};
const capture = await startStage('capture', ['bin/replay.js', 'capture'], {
  CAPTURE_HOST: LOOPBACK,
  CAPTURE_PORT: String(ports.capture),
  DATABASE_URL: databaseUrl,
  CAPTURE_TRANSACTIONAL_ID: `bench-uba-capture-${process.pid}`,
});
const sink = await startStage('behaviors-sink', ['bench/uba/behaviors-sink-host.ts'], {
  CLICKHOUSE_URL: `chdb://${join(dir, 'clickhouse')}`,
  BEHAVIORS_HOST: LOOPBACK,
  BEHAVIORS_PORT: String(ports.sink),
  BENCH_QUERY_PORT: String(ports.sinkQuery),
});
const realtime = await startStage('realtime-sink', ['bin/replay.js', 'realtime-sink'], {
  REDIS_URL: redisServer.url,
  REALTIME_HOST: LOOPBACK,
  REALTIME_PORT: String(ports.realtime),
});
const stages = [capture, sink, realtime];

// ---- the behaviours (generated while the stages start) ----

const SCENARIOS: readonly [string, number][] = [
  ['home_feed', 0.45],
  ['search', 0.2],
  ['item_detail', 0.2],
  ['cart', 0.1],
  ['push', 0.05],
];
const DEVICES = ['mobile', 'mobile', 'mobile', 'desktop', 'tablet'] as const;
const OSES = { mobile: ['iOS', 'Android'], desktop: ['Windows', 'macOS', 'Linux'], tablet: ['iPadOS', 'Android'] };
const CITIES = ['Berlin', 'Paris', 'Madrid', 'Warsaw', 'Milan', 'Lyon', 'Munich', 'Porto', 'Vienna', 'Prague'];
const QUERIES = ['shoes', 'rain jacket', 'usb-c cable', 'coffee grinder', 'yoga mat', 'desk lamp', 'headphones'];
const USERS = 50_000;
const ITEMS = 20_000;

/** Zipf(s) over 0..n-1 by inverse CDF: a few hot users and items, a long tail. */
function zipf(n: number, s: number, random: () => number): () => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    sum += 1 / (i + 1) ** s;
    cdf[i] = sum;
  }
  return () => {
    const x = random() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

interface Body {
  readonly bytes: Buffer;
  readonly rawBytes: number;
  readonly behaviors: number;
  readonly gzip: boolean;
}

/** Expected per-minute counters in Redis: key → field (action) → count. */
const expectedCounters = new Map<string, Map<string, number>>();
const actionMix = new Map<string, number>();

/**
 * `count` behaviours as visits: a user (Zipf) in a scenario sees 1-4 items (Zipf), may click one, then watch it
 * (a view updated 1-3 times with a growing watch_duration), like, share, add it to the cart and order. Timestamps
 * run over the last 30 minutes (the realtime per-minute counters expire 2 h after their minute).
 */
function generateBodies(count: number): Body[] {
  const random = prng(seed);
  const user = zipf(USERS, 0.8, random);
  const item = zipf(ITEMS, 1.05, random);
  const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)]!;
  const hex8 = () =>
    Math.floor(random() * 2 ** 32)
      .toString(16)
      .padStart(8, '0');
  const uuid = () => {
    const [a, b, c, d] = [hex8(), hex8(), hex8(), hex8()];
    return `${a}-${b.slice(0, 4)}-4${b.slice(5)}-${(8 + (Number.parseInt(c[0]!, 16) & 3)).toString(16)}${c.slice(1, 4)}-${c.slice(4)}${d}`;
  };
  const scenario = () => {
    let x = random();
    for (const [name, p] of SCENARIOS) {
      x -= p;
      if (x < 0) return name;
    }
    return SCENARIOS[0]![0];
  };
  const startMs = Date.now() - 30 * 60_000;
  const spanMs = 29 * 60_000;
  const all: object[] = [];
  let views = 0;
  while (all.length < count) {
    const u = user();
    const device = DEVICES[u % DEVICES.length]!;
    const ctx = {
      device_type: device,
      os: OSES[device][u % OSES[device].length]!,
      location: CITIES[u % CITIES.length]!,
      ip: `10.${(u >> 16) & 255}.${(u >> 8) & 255}.${u & 255}`,
    };
    const inExperiment = u % 10 < 3;
    const sessionId = uuid();
    const sc = scenario();
    const requestId = uuid();
    let ts = startMs + Math.floor((all.length * spanMs) / count);
    const push = (
      action: string,
      itemId: string,
      extra: Record<string, unknown>,
      more: Record<string, unknown> = {},
    ) => {
      ts += 200 + Math.floor(random() * 3000);
      all.push({
        user_id: `u${u}`,
        item_id: itemId,
        action_type: action,
        scenario_id: sc,
        timestamp: ts,
        context: ctx,
        extra_data: extra,
        session_id: sessionId,
        ...(inExperiment && { experiment_id: 'rank-v2', experiment_group: u % 2 ? 'treatment' : 'control' }),
        ...(random() < 0.5 && { event_id: uuid() }),
        ...more,
      });
    };
    const shown = Array.from({ length: 1 + Math.floor(random() * 4) }, () => `item-${item()}`);
    const page = 1 + Math.floor(random() * 5);
    for (const [position, id] of shown.entries()) {
      push('impression', id, {
        position: position + 1,
        page,
        request_id: requestId,
        rank_model: 'gbdt-v7',
        ...(sc === 'search' && { query: pick(QUERIES) }),
      });
    }
    if (random() >= 0.4) continue;
    const clicked = pick(shown);
    push('click', clicked, { position: shown.indexOf(clicked) + 1, page, request_id: requestId });
    if (random() < 0.5) {
      const viewId = `v-${u}-${views++}`;
      const length = 30 + Math.floor(random() * 600);
      let watched = 0;
      for (let k = 1 + Math.floor(random() * 3); k > 0; k--) {
        watched = Math.min(length, watched + 5 + Math.floor(random() * 120));
        push(
          'view',
          clicked,
          { quality: pick(['480p', '720p', '1080p']), autoplay: random() < 0.3 },
          { view_id: viewId, watch_duration: watched, completion_rate: Number((watched / length).toFixed(3)) },
        );
      }
    }
    if (random() < 0.12) push('like', clicked, {});
    if (random() < 0.04) push('share', clicked, { channel: pick(['copy_link', 'whatsapp', 'email']) });
    if (random() < 0.15) {
      const quantity = 1 + Math.floor(random() * 3);
      const price = (5 + random() * 195).toFixed(2);
      push('add_cart', clicked, { price, currency: 'EUR', quantity });
      if (random() < 0.45) {
        push('order', clicked, {
          order_id: uuid(),
          price,
          currency: 'EUR',
          quantity,
          ...(random() < 0.2 && { coupon: { code: 'WINTER10', discount: 0.1 } }),
        });
      }
    }
  }
  all.length = count;
  for (const b of all as { action_type: string; scenario_id: string; timestamp: number }[]) {
    actionMix.set(b.action_type, (actionMix.get(b.action_type) ?? 0) + 1);
    // Timestamps lie before capture's clock, so each counts at its own minute (keys.ts effectiveTime).
    const key = realtimeMetricsKey(tenant, b.scenario_id, minuteSuffix(b.timestamp));
    const fields = expectedCounters.get(key) ?? new Map<string, number>();
    fields.set(b.action_type, (fields.get(b.action_type) ?? 0) + 1);
    expectedCounters.set(key, fields);
  }
  const bodies: Body[] = [];
  for (let i = 0; i < all.length; i += batchSize) {
    const json = Buffer.from(JSON.stringify(all.slice(i, i + batchSize)));
    const gzip = bodies.length % 2 === 1;
    bodies.push({
      bytes: gzip ? gzipSync(json, { level: 6 }) : json,
      rawBytes: json.length,
      behaviors: Math.min(batchSize, all.length - i),
      gzip,
    });
  }
  return bodies;
}

const warmupRequests = 2;
log(`generating ${total} behaviours (+${warmupRequests * batchSize} warm-up) in requests of ${batchSize}`);
const allBodies = generateBodies(total + warmupRequests * batchSize);
const warmup = allBodies.slice(0, warmupRequests);
const bodies = allBodies.slice(warmupRequests);
const warmupBehaviors = warmup.reduce((n, b) => n + b.behaviors, 0);
const target = warmupBehaviors + total;
const rawBytes = bodies.reduce((n, b) => n + b.rawBytes, 0);
log(
  `${bodies.length} requests, ${(rawBytes / 1e6).toFixed(1)} MB of JSON (${(rawBytes / total).toFixed(0)} B per behaviour), ` +
    `${(bodies.filter((b) => b.gzip).reduce((n, b) => n + b.bytes.length, 0) / 1e6).toFixed(1)} MB gzip for half of them; ` +
    `mix ${[...actionMix].map(([a, n]) => `${a} ${((n / (target || 1)) * 100).toFixed(0)} %`).join(', ')}`,
);

const captureBase = `http://${LOOPBACK}:${ports.capture}`;
const ready = (port: number, path = '/readyz') =>
  fetch(`http://${LOOPBACK}:${port}${path}`).then(
    (r) => r.ok,
    () => false,
  );
await Promise.all([
  capture.process.waitUntil(() => ready(ports.capture), 60_000, 'ready'),
  sink.process.waitUntil(() => ready(ports.sink), 60_000, 'ready'),
  realtime.process.waitUntil(() => ready(ports.realtime), 60_000, 'ready'),
]);
log('stages ready');

const redis = createClient({ url: redisServer.url });
redis.on('error', () => {});
await redis.connect();

// ---- the load ----

const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
interface Reply {
  readonly status: number;
  readonly body: string;
  readonly retryAfter: string | undefined;
}
function post(body: Body): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${captureBase}/api/v1/behaviors`,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': String(body.bytes.length),
          authorization: `Bearer ${team.apiToken}`,
          ...(body.gzip && { 'content-encoding': 'gzip' }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            retryAfter: res.headers['retry-after'],
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(body.bytes);
  });
}

const load = {
  accepted: 0,
  rejectedBehaviors: 0,
  retries: 0,
  failures: 0,
  errors: [] as string[],
  latency: { gzip: [] as number[], plain: [] as number[] },
};

/** Sends `list` with `concurrency` clients; a 429/503 (nothing written) is sent again after its Retry-After. */
async function send(list: readonly Body[], until: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, list.length) }, async () => {
      while (next < list.length && performance.now() < until) {
        const body = list[next++]!;
        for (;;) {
          const t0 = performance.now();
          const reply = await post(body).catch(
            (error: Error): Reply => ({ status: 0, body: error.message, retryAfter: undefined }),
          );
          (body.gzip ? load.latency.gzip : load.latency.plain).push(performance.now() - t0);
          if (reply.status === 200) {
            const answer = JSON.parse(reply.body) as { accepted: number; rejected: unknown[] };
            load.accepted += answer.accepted;
            load.rejectedBehaviors += answer.rejected.length;
            if (answer.rejected.length > 0 && load.errors.length < 5) load.errors.push(reply.body.slice(0, 300));
            break;
          }
          if ((reply.status === 429 || reply.status === 503) && performance.now() < until) {
            load.retries++;
            await sleep(Math.min(1000, Number(reply.retryAfter ?? 0) * 1000 || 100));
            continue;
          }
          load.failures++;
          if (load.errors.length < 5) load.errors.push(`${reply.status} ${reply.body.slice(0, 300)}`);
          break;
        }
      }
    }),
  );
}

const count = async (): Promise<number> => {
  const res = await fetch(`http://${LOOPBACK}:${ports.sinkQuery}/count?tenant=${tenant}`);
  return Number(((await res.json()) as { rows: number }).rows);
};

/**
 * How many behaviours the per-minute counters hold, how many counters differ from what was sent, and how many hold
 * more (a double count; fewer is only "not yet").
 */
async function redisCounters(): Promise<{ counted: number; expected: number; wrong: number; over: number }> {
  let counted = 0;
  let expected = 0;
  let wrong = 0;
  let over = 0;
  const keys = [...expectedCounters.keys()];
  const hashes = await Promise.all(keys.map((key) => redis.hGetAll(key)));
  keys.forEach((key, i) => {
    for (const [field, n] of expectedCounters.get(key)!) {
      const got = Number(hashes[i]![field] ?? 0);
      counted += got;
      expected += n;
      if (got !== n) wrong++;
      if (got > n) over++;
    }
  });
  return { counted, expected, wrong, over };
}

async function commandStats(): Promise<Map<string, { calls: number; usec: number }>> {
  const text = await redis.info('commandstats');
  const stats = new Map<string, { calls: number; usec: number }>();
  for (const m of text.matchAll(/cmdstat_([\w|]+):calls=(\d+),usec=(\d+)/g)) {
    stats.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) });
  }
  return stats;
}

log(`warm-up: ${warmupRequests} requests (${warmupBehaviors} behaviours)`);
await send(warmup, deadline);
const warmupDeadline = Math.min(deadline, performance.now() + 60_000);
for (;;) {
  const [rows, counters] = await Promise.all([count(), redisCounters()]);
  if (rows >= warmupBehaviors && counters.counted >= warmupBehaviors) break;
  if (performance.now() > warmupDeadline)
    throw new Error(`warm-up not stored: ${rows} rows, ${counters.counted} counted`);
  await sleep(100);
}
load.accepted = 0;
load.latency = { gzip: [], plain: [] };

const pids = {
  capture: capture.process.pid!,
  sink: sink.process.pid!,
  realtime: realtime.process.pid!,
  kafka: kafka.process.pid!,
  redis: redisServer.process.pid!,
};
type PidName = keyof typeof pids;
const snapshotCpu = async () =>
  Object.fromEntries(
    await Promise.all(Object.entries(pids).map(async ([name, pid]) => [name, await cpuSeconds(pid)] as const)),
  ) as Record<PidName, number>;

const snapshotThreads = async () =>
  Object.fromEntries(
    await Promise.all(Object.entries(pids).map(async ([name, pid]) => [name, await threadCpu(pid)] as const)),
  ) as Record<PidName, Map<number, { name: string; cpu: number }>>;
const threadsEnd: Partial<Record<PidName, Map<number, { name: string; cpu: number }>>> = {};

const snapshotRss = async () =>
  Object.fromEntries(
    await Promise.all(Object.entries(pids).map(async ([name, pid]) => [name, await peakRssMb(pid)] as const)),
  ) as Record<PidName, number>;
/** Peak RSS once started and warmed up: what the load adds is the difference to the final peak. */
const rssWarm = await snapshotRss();
const before = {
  cpu: await snapshotCpu(),
  threads: await snapshotThreads(),
  sink: await scrape(ports.sink),
  realtime: await scrape(ports.realtime),
  commands: await commandStats(),
};
log(`sending ${total} behaviours with ${concurrency} clients`);
const loadAverageBefore = loadavg()[0]!;
const benchCpuBefore = process.cpuUsage();
const t0 = performance.now();
const cpuEnd: Partial<Record<PidName, number>> = {};
let tAck: number | undefined;
let tQueryable: number | undefined;
let tRealtime: number | undefined;
let realtimeCheck = { counted: 0, expected: 0, wrong: 0, over: 0 };
let rowsSeen = 0;

const sending = send(bodies, deadline).then(async () => {
  tAck = performance.now();
  cpuEnd.capture = await cpuSeconds(pids.capture);
  threadsEnd.capture = await threadCpu(pids.capture);
  log(`all ${load.accepted} acknowledged in ${((tAck - t0) / 1000).toFixed(1)} s`);
});
let countQueries = 0;
/**
 * Each sink's /metrics is polled every 500 ms, and every 100 ms once it reports 90 % of the behaviours (the lag
 * figures' resolution); ClickHouse and Redis are asked only once the metrics report everything. Scraping costs the
 * stage a little CPU (prom-client), so it stays rare while the stage is busy.
 */
const progress = { sink: 0, realtime: 0, sinkPolledAt: 0, realtimePolledAt: 0 };
const due = (done: number, polledAt: number) => performance.now() - polledAt >= (done >= 0.9 * target ? 100 : 500);
while ((tQueryable === undefined || tRealtime === undefined) && performance.now() < deadline) {
  await sleep(50);
  const dead = stages.find((stage) => !stage.process.running);
  if (dead) {
    const tail = (await readFile(dead.process.logFile, 'utf8').catch(() => '')).trimEnd().split('\n').slice(-12);
    throw new Error(`${dead.name} exited during the run; last lines of its log:\n${tail.join('\n')}`);
  }
  if (tQueryable === undefined && due(progress.sink, progress.sinkPolledAt)) {
    progress.sinkPolledAt = performance.now();
    progress.sink = metric(await scrape(ports.sink), 'behaviors_rows_inserted_total', { table: 'user_behaviors' });
    if (progress.sink >= target) {
      countQueries++;
      rowsSeen = await count();
      if (rowsSeen >= target) {
        tQueryable = performance.now();
        cpuEnd.sink = await cpuSeconds(pids.sink);
        threadsEnd.sink = await threadCpu(pids.sink);
        log(`count() = ${rowsSeen} at ${((tQueryable - t0) / 1000).toFixed(1)} s`);
      }
    }
  }
  if (tRealtime === undefined && due(progress.realtime, progress.realtimePolledAt)) {
    progress.realtimePolledAt = performance.now();
    progress.realtime = metric(await scrape(ports.realtime), 'realtime_messages_applied_total');
    if (progress.realtime >= target) {
      realtimeCheck = await redisCounters();
      if (realtimeCheck.counted >= realtimeCheck.expected) {
        tRealtime = performance.now();
        cpuEnd.realtime = await cpuSeconds(pids.realtime);
        threadsEnd.realtime = await threadCpu(pids.realtime);
        cpuEnd.redis = await cpuSeconds(pids.redis);
        log(`Redis counters complete at ${((tRealtime - t0) / 1000).toFixed(1)} s`);
      }
    }
  }
}
await sending;
const tEnd = performance.now();
const benchCpu = process.cpuUsage(benchCpuBefore);
const loadAverageAfter = loadavg()[0]!;
const complete = tQueryable !== undefined && tRealtime !== undefined && load.accepted === total;
if (!complete) log('time bound reached before everything was stored: the figures below are partial');
if (tQueryable === undefined) rowsSeen = await count();
if (tRealtime === undefined) realtimeCheck = await redisCounters();

// ---- figures ----

const now = await snapshotCpu();
const threadsNow = await snapshotThreads();
for (const name of Object.keys(pids) as PidName[]) {
  cpuEnd[name] ??= now[name];
  threadsEnd[name] ??= threadsNow[name];
}
const after = {
  capture: await scrape(ports.capture),
  sink: await scrape(ports.sink),
  realtime: await scrape(ports.realtime),
  commands: await commandStats(),
  summary: (await (await fetch(`http://${LOOPBACK}:${ports.sinkQuery}/summary?tenant=${tenant}`)).json()) as {
    behaviors: { rows: number; ids: number };
    watches: { rows: number; live: number };
    parts: number;
  },
};
const rss = await snapshotRss();
const delta = (name: string, labels: Record<string, string> = {}, which: 'sink' | 'realtime' = 'sink') =>
  metric(after[which], name, labels) - metric(before[which], name, labels);

const stored = Math.max(0, Math.min(rowsSeen, target) - warmupBehaviors);
const cpu = Object.fromEntries(
  (Object.keys(pids) as PidName[]).map((name) => [name, cpuEnd[name]! - before.cpu[name]]),
) as Record<PidName, number>;
const threads = Object.fromEntries(
  (Object.keys(pids) as PidName[]).map((name) => [
    name,
    threadShares(before.threads[name], threadsEnd[name]!, cpu[name]),
  ]),
) as Record<PidName, { name: string; seconds: number }[]>;
const perMillion = (seconds: number, n = stored) => (n > 0 ? (seconds / n) * 1e6 : Number.NaN);
const pathCpu = cpu.capture + cpu.sink;
const queryableS = ((tQueryable ?? tEnd) - t0) / 1000;
const ackS = ((tAck ?? tEnd) - t0) / 1000;
const realtimeS = ((tRealtime ?? tEnd) - t0) / 1000;
const realtimeApplied = Math.max(0, Math.min(realtimeCheck.counted, target) - warmupBehaviors);

const inserts = {
  user_behaviors: delta('behaviors_inserts_total', { table: 'user_behaviors' }),
  user_watches: delta('behaviors_inserts_total', { table: 'user_watches' }),
};
const rowsInserted = {
  user_behaviors: delta('behaviors_rows_inserted_total', { table: 'user_behaviors' }),
  user_watches: delta('behaviors_rows_inserted_total', { table: 'user_watches' }),
};
const insertSeconds = {
  user_behaviors: delta('behaviors_insert_duration_seconds_sum', { table: 'user_behaviors' }),
  user_watches: delta('behaviors_insert_duration_seconds_sum', { table: 'user_watches' }),
};
const scripts = delta('realtime_scripts_total', {}, 'realtime');
const flushes = delta('realtime_flush_duration_seconds_count', {}, 'realtime');
const updates = delta('realtime_updates_applied_total', {}, 'realtime');
/** Mean size of a user_behaviors record as the sink read it (the BehaviorRecord JSON). */
const recordBytes = delta('consumer_bytes_total') / (delta('consumer_messages_total') || 1);
const flushSecondsSum = delta('realtime_flush_duration_seconds_sum', {}, 'realtime');

/** Calls made by the realtime scripts: every command Redis counted but the script calls themselves and ours. */
const NOT_SCRIPT = new Set(['evalsha', 'eval', 'hgetall', 'info', 'ping', 'hello', 'client|setinfo', 'select']);
const commandDeltas = new Map<string, number>();
for (const [name, stat] of after.commands) {
  const calls = stat.calls - (before.commands.get(name)?.calls ?? 0);
  if (calls > 0) commandDeltas.set(name, calls);
}
const scriptRuns = (commandDeltas.get('evalsha') ?? 0) + (commandDeltas.get('eval') ?? 0);
const scriptUsec =
  (after.commands.get('evalsha')?.usec ?? 0) -
  (before.commands.get('evalsha')?.usec ?? 0) +
  ((after.commands.get('eval')?.usec ?? 0) - (before.commands.get('eval')?.usec ?? 0));
const callsInScripts = [...commandDeltas].filter(([name]) => !NOT_SCRIPT.has(name)).reduce((n, [, c]) => n + c, 0);

const pct = (values: number[], p: number) => percentile(ascending(values), p);

// ---- logs and profiles ----

const stageLogs: Record<string, { warnings: number; errors: number; examples: string[] }> = {};
for (const stage of stages) {
  const text = await readFile(stage.process.logFile, 'utf8').catch(() => '');
  const lines = text.split('\n');
  const warnings = lines.filter((l) => / warn {2}\[/.test(l));
  const errors = lines.filter((l) => / error \[/.test(l) || /^(Error|TypeError|RangeError)|Unhandled/.test(l));
  stageLogs[stage.name] = {
    warnings: warnings.length,
    errors: errors.length,
    examples: [...errors, ...warnings].slice(0, 5).map((l) => l.slice(0, 300)),
  };
}

await redis.close();
agent.destroy();
// SIGTERM: each stage shuts down as in production, and --cpu-prof writes its profile on that exit.
await Promise.all(stages.map((s) => s.process.stop(15_000)));
const profiles: Record<string, ProfileSummary | undefined> = {};
if (profiling) {
  // performance.now() and V8's profile timestamps both count CLOCK_MONOTONIC; only the offset differs.
  const offsetUs = Number(process.hrtime.bigint() / 1000n) - performance.now() * 1000;
  const ends: Record<string, number> = {
    capture: tAck ?? tEnd,
    'behaviors-sink': tQueryable ?? tEnd,
    'realtime-sink': tRealtime ?? tEnd,
  };
  for (const stage of stages) {
    const file = await newestProfile(stage.profileDir);
    const window = { fromUs: t0 * 1000 + offsetUs, toUs: ends[stage.name]! * 1000 + offsetUs };
    profiles[stage.name] = file ? await summariseProfile(file, window) : undefined;
  }
}
await stack.stop();
if (!args.keep) await rm(dir, { recursive: true, force: true });

// ---- report ----

const round = (value: number, digits = 1) => (Number.isFinite(value) ? Number(value.toFixed(digits)) : null);
const k = (value: number) => (Number.isFinite(value) ? `${(value / 1000).toFixed(1)}k` : 'n/a');
const verdict = (ok: boolean) => (ok ? 'met' : '**not met**');
const perCore = stored / pathCpu;
const perCoreWithBroker = stored / (pathCpu + cpu.kafka);

const rows: [string, string, string, string][] = [
  [
    'behaviours acknowledged by capture',
    `${load.accepted.toLocaleString('en')} in ${ackS.toFixed(1)} s (${k(load.accepted / ackS)}/s)`,
    '',
    '',
  ],
  [
    'capture → queryable row, wall',
    `${k(stored / queryableS)}/s (count() = N after ${queryableS.toFixed(1)} s)`,
    '',
    '',
  ],
  [
    'behaviours per CPU-second, capture + behaviour sink',
    `${k(perCore)}`,
    `≥ ${k(TARGET_PER_CORE)}/s per core`,
    verdict(perCore >= TARGET_PER_CORE),
  ],
  ['… counting the Kafka broker too', `${k(perCoreWithBroker)}`, '', ''],
  ['CPU-s per million: capture', `${perMillion(cpu.capture).toFixed(1)}`, '', ''],
  ['CPU-s per million: behaviour sink (chDB inside)', `${perMillion(cpu.sink).toFixed(1)}`, '', ''],
  [
    'CPU-s per million: capture + behaviour sink',
    `${perMillion(pathCpu).toFixed(1)}`,
    `≤ ${TARGET_CPU_PER_MILLION.toFixed(0)} (= 50k/s per core)`,
    verdict(perMillion(pathCpu) <= TARGET_CPU_PER_MILLION),
  ],
  ['CPU-s per million: realtime sink', `${perMillion(cpu.realtime, realtimeApplied).toFixed(1)}`, '', ''],
  ['CPU-s per million: Kafka broker', `${perMillion(cpu.kafka).toFixed(1)}`, '', ''],
  ['CPU-s per million: redis-server', `${perMillion(cpu.redis, realtimeApplied).toFixed(1)}`, '', ''],
  ...(['user_behaviors', 'user_watches'] as const).map((table): [string, string, string, string] => [
    `inserts/s into ${table} (rows per insert)`,
    `${(inserts[table] / queryableS).toFixed(2)} (${(rowsInserted[table] / (inserts[table] || 1)).toFixed(0)} rows, ${((insertSeconds[table] / (inserts[table] || 1)) * 1000).toFixed(0)} ms each)`,
    `≤ ${TARGET_INSERTS_PER_SECOND} per second per table`,
    verdict(inserts[table] / queryableS <= TARGET_INSERTS_PER_SECOND),
  ]),
  [
    'realtime sink: behaviours applied to Redis, wall',
    `${k(realtimeApplied / realtimeS)}/s (${realtimeApplied.toLocaleString('en')} in ${realtimeS.toFixed(1)} s)`,
    '',
    '',
  ],
  [
    'realtime: flushes/s, scripts per flush, behaviours per script',
    `${(flushes / realtimeS).toFixed(1)}, ${(scripts / (flushes || 1)).toFixed(2)}, ${(realtimeApplied / (scripts || 1)).toFixed(0)}`,
    '',
    '',
  ],
  [
    'realtime: Redis commands per script run (per behaviour)',
    `${(callsInScripts / (scriptRuns || 1)).toFixed(0)} (${(callsInScripts / (realtimeApplied || 1)).toFixed(2)}), ${(scriptUsec / (scriptRuns || 1) / 1000).toFixed(1)} ms in Redis per script`,
    '',
    '',
  ],
  [
    'lag after the last ack: count() = N / Redis counters complete',
    `${tQueryable && tAck ? ((tQueryable - tAck) / 1000).toFixed(2) : 'n/a'} s / ${tRealtime && tAck ? ((tRealtime - tAck) / 1000).toFixed(2) : 'n/a'} s`,
    '',
    '',
  ],
  [
    'peak RSS (after warm-up): capture / behaviour sink / realtime sink / broker',
    `${(['capture', 'sink', 'realtime', 'kafka'] as const)
      .map((n) => `${rss[n].toFixed(0)} (${rssWarm[n].toFixed(0)})`)
      .join(' / ')} MB`,
    '',
    '',
  ],
  [
    'request latency p50 / p99: gzip, plain',
    `${pct(load.latency.gzip, 50).toFixed(0)} / ${pct(load.latency.gzip, 99).toFixed(0)} ms, ${pct(load.latency.plain, 50).toFixed(0)} / ${pct(load.latency.plain, 99).toFixed(0)} ms`,
    '',
    '',
  ],
  [
    'ClickHouse holds each behaviour once (rows, distinct event ids)',
    `${(after.summary.behaviors.rows - warmupBehaviors).toLocaleString('en')} rows, ${(after.summary.behaviors.ids - warmupBehaviors).toLocaleString('en')} ids`,
    'zero lost, zero duplicated',
    verdict(after.summary.behaviors.rows === target && after.summary.behaviors.ids === target),
  ],
  [
    'Redis per-minute counters equal what was sent',
    tRealtime === undefined
      ? `incomplete at the time bound: ${realtimeApplied.toLocaleString('en')} of ${total.toLocaleString('en')} counted, ${realtimeCheck.over} counters over`
      : `${realtimeCheck.wrong} of ${[...expectedCounters.values()].reduce((n, f) => n + f.size, 0)} counters off`,
    'zero lost, zero duplicated',
    tRealtime === undefined
      ? realtimeCheck.over === 0
        ? 'none doubled; rest not reached'
        : verdict(false)
      : verdict(realtimeCheck.wrong === 0),
  ],
];

const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i]!.length), 6));
const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
console.log(
  `\nUBA throughput, ${new Date().toISOString().slice(0, 10)}, ${stored.toLocaleString('en')} behaviours, ` +
    `${concurrency} clients × ${batchSize} per request, ${partitions} partitions${profiling ? ', PROFILED (slower)' : ''}` +
    `${complete ? '' : ', INCOMPLETE (time bound)'}; load average ${loadAverageBefore.toFixed(1)} → ${loadAverageAfter.toFixed(1)}\n`,
);
console.log(line(['figure', 'measured', 'DESIGN §5 target', '']));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const r of rows) console.log(line(r));
console.log(
  `\nCPU-seconds: capture ${cpu.capture.toFixed(2)}, behaviour sink ${cpu.sink.toFixed(2)}, realtime sink ` +
    `${cpu.realtime.toFixed(2)}, broker ${cpu.kafka.toFixed(2)}, redis-server ${cpu.redis.toFixed(2)}, load generator ` +
    `${((benchCpu.user + benchCpu.system) / 1e6).toFixed(2)}; ` +
    `run ${((performance.now() - benchStart) / 1000).toFixed(0)} s`,
);
for (const [name, list] of Object.entries(threads)) {
  console.log(
    `threads ${name}: ${list
      .slice(0, 6)
      .map((t) => `${t.name} ${t.seconds.toFixed(2)}`)
      .join(', ')} (CPU-s)`,
  );
}
for (const [name, summary] of Object.entries(profiles)) {
  if (!summary) continue;
  console.log(
    `profile ${name}: main thread ${summary.busySeconds.toFixed(1)} s busy${summary.windowed ? ' while measured' : ' (whole process life)'}; by module: ${profileLine(summary.modules)}; ` +
      `by function: ${profileLine(summary.functions, 5)}`,
  );
}
for (const [name, l] of Object.entries(stageLogs)) {
  if (l.warnings + l.errors > 0)
    console.log(`${name} log: ${l.errors} errors, ${l.warnings} warnings, e.g. ${l.examples[0]}`);
}
if (load.failures + load.rejectedBehaviors + load.retries > 0) {
  console.log(
    `load: ${load.failures} failed requests, ${load.rejectedBehaviors} behaviours refused, ${load.retries} retries; ${load.errors.join(' | ')}`,
  );
}

const result = {
  date: new Date().toISOString(),
  machine: '2 cores shared by the broker, redis-server, the three stages and the load generator',
  loadAverage: { before: round(loadAverageBefore, 2), after: round(loadAverageAfter, 2) },
  loadGeneratorCpuSeconds: round((benchCpu.user + benchCpu.system) / 1e6, 2),
  complete,
  options: { behaviors: total, batch: batchSize, concurrency, partitions, quick, profiling, seed },
  input: {
    requests: bodies.length,
    jsonBytesPerBehavior: round(rawBytes / total, 0),
    kafkaRecordBytes: round(recordBytes, 0),
    gzipShare: 0.5,
    actionMix: Object.fromEntries([...actionMix].map(([a, n]) => [a, round(n / target, 3)])),
  },
  seconds: { acknowledged: round(ackS, 2), queryable: round(queryableS, 2), realtimeComplete: round(realtimeS, 2) },
  lagAfterLastAckSeconds: {
    clickhouse: tQueryable && tAck ? round((tQueryable - tAck) / 1000, 2) : null,
    redis: tRealtime && tAck ? round((tRealtime - tAck) / 1000, 2) : null,
  },
  behaviorsPerSecondWall: round(stored / queryableS, 0),
  behaviorsPerCpuSecond: {
    captureAndBehaviorSink: round(perCore, 0),
    withBroker: round(perCoreWithBroker, 0),
    capture: round(stored / cpu.capture, 0),
    behaviorSink: round(stored / cpu.sink, 0),
    realtimeSink: round(realtimeApplied / cpu.realtime, 0),
    target: TARGET_PER_CORE,
    met: perCore >= TARGET_PER_CORE,
  },
  cpuSeconds: Object.fromEntries(Object.entries(cpu).map(([n, s]) => [n, round(s, 2)])),
  cpuSecondsByThread: threads,
  cpuSecondsPerMillion: {
    capture: round(perMillion(cpu.capture), 2),
    behaviorSink: round(perMillion(cpu.sink), 2),
    captureAndBehaviorSink: round(perMillion(pathCpu), 2),
    realtimeSink: round(perMillion(cpu.realtime, realtimeApplied), 2),
    kafka: round(perMillion(cpu.kafka), 2),
    redis: round(perMillion(cpu.redis, realtimeApplied), 2),
  },
  clickhouse: {
    inserts,
    insertsPerSecond: {
      user_behaviors: round(inserts.user_behaviors / queryableS, 2),
      user_watches: round(inserts.user_watches / queryableS, 2),
    },
    rowsPerInsert: {
      user_behaviors: round(rowsInserted.user_behaviors / (inserts.user_behaviors || 1), 0),
      user_watches: round(rowsInserted.user_watches / (inserts.user_watches || 1), 0),
    },
    meanInsertMs: {
      user_behaviors: round((insertSeconds.user_behaviors / (inserts.user_behaviors || 1)) * 1000, 0),
      user_watches: round((insertSeconds.user_watches / (inserts.user_watches || 1)) * 1000, 0),
    },
    countQueries,
    stored: after.summary,
    warmupRows: warmupBehaviors,
  },
  realtime: {
    flushes,
    scripts,
    scriptsPerFlush: round(scripts / (flushes || 1), 2),
    behaviorsPerScript: round(realtimeApplied / (scripts || 1), 0),
    updatesApplied: updates,
    meanFlushMs: round((flushSecondsSum / (flushes || 1)) * 1000, 1),
    redisScriptRuns: scriptRuns,
    redisCallsPerScript: round(callsInScripts / (scriptRuns || 1), 1),
    redisCallsPerBehavior: round(callsInScripts / (realtimeApplied || 1), 2),
    redisMsPerScript: round(scriptUsec / (scriptRuns || 1) / 1000, 2),
    commandCalls: Object.fromEntries(commandDeltas),
    counters: realtimeCheck,
  },
  capture: {
    behaviorsCounted: metric(after.capture, 'capture_behaviors_total'),
    rejections: metric(after.capture, 'capture_rejections_total'),
    meanProduceMs: round(
      (metric(after.capture, 'capture_produce_duration_seconds_sum') /
        (metric(after.capture, 'capture_produce_duration_seconds_count') || 1)) *
        1000,
      1,
    ),
  },
  peakRssMb: Object.fromEntries(Object.entries(rss).map(([n, v]) => [n, round(v, 0)])),
  peakRssAfterWarmupMb: Object.fromEntries(Object.entries(rssWarm).map(([n, v]) => [n, round(v, 0)])),
  requestLatencyMs: Object.fromEntries(
    (['gzip', 'plain'] as const).map((e) => [
      e,
      { p50: round(pct(load.latency[e], 50)), p99: round(pct(load.latency[e], 99)), n: load.latency[e].length },
    ]),
  ),
  load: {
    failures: load.failures,
    rejectedBehaviors: load.rejectedBehaviors,
    retries: load.retries,
    errors: load.errors,
  },
  logs: stageLogs,
  profiles: Object.fromEntries(
    Object.entries(profiles).map(([n, p]) => [
      n,
      p && {
        busySeconds: round(p.busySeconds, 2),
        windowed: p.windowed,
        modules: p.modules.map((m) => ({ name: m.name, share: round(m.share, 3) })),
        functions: p.functions.map((f) => ({ name: f.name, share: round(f.share, 3) })),
      },
    ]),
  ),
  runSeconds: round((performance.now() - benchStart) / 1000, 0),
};
log(`wrote ${await writeBenchResult('uba-throughput', result, args.out)}`);
process.exit(0);
