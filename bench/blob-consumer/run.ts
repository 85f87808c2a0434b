/**
 * Blob consumer bench: the same rrweb corpus (recorded in Chromium, amplified to many sessions) goes through a real
 * Kafka broker and a real MinIO twice: once as capture's framed messages (the fast path: no rrweb JSON parsing), once
 * as PostHog-style JSON messages (the parse-based path: parse + per-event re-stringify + compress). A third run
 * measures memory with many small open sessions.
 *
 *   node bench/blob-consumer/run.ts [--sessions 300] [--open-sessions 1000,10000,100000] [--out FILE]
 *
 * Reports raw rrweb MB per consumer CPU-second for both paths and their ratio, sustained throughput (between the
 * first and the last consumed message: no start-up, no final flush wait), objects, S3 requests and bytes per flush,
 * compression ratio, and peak RSS per open-session count; writes bench/results/blob-consumer-<time>.json.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import Kafka from 'node-rdkafka';
import { buildRecordingMessages } from '../../src/capture/build-messages.ts';
import { parseSnapshotRequest } from '../../src/capture/parse-snapshots.ts';
import { loadConfig } from '../../src/config/index.ts';
import { startLocalKafka } from '../../src/harness/kafka.ts';
import { startLocalMinio } from '../../src/harness/minio.ts';
import { freePort } from '../../src/harness/ports.ts';
import { ensureTopics } from '../../src/kafka/admin.ts';
import { pipelineTopics } from '../../src/kafka/topics.ts';
import { S3BlobStore } from '../../src/storage/s3-blob-store.ts';
import type { Team } from '../../src/teams/team-store.ts';
import { amplify, ensureCorpus, posthogBatches } from '../corpus/corpus.ts';
import { benchArgs } from '../shared/args.ts';
import { outOptionUsage, writeBenchResult } from '../shared/bench-result.ts';
import { minioRequests, requestsBetween } from '../shared/minio-requests.ts';
import { cpuSeconds, peakRssMb } from '../shared/proc-stats.ts';
import { metric, parseMetrics, type Sample } from '../shared/prometheus-text.ts';
import { type ConsumingWindow, SpoolGrowth } from '../shared/spool-growth.ts';

const args = benchArgs(
  `Blob consumer bench: the fast path (capture's framed messages) against the parse-based path (PostHog-style JSON),
then peak memory with many small open sessions. Real Kafka and MinIO on loopback.

  node bench/blob-consumer/run.ts [options]

  --sessions N          sessions of the amplified rrweb corpus per path (default 300)
  --open-sessions LIST  open-session counts for the memory runs (default 1000,10000,100000)
${outOptionUsage('blob-consumer', 24)}
  --help                this text

Prints raw rrweb MB per consumer CPU-second for both paths and their ratio, sustained MB/s between the first and
the last consumed message, objects, S3 requests and bytes per flush, the compression ratio and peak RSS per
open-session count; writes the JSON.`,
  {
    sessions: { type: 'string', default: '300' },
    'open-sessions': { type: 'string', default: '1000,10000,100000' },
    out: { type: 'string', default: '' },
  },
);
const log = (message: string) => process.stderr.write(`[bench:blob] ${message}\n`);
const team: Team = {
  id: 1,
  name: 'bench',
  apiToken: 'phc_bench',
  sessionRecordingEnabled: true,
  retention: '30d',
  consoleLogCaptureEnabled: true,
};

const dir = await mkdtemp(join(tmpdir(), 'replay-bench-blob-'));
const config = loadConfig();
log('starting Kafka and MinIO');
const [kafka, minio] = await Promise.all([
  startLocalKafka(config, { dir: join(dir, 'kafka') }),
  startLocalMinio(config, { dir: join(dir, 'minio') }),
]);
await ensureTopics(kafka.brokers, pipelineTopics(4));
const store = new S3BlobStore({
  bucket: 'bench',
  endpoint: minio.endpoint,
  region: minio.region,
  forcePathStyle: true,
  credentials: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
});
await store.client.send(new CreateBucketCommand({ Bucket: 'bench' }));

async function produce(topic: string, records: { key: string; value: Buffer }[]): Promise<void> {
  await ensureTopics(kafka.brokers, [
    { name: topic, partitions: 4, config: { 'max.message.bytes': String(21 * 1024 * 1024) } },
  ]);
  const producer = new Kafka.Producer({
    'metadata.broker.list': kafka.brokers,
    dr_cb: true,
    'message.max.bytes': 21 * 1024 * 1024,
    'linger.ms': 20,
    'queue.buffering.max.kbytes': 1024 * 1024,
  });
  await new Promise<void>((resolve, reject) => producer.connect({}, (e) => (e ? reject(e) : resolve())));
  producer.setPollInterval(10);
  await new Promise<void>((resolve, reject) => {
    let pending = records.length;
    producer.on('delivery-report', (error) => (error ? reject(error) : --pending === 0 && resolve()));
    for (const r of records) producer.produce(topic, null, r.value, r.key);
  });
  await new Promise<void>((resolve) => producer.disconnect(() => resolve()));
}

/** Runs `replay blob-consumer` on a topic until `rawBytes` are consumed and flushed; returns its measurements. */
async function runConsumer(
  topic: string,
  rawBytes: number,
  env: Record<string, string> = {},
  until: 'flushed' | 'consumed' = 'flushed',
) {
  const port = await freePort();
  const spoolDir = join(dir, `spool-${topic}`);
  const child = spawn(process.execPath, ['bin/replay.js', 'blob-consumer'], {
    env: {
      ...process.env,
      LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
      KAFKA_BROKERS: kafka.brokers,
      BLOB_TOPIC: topic,
      BLOB_GROUP_ID: `bench-${randomUUID()}`,
      // Each run is an instance of its own: a stable id shared with a run still shutting down would fence it.
      BLOB_TRANSACTIONAL_ID: `bench-${randomUUID()}`,
      BLOB_STORE: 's3',
      S3_BUCKET: 'bench',
      S3_ENDPOINT: minio.endpoint,
      S3_ACCESS_KEY_ID: minio.accessKeyId,
      S3_SECRET_ACCESS_KEY: minio.secretAccessKey,
      BLOB_SPOOL_DIR: spoolDir,
      BLOB_CONSUMER_PORT: String(port),
      BLOB_FLUSH_INTERVAL_MS: '5000',
      BLOB_MIN_FREE_DISK_BYTES: '0',
      ...env,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const metricsUrl = `http://127.0.0.1:${port}/metrics`;
  const read = async () =>
    fetch(metricsUrl).then(
      (r) => r.text(),
      () => '',
    );
  // Throughput counts from the moment the consumer is up: process start-up (loading modules) is not consuming.
  while ((await read()) === '') await new Promise((resolve) => setTimeout(resolve, 50));
  const baselineCpu = await cpuSeconds(child.pid!);
  const requestsBefore = await minioRequests(minio);
  const started = performance.now();
  // Sustained throughput: from the first append to the spool to the last, so neither the group join nor the wait for
  // the final flush is in it.
  const spool = new SpoolGrowth(spoolDir, child.pid!);
  spool.start();
  let samples: Sample[] = [];
  let consumingWindow: ConsumingWindow | undefined;
  for (;;) {
    // Once a second: each scrape of /metrics costs the consumer ~10 ms of CPU (default metrics, histograms), and at
    // 10 a second it was a fifth of the fast path's CPU in this bench (Prometheus scrapes every 15 s).
    await new Promise((resolve) => setTimeout(resolve, 1000));
    samples = parseMetrics(await read());
    const consumed = metric(samples, 'blob_raw_bytes_total') >= rawBytes;
    if (consumed && !consumingWindow) {
      consumingWindow = spool.window();
      spool.stop();
    }
    if (consumed && until === 'consumed') break;
    if (consumed && metric(samples, 'blob_batch_sessions') === 0 && metric(samples, 'blob_flush_in_progress') === 0) {
      break;
    }
    if (performance.now() - started > 600_000) throw new Error(`consumer on ${topic} did not finish`);
  }
  const seconds = (performance.now() - started) / 1000;
  const cpu = (await cpuSeconds(child.pid!)) - baselineCpu;
  const peakRss = Math.round(await peakRssMb(child.pid!));
  const s3Requests = requestsBetween(requestsBefore, await minioRequests(minio));
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
  const sustainedMB = ((consumingWindow?.share ?? 0) * rawBytes) / 1e6;
  return {
    seconds,
    cpuSeconds: cpu,
    peakRssMb: peakRss,
    flushes: metric(samples, 'blob_flushes_total'),
    objects: metric(samples, 'blob_objects_total'),
    objectBytes: metric(samples, 'blob_object_bytes_total'),
    rows: metric(samples, 'blob_summary_rows_total'),
    s3Requests,
    // null when everything was appended between two samples (2 ms apart): too short to tell. Per CPU-second only
    // over 10 clock ticks (0.1 CPU-s): fewer are noise.
    sustained: consumingWindow
      ? {
          seconds: Number(consumingWindow.seconds.toFixed(3)),
          rawMB: Number(sustainedMB.toFixed(1)),
          wallMBps: Number((sustainedMB / consumingWindow.seconds).toFixed(1)),
          cpuSeconds: Number(consumingWindow.cpuSeconds.toFixed(2)),
          rawMBPerCoreSecond:
            consumingWindow.cpuSeconds >= 0.1 ? Number((sustainedMB / consumingWindow.cpuSeconds).toFixed(1)) : null,
        }
      : null,
  };
}

log('preparing messages from the rrweb corpus');
const corpus = await ensureCorpus();
const framed: { key: string; value: Buffer }[] = [];
const legacy: { key: string; value: Buffer }[] = [];
let rawBytes = 0;
for (const session of amplify(corpus, { count: args.number('sessions'), seed: 7, startMs: Date.UTC(2026, 10, 22) })) {
  for (const body of posthogBatches(session, { token: team.apiToken })) {
    const request = parseSnapshotRequest(body);
    for (const parsed of request.sessions) {
      for (const m of buildRecordingMessages(
        { ...parsed, team },
        { maxMessageBytes: 20 * 1024 * 1024, requestId: 'b', capturedAt: Date.now() },
      )) {
        framed.push({ key: m.key, value: m.value });
        rawBytes += m.header.rawBytes;
      }
    }
    for (const item of JSON.parse(body.toString()) as { properties: Record<string, unknown> }[]) {
      const data = JSON.stringify({
        event: '$snapshot_items',
        properties: { ...item.properties, $snapshot_items: item.properties.$snapshot_data, $snapshot_data: undefined },
      });
      legacy.push({
        key: session.sessionId,
        value: Buffer.from(
          JSON.stringify({ team_id: team.id, distinct_id: session.distinctId, uuid: randomUUID(), data }),
        ),
      });
    }
  }
}
log(
  `${framed.length} framed messages, ${legacy.length} JSON messages, ${(rawBytes / 1e6).toFixed(1)} MB of raw rrweb JSONL`,
);
await produce('bench-framed', framed);
await produce('bench-json', legacy);

log('fast path: framed messages');
const fast = await runConsumer('bench-framed', rawBytes);
log('parse-based path: JSON messages');
const parsed = await runConsumer('bench-json', rawBytes);

const memory: Record<string, { peakRssMb: number; seconds: number }> = {};
for (const count of args['open-sessions']!.split(',').map(Number)) {
  const topic = `bench-open-${count}`;
  const records: { key: string; value: Buffer }[] = [];
  let raw = 0;
  for (let i = 0; i < count; i++) {
    const sessionId = `open-${count}-${i}`;
    const events = [
      {
        type: 3,
        timestamp: Date.UTC(2026, 10, 22) + i,
        data: { source: 1, positions: [{ x: i % 800, y: i % 600, id: 4, timeOffset: 0 }] },
      },
    ];
    const [m] = buildRecordingMessages(
      {
        team,
        sessionId,
        distinctId: 'u',
        snapshotSource: 'web',
        snapshotLibrary: 'web',
        events: events.map((event) => ({ windowId: 'w', event })),
      },
      { maxMessageBytes: 20 * 1024 * 1024, requestId: 'o', capturedAt: Date.now() },
    );
    records.push({ key: sessionId, value: m!.value });
    raw += m!.header.rawBytes;
  }
  await produce(topic, records);
  log(`memory: ${count} open sessions in one batch`);
  // One flush holds every session: the batch stays open until everything is read.
  const run = await runConsumer(
    topic,
    raw,
    {
      BLOB_FLUSH_INTERVAL_MS: '600000',
      BLOB_FLUSH_MAX_BYTES: String(1024 * 1024 * 1024),
    },
    'consumed',
  );
  memory[String(count)] = { peakRssMb: run.peakRssMb, seconds: Number(run.seconds.toFixed(1)) };
}

await Promise.all([kafka.stop(), minio.stop()]);
await rm(dir, { recursive: true, force: true });

const perCore = (r: typeof fast) => Number((rawBytes / 1e6 / r.cpuSeconds).toFixed(1));
const result = {
  date: new Date().toISOString(),
  machine: '2 cores shared by broker, MinIO and the consumer',
  corpusSessions: Number(args.sessions),
  rawMB: Number((rawBytes / 1e6).toFixed(1)),
  fastPath: {
    ...fast,
    rawMBPerCoreSecond: perCore(fast),
    wallMBps: Number((rawBytes / 1e6 / fast.seconds).toFixed(1)),
  },
  parsePath: {
    ...parsed,
    rawMBPerCoreSecond: perCore(parsed),
    wallMBps: Number((rawBytes / 1e6 / parsed.seconds).toFixed(1)),
  },
  speedupPerCore: Number((perCore(fast) / perCore(parsed)).toFixed(2)),
  objectsPerFlush: Number((fast.objects / fast.flushes).toFixed(2)),
  s3RequestsPerFlush: Number(
    (Object.values(fast.s3Requests).reduce((n, count) => n + count, 0) / fast.flushes).toFixed(2),
  ),
  objectMBPerFlush: Number((fast.objectBytes / 1e6 / fast.flushes).toFixed(2)),
  compressionRatio: Number((rawBytes / fast.objectBytes).toFixed(2)),
  memoryByOpenSessions: memory,
};
const file = await writeBenchResult('blob-consumer', result, args.out);
console.log(JSON.stringify(result, null, 2));
log(`wrote ${file}`);
