/**
 * Kafka client bench: node-rdkafka (the project's data-path client) against @confluentinc/kafka-javascript (both of
 * its APIs) and kafkajs, on one local Kafka broker started by the project's harness, in one run.
 *
 * Per client and round, in its own process (worker.ts): produce N keyed JSONL messages (acks=all, idempotent, LZ4
 * batches, every acknowledgement awaited) to a fresh topic, then read them back from the beginning in a fresh group.
 * Rounds rotate the client order; the table shows medians. In the first round each worker also does a short feature
 * run (zstd, cooperative-sticky, a consume-transform-produce transaction with sendOffsetsToTransaction,
 * read_committed). This process owns the broker and checks the results with node-rdkafka (log end offsets, committed
 * offsets, bytes on disk). Bounded in count and time; stops by itself.
 *
 * Run with bench/kafka-clients/run.sh. Env: BENCH_SCALE (message-count factor, default 1), BENCH_ROUNDS (default 5),
 * BENCH_CLIENTS (comma list of client ids), BENCH_BUDGET_S (time budget of the measured rounds, default 150),
 * BENCH_OUT (JSON path).
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Kafka from 'node-rdkafka';
import { loadConfig } from '../../src/config/index.ts';
import { startLocalKafka } from '../../src/harness/kafka.ts';
import { ensureTopics } from '../../src/kafka/admin.ts';
import type { Check, ConsumeResult, FeatureChecks, ProduceResult } from './lib.ts';
import { errorText } from './lib.ts';
import { makeCorpus } from './payload.ts';
import { committedOffsets, highWatermarkSum, sameOffsets, topicDiskBytes } from './probe.ts';
import { rdkafkaClient } from './rdkafka-api.ts';
import type { WorkerJob, WorkerResult } from './worker.ts';

const here = dirname(fileURLToPath(import.meta.url));
const started = Date.now();
const scale = Number(process.env.BENCH_SCALE ?? '1');
const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? '5'));
const budgetMs = Number(process.env.BENCH_BUDGET_S ?? '150') * 1000;
const CLIENTS = ['node-rdkafka', 'confluent-rdkafka', 'confluent-kafkajs', 'kafkajs'];
const clientIds = process.env.BENCH_CLIENTS?.split(',').filter(Boolean) ?? CLIENTS;
const PHASE_MS = 30_000;
const FEATURE_MS = 45_000;
const PARTITIONS = 4;
const SESSIONS = 1000;

// Watchdog: whatever happens, the process ends (the broker dies with it through pdeathsig; workers are killed below).
setTimeout(
  () => {
    console.error('kafka-clients bench: hard time limit reached, exiting');
    process.exit(2);
  },
  budgetMs + clientIds.length * (FEATURE_MS + 30_000) + 60_000,
).unref();

const workloads = [
  { name: '64KiB', valueBytes: 64 * 1024, count: Math.max(10, Math.round(6000 * scale)), distinctValues: 48 },
  { name: '1KiB', valueBytes: 1024, count: Math.max(10, Math.round(100_000 * scale)), distinctValues: 1024 },
].map((w) => ({ ...w, seed: 0xc0ffee ^ w.valueBytes }));

const topicFor = (client: string, workload: string, round: number) => `bench-${client}-${workload}-r${round}`;

/** One client, one workload, one round. */
interface Run {
  readonly client: string;
  readonly workload: string;
  readonly round: number;
  produce?: ProduceResult;
  consume?: ConsumeResult;
  /** Sum of the topic's high watermarks after the run: exactly N means no duplicate. */
  logMessages?: number;
  /** Log-segment bytes on the broker / value bytes in the log. */
  diskRatio?: number;
  notes: string[];
}

function runWorker(job: WorkerJob, jobFile: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(here, 'worker.ts'), jobFile], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const timer = setTimeout(() => {
      console.error(`worker ${job.client}: over its time limit, killing it`);
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) console.error(`worker ${job.client}: exited with ${code ?? signal}`);
      resolve();
    });
  });
}

