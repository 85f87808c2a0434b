/**
 * End-to-end latency bench: how long after capture answers 200 to a posthog-js upload is the upload playable through
 * the replay API? DESIGN §5: "an event accepted by capture is playable through the API within flush interval + 5 s
 * (p99)".
 *
 *   node bench/end-to-end/latency.ts [--probes 60] [--probe-interval-ms 1500] [--background-sessions 30] ...
 *   node bench/end-to-end/latency.ts --help
 *
 * Starts a real Kafka broker, MinIO and PostgreSQL on loopback (src/harness), and runs capture, the blob consumer
 * (S3 store on MinIO), the ClickHouse sink (chDB) and the replay API in this process, on their production defaults
 * except where a flag says otherwise. Background visitors upload their sessions' 2-second `$snapshot` batches all the
 * time; every probe is the first upload of a fresh session with a unique marker event appended. T0 is when capture
 * answers 200; the probe is playable when `GET .../snapshots?blocks=0-<n>` returns JSONL holding the marker. Writes
 * bench/results/end-to-end-latency-<time>.json.
 */
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { gzipSync } from 'node:zlib';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import type { ClickHouseClient } from '@clickhouse/client';
import { ApiKeyStore } from '../../src/api/api-keys.ts';
import { runApi } from '../../src/cli/api-command.ts';
import { runBlobConsumer } from '../../src/cli/blob-consumer-command.ts';
import { runCapture } from '../../src/cli/capture-command.ts';
import { runSink } from '../../src/cli/sink-command.ts';
import { openClickHouse } from '../../src/clickhouse/client.ts';
import { migrateClickHouse } from '../../src/clickhouse/migrations.ts';
import { loadConfig } from '../../src/config/index.ts';
import { settings } from '../../src/config/settings.ts';
import { startLocalStack } from '../../src/harness/stack.ts';
import type { Logger } from '../../src/logging/logger.ts';
import { openPostgres } from '../../src/postgres/database.ts';
import { migratePostgres } from '../../src/postgres/migrations.ts';
import { S3BlobStore } from '../../src/storage/s3-blob-store.ts';
import { TeamStore } from '../../src/teams/team-store.ts';
import { amplify, ensureCorpus, posthogBatches, type SyntheticSession } from '../corpus/corpus.ts';
import { benchArgs } from '../shared/args.ts';
import { outOptionUsage, writeBenchResult } from '../shared/bench-result.ts';
import { ascending, percentile } from '../shared/percentile.ts';
import { prng } from '../shared/prng.ts';

const defaultFlushMs = settings.blobFlushIntervalMs.parse(undefined, {});
const defaultSinkMs = settings.sinkInsertIntervalMs.parse(undefined, {});

const usage = `End-to-end latency: capture 200 → playable through the replay API.

  node bench/end-to-end/latency.ts [options]

Options (defaults finish in about 2 minutes on 2 cores):
  --probes N                 measured probes (default 60)
  --probe-interval-ms MS     mean gap between probes; each gap is uniform in [0.5, 1.5] x this (default 1500)
  --background-sessions N    concurrent background visitors, each uploading one 2-second batch every 2 s
                             (default 30, i.e. 15 requests/s)
  --flush-interval-ms MS     BLOB_FLUSH_INTERVAL_MS of the blob consumer (default ${defaultFlushMs}, the production default)
  --sink-interval-ms MS      SINK_INSERT_INTERVAL_MS of the ClickHouse sink (default ${defaultSinkMs}, the production default)
  --poll list|session        list: one listing request every poll interval covers every pending probe (bounded load);
                             session: each pending probe polls its own summary (default list)
  --poll-ms MS               poll interval (default 100)
  --probe-timeout-s S        a probe not playable after flush interval + this counts as timed out (default 60)
  --max-seconds S            hard bound on the measuring phase; stops and reports what it has (default 420)
  --seed N                   seed of the probe gaps and synthetic sessions (default 1)
  --verbose                  forward the services' info logs
${outOptionUsage('end-to-end-latency', 29)}
  --help                     this text

Prints a table (absolute latency, and latency minus the flush interval, p50/p90/p99/max) and where the time went
(wait for the flush, upload, Kafka commit, sink, insert, API), and writes the JSON.`;

