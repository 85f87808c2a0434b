/**
 * Deletion bench (DESIGN §3.9): the two ways to make a deleted recording's bytes unreadable, measured on the same
 * blocks, so the choice between them is made by cost on the blob consumer's fast path and on reads.
 *
 *   node bench/deletion/run.ts [--quick] [--sessions 5000] [--pool 300] [--object-mb 8,32,100]   (--help)
 *
 * 1. Blocks as the fast path stores them: sessions of the recorded rrweb corpus (amplified) go through capture's own
 *    code (posthog-js bodies → parseSnapshotRequest → buildRecordingMessages); a session's block is its LZ4 frames as
 *    captured, concatenated, exactly what the consumer writes. Raw JSONL bytes against stored bytes.
 * 2. Crypto-shredding (the alternative not taken): a 256-bit key per session, a 12-byte random nonce per block,
 *    node:crypto aes-256-gcm over every stored block (seal), then every block opened again: MB per CPU-second
 *    (process.cpuUsage), and per-block open latency (performance.now). The fast path with encryption is derived from
 *    the blob consumer's recorded figure (bench/README.md): F_enc = 1 / (1/F + (stored/raw)/A_seal). The read side:
 *    the API's block decode (decodeStoredBlock) on the same blocks, with and without the open before it.
 * 3. Range rewrite (the choice taken): objects of ~8, ~32 and ~100 MB of corpus blocks written by writeObjects to a
 *    real MinIO; eraseBlocks erases one block: wall and CPU per object (this process, and MinIO's), MB rewritten per
 *    wall second and per CPU-second.
 * 4. Deleting end to end: a team of N sessions in objects of ~500 sessions each, its summary rows in chDB
 *    (insertSummaryRows), one deletion request by filter covering all of them, run by DeletionWorker in this process
 *    (real PostgreSQL, real MinIO, chDB) to completion: sessions per second, CPU-ms per session, bytes rewritten.
 *
 * Parts 3 and 4 reuse the blocks of part 1's P distinct sessions under new session and distinct ids (session i gets
 * the block of pool session i mod P): generating 5000 distinct sessions through capture's code would take ~65 CPU-s,
 * and the bytes of a block do not change what rewriting it costs.
 */
import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import type { ClickHouseClient } from '@clickhouse/client';
import { decodeBlockEvents, decodeStoredBlock } from '../../src/api/session-events.ts';
import { SessionActivity } from '../../src/blob-consumer/session-activity.ts';
import { SessionBatch } from '../../src/blob-consumer/session-batch.ts';
import { writeObjects } from '../../src/blob-consumer/write-objects.ts';
import { buildRecordingMessages } from '../../src/capture/build-messages.ts';
import { parseSnapshotRequest } from '../../src/capture/parse-snapshots.ts';
import { openClickHouse } from '../../src/clickhouse/client.ts';
import { migrateClickHouse } from '../../src/clickhouse/migrations.ts';
import { insertSummaryRows } from '../../src/clickhouse/session-replay-events.ts';
import { loadConfig } from '../../src/config/index.ts';
import { DeletionStore } from '../../src/deletion/deletion-store.ts';
import { DeletionWorker } from '../../src/deletion/deletion-worker.ts';
import { blockToErase, eraseBlocks } from '../../src/deletion/erase-blocks.ts';
import { type LocalStack, startLocalStack } from '../../src/harness/stack.ts';
import type { Logger } from '../../src/logging/logger.ts';
import { openPostgres, type SqlDatabase } from '../../src/postgres/database.ts';
import { migratePostgres } from '../../src/postgres/migrations.ts';
import { decodeFooter, decodeTrailer, TRAILER_BYTES } from '../../src/recordings/blob-object.ts';
import { decodeRecordingMessage, type RecordingMessageHeader } from '../../src/recordings/message-codec.ts';
import type { SummaryRow } from '../../src/recordings/summary-row.ts';
import type { BlobStore, BlobWriter } from '../../src/storage/blob-store.ts';
import { S3BlobStore } from '../../src/storage/s3-blob-store.ts';
import { type Team, TeamStore } from '../../src/teams/team-store.ts';
import { amplify, ensureCorpus, posthogBatches, type RecordedSession } from '../corpus/corpus.ts';
import { benchArgs } from '../shared/args.ts';

const usage = `Deletion bench (DESIGN §3.9): crypto-shredding (per-session AES-256-GCM at flush) against range rewrite
(eraseBlocks, the implemented choice), on blocks of the recorded rrweb corpus as the fast path stores them. Real
MinIO and PostgreSQL on loopback (src/harness), chDB in process.

  node bench/deletion/run.ts [options]

  --quick             smoke run, ≤ 1 minute: --pool 100 --sessions 1000 --repeats 1, shorter crypto passes
  --pool N            distinct amplified corpus sessions (one block each) for the crypto figures (default 300)
  --sessions N        sessions of the team deleted end to end (default 5000; 1000 with --quick)
  --per-object N      sessions per object in the end-to-end run (default 500)
  --batch N           DeletionWorker sessions per batch (default 200, the worker's own default)
  --object-mb LIST    object sizes for the rewrite figures, MB (default 8,32,100)
  --repeats N         erases per object size, a different block each time (default 3; 1 with --quick)
  --crypto-seconds S  least CPU seconds per crypto throughput figure (default 1.5; 0.4 with --quick)
  --fast-path-mb F    the blob consumer's fast-path raw MB per CPU-second (default: read from bench/README.md)
  --max-minutes M     bound on the whole run (default 5; 1 with --quick): the delete stops after its batch in hand
  --help              this text

Prints one table with every figure and the comparison for the choice; writes bench/results/deletion-<time>.json.`;

const args = benchArgs(usage, {
  quick: { type: 'boolean', default: false },
  pool: { type: 'string', default: '' },
  sessions: { type: 'string', default: '' },
  'per-object': { type: 'string', default: '500' },
  batch: { type: 'string', default: '200' },
  'object-mb': { type: 'string', default: '8,32,100' },
  repeats: { type: 'string', default: '' },
  'crypto-seconds': { type: 'string', default: '' },
  'fast-path-mb': { type: 'string', default: '' },
  'max-minutes': { type: 'string', default: '' },
});
const quick = args.quick;
if (args.pool === '') args.pool = quick ? '100' : '300';
if (args.sessions === '') args.sessions = quick ? '1000' : '5000';
if (args.repeats === '') args.repeats = quick ? '1' : '3';
if (args['crypto-seconds'] === '') args['crypto-seconds'] = quick ? '0.4' : '1.5';
if (args['max-minutes'] === '') args['max-minutes'] = quick ? '1' : '5';
const poolSize = Math.floor(args.number('pool', 10));
const sessionCount = Math.floor(args.number('sessions', 10));
const perObject = Math.floor(args.number('per-object', 1));
const batchSize = Math.floor(args.number('batch', 1));
const repeats = Math.floor(args.number('repeats', 1));
const cryptoSeconds = args.number('crypto-seconds', 0.05);
const maxMinutes = args.number('max-minutes', 0.5);
const objectSizesMb = args['object-mb'].split(',').map(Number);
if (objectSizesMb.some((mb) => !Number.isFinite(mb) || mb <= 0)) {
  process.stderr.write(`error: --object-mb must list sizes in MB, got "${args['object-mb']}"\n`);
  process.exit(2);
}