function median(values: number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

interface Summary {
  readonly client: string;
  readonly workload: string;
  readonly rounds: number;
  readonly produceMBps: number;
  readonly produceMBpsRange: [number, number];
  readonly produceMsgps: number;
  readonly produceMBperCpuS: number;
  readonly consumeMBps: number;
  readonly consumeMBpsRange: [number, number];
  readonly consumeMsgps: number;
  readonly consumeMBperCpuS: number;
  readonly joinSeconds: number;
  readonly diskRatio: number;
  readonly notes: string[];
}

function summarize(client: string, workload: string, runs: Run[]): Summary {
  const p = runs.flatMap((r) => (r.produce?.complete ? [r.produce] : []));
  const c = runs.flatMap((r) => (r.consume?.complete ? [r.consume] : []));
  const mbps = (x: { bytes: number; seconds: number }) => x.bytes / 1e6 / x.seconds;
  const range = (xs: number[]): [number, number] => [Math.min(...xs), Math.max(...xs)];
  return {
    client,
    workload,
    rounds: runs.length,
    produceMBps: median(p.map(mbps)),
    produceMBpsRange: range(p.map(mbps)),
    produceMsgps: median(p.map((x) => x.messages / x.seconds)),
    produceMBperCpuS: median(p.map((x) => x.bytes / 1e6 / (x.cpuSeconds ?? Number.NaN))),
    consumeMBps: median(c.map(mbps)),
    consumeMBpsRange: range(c.map(mbps)),
    consumeMsgps: median(c.map((x) => x.messages / x.seconds)),
    consumeMBperCpuS: median(c.map((x) => x.bytes / 1e6 / (x.cpuSeconds ?? Number.NaN))),
    joinSeconds: median(c.map((x) => x.joinSeconds)),
    diskRatio: median(runs.map((r) => r.diskRatio ?? Number.NaN)),
    notes: [
      ...new Set(runs.flatMap((r) => r.notes.map((n) => `r${r.round}: ${n}`))),
      ...(p.length < runs.length ? [`${p.length}/${runs.length} complete produce runs`] : []),
      ...(c.length < runs.length ? [`${c.length}/${runs.length} complete consume runs`] : []),
    ],
  };
}

const num = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '-');
const int = (value: number) => (Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '-');
const spread = ([lo, hi]: [number, number]) => (Number.isFinite(lo) ? ` (${lo.toFixed(0)}–${hi.toFixed(0)})` : '');
const mark = (check: Check | undefined) => (check?.ok === true ? 'yes' : check?.ok === false ? 'NO' : '?');