const args = benchArgs(usage, {
  probes: { type: 'string', default: '60' },
  'probe-interval-ms': { type: 'string', default: '1500' },
  'background-sessions': { type: 'string', default: '30' },
  'flush-interval-ms': { type: 'string', default: String(defaultFlushMs) },
  'sink-interval-ms': { type: 'string', default: String(defaultSinkMs) },
  poll: { type: 'string', default: 'list' },
  'poll-ms': { type: 'string', default: '100' },
  'probe-timeout-s': { type: 'string', default: '60' },
  'max-seconds': { type: 'string', default: '420' },
  seed: { type: 'string', default: '1' },
  verbose: { type: 'boolean', default: false },
  out: { type: 'string', default: '' },
});
const probeCount = Math.floor(args.number('probes', 1));
const probeIntervalMs = args.number('probe-interval-ms', 10);
const backgroundSessions = Math.floor(args.number('background-sessions', 0));
const flushIntervalMs = Math.floor(args.number('flush-interval-ms', 100));
const sinkIntervalMs = Math.floor(args.number('sink-interval-ms', 50));
const pollMs = args.number('poll-ms', 10);
const probeTimeoutMs = args.number('probe-timeout-s', 1) * 1000;
const maxSeconds = args.number('max-seconds', 10);
const seed = Math.floor(args.number('seed', 0));
const pollMode = args.poll;
if (pollMode !== 'list' && pollMode !== 'session') {
  process.stderr.write(`error: --poll must be list or session, got "${pollMode}"\n`);
  process.exit(2);
}

const benchStart = performance.now();
const elapsed = () => `${((performance.now() - benchStart) / 1000).toFixed(0).padStart(3)} s`;
const log = (message: string) => process.stderr.write(`[bench:e2e ${elapsed()}] ${message}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

// ---- what the services tell us: flush and insert times, seen from inside this process ----

interface FlushRecord {
  /** performance.now() when the flush started, its objects were written, and its transaction committed. */
  readonly start: number;
  readonly uploaded: number;
  readonly committed: number;
  readonly keys: readonly string[];
  readonly sessions: number;
  readonly rawBytes: number;
  readonly reason: string;
}
const flushes: FlushRecord[] = [];
let uploadedObjects: { at: number; keys: string[] } | undefined;

interface InsertRecord {
  readonly start: number;
  readonly end: number;
  readonly probeSessions: readonly string[];
}
const inserts: InsertRecord[] = [];

/**
 * A Logger that forwards warnings and errors (everything with --verbose) and notes the blob sink's flush lines: the
 * debug line after the upload names the objects, the info line after the commit gives the flush's duration.
 */
function benchLogger(component: string): Logger {
  const emit = (level: string, message: string, fields?: Record<string, unknown>) => {
    const now = performance.now();
    if (component === 'blob-consumer.sink') {
      if (message === 'objects written; committing') {
        uploadedObjects = { at: now, keys: String(fields?.objects ?? '').split(',') };
      } else if (message === 'flushed') {
        flushes.push({
          start: now - Number(fields?.ms ?? 0),
          uploaded: uploadedObjects?.at ?? Number.NaN,
          committed: now,
          keys: uploadedObjects?.keys ?? [],
          sessions: Number(fields?.sessions ?? 0),
          rawBytes: Number(fields?.rawBytes ?? 0),
          reason: String(fields?.reason ?? ''),
        });
        uploadedObjects = undefined;
      }
    }
    if (level === 'warn' || level === 'error' || (args.verbose && level === 'info')) {
      const extra = fields
        ? Object.entries(fields)
            .map(([k, v]) => ` ${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
            .join('')
        : '';
      process.stderr.write(`[${component} ${elapsed()}] ${level} ${message}${extra}\n`);
    }
  };
  return {
    debug: (message, fields) => emit('debug', message, fields),
    info: (message, fields) => emit('info', message, fields),
    warn: (message, fields) => emit('warn', message, fields),
    error: (message, fields) => emit('error', message, fields),
    child: (name) => benchLogger(`${component}.${name}`),
  };
}

// ---- probes ----

interface SnapshotItem {
  event: string;
  properties: { $snapshot_data: { type: number; timestamp: number; data: unknown }[]; [key: string]: unknown };
}

interface Probe {
  readonly index: number;
  readonly warmup: boolean;
  readonly sessionId: string;
  readonly marker: string;
  readonly events: number;
  readonly firstTimestamp: number;
  readonly body: Buffer;
  state: 'sending' | 'waiting' | 'fetching' | 'visible' | 'rejected' | 'timeout';
  /** performance.now() when capture answered 200, when the API first listed the session, when the JSONL held it. */
  t0: number;
  captureMs: number;
  listedAt?: number;
  visibleAt?: number;
  eventCount?: number;
  jsonlLines?: number;
}
const probes: Probe[] = [];
const bySession = new Map<string, Probe>();

