/**
 * Capture throughput bench: a real capture process (`replay capture`) in front of a real Kafka broker, loaded from this
 * process over loopback with posthog-js-like gzip uploads built from the rrweb corpus.
 *
 *   node bench/capture/run.ts [--seconds 20] [--concurrency 8] [--sessions 200] [--out FILE]
 *
 * Reports decompressed MB/s (wall clock and per capture CPU-second), requests/s and latency percentiles, and writes
 * the figures to bench/results/capture-<time>.json (or --out FILE).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { loadConfig } from '../../src/config/index.ts';
import { freePort, LOOPBACK } from '../../src/harness/ports.ts';
import { startLocalStack } from '../../src/harness/stack.ts';
import { ensureTopics } from '../../src/kafka/admin.ts';
import { pipelineTopics } from '../../src/kafka/topics.ts';
import { openPostgres, postgresTargetFromUrl } from '../../src/postgres/database.ts';
import { migratePostgres } from '../../src/postgres/migrations.ts';
import { TeamStore } from '../../src/teams/team-store.ts';
import { amplify, ensureCorpus, posthogBatches } from '../corpus/corpus.ts';
import { benchArgs } from '../shared/args.ts';
import { outOptionUsage, writeBenchResult } from '../shared/bench-result.ts';
import { percentile } from '../shared/percentile.ts';
import { cpuSeconds } from '../shared/proc-stats.ts';

const args = benchArgs(
  `Capture bench: posthog-js-style gzip uploads of the amplified rrweb corpus against a capture process, through a
real Kafka broker and PostgreSQL on loopback.

  node bench/capture/run.ts [options]

  --seconds N      measuring time (default 20)
  --concurrency N  requests in flight (default 8)
  --sessions N     sessions of the amplified corpus to upload (default 200)
  --node-flags=S   flags for the capture process's node, space-separated (e.g. --node-flags="--cpu-prof --trace-gc")
${outOptionUsage('capture', 19)}
  --help           this text

Prints decompressed MB per capture CPU-second, MB/s, request latency percentiles and failures; writes the JSON.`,
  {
    seconds: { type: 'string', default: '20' },
    concurrency: { type: 'string', default: '8' },
    sessions: { type: 'string', default: '200' },
    'node-flags': { type: 'string', default: '' },
    out: { type: 'string', default: '' },
  },
);
const seconds = args.number('seconds');
const concurrency = args.number('concurrency');
const log = (message: string) => process.stderr.write(`[bench:capture] ${message}\n`);

const dir = await mkdtemp(join(tmpdir(), 'replay-bench-capture-'));
const config = loadConfig();
log('starting Kafka and PostgreSQL');
// A real PostgreSQL, as in production: with PGlite, capture compiled a WASM Postgres in V8's background threads
// while it was measured (a third of its CPU-seconds).
const stack = await startLocalStack(config, { dir, kafka: true, minio: false, postgres: true, redis: false });
const kafka = stack.kafka!;
const postgres = stack.postgres!;
await ensureTopics(kafka.brokers, pipelineTopics(4));

const databaseUrl = postgres.url;
const db = await openPostgres(postgresTargetFromUrl(databaseUrl));
await migratePostgres(db);
const team = await new TeamStore(db).create({
  name: 'bench',
  apiToken: 'phc_bench',
  sessionRecordingEnabled: true,
  retention: '30d',
  consoleLogCaptureEnabled: true,
});
await db.close();

log('preparing request bodies from the rrweb corpus');
const corpus = await ensureCorpus();
const bodies: { gzip: Buffer; rawBytes: number }[] = [];
for (const session of amplify(corpus, { count: args.number('sessions'), seed: 1, startMs: Date.UTC(2026, 10, 22) })) {
  for (const json of posthogBatches(session, { token: team.apiToken })) {
    bodies.push({ gzip: gzipSync(json, { level: 6 }), rawBytes: json.length });
  }
}
const totalRaw = bodies.reduce((n, b) => n + b.rawBytes, 0);
log(
  `${bodies.length} bodies, ${(totalRaw / 1e6).toFixed(1)} MB decompressed, ${(bodies.reduce((n, b) => n + b.gzip.length, 0) / 1e6).toFixed(1)} MB gzip`,
);

const port = await freePort();
const nodeFlags = args['node-flags'].split(' ').filter(Boolean);
const child = spawn(process.execPath, [...nodeFlags, 'bin/replay.js', 'capture'], {
  env: {
    ...process.env,
    LOG_LEVEL: 'warn',
    CAPTURE_PORT: String(port),
    KAFKA_BROKERS: kafka.brokers,
    DATABASE_URL: databaseUrl,
    CAPTURE_TEAM_REQUESTS_PER_SECOND: '1000000',
    CAPTURE_SESSION_BURST_BYTES: String(1024 * 1024 * 1024),
  },
  stdio: ['ignore', 'inherit', 'inherit'],
});
const base = `http://${LOOPBACK}:${port}`;
for (let i = 0; i < 200; i++) {
  if (
    await fetch(`${base}/readyz`).then(
      (r) => r.ok,
      () => false,
    )
  )
    break;
  await new Promise((resolve) => setTimeout(resolve, 100));
}

const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
function post(body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${base}/s/`,
      { method: 'POST', agent, headers: { 'content-type': 'text/plain', 'content-length': String(body.length) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

log(`loading for ${seconds} s with ${concurrency} concurrent clients`);
const cpuStart = await cpuSeconds(child.pid!);
const started = performance.now();
const deadline = started + seconds * 1000;
const latencies: number[] = [];
let next = 0;
let okBytes = 0;
let failures = 0;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (performance.now() < deadline) {
      const body = bodies[next++ % bodies.length]!;
      const t0 = performance.now();
      const status = await post(body.gzip);
      latencies.push(performance.now() - t0);
      if (status === 200) okBytes += body.rawBytes;
      else failures++;
    }
  }),
);
const wallSeconds = (performance.now() - started) / 1000;
const captureCpu = (await cpuSeconds(child.pid!)) - cpuStart;
agent.destroy();
child.kill('SIGTERM');
await new Promise((resolve) => child.once('exit', resolve));
await stack.stop();
await rm(dir, { recursive: true, force: true });

latencies.sort((a, b) => a - b);
const result = {
  date: new Date().toISOString(),
  machine: '2 cores (broker, capture and load generator share them)',
  seconds: Number(wallSeconds.toFixed(1)),
  concurrency,
  requests: latencies.length,
  failures,
  requestsPerSecond: Number((latencies.length / wallSeconds).toFixed(1)),
  decompressedMBps: Number((okBytes / 1e6 / wallSeconds).toFixed(1)),
  captureCpuSeconds: Number(captureCpu.toFixed(2)),
  decompressedMBPerCaptureCoreSecond: Number((okBytes / 1e6 / captureCpu).toFixed(1)),
  latencyMs: {
    p50: Number(percentile(latencies, 50).toFixed(1)),
    p99: Number(percentile(latencies, 99).toFixed(1)),
    max: Number(latencies.at(-1)?.toFixed(1)),
  },
};
const file = await writeBenchResult('capture', result, args.out);
console.log(JSON.stringify(result, null, 2));
log(`wrote ${file}`);