function table(summaries: Summary[], results: WorkerResult[]): string {
  const lines = [
    '| client | workload | produce MB/s (min–max) | produce msg/s | produce MB/CPU-s | consume MB/s (min–max) | consume msg/s | consume MB/CPU-s | join s | disk/raw | notes |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const s of summaries) {
    lines.push(
      `| ${s.client} | ${s.workload} | ${num(s.produceMBps)}${spread(s.produceMBpsRange)} | ${int(s.produceMsgps)} | ` +
        `${num(s.produceMBperCpuS)} | ${num(s.consumeMBps)}${spread(s.consumeMBpsRange)} | ${int(s.consumeMsgps)} | ` +
        `${num(s.consumeMBperCpuS)} | ${num(s.joinSeconds, 2)} | ${num(s.diskRatio, 2)} | ${s.notes.join('; ')} |`,
    );
  }
  lines.push(
    '',
    '| client | version | engine | cooperative-sticky | transactions + sendOffsets | read_committed | zstd |',
  );
  lines.push('|---|---|---|---|---|---|---|');
  for (const r of results) {
    const f = r.features;
    lines.push(
      r.error
        ? `| ${r.client} | not loaded: ${r.error} | | | | | |`
        : `| ${r.client} | ${r.version} | ${r.engine} | ${mark(f?.cooperativeSticky)} | ${mark(f?.transactions)} | ` +
            `${mark(f?.readCommitted)} | ${mark(f?.zstd)} |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'kafka-clients-bench-'));
  const config = loadConfig();
  const loadBefore = loadavg();
  console.log(
    `starting Kafka (heap ${config.kafkaHeapMb} MiB) in ${dir}; load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`,
  );
  const kafka = await startLocalKafka(config, { dir });
  try {
    const big = { 'max.message.bytes': String(20 * 1024 * 1024) };
    await ensureTopics(kafka.brokers, [
      { name: 'bench-warmup', partitions: PARTITIONS, config: big },
      ...clientIds.flatMap((id) => [
        ...workloads.flatMap((w) =>
          Array.from({ length: rounds }, (_, r) => ({
            name: topicFor(id, w.name, r + 1),
            partitions: PARTITIONS,
            config: big,
          })),
        ),
        { name: `feat-${id}-out`, partitions: 1, config: big },
        { name: `feat-${id}-zstd`, partitions: 1, config: big },
      ]),
    ]);

    // Warm the broker (JIT, page cache, group coordinator) with an untimed run, so the first client is not penalised.
    const warm = rdkafkaClient(Kafka, { id: 'warmup', label: 'warmup', version: '' }, kafka.brokers);
    const warmCount = Math.max(50, Math.round(600 * scale));
    await warm.produce('bench-warmup', makeCorpus(64 * 1024, 16, SESSIONS, 1), warmCount, Date.now() + 30_000);
    await warm.consume('bench-warmup', 'bench-warmup', warmCount, Date.now() + 30_000);

    const results = new Map<string, WorkerResult>();
    const runs: Run[] = [];
    const deadline = started + budgetMs;
    for (let round = 1; round <= rounds; round++) {
      // Rotate the order so that no client is always first (or always after the same neighbour).
      const order = clientIds.map((_, i) => clientIds[(i + round - 1) % clientIds.length]!);
      for (const id of order) {
        if (round > 1 && Date.now() >= deadline) {
          console.log(`round ${round}: time budget spent, ${id} skipped`);
          continue;
        }
        if (round > 1 && results.get(id)?.error) continue;
        console.log(`round ${round}, client ${id}:`);
        const job: WorkerJob = {
          client: id,
          brokers: kafka.brokers,
          sessions: SESSIONS,
          workloads: workloads.map((w) => ({ ...w, topic: topicFor(id, w.name, round) })),
          ...(round === 1
            ? {
                features: {
                  source: topicFor(id, '1KiB', 1),
                  out: `feat-${id}-out`,
                  zstd: `feat-${id}-zstd`,
                  group: `feat-${id}`,
                },
              }
            : {}),
          phaseMs: PHASE_MS,
          featureMs: FEATURE_MS,
          deadline: Math.max(deadline, Date.now() + 2 * PHASE_MS),
          out: join(dir, `${id}-r${round}.result.json`),
        };
        const jobFile = join(dir, `${id}-r${round}.job.json`);
        await writeFile(jobFile, JSON.stringify(job));
        await runWorker(job, jobFile, 4 * PHASE_MS + FEATURE_MS + 60_000);
        const result = await readFile(job.out, 'utf8').then(
          (text) => JSON.parse(text) as WorkerResult,
          () =>
            ({
              client: id,
              error: 'the worker wrote no result',
              produce: {},
              consume: {},
              lz4Ratio: {},
            }) as WorkerResult,
        );
        if (round === 1) results.set(id, result);
        if (result.error) continue;

        for (const w of workloads) {
          const run: Run = { client: id, workload: w.name, round, notes: [] };
          runs.push(run);
          const p = result.produce[w.name];
          const c = result.consume[w.name];
          if (p && 'skipped' in p) run.notes.push(`produce ${p.skipped}`);
          else if (p) {
            run.produce = p;
            if (p.error) run.notes.push(`produce error: ${p.error}`);
            if (!p.complete) run.notes.push(`produced ${p.messages}/${w.count}`);
          }
          if (c && 'skipped' in c) run.notes.push(`consume ${c.skipped}`);
          else if (c) {
            run.consume = c;
            if (!c.complete) run.notes.push(`consumed ${c.messages}`);
          }
          const topic = topicFor(id, w.name, round);
          try {
            run.logMessages = await highWatermarkSum(kafka.brokers, topic, PARTITIONS);
            run.diskRatio = (await topicDiskBytes(join(dir, 'data'), topic)) / (run.logMessages * w.valueBytes);
            if (run.produce && run.logMessages !== run.produce.messages) run.notes.push(`log holds ${run.logMessages}`);
          } catch (error) {
            run.notes.push(`probe failed: ${errorText(error)}`);
          }
        }
        // The transaction's offsets must now be the group's committed offsets (checked from outside the client).
        const f = result.features as FeatureChecks | undefined;
        if (f?.transactions.ok && f.sentOffsets) {
          const committed = await committedOffsets(kafka.brokers, `feat-${id}`, f.sentOffsets).catch(() => undefined);
          f.transactions =
            committed && sameOffsets(f.sentOffsets, committed)
              ? {
                  ok: true,
                  detail: `${f.transactions.detail}; group offsets committed: ${JSON.stringify(committed.partitions)}`,
                }
              : {
                  ok: false,
                  detail: `committed ${JSON.stringify(committed?.partitions)} != sent ${JSON.stringify(f.sentOffsets.partitions)}`,
                };
        }
      }
    }

    const summaries = clientIds
      .filter((id) => !results.get(id)?.error)
      .flatMap((id) =>
        workloads.map((w) =>
          summarize(
            id,
            w.name,
            runs.filter((r) => r.client === id && r.workload === w.name),
          ),
        ),
      );
    const clientResults = clientIds.flatMap((id) => (results.has(id) ? [results.get(id)!] : []));
    const totalSeconds = (Date.now() - started) / 1000;
    console.log(`\n${table(summaries, clientResults)}\n`);
    for (const r of clientResults) {
      for (const [name, check] of Object.entries(r.features ?? {})) {
        if (name !== 'sentOffsets') console.log(`${r.client} ${name}: ${(check as Check).detail}`);
      }
    }
    const date = new Date().toISOString();
    const out =
      process.env.BENCH_OUT ?? join(here, '..', 'results', `kafka-clients-${date.replace(/[:.]/g, '-')}.json`);
    await mkdir(dirname(out), { recursive: true });
    const machine = {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      kernel: release(),
      loadAverageBefore: loadBefore,
      loadAverageAfter: loadavg(),
    };
    const report = {
      date,
      machine,
      node: process.version,
      kafka: { version: kafka.version, heapMb: config.kafkaHeapMb, partitions: PARTITIONS },
      scale,
      rounds,
      workloads: workloads.map((w) => ({ ...w, sessions: SESSIONS })),
      summaries,
      clients: clientResults,
      runs,
      totalSeconds,
    };
    await writeFile(out, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`results: ${out} (bench ${totalSeconds.toFixed(0)} s)`);
  } finally {
    await kafka.stop().catch((error: unknown) => console.error(`stopping Kafka: ${errorText(error)}`));
    await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