let corpus: Awaited<ReturnType<typeof ensureCorpus>>;

/** A fresh synthetic session whose events start about now (amplify's session `index` for this seed). */
function freshSession(sessionSeed: number, index: number): SyntheticSession {
  let last: SyntheticSession | undefined;
  for (const s of amplify(corpus, { count: index + 1, seed: sessionSeed, startMs: Date.now() - 2000 - index * 250 })) {
    last = s;
  }
  return last!;
}

/** A session's events as posthog-js sends them: one `$snapshot` item per 2-second buffer flush, one request each. */
function snapshotItems(session: SyntheticSession, token: string): SnapshotItem[] {
  return posthogBatches(session, { token }).flatMap((body) => JSON.parse(body.toString()) as SnapshotItem[]);
}

function makeProbe(index: number, token: string, warmup: boolean): Probe {
  const session = freshSession(seed * 7919 + 1, index + 1);
  const [item] = snapshotItems(session, token);
  const events = item!.properties.$snapshot_data;
  const marker = `latency-probe-${randomUUID()}`;
  events.push({
    type: 5,
    timestamp: events.at(-1)!.timestamp + 1,
    data: { tag: 'latency-probe', payload: { marker } },
  });
  return {
    index,
    warmup,
    sessionId: session.sessionId,
    marker,
    events: events.length,
    firstTimestamp: session.firstTimestamp,
    body: gzipSync(JSON.stringify([item])),
    state: 'sending',
    t0: Number.NaN,
    captureMs: Number.NaN,
  };
}

// ---- main ----

const dir = await mkdtemp(join(tmpdir(), 'replay-bench-e2e-'));
const stops: { name: string; stop: () => Promise<unknown> }[] = [];
let aborted = false;
let abortReason = '';
const abort = (reason: string) => {
  if (aborted) return;
  aborted = true;
  abortReason = reason;
  log(`stopping early: ${reason}`);
};
process.on('SIGINT', () => abort('interrupted'));
process.on('SIGTERM', () => abort('terminated'));
// Last resort if shutdown itself hangs: the harness's servers die with us (pdeathsig), the temp dir goes here.
const hardDeadline = setTimeout(
  () => {
    process.stderr.write('[bench:e2e] hard deadline passed; exiting\n');
    rmSync(dir, { recursive: true, force: true });
    process.exit(3);
  },
  (maxSeconds + 240) * 1000,
);
hardDeadline.unref();