const DAY = 86_400_000;
const started = performance.now();
const deadline = started + maxMinutes * 60_000;
const log = (message: string) =>
  process.stderr.write(
    `[bench:deletion ${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${message}\n`,
  );
const loadSamples: { at: string; load1: number }[] = [];
const sampleLoad = (at: string) => loadSamples.push({ at, load1: Number(loadavg()[0]!.toFixed(2)) });

// Read (or checked) before anything starts, so a missing figure costs nothing.
const fast = fastPathFigure();

// ---------------------------------------------------------------------------------------------------------------
// Cleanup: everything started is stopped at the end, on an error and on Ctrl-C.

const dir = await mkdtemp(join(tmpdir(), 'replay-bench-deletion-'));
const stops: { name: string; stop: () => Promise<unknown> | unknown }[] = [];
let cleaned: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaned ??= (async () => {
    for (const { name, stop } of stops.reverse()) {
      try {
        await stop();
      } catch (error) {
        log(`stopping ${name} failed: ${(error as Error).message}`);
      }
    }
    await rm(dir, { recursive: true, force: true });
  })();
  return cleaned;
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping`);
    void cleanup().finally(() => process.exit(130));
  });
}
// Last resort: a hang still ends the run (the harness's servers die with this process: pdeathsig).
setTimeout(
  () => {
    log('run exceeded its time bound by 60 s; exiting');
    void cleanup().finally(() => process.exit(3));
  },
  maxMinutes * 60_000 + 60_000,
).unref();

// ---------------------------------------------------------------------------------------------------------------
// Small helpers.

/** The kernel's share of the CPU time since `since` (page faults of fresh buffers show up here). */
const systemShare = (since: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(since);
  return used.system / Math.max(1, used.user + used.system);
};
const cpuSeconds = (since: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1e6;
};

/** utime + stime of a process, all its threads, plus its reaped children; with `children`, its live children too. */
function procCpuSeconds(pid: number | undefined, children = false): number {
  if (pid === undefined) return Number.NaN;
  const ticks = (p: number | string) => {
    const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return {
      ppid: Number(fields[1]),
      ticks: Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]),
    };
  };
  let total = ticks(pid).ticks;
  if (children) {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry) || Number(entry) === pid) continue;
      try {
        const child = ticks(entry);
        if (child.ppid === pid) total += child.ticks;
      } catch {
        // exited meanwhile: its time is in the parent's reaped-children counters now
      }
    }
  }
  return total / 100; // USER_HZ
}

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}
const median = (values: readonly number[]) => percentile(values, 0.5);
const mb = (bytes: number) => bytes / 1e6;
const round = (n: number, digits = 1) => Number(n.toFixed(digits));
const fmt = (n: number, digits = 1) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : '—';
const micro = (ms: number) => (ms < 1 ? `${fmt(ms * 1000, 0)} µs` : `${fmt(ms, 2)} ms`);

/** The blob consumer's fast-path figure, the latest one recorded in bench/README.md's Blob consumer section. */
function fastPathFigure(): { value: number; section: string; quote: string } {
  if (args['fast-path-mb'] !== '') {
    return { value: args.number('fast-path-mb', 0.001), section: '--fast-path-mb', quote: args['fast-path-mb'] };
  }
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const start = readme.search(/^## Blob consumer/m);
  if (start < 0) throw new Error('bench/README.md has no "## Blob consumer" section: pass --fast-path-mb');
  const next = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, next < 0 ? undefined : next);
  const headings = [...section.matchAll(/^#{2,3} (.+)$/gm)].map((m) => ({ at: m.index, title: m[1]!.trim() }));
  const found: { at: number; value: number; quote: string }[] = [];
  // The results table's fast-path row, and later re-runs written as prose ("fast path 265.7 raw MB per consumer ...").
  for (const m of section.matchAll(/^\| fast[^|]*\| \**([\d.]+)\**/gm)) {
    found.push({ at: m.index, value: Number(m[1]), quote: m[0].replaceAll('*', '') });
  }
  for (const m of section.matchAll(/fast path ([\d.]+) raw MB per consumer\s+CPU-second/g)) {
    found.push({ at: m.index, value: Number(m[1]), quote: m[0].replace(/\s+/g, ' ') });
  }
  const latest = found.sort((a, b) => a.at - b.at).at(-1);
  if (!latest) throw new Error('no fast-path figure found in bench/README.md: pass --fast-path-mb');
  const heading = headings.filter((h) => h.at <= latest.at).at(-1)?.title ?? 'Blob consumer';
  return { value: latest.value, section: heading, quote: latest.quote };
}

/** Counts what goes through a store: the bytes the rewrites read and write, and the objects they replace. */
class CountingStore implements BlobStore {
  readonly description: string;
  readonly inner: BlobStore;
  bytesRead = 0;
  bytesWritten = 0;
  objectsWritten = 0;

  constructor(inner: BlobStore) {
    this.inner = inner;
    this.description = inner.description;
  }

  newObject(key: string): BlobWriter {
    const writer = this.inner.newObject(key);
    return {
      write: async (chunk) => {
        this.bytesWritten += chunk.length;
        await writer.write(chunk);
      },
      finish: async () => {
        const done = await writer.finish();
        this.objectsWritten++;
        return done;
      },
      abort: () => writer.abort(),
    };
  }

  async getRange(key: string, start: number, end: number): Promise<Buffer> {
    const bytes = await this.inner.getRange(key, start, end);
    this.bytesRead += bytes.length;
    return bytes;
  }

  size(key: string) {
    return this.inner.size(key);
  }
  list(prefix: string) {
    return this.inner.list(prefix);
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
  urlOf(key: string) {
    return this.inner.urlOf(key);
  }
  keyOf(url: string) {
    return this.inner.keyOf(url);
  }
  close() {
    this.inner.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Part 1: blocks as the fast path stores them.

interface PoolSession {
  readonly sessionId: string;
  readonly template: string;
  /** Capture's messages for the session: header and LZ4 frame, as the consumer receives them. */
  readonly messages: { readonly header: RecordingMessageHeader; readonly payload: Buffer }[];
  /** The block the consumer stores: the session's frames back to back. */
  readonly block: Buffer;
  readonly rawBytes: number;
}

const benchTeam: Team = {
  id: 1,
  name: 'bench-deletion',
  apiToken: 'phc_bench_deletion',
  sessionRecordingEnabled: true,
  retention: '30d',
  consoleLogCaptureEnabled: true,
};
// Sessions of the last two days: well inside the 30-day TTL of session_replay_events.
const startMs = Date.now() - 2 * DAY;

const result: Record<string, unknown> = {};
const lines: [string, string, string][] = [];
const row = (part: string, figure: string, value: string) => lines.push([part, figure, value]);
let exitCode = 0;

try {
  sampleLoad('start');
  log(`corpus: building ${poolSize} sessions through capture's code`);
  const corpus: RecordedSession[] = await ensureCorpus();
  const pool: PoolSession[] = [];
  for (const session of amplify(corpus, { count: poolSize, seed: 11, startMs })) {
    const messages: PoolSession['messages'] = [];
    for (const body of posthogBatches(session, { token: benchTeam.apiToken })) {
      for (const parsed of parseSnapshotRequest(body).sessions) {
        for (const m of buildRecordingMessages(
          { ...parsed, team: benchTeam },
          { maxMessageBytes: 20 * 1024 * 1024, requestId: 'bench', capturedAt: Date.now() },
        )) {
          messages.push(decodeRecordingMessage(m.value));
        }
      }
    }
    pool.push({
      sessionId: session.sessionId,
      template: session.template,
      messages,
      block: Buffer.concat(messages.map((m) => m.payload)),
      rawBytes: messages.reduce((sum, m) => sum + m.header.rawBytes, 0),
    });
  }
  const rawTotal = pool.reduce((sum, s) => sum + s.rawBytes, 0);
  const storedTotal = pool.reduce((sum, s) => sum + s.block.length, 0);
  const blockSizes = pool.map((s) => s.block.length);
  const framesPerBlock = pool.map((s) => s.messages.length);
  const storedPerRaw = storedTotal / rawTotal;
  log(
    `${pool.length} blocks: ${fmt(mb(rawTotal))} MB raw JSONL, ${fmt(mb(storedTotal))} MB stored ` +
      `(ratio ${fmt(rawTotal / storedTotal, 2)})`,
  );
  result.corpus = {
    sessions: pool.length,
    templates: new Set(pool.map((s) => s.template)).size,
    rawBytes: rawTotal,
    storedBytes: storedTotal,
    compressionRatio: round(rawTotal / storedTotal, 2),
    blockBytes: {
      min: Math.min(...blockSizes),
      p50: median(blockSizes),
      p99: percentile(blockSizes, 0.99),
      max: Math.max(...blockSizes),
    },
    framesPerBlock: { p50: median(framesPerBlock), max: Math.max(...framesPerBlock) },
  };
  row('1 blocks', 'sessions (one block each: its LZ4 frames as captured)', `${pool.length}`);
  row(
    '1 blocks',
    'raw JSONL → stored',
    `${fmt(mb(rawTotal))} MB → ${fmt(mb(storedTotal))} MB (${fmt(rawTotal / storedTotal, 2)}×)`,
  );
  row(
    '1 blocks',
    'stored block size p50 / p99 / max',
    `${fmt(median(blockSizes) / 1e3, 0)} / ${fmt(percentile(blockSizes, 0.99) / 1e3, 0)} / ${fmt(Math.max(...blockSizes) / 1e3, 0)} KB (frames per block p50 ${median(framesPerBlock)})`,
  );

  // -------------------------------------------------------------------------------------------------------------
  // Part 2: the cost of encrypting at flush (crypto-shredding).

  interface Sealed {
    readonly nonce: Buffer;
    readonly ciphertext: Buffer;
    readonly tag: Buffer;
  }
  const seal = (key: Buffer, block: Buffer): Sealed => {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    const ciphertext = cipher.update(block);
    cipher.final(); // GCM is a stream mode: final() emits nothing, it computes the tag
    return { nonce, ciphertext, tag: cipher.getAuthTag() };
  };
  const open = (key: Buffer, sealed: Sealed): Buffer => {
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.nonce);
    decipher.setAuthTag(sealed.tag);
    const plain = decipher.update(sealed.ciphertext);
    decipher.final(); // throws when the tag does not match
    return plain;
  };
  const keys = pool.map(() => randomBytes(32));
  const masterKey = randomBytes(32);

  log('crypto: sealing every block');
  let sealed: Sealed[] = [];
  let passes = 0;
  let c0 = process.cpuUsage();
  let t0 = performance.now();
  do {
    sealed = pool.map((s, i) => seal(keys[i]!, s.block));
    passes++;
  } while (cpuSeconds(c0) < cryptoSeconds && passes < 1000);
  const sealPasses = passes;
  const sealCpu = cpuSeconds(c0);
  const sealSystem = systemShare(c0);
  const sealWall = (performance.now() - t0) / 1000;
  const sealStoredMbPerCpu = (passes * mb(storedTotal)) / sealCpu;
  const sealRawMbPerCpu = (passes * mb(rawTotal)) / sealCpu;
  log(`  seal: ${passes} passes, ${fmt(sealStoredMbPerCpu, 0)} stored MB per CPU-second`);

  log('crypto: opening every block');
  passes = 0;
  c0 = process.cpuUsage();
  t0 = performance.now();
  do {
    for (let i = 0; i < pool.length; i++) open(keys[i]!, sealed[i]!);
    passes++;
  } while (cpuSeconds(c0) < cryptoSeconds && passes < 1000);
  const openCpu = cpuSeconds(c0);
  const openSystem = systemShare(c0);
  const openPasses = passes;
  const openStoredMbPerCpu = (passes * mb(storedTotal)) / openCpu;
  const openRawMbPerCpu = (passes * mb(rawTotal)) / openCpu;
  log(`  open: ${passes} passes, ${fmt(openStoredMbPerCpu, 0)} stored MB per CPU-second`);
  // Every opened block must be the stored block: the figures are of a working seal/open.
  for (let i = 0; i < pool.length; i++) {
    if (!open(keys[i]!, sealed[i]!).equals(pool[i]!.block)) throw new Error(`block ${i} did not open to itself`);
  }

  // Per-block open latency at the corpus's block sizes (a few passes, each block's median).
  const latencyRounds = quick ? 5 : 7;
  const openTimes = pool.map(() => [] as number[]);
  for (let r = 0; r < latencyRounds; r++) {
    for (let i = 0; i < pool.length; i++) {
      const t = performance.now();
      open(keys[i]!, sealed[i]!);
      openTimes[i]!.push(performance.now() - t);
    }
  }
  const openLatency = openTimes.map(median);

  // The per-session data key: generated and wrapped by the master key at flush, unwrapped on each read.
  const wrapCount = 20_000;
  c0 = process.cpuUsage();
  const wrapped: Sealed[] = [];
  for (let i = 0; i < wrapCount; i++) wrapped.push(seal(masterKey, randomBytes(32)));
  const wrapUs = (cpuSeconds(c0) / wrapCount) * 1e6;
  c0 = process.cpuUsage();
  for (const w of wrapped) open(masterKey, w);
  const unwrapUs = (cpuSeconds(c0) / wrapCount) * 1e6;

  // The API's read side: decodeStoredBlock on the same blocks, without and with the open before it. The two
  // passes alternate in order from round to round; each block's time is its median over the rounds.
  log('read side: decodeStoredBlock with and without the open');
  const maxBlockBytes = loadConfig().apiMaxBlockBytes;
  const decodeTimes = pool.map(() => [] as number[]);
  const openDecodeTimes = pool.map(() => [] as number[]);
  let decodeCpu = 0;
  let decodeSystemCpu = 0;
  let openDecodeCpu = 0;
  let decodedRaw = 0;
  const decodePass = () => {
    const c = process.cpuUsage();
    for (let i = 0; i < pool.length; i++) {
      const t = performance.now();
      decodedRaw += decodeStoredBlock(pool[i]!.block, i, maxBlockBytes).length;
      decodeTimes[i]!.push(performance.now() - t);
    }
    const used = process.cpuUsage(c);
    decodeCpu += (used.user + used.system) / 1e6;
    decodeSystemCpu += used.system / 1e6;
  };
  const openDecodePass = () => {
    const c = process.cpuUsage();
    for (let i = 0; i < pool.length; i++) {
      const t = performance.now();
      decodeStoredBlock(open(keys[i]!, sealed[i]!), i, maxBlockBytes);
      openDecodeTimes[i]!.push(performance.now() - t);
    }
    openDecodeCpu += cpuSeconds(c);
  };
  for (let r = 0; r < latencyRounds; r++) {
    if (r % 2 === 0) {
      decodePass();
      openDecodePass();
    } else {
      openDecodePass();
      decodePass();
    }
  }
  if (decodedRaw !== rawTotal * latencyRounds)
    throw new Error(`decoded ${decodedRaw} bytes, expected ${rawTotal * latencyRounds}`);
  const decodeLatency = decodeTimes.map(median);
  const openDecodeLatency = openDecodeTimes.map(median);
  // The latency decryption adds is the open itself, timed alone above; the difference of the two decode medians
  // per block says the same with the allocator's noise on top (a ~1 MB output buffer costs 1-25 ms in page faults).
  const addedLatency = openLatency;
  const decodeDifference = pool.map((_, i) => openDecodeLatency[i]! - decodeLatency[i]!);
  // What the API does after that (split lines, JSON.parse each event): context for the size of the decode.
  const eventsTimes: number[] = [];
  for (let i = 0; i < pool.length; i++) {
    const t = performance.now();
    decodeBlockEvents(pool[i]!.block, i, maxBlockBytes);
    eventsTimes.push(performance.now() - t);
  }

  const encCpuPerRawMb = storedPerRaw / sealStoredMbPerCpu; // CPU-s per raw MB
  const fastEnc = 1 / (1 / fast.value + encCpuPerRawMb);
  const encShare = encCpuPerRawMb / (1 / fast.value); // of the fast path's CPU per raw MB
  const meanRawSession = rawTotal / pool.length;
  const encMsPerSession = mb(meanRawSession) * encCpuPerRawMb * 1000;
  const decodeRawMbPerCpu = (mb(rawTotal) * latencyRounds) / decodeCpu;
  const openDecodeRawMbPerCpu = (mb(rawTotal) * latencyRounds) / openDecodeCpu;
  log(
    `fast path F = ${fast.value} raw MB per CPU-second (bench/README.md, "${fast.section}"); with encryption ${fmt(fastEnc)}`,
  );
  result.encryption = {
    cipher: 'aes-256-gcm, 256-bit key per session, 12-byte random nonce per block, 16-byte tag',
    seal: {
      passes: sealPasses,
      cpuSeconds: round(sealCpu, 3),
      wallSeconds: round(sealWall, 3),
      storedMBPerCpuSecond: round(sealStoredMbPerCpu),
      rawMBPerCpuSecond: round(sealRawMbPerCpu),
      systemCpuShare: round(sealSystem, 3),
    },
    open: {
      passes: openPasses,
      cpuSeconds: round(openCpu, 3),
      storedMBPerCpuSecond: round(openStoredMbPerCpu),
      rawMBPerCpuSecond: round(openRawMbPerCpu),
      systemCpuShare: round(openSystem, 3),
      latencyMs: {
        p50: round(median(openLatency), 4),
        p99: round(percentile(openLatency, 0.99), 4),
        max: round(Math.max(...openLatency), 4),
      },
    },
    keyWrapMicroseconds: round(wrapUs, 2),
    keyUnwrapMicroseconds: round(unwrapUs, 2),
    storedOverheadBytesPerBlock: 28,
    storedOverheadPercent: round(((28 * pool.length) / storedTotal) * 100, 3),
    fastPath: {
      rawMBPerCpuSecond: fast.value,
      source: `bench/README.md, section "${fast.section}": "${fast.quote}"`,
      withEncryptionRawMBPerCpuSecond: round(fastEnc),
      encryptionShareOfFastPathCpuPercent: round(encShare * 100, 2),
      encryptionCpuMsPerMeanSession: round(encMsPerSession, 3),
      meanRawBytesPerSession: Math.round(meanRawSession),
    },
    read: {
      rounds: latencyRounds,
      maxBlockBytes,
      decodeStoredBlockMs: { p50: round(median(decodeLatency), 4), p99: round(percentile(decodeLatency, 0.99), 4) },
      openThenDecodeMs: {
        p50: round(median(openDecodeLatency), 4),
        p99: round(percentile(openDecodeLatency, 0.99), 4),
      },
      addedByOpenMs: { p50: round(median(addedLatency), 4), p99: round(percentile(addedLatency, 0.99), 4) },
      differenceOfDecodeMediansMs: {
        p50: round(median(decodeDifference), 4),
        p99: round(percentile(decodeDifference, 0.99), 4),
      },
      decodeSystemCpuShare: round(decodeSystemCpu / decodeCpu, 3),
      decodeRawMBPerCpuSecond: round(decodeRawMbPerCpu),
      openThenDecodeRawMBPerCpuSecond: round(openDecodeRawMbPerCpu),
      decodeBlockEventsMs: { p50: round(median(eventsTimes), 3), p99: round(percentile(eventsTimes, 0.99), 3) },
    },
  };
  row(
    '2 encryption',
    'seal (AES-256-GCM, nonce per block): stored MB / raw MB per CPU-s',
    `${fmt(sealStoredMbPerCpu, 0)} / ${fmt(sealRawMbPerCpu, 0)} (${fmt(sealSystem * 100, 0)} % of it in the kernel)`,
  );
  row(
    '2 encryption',
    'open: stored MB / raw MB per CPU-s',
    `${fmt(openStoredMbPerCpu, 0)} / ${fmt(openRawMbPerCpu, 0)} (${fmt(openSystem * 100, 0)} % in the kernel)`,
  );
  row(
    '2 encryption',
    'open latency per block p50 / p99 / max',
    `${micro(median(openLatency))} / ${micro(percentile(openLatency, 0.99))} / ${micro(Math.max(...openLatency))}`,
  );
  row(
    '2 encryption',
    'per-session data key: generate + wrap / unwrap (CPU)',
    `${fmt(wrapUs, 1)} µs / ${fmt(unwrapUs, 1)} µs`,
  );
  row(
    '2 encryption',
    'stored overhead (nonce + tag, 28 B per block)',
    `${fmt(((28 * pool.length) / storedTotal) * 100, 3)} %`,
  );
  row(
    '2 encryption',
    `fast path F (bench/README.md, "${fast.section}")`,
    `${fast.value} raw MB per CPU-s ("${fast.quote}")`,
  );
  row(
    '2 encryption',
    'fast path with encryption F_enc = 1 / (1/F + (stored/raw)/A_seal)',
    `**${fmt(fastEnc)}** raw MB per CPU-s (${fmt((fastEnc / fast.value - 1) * 100)} %; encryption = ${fmt(encShare * 100, 2)} % of fast-path CPU)`,
  );
  row(
    '2 encryption',
    'API decodeStoredBlock per block p50 / p99: without open → with open',
    `${micro(median(decodeLatency))} / ${micro(percentile(decodeLatency, 0.99))} → ${micro(median(openDecodeLatency))} / ${micro(percentile(openDecodeLatency, 0.99))}`,
  );
  row(
    '2 encryption',
    'read latency added by decryption (the open alone) p50 / p99; difference of the decode medians p50',
    `**${micro(median(addedLatency))} / ${micro(percentile(addedLatency, 0.99))}** per block; ${micro(median(decodeDifference))}`,
  );
  row(
    '2 encryption',
    'decode raw MB per CPU-s: without → with open',
    `${fmt(decodeRawMbPerCpu, 0)} → ${fmt(openDecodeRawMbPerCpu, 0)} (${fmt((openDecodeRawMbPerCpu / decodeRawMbPerCpu - 1) * 100)} %; ` +
      `decode alone: ${fmt((decodeSystemCpu / decodeCpu) * 100, 0)} % of its CPU in the kernel)`,
  );
  row(
    '2 encryption',
    'context: decodeBlockEvents (decode + JSON.parse per line) p50 / p99',
    `${micro(median(eventsTimes))} / ${micro(percentile(eventsTimes, 0.99))}`,
  );
  sampleLoad('after crypto');

  // -------------------------------------------------------------------------------------------------------------
  // Services for parts 3 and 4.

  log('starting MinIO and PostgreSQL on loopback');
  const stack: LocalStack = await startLocalStack(loadConfig(), {
    dir,
    kafka: false,
    minio: true,
    postgres: true,
    redis: false,
    onProgress: (message) => log(`  ${message}`),
  });
  stops.push({ name: 'services', stop: () => stack.stop() });
  const minio = stack.info.minio!;
  const minioPid = stack.minio!.process.pid;
  const postgresPid = stack.postgres!.process.pid;
  const s3 = new S3BlobStore({
    bucket: 'bench-deletion',
    endpoint: minio.endpoint,
    region: minio.region,
    forcePathStyle: true,
    credentials: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
    // A 100 MB object is read and written whole: give it more than the 30 s default on a loaded machine.
    requestTimeoutMs: 120_000,
  });
  stops.push({ name: 'S3 client', stop: () => s3.close() });
  await s3.client.send(new CreateBucketCommand({ Bucket: 'bench-deletion' }));
  const store = new CountingStore(s3);
  const db: SqlDatabase = await openPostgres({ kind: 'postgres', url: stack.info.postgres!.url });
  stops.push({ name: 'postgres client', stop: () => db.close() });
  await migratePostgres(db);
  const team = await new TeamStore(db).create({ ...benchTeam });
  const spoolDir = join(dir, 'spool');
  await mkdir(spoolDir, { recursive: true });

  /** Sessions with new ids, each with the block of pool session i mod P. */
  const planned = (count: number, seed: number) =>
    [...amplify(corpus, { count, seed, startMs })].map((s, i) => ({
      sessionId: s.sessionId,
      distinctId: s.distinctId,
      source: pool[i % pool.length]!,
    }));
  let offset = 0;
  /** One flush of these sessions through writeObjects, as the consumer writes it: one object, its summary rows. */
  async function writeObject(prefix: string, sessions: ReturnType<typeof planned>) {
    const batch = new SessionBatch(spoolDir, `flush-${randomUUID()}`);
    try {
      for (const s of sessions) {
        for (const m of s.source.messages) {
          const header = {
            ...structuredClone(m.header),
            teamId: team.id,
            sessionId: s.sessionId,
            distinctId: s.distinctId,
          };
          batch.add('bench', 0, offset, header, m.payload);
          batch.consumed('bench', 0, offset++, 0);
        }
      }
      const written = await writeObjects({
        batch,
        store: s3,
        prefix,
        codec: 'lz4-frame',
        writer: 'bench-deletion',
        activity: new SessionActivity(),
        now: Date.now(),
      });
      if (written.objects.length !== 1 || written.quarantined.length > 0) {
        throw new Error(`a flush wrote ${written.objects.length} objects, quarantined ${written.quarantined.length}`);
      }
      return { ...written.objects[0]!, rows: written.rows.map((r) => r.row) as SummaryRow[] };
    } finally {
      batch.spool.discard();
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Part 3: the cost of one rewrite (range rewrite).

  const meanStored = storedTotal / pool.length;
  const rewrite: Record<string, unknown>[] = [];
  let rangeGetMs: number[] = [];
  const rewriteSessions = planned(
    Math.ceil((objectSizesMb.reduce((sum, size) => sum + size, 0) * 1e6 * 1.2) / meanStored) + pool.length,
    23,
  );
  for (const targetMb of objectSizesMb) {
    // Consecutive sessions from the planned list until the object reaches its size.
    const sessions: typeof rewriteSessions = [];
    let bytes = 0;
    for (const s of rewriteSessions) {
      if (bytes >= targetMb * 1e6) break;
      sessions.push(s);
      bytes += s.source.block.length;
    }
    rewriteSessions.splice(0, sessions.length);
    let t = performance.now();
    const object = await writeObject('rewrite', sessions);
    const putMs = performance.now() - t;
    log(
      `rewrite: ~${targetMb} MB object: ${fmt(mb(object.bytes))} MB, ${object.blocks} blocks, written in ${fmt(putMs, 0)} ms`,
    );
    if (rangeGetMs.length === 0 || Math.abs(targetMb - 32) < 1) {
      // The replay API reads a block with one range GET: its latency, for the read-side comparison.
      rangeGetMs = [];
      for (const r of object.rows.slice(0, 100)) {
        const block = blockToErase(s3, r.block_url)!;
        t = performance.now();
        await s3.getRange(block.key, block.start, block.end);
        rangeGetMs.push(performance.now() - t);
      }
    }
    const runs: { wallMs: number; cpuMs: number; minioCpuMs: number; zeroed: number }[] = [];
    for (let r = 0; r < repeats; r++) {
      const victim = object.rows[Math.floor(((r + 1) * object.rows.length) / (repeats + 1))]!;
      const block = blockToErase(s3, victim.block_url)!;
      const minio0 = procCpuSeconds(minioPid);
      const c = process.cpuUsage();
      t = performance.now();
      const zeroed = await eraseBlocks(s3, block.key, [block], new Set([`${team.id}:${victim.session_id}`]));
      const wallMs = performance.now() - t;
      runs.push({
        wallMs,
        cpuMs: cpuSeconds(c) * 1000,
        minioCpuMs: (procCpuSeconds(minioPid) - minio0) * 1000,
        zeroed,
      });
      if (zeroed !== block.end - block.start + 1)
        throw new Error(`erased ${zeroed} bytes of a ${block.end - block.start + 1}-byte block`);
    }
    const wallMs = median(runs.map((r) => r.wallMs));
    const cpuMs = median(runs.map((r) => r.cpuMs));
    const minioCpuMs = median(runs.map((r) => r.minioCpuMs));
    const figure = {
      targetMB: targetMb,
      objectBytes: object.bytes,
      blocks: object.blocks,
      putMs: round(putMs),
      runs: runs.map((r) => ({
        ...r,
        wallMs: round(r.wallMs),
        cpuMs: round(r.cpuMs),
        minioCpuMs: round(r.minioCpuMs),
      })),
      wallMs: round(wallMs),
      cpuMs: round(cpuMs),
      minioCpuMs: round(minioCpuMs),
      mbPerWallSecond: round(mb(object.bytes) / (wallMs / 1000)),
      mbPerCpuSecond: round(mb(object.bytes) / (cpuMs / 1000)),
      mbPerCpuSecondWithMinio: round(mb(object.bytes) / ((cpuMs + minioCpuMs) / 1000)),
    };
    rewrite.push(figure);
    log(`  erase 1 block: wall ${fmt(wallMs, 0)} ms, CPU ${fmt(cpuMs, 0)} ms + MinIO ${fmt(minioCpuMs, 0)} ms`);
    row(
      '3 rewrite',
      `erase 1 block of a ${fmt(mb(object.bytes))} MB object (${object.blocks} blocks), median of ${runs.length}`,
      `wall ${fmt(wallMs, 0)} ms, CPU ${fmt(cpuMs, 0)} ms + MinIO ${fmt(minioCpuMs, 0)} ms; ` +
        `${fmt(figure.mbPerWallSecond, 0)} MB/s wall, ${fmt(figure.mbPerCpuSecond, 0)} MB per CPU-s (${fmt(figure.mbPerCpuSecondWithMinio, 0)} with MinIO)`,
    );
  }
  result.rewrite = rewrite;
  result.rangeGetMs = {
    blocks: rangeGetMs.length,
    p50: round(median(rangeGetMs), 3),
    p99: round(percentile(rangeGetMs, 0.99), 3),
  };
  row(
    '3 rewrite',
    'context: range GET of one block from MinIO p50 / p99',
    `${micro(median(rangeGetMs))} / ${micro(percentile(rangeGetMs, 0.99))}`,
  );
  sampleLoad('after rewrite');

  // -------------------------------------------------------------------------------------------------------------
  // Part 4: a bulk delete end to end.

  const clickhouse: ClickHouseClient = openClickHouse({ kind: 'chdb', path: join(dir, 'chdb') });
  stops.push({ name: 'chDB', stop: () => clickhouse.close() });
  await migrateClickHouse(clickhouse);
  const teamSessions = planned(sessionCount, 29);
  log(`delete: writing ${sessionCount} sessions in objects of ${perObject} and their summary rows`);
  const objects: { key: string; bytes: number; blocks: number }[] = [];
  let t = performance.now();
  for (let i = 0; i < teamSessions.length; i += perObject) {
    const object = await writeObject('rec', teamSessions.slice(i, i + perObject));
    await insertSummaryRows(clickhouse, object.rows, `bench:${object.key}`);
    objects.push({ key: object.key, bytes: object.bytes, blocks: object.blocks });
  }
  const objectBytes = objects.reduce((sum, o) => sum + o.bytes, 0);
  const listed = async () =>
    Number(
      (
        await (
          await clickhouse.query({
            query: 'SELECT count() AS n FROM session_replay_events_merged WHERE team_id = {team:Int64}',
            query_params: { team: team.id },
            format: 'JSONEachRow',
          })
        ).json<{ n: number | string }>()
      )[0]!.n,
    );
  const before = await listed();
  if (before !== sessionCount) throw new Error(`${before} sessions listed, ${sessionCount} written`);
  log(
    `  ${objects.length} objects, ${fmt(mb(objectBytes))} MB, in ${fmt((performance.now() - t) / 1000)} s; ${before} sessions listed`,
  );
  sampleLoad('before delete');

  const erasedBatches: { sessions: number; objects: number; bytes: number }[] = [];
  const workerLog: Logger = {
    debug: () => {},
    info: (message, fields) => {
      if (message === 'deletion batch erased') erasedBatches.push(fields as (typeof erasedBatches)[number]);
    },
    warn: (message, fields) => log(`worker: ${message} ${JSON.stringify(fields ?? {})}`),
    error: (message, fields) => log(`worker: ${message} ${JSON.stringify(fields ?? {})}`),
    child: () => workerLog,
  };
  const deletions = new DeletionStore(db);
  const request = await deletions.create({
    teamId: team.id,
    kind: 'filter',
    target: { fromMs: startMs - DAY },
    keyId: null,
    requestedBy: 'bench/deletion',
  });
  const batchEnds: number[] = [];
  const worker = new DeletionWorker({
    deletions,
    clickhouse,
    blobs: store,
    log: workerLog,
    owner: `bench-deletion/${process.pid}`,
    batchSize,
    onProgress: (_request, done, total) => {
      batchEnds.push(performance.now());
      if (batchEnds.length % 5 === 0 || done === total) log(`  ${done}/${total} sessions erased`);
    },
  });
  // What is left of the time bound, less room for the checks and the shutdown: the worker stops after its batch.
  const budgetMs = deadline - performance.now() - (quick ? 5_000 : 15_000);
  const stopTimer = setTimeout(
    () => {
      log('time bound reached: stopping the worker after its batch in hand');
      void worker.stop();
    },
    Math.max(1000, budgetMs),
  );
  log(`delete: one request by filter for all ${sessionCount} sessions, batches of ${batchSize}`);
  const minio0 = procCpuSeconds(minioPid);
  const pg0 = procCpuSeconds(postgresPid, true);
  const c = process.cpuUsage();
  t = performance.now();
  await worker.prepare(request); // lists the filter's sessions (the worker would do it first thing)
  const prepareMs = performance.now() - t;
  await worker.drain();
  const wallS = (performance.now() - t) / 1000;
  const benchCpuS = cpuSeconds(c);
  const minioCpuS = procCpuSeconds(minioPid) - minio0;
  const pgCpuS = procCpuSeconds(postgresPid, true) - pg0;
  clearTimeout(stopTimer);
  const done = (await deletions.get(team.id, request.id))!;
  const after = await listed();
  const zeroed = erasedBatches.reduce((sum, b) => sum + b.bytes, 0);
  const objectTouches = erasedBatches.reduce((sum, b) => sum + b.objects, 0);
  const erased = done.sessionsDone;
  // The objects must hold nothing of the team now: every footer entry redacted, every block's bytes zeros.
  let objectsVerified = 0;
  let objectsAllZero = 0;
  if (done.status === 'done') {
    for (const { key } of objects) {
      const size = (await s3.size(key))!;
      const whole = await s3.getRange(key, 0, size - 1);
      const trailer = decodeTrailer(whole.subarray(size - TRAILER_BYTES), size);
      const footer = decodeFooter(
        whole.subarray(trailer.footerStart, trailer.footerStart + trailer.footerLength),
        trailer.crc,
      );
      if (footer.blocks.every((b) => b.deleted === true && b.distinctId === '' && b.urls.length === 0))
        objectsVerified++;
      const blocks = whole.subarray(0, trailer.footerStart);
      if (blocks.equals(Buffer.alloc(blocks.length))) objectsAllZero++;
    }
  }
  const cpuTotalS = benchCpuS + minioCpuS + pgCpuS;
  const sessionsPerSecond = erased / wallS;
  const batchMs = batchEnds.map((end, i) => end - (i === 0 ? t + prepareMs : batchEnds[i - 1]!));
  result.endToEnd = {
    sessions: sessionCount,
    perObject,
    batchSize,
    objects: objects.length,
    objectBytes,
    status: done.status,
    error: done.error,
    sessionsErased: erased,
    listedBefore: before,
    listedAfter: after,
    wallSeconds: round(wallS, 2),
    prepareMs: round(prepareMs),
    batches: batchEnds.length,
    batchMs: { p50: round(median(batchMs)), max: round(Math.max(...batchMs)) },
    sessionsPerSecond: round(sessionsPerSecond),
    cpuSeconds: { benchProcessWithChdb: round(benchCpuS, 2), minio: round(minioCpuS, 2), postgres: round(pgCpuS, 2) },
    cpuMsPerSession: {
      benchProcessWithChdb: round((benchCpuS * 1000) / erased, 2),
      withMinioAndPostgres: round((cpuTotalS * 1000) / erased, 2),
    },
    bytesZeroed: zeroed,
    objectRewrites: store.objectsWritten,
    objectTouchesLogged: objectTouches,
    bytesReadByRewrites: store.bytesRead,
    bytesWrittenByRewrites: store.bytesWritten,
    rewrittenBytesPerSession: Math.round(store.bytesWritten / Math.max(1, erased)),
    rewritesPerObject: round(store.objectsWritten / objects.length, 2),
    objectsVerifiedRedacted: objectsVerified,
    objectsVerifiedAllZero: objectsAllZero,
  };
  if (done.status !== 'done' || after !== 0) exitCode = 1;
  log(
    `  ${done.status}: ${erased}/${sessionCount} sessions in ${fmt(wallS)} s; ${store.objectsWritten} object rewrites; ` +
      `listed after: ${after}; objects redacted ${objectsVerified}/${objects.length}, zeroed ${objectsAllZero}/${objects.length}`,
  );
  row(
    '4 delete',
    `${sessionCount} sessions, ${objects.length} objects of ~${perObject} (${fmt(mb(objectBytes / objects.length))} MB each), batches of ${batchSize}`,
    `${done.status}: ${erased} erased, ${after} still listed; objects redacted ${objectsVerified}/${objects.length}, all zeros ${objectsAllZero}/${objects.length}`,
  );
  row(
    '4 delete',
    'wall (listing the filter + batches); sessions per second',
    `${fmt(wallS, 1)} s (${fmt(prepareMs, 0)} ms + ${batchEnds.length} batches, p50 ${fmt(median(batchMs), 0)} ms); **${fmt(sessionsPerSecond, 0)}/s**`,
  );
  row(
    '4 delete',
    'CPU-ms per session: this process (chDB in it) / + MinIO + PostgreSQL',
    `${fmt((benchCpuS * 1000) / erased, 2)} / **${fmt((cpuTotalS * 1000) / erased, 2)}** (CPU-s ${fmt(benchCpuS, 1)} + ${fmt(minioCpuS, 1)} + ${fmt(pgCpuS, 1)})`,
  );
  row(
    '4 delete',
    'bytes zeroed; objects rewritten (GET + PUT); bytes rewritten',
    `${fmt(mb(zeroed))} MB; ${store.objectsWritten} rewrites (${fmt(store.objectsWritten / objects.length, 1)} per object); ` +
      `${fmt(mb(store.bytesWritten))} MB written (${fmt(store.bytesWritten / Math.max(1, zeroed), 1)}× the bytes zeroed), ${fmt(mb(store.bytesRead))} MB read`,
  );
  // How much of that is the rewriting itself (GET, zero, PUT), at part 3's rate for its largest object, MinIO
  // included; the rest (listing, is_deleted rows, the audit log in Postgres) a crypto-shredding delete needs too.
  const largestRate = (rewrite.at(-1) as { mbPerCpuSecondWithMinio: number }).mbPerCpuSecondWithMinio;
  const rewriteOnlyMsPerSession = ((mb(store.bytesWritten) / largestRate) * 1000) / Math.max(1, erased);
  (result.endToEnd as Record<string, unknown>).rewriteOnlyCpuMsPerSessionEstimate = round(rewriteOnlyMsPerSession, 2);
  row(
    '4 delete',
    "of which the rewriting (bytes rewritten ÷ part 3's largest-object rate with MinIO), estimated",
    `${fmt(rewriteOnlyMsPerSession, 2)} CPU-ms per session (${fmt((rewriteOnlyMsPerSession / ((cpuTotalS * 1000) / Math.max(1, erased))) * 100, 0)} %)`,
  );
  sampleLoad('end');

  // -------------------------------------------------------------------------------------------------------------
  // The choice.

  const largest = rewrite.at(-1)! as { objectBytes: number; cpuMs: number; minioCpuMs: number; wallMs: number };
  const loneDeleteCpuMs = largest.cpuMs + largest.minioCpuMs;
  const bulkDeleteCpuMs = (cpuTotalS * 1000) / erased;
  const breakEvenBulk = encMsPerSession / bulkDeleteCpuMs;
  const breakEvenLone = encMsPerSession / loneDeleteCpuMs;
  const addedP50 = median(addedLatency);
  const readBase = median(decodeLatency) + median(rangeGetMs);
  const choice =
    `Encryption at flush costs ${fmt(encShare * 100, 2)} % of fast-path CPU on every ingested byte ` +
    `(${fmt(fast.value)} → ${fmt(fastEnc)} raw MB per CPU-s; ${fmt(encMsPerSession, 3)} CPU-ms per ${fmt(meanRawSession / 1e3, 0)} KB session), ` +
    `forever; range rewrite costs ${fmt(bulkDeleteCpuMs, 2)} CPU-ms per session deleted in bulk, or ${fmt(loneDeleteCpuMs, 0)} CPU-ms ` +
    `(${fmt(largest.wallMs, 0)} ms wall) per ${fmt(mb(largest.objectBytes), 0)} MB object a lone deleted session spans, ` +
    `only when deleting: it stays cheaper while fewer than ${fmt(breakEvenBulk * 100, 1)} % (bulk) or ` +
    `${fmt(breakEvenLone * 100, 3)} % (lone, per object spanned) of ingested sessions are ever deleted. ` +
    `Reads: decryption adds ${micro(addedP50)} p50 / ${micro(percentile(addedLatency, 0.99))} p99 per block ` +
    `(${fmt((addedP50 / median(decodeLatency)) * 100, 0)} % of decodeStoredBlock, ${fmt((addedP50 / readBase) * 100, 1)} % of range GET + decode).`;
  result.choice = {
    encryptionShareOfFastPathCpuPercent: round(encShare * 100, 2),
    encryptionCpuMsPerSession: round(encMsPerSession, 3),
    rewriteCpuMsPerBulkDeletedSession: round(bulkDeleteCpuMs, 2),
    rewriteCpuMsPerLoneDeleteObject: round(loneDeleteCpuMs, 1),
    breakEvenDeletedFractionBulk: round(breakEvenBulk, 5),
    breakEvenDeletedFractionLonePerObject: round(breakEvenLone, 6),
    readLatencyAddedMs: { p50: round(addedP50, 4), p99: round(percentile(addedLatency, 0.99), 4) },
    text: choice,
  };

  // -------------------------------------------------------------------------------------------------------------
  // Report.

  const totalS = (performance.now() - started) / 1000;
  const loads = loadSamples.map((s) => s.load1);
  console.log(
    `\nDeletion bench${quick ? ' (--quick)' : ''}, ${new Date().toISOString().slice(0, 10)}: ${pool.length} corpus blocks, ` +
      `${sessionCount} sessions deleted end to end; ${cpus().length} cores; load average ${fmt(Math.min(...loads), 1)}-${fmt(Math.max(...loads), 1)}; ` +
      `${fmt(totalS, 0)} s in all; MinIO ${minio.version}, PostgreSQL ${stack.info.postgres!.version}\n`,
  );
  console.log('| part | figure | value |');
  console.log('|---|---|---|');
  for (const [part, figure, value] of lines) console.log(`| ${part} | ${figure} | ${value} |`);
  console.log(`\nChoice: ${choice}`);
  Object.assign(result, {
    date: new Date().toISOString(),
    command: `node bench/deletion/run.ts ${process.argv.slice(2).join(' ')}`.trim(),
    machine: `${cpus().length} cores shared with other work; MinIO and PostgreSQL on loopback, chDB in process`,
    versions: { minio: minio.version, postgres: stack.info.postgres!.version, node: process.version },
    loadAverage: loadSamples,
    totalSeconds: round(totalS),
    options: { quick, poolSize, sessionCount, perObject, batchSize, objectSizesMb, repeats, cryptoSeconds, maxMinutes },
  });
  await mkdir('bench/results', { recursive: true });
  const file = `bench/results/deletion-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
  log(`wrote ${file}`);
} catch (error) {
  log(`failed: ${(error as Error).stack ?? error}`);
  exitCode = 1;
} finally {
  await cleanup();
}
process.exit(exitCode);