const loopDelay = monitorEventLoopDelay({ resolution: 10 });
let exitCode = 0;
try {
  log('starting Kafka, MinIO and PostgreSQL on loopback');
  const stack = await startLocalStack(loadConfig(), { dir, onProgress: log });
  stops.push({ name: 'services', stop: () => stack.stop() });
  const { kafka, minio, postgres } = stack.info;
  log(`Apache Kafka ${kafka!.version}, MinIO ${minio!.version}, PostgreSQL ${postgres!.version}`);

  const config = loadConfig({
    HOME: '/nonexistent',
    KAFKA_BROKERS: kafka!.brokers,
    DATABASE_URL: postgres!.url,
    CAPTURE_PORT: '0',
    BLOB_STORE: 's3',
    BLOB_SPOOL_DIR: join(dir, 'spool'),
    BLOB_FLUSH_INTERVAL_MS: String(flushIntervalMs),
    // The spool's free-disk trigger flushes early on a nearly full disk; this bench measures the interval.
    BLOB_MIN_FREE_DISK_BYTES: '0',
    BLOB_CONSUMER_PORT: '0',
    SINK_INSERT_INTERVAL_MS: String(sinkIntervalMs),
    SINK_PORT: '0',
    API_PORT: '0',
  });

  const db = await openPostgres({ kind: 'postgres', url: postgres!.url });
  stops.push({ name: 'postgres client', stop: () => db.close() });
  await migratePostgres(db);
  const teams = new TeamStore(db);
  const team = (name: string, apiToken: string) =>
    teams.create({ name, apiToken, sessionRecordingEnabled: true, retention: '30d', consoleLogCaptureEnabled: true });
  const probeTeam = await team('latency probes', `phc_probe_${randomUUID().replaceAll('-', '')}`);
  const backgroundTeam = await team('background', `phc_bg_${randomUUID().replaceAll('-', '')}`);
  const { key: apiKey } = await new ApiKeyStore(db).create('latency bench', [probeTeam.id]);

  const store = new S3BlobStore({
    bucket: 'replay-e2e',
    endpoint: minio!.endpoint,
    region: minio!.region,
    forcePathStyle: true,
    credentials: { accessKeyId: minio!.accessKeyId, secretAccessKey: minio!.secretAccessKey },
  });
  await store.client.send(new CreateBucketCommand({ Bucket: store.bucket }));
  stops.push({ name: 'blob store', stop: async () => store.close() });

  const clickhouse = openClickHouse({ kind: 'chdb', path: join(dir, 'chdb') });
  stops.push({ name: 'chDB', stop: () => clickhouse.close() });
  await migrateClickHouse(clickhouse);

  log('starting capture, blob consumer, sink and API in this process');
  const capture = await runCapture(config, benchLogger('capture'), db, kafka!.brokers);
  stops.push({ name: 'capture', stop: () => capture.stop() });
  const blobConsumer = await runBlobConsumer(config, benchLogger('blob-consumer'), {
    brokers: kafka!.brokers,
    store,
  });
  stops.push({ name: 'blob consumer', stop: () => blobConsumer.stop() });
  const sink = await runSink(config, benchLogger('sink'), {
    brokers: kafka!.brokers,
    clickhouse: timedInserts(clickhouse),
  });
  stops.push({ name: 'sink', stop: () => sink.stop() });
  const api = await runApi(config, benchLogger('api'), { db, clickhouse, store });
  stops.push({ name: 'api', stop: () => api.stop() });
  const captureUrl = capture.service.url;
  const apiUrl = api.service.url;

  log('loading the rrweb corpus');
  corpus = await ensureCorpus();

  // ---- background visitors ----
  const background = { requests: 0, failures: 0, skipped: 0, rawBytes: 0, inFlight: 0, sessions: 0, stop: false };
  const backgroundLoop = (async () => {
    if (backgroundSessions === 0) return;
    const visitors: { items: SnapshotItem[]; next: number }[] = [];
    const newVisitor = () => {
      const items = snapshotItems(freshSession(seed * 104_729 + 2, background.sessions++), backgroundTeam.apiToken);
      return { items, next: 0 };
    };
    for (let i = 0; i < backgroundSessions; i++) visitors.push(newVisitor());
    const gapMs = 2000 / backgroundSessions;
    let turn = 0;
    let due = performance.now();
    while (!background.stop) {
      due += gapMs;
      await sleep(Math.max(0, due - performance.now()));
      const slot = turn++ % visitors.length;
      if (visitors[slot]!.next >= visitors[slot]!.items.length) visitors[slot] = newVisitor();
      const visitor = visitors[slot]!;
      const json = JSON.stringify([visitor.items[visitor.next++]]);
      // Bounded: a capture that cannot keep up sheds background load instead of queueing it without end.
      if (background.inFlight >= 16) {
        background.skipped++;
        continue;
      }
      background.inFlight++;
      void post(captureUrl, gzipSync(json))
        .then(
          (status) => {
            if (status === 200) {
              background.requests++;
              background.rawBytes += Buffer.byteLength(json);
            } else background.failures++;
          },
          () => background.failures++,
        )
        .finally(() => background.inFlight--);
    }
  })();

  // ---- polling the API ----
  const apiStats = { requests: 0, ms: 0, errors: 0 };
  const authorization = { authorization: `Bearer ${apiKey}` };
  async function apiGet(path: string): Promise<{ status: number; text: string }> {
    const started = performance.now();
    try {
      const res = await fetch(`${apiUrl}${path}`, { headers: authorization, signal: AbortSignal.timeout(10_000) });
      const text = await res.text();
      return { status: res.status, text };
    } catch (error) {
      apiStats.errors++;
      return { status: 0, text: String(error) };
    } finally {
      apiStats.requests++;
      apiStats.ms += performance.now() - started;
    }
  }
  const sessionPath = (probe: Probe) => `/api/projects/${probeTeam.id}/session_recordings/${probe.sessionId}`;

  /** Fetches the probe's events; playable when the JSONL holds its marker. */
  async function fetchEvents(probe: Probe, blockCount: number): Promise<void> {
    probe.state = 'fetching';
    const last = Math.max(0, Math.min(blockCount, config.apiMaxBlocksPerRequest) - 1);
    const { status, text } = await apiGet(`${sessionPath(probe)}/snapshots?blocks=0-${last}`);
    if (status === 200 && text.includes(probe.marker)) {
      probe.visibleAt = performance.now();
      probe.jsonlLines = text.split('\n').filter((line) => line.length > 0).length;
      probe.state = 'visible';
      if (!probe.warmup) {
        const ms = probe.visibleAt - probe.t0;
        const done = probes.filter((p) => !p.warmup && p.state === 'visible').length;
        log(
          `probe ${String(probe.index + 1).padStart(3)}/${probeCount} playable after ${seconds(ms)} ` +
            `(flush interval ${ms - flushIntervalMs >= 0 ? '+' : '−'}${seconds(Math.abs(ms - flushIntervalMs))}); ` +
            `${done} done, ${flushes.length} flushes, ${inserts.length} inserts so far`,
        );
      }
    } else if (probe.state === 'fetching') {
      probe.state = 'waiting';
    }
  }

  function expire(probe: Probe): boolean {
    if (probe.state !== 'waiting') return false;
    if (performance.now() - probe.t0 < flushIntervalMs + probeTimeoutMs) return false;
    probe.state = 'timeout';
    log(
      `probe ${probe.index + 1} not playable after ${seconds(flushIntervalMs + probeTimeoutMs)}: counted as timed out`,
    );
    return true;
  }

  /** list mode: one listing request per poll interval, whatever the number of pending probes. */
  let pollersStop = false;
  const listPoller = (async () => {
    if (pollMode !== 'list') return;
    while (!pollersStop) {
      const started = performance.now();
      const pending = probes.filter((p) => p.state === 'waiting');
      if (pending.length > 0) {
        const from = Math.min(...pending.map((p) => p.firstTimestamp)) - 60_000;
        const { status, text } = await apiGet(
          `/api/projects/${probeTeam.id}/session_recordings?limit=500&date_from=${new Date(from).toISOString()}`,
        );
        if (status === 200) {
          const listed = (JSON.parse(text) as { results: { id: string; event_count: number; block_count: number }[] })
            .results;
          const now = performance.now();
          for (const session of listed) {
            const probe = bySession.get(session.id);
            if (probe?.state !== 'waiting') continue;
            probe.listedAt ??= now;
            probe.eventCount = session.event_count;
            void fetchEvents(probe, session.block_count);
          }
        }
        for (const probe of pending) expire(probe);
      }
      await sleep(Math.max(0, pollMs - (performance.now() - started)));
    }
  })();

  /** session mode: the probe polls its own summary, then fetches its events. */
  async function pollSession(probe: Probe): Promise<void> {
    while (!pollersStop && (probe.state === 'waiting' || probe.state === 'fetching')) {
      const started = performance.now();
      const { status, text } = await apiGet(sessionPath(probe));
      if (status === 200) {
        const summary = JSON.parse(text) as { event_count: number; block_count: number };
        probe.listedAt ??= performance.now();
        probe.eventCount = summary.event_count;
        await fetchEvents(probe, summary.block_count);
      }
      if (expire(probe)) return;
      await sleep(Math.max(0, pollMs - (performance.now() - started)));
    }
  }

  async function sendProbe(probe: Probe): Promise<void> {
    probes.push(probe);
    bySession.set(probe.sessionId, probe);
    const sent = performance.now();
    const status = await post(captureUrl, probe.body).catch(() => 0);
    probe.t0 = performance.now();
    probe.captureMs = probe.t0 - sent;
    if (status !== 200) {
      probe.state = 'rejected';
      log(`probe ${probe.index + 1}: capture answered ${status}`);
      return;
    }
    probe.state = 'waiting';
    if (pollMode === 'session') void pollSession(probe);
  }

  const unfinished = (list: readonly Probe[]) =>
    list.filter((p) => p.state === 'sending' || p.state === 'waiting' || p.state === 'fetching');
  async function untilSettled(list: readonly Probe[]): Promise<void> {
    while (unfinished(list).length > 0 && !aborted) await sleep(100);
  }

  // Warm-up: the whole path once (group joins, first object, chDB's first insert and query), not measured.
  log(
    `warm-up: background load of ${backgroundSessions} visitors (${(backgroundSessions / 2).toFixed(1)} requests/s) ` +
      'and one unmeasured probe',
  );
  const warmup = makeProbe(-1, probeTeam.apiToken, true);
  await sendProbe(warmup);
  const warmupDeadline = setTimeout(() => abort('the warm-up probe never became playable'), 180_000);
  await untilSettled([warmup]);
  clearTimeout(warmupDeadline);
  if (warmup.state !== 'visible') abort(`the warm-up probe ended ${warmup.state}`);
  else log(`warm-up probe playable after ${seconds(warmup.visibleAt! - warmup.t0)}`);

  // ---- the measured probes ----
  const measureDeadline = setTimeout(() => abort(`--max-seconds ${maxSeconds} reached`), maxSeconds * 1000);
  const measureStart = performance.now();
  const cpuStart = process.cpuUsage();
  loopDelay.enable();
  const flushesBefore = flushes.length;
  const insertsBefore = inserts.length;
  const backgroundBefore = { ...background };
  const apiBefore = { ...apiStats };
  const rand = prng(seed);
  log(
    `measuring: ${probeCount} probes about every ${seconds(probeIntervalMs)}, flush interval ${seconds(flushIntervalMs)}, ` +
      `sink insert interval ${seconds(sinkIntervalMs)}, polling (${pollMode}) every ${pollMs} ms`,
  );
  const measured: Probe[] = [];
  for (let i = 0; i < probeCount && !aborted; i++) {
    const probe = makeProbe(i, probeTeam.apiToken, false);
    measured.push(probe);
    void sendProbe(probe);
    if (i < probeCount - 1) await sleep(probeIntervalMs * (0.5 + rand()));
  }
  await untilSettled(measured);
  const measureMs = performance.now() - measureStart;
  const cpu = process.cpuUsage(cpuStart);
  loopDelay.disable();
  clearTimeout(measureDeadline);
  pollersStop = true;
  background.stop = true;
  await Promise.all([listPoller, backgroundLoop]);
  while (background.inFlight > 0) await sleep(20);

  // ---- where the time went: each probe's flush (by the object its block lives in) and insert (by its session id) ----
  const rows = await (
    await clickhouse.query({
      query: 'SELECT session_id, block_urls FROM session_replay_events WHERE team_id = {team:Int64}',
      query_params: { team: probeTeam.id },
      format: 'JSONEachRow',
    })
  ).json<{ session_id: string; block_urls: string[] }>();
  const blockOf = new Map(rows.map((r) => [r.session_id, r.block_urls[0] ?? '']));
  const flushOf = (probe: Probe) => {
    const key = store.keyOf((blockOf.get(probe.sessionId) ?? '').split('?')[0]!);
    return key === undefined ? undefined : flushes.find((f) => f.keys.includes(key));
  };
  const stages = {
    waitForFlush: [] as number[],
    upload: [] as number[],
    kafkaCommit: [] as number[],
    toSinkInsert: [] as number[],
    insert: [] as number[],
    toApi: [] as number[],
  };
  const visible = measured.filter((p) => p.state === 'visible');
  const perProbe = measured.map((probe) => {
    const flush = flushOf(probe);
    const insert = inserts.find((i) => i.probeSessions.includes(probe.sessionId));
    const latency = probe.state === 'visible' ? probe.visibleAt! - probe.t0 : undefined;
    if (latency !== undefined && flush && insert) {
      stages.waitForFlush.push(flush.start - probe.t0);
      stages.upload.push(flush.uploaded - flush.start);
      stages.kafkaCommit.push(flush.committed - flush.uploaded);
      stages.toSinkInsert.push(insert.start - flush.committed);
      stages.insert.push(insert.end - insert.start);
      stages.toApi.push(probe.visibleAt! - insert.end);
    }
    return {
      probe: probe.index + 1,
      state: probe.state,
      latencyMs: latency === undefined ? null : round(latency),
      captureMs: round(probe.captureMs),
      events: probe.events,
      summaryEventCount: probe.eventCount ?? null,
      jsonlLines: probe.jsonlLines ?? null,
      flushStartMs: flush ? round(flush.start - probe.t0) : null,
      committedMs: flush ? round(flush.committed - probe.t0) : null,
      insertedMs: insert ? round(insert.end - probe.t0) : null,
      listedMs: probe.listedAt === undefined ? null : round(probe.listedAt - probe.t0),
    };
  });

  const latencies = visible.map((p) => p.visibleAt! - p.t0).sort((a, b) => a - b);
  const failed = measured.length - visible.length;
  // Timed-out probes count as "never": they push the percentiles to infinity, as they should.
  const withFailures = [...latencies, ...Array.from({ length: failed }, () => Number.POSITIVE_INFINITY)];
  const summary = (list: number[]) => ({
    p50: round(percentile(list, 50)),
    p90: round(percentile(list, 90)),
    p99: round(percentile(list, 99)),
    max: round(list.at(-1) ?? Number.NaN),
  });
  const absolute = summary(withFailures);
  const relative = summary(withFailures.map((ms) => ms - flushIntervalMs));
  const targetMs = flushIntervalMs + 5000;
  const targetMet = measured.length === probeCount && absolute.p99 <= targetMs;

  const measuredFlushes = flushes.slice(flushesBefore);
  const measuredInserts = inserts.slice(insertsBefore);
  const flushGaps = measuredFlushes.slice(1).map((f, i) => f.start - measuredFlushes[i]!.start);
  const stageSummary = Object.fromEntries(
    Object.entries(stages).map(([name, list]) => {
      const sorted = ascending(list);
      return [
        name,
        {
          mean: round(mean(sorted)),
          p50: round(percentile(sorted, 50)),
          p90: round(percentile(sorted, 90)),
          max: round(sorted.at(-1) ?? Number.NaN),
        },
      ];
    }),
  );
  const measureSeconds = measureMs / 1000;
  const result = {
    date: new Date().toISOString(),
    machine:
      '2 cores shared by Kafka, MinIO, PostgreSQL and this process (capture, blob consumer, sink, chDB, API, load)',
    complete: !aborted && measured.length === probeCount,
    ...(aborted ? { stoppedEarly: abortReason } : {}),
    settings: {
      probes: probeCount,
      probeIntervalMs,
      backgroundSessions,
      flushIntervalMs,
      sinkInsertIntervalMs: sinkIntervalMs,
      poll: pollMode,
      pollMs,
      probeTimeoutMs,
      seed,
    },
    probes: { measured: measured.length, playable: visible.length, timedOut: failed },
    latencyMs: absolute,
    latencyMinusFlushIntervalMs: relative,
    target: { p99AtMostMs: targetMs, met: targetMet },
    stagesMs: stageSummary,
    captureAnswerMs: summary(ascending(measured.map((p) => p.captureMs).filter(Number.isFinite))),
    flushes: {
      count: measuredFlushes.length,
      reasons: countBy(measuredFlushes.map((f) => f.reason)),
      startToStartMs: summary(ascending(flushGaps)),
      durationMs: summary(ascending(measuredFlushes.map((f) => f.committed - f.start))),
      meanSessions: round(mean(measuredFlushes.map((f) => f.sessions))),
      meanRawMB: round(mean(measuredFlushes.map((f) => f.rawBytes)) / 1e6),
    },
    sinkInserts: {
      count: measuredInserts.length,
      perSecond: round(measuredInserts.length / measureSeconds),
      durationMs: summary(ascending(measuredInserts.map((i) => i.end - i.start))),
    },
    background: {
      requestsPerSecond: round((background.requests - backgroundBefore.requests) / measureSeconds),
      rawMBps: round((background.rawBytes - backgroundBefore.rawBytes) / 1e6 / measureSeconds),
      failures: background.failures - backgroundBefore.failures,
      skipped: background.skipped - backgroundBefore.skipped,
    },
    apiPolling: {
      requestsPerSecond: round((apiStats.requests - apiBefore.requests) / measureSeconds),
      meanMs: round((apiStats.ms - apiBefore.ms) / Math.max(1, apiStats.requests - apiBefore.requests)),
      errors: apiStats.errors - apiBefore.errors,
    },
    benchProcess: {
      cpuPercentOfOneCore: round(((cpu.user + cpu.system) / 1000 / measureMs) * 100),
      eventLoopDelayMs: {
        p50: round(loopDelay.percentile(50) / 1e6),
        p99: round(loopDelay.percentile(99) / 1e6),
        max: round(loopDelay.max / 1e6),
      },
    },
    measureSeconds: round(measureSeconds),
    perProbe,
  };

  printReport(result, targetMs);
  log(`wrote ${await writeBenchResult('end-to-end-latency', result, args.out)}`);
  if (!result.complete || failed > 0) exitCode = 1;
} catch (error) {
  process.stderr.write(`[bench:e2e] failed: ${(error as Error).stack ?? error}\n`);
  exitCode = 1;
} finally {
  log('stopping');
  for (const { name, stop } of stops.reverse()) {
    await stop().catch((error) => log(`stopping ${name}: ${error}`));
  }
  await rm(dir, { recursive: true, force: true });
}
process.exit(exitCode);

// ---- helpers ----

/** POSTs a gzip body to capture's `/s/` as posthog-js does (text/plain, no preflight); the status once answered. */
async function post(captureUrl: string, gzip: Buffer): Promise<number> {
  const res = await fetch(`${captureUrl}/s/`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain' },
    body: new Uint8Array(gzip),
    signal: AbortSignal.timeout(30_000),
  });
  await res.arrayBuffer();
  return res.status;
}

/** The sink's client with its inserts into session_replay_events timed, noting which probe sessions each carried. */
function timedInserts(client: ClickHouseClient): ClickHouseClient {
  return new Proxy(client, {
    get(target, property) {
      if (property === 'command') {
        return async (params: Parameters<ClickHouseClient['command']>[0]) => {
          const isInsert = /^\s*INSERT INTO session_replay_events\b/.test(params.query);
          const start = performance.now();
          const result = await target.command(params);
          if (isInsert) {
            const probeSessions = probes.filter((p) => params.query.includes(p.sessionId)).map((p) => p.sessionId);
            inserts.push({ start, end: performance.now(), probeSessions });
          }
          return result;
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

function mean(list: readonly number[]): number {
  return list.length === 0 ? Number.NaN : list.reduce((a, b) => a + b, 0) / list.length;
}

function round(value: number): number {
  return Number.isFinite(value) ? Math.round(value * 10) / 10 : value;
}

function countBy(list: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of list) out[item] = (out[item] ?? 0) + 1;
  return out;
}

function printReport(
  r: {
    settings: { flushIntervalMs: number };
    probes: { measured: number; playable: number; timedOut: number };
    latencyMs: Record<'p50' | 'p90' | 'p99' | 'max', number>;
    latencyMinusFlushIntervalMs: Record<'p50' | 'p90' | 'p99' | 'max', number>;
    target: { met: boolean };
    stagesMs: Record<string, { mean: number; p50: number; p90: number; max: number }>;
    captureAnswerMs: Record<'p50' | 'p99' | 'max', number>;
    flushes: {
      count: number;
      startToStartMs: Record<'p50' | 'max', number>;
      durationMs: Record<'p50' | 'max', number>;
    };
    sinkInserts: { count: number; perSecond: number; durationMs: Record<'p50' | 'max', number> };
    background: { requestsPerSecond: number; rawMBps: number; failures: number; skipped: number };
    apiPolling: { requestsPerSecond: number; meanMs: number };
    benchProcess: { cpuPercentOfOneCore: number; eventLoopDelayMs: Record<'p99' | 'max', number> };
  },
  targetMs: number,
): void {
  const s = (ms: number) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : String(ms));
  const row = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const lines = [
    '',
    `capture 200 → playable through the API: ${r.probes.playable}/${r.probes.measured} probes playable, ` +
      `${r.probes.timedOut} timed out; flush interval ${s(r.settings.flushIntervalMs)}`,
    '',
    row(['', 'p50', 'p90', 'p99', 'max']),
    row(['---', '---:', '---:', '---:', '---:']),
    row(['latency', ...(['p50', 'p90', 'p99', 'max'] as const).map((k) => s(r.latencyMs[k]))]),
    row([
      'latency − flush interval',
      ...(['p50', 'p90', 'p99', 'max'] as const).map((k) => s(r.latencyMinusFlushIntervalMs[k])),
    ]),
    '',
    `target (p99 ≤ flush interval + 5 s = ${s(targetMs)}): ${r.target.met ? 'MET' : 'NOT MET'}`,
    '',
    'where the time went, per probe:',
    '',
    row(['stage', 'mean', 'p50', 'p90', 'max']),
    row(['---', '---:', '---:', '---:', '---:']),
    ...Object.entries(r.stagesMs).map(([name, v]) => row([name, s(v.mean), s(v.p50), s(v.p90), s(v.max)])),
    '',
    `capture answer: p50 ${s(r.captureAnswerMs.p50)}, p99 ${s(r.captureAnswerMs.p99)}; ` +
      `flushes: ${r.flushes.count}, start to start p50 ${s(r.flushes.startToStartMs.p50)} (max ${s(r.flushes.startToStartMs.max)}), ` +
      `duration p50 ${s(r.flushes.durationMs.p50)} (max ${s(r.flushes.durationMs.max)})`,
    `sink inserts: ${r.sinkInserts.count} (${r.sinkInserts.perSecond}/s), duration p50 ${s(r.sinkInserts.durationMs.p50)} ` +
      `(max ${s(r.sinkInserts.durationMs.max)}); background ${r.background.requestsPerSecond} requests/s, ` +
      `${r.background.rawMBps} MB/s raw, ${r.background.failures} failed, ${r.background.skipped} shed`,
    `API polling: ${r.apiPolling.requestsPerSecond} requests/s, mean ${r.apiPolling.meanMs} ms; this process: ` +
      `${r.benchProcess.cpuPercentOfOneCore} % of a core, event-loop delay p99 ${r.benchProcess.eventLoopDelayMs.p99} ms ` +
      `(max ${r.benchProcess.eventLoopDelayMs.max} ms)`,
    '',
  ];
  console.log(lines.join('\n'));
}
