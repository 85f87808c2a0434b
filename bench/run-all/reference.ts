/**
 * The reference line measured in the same run, on the corpus the benches use: `JSON.parse` and memcpy over the
 * posthog-js request bodies capture receives, and each codec over the JSONL the pipeline stores. Throughputs from
 * different machines compare as ratios to these.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { brotliCompressSync, constants, gzipSync, zstdCompressSync } from 'node:zlib';
import { compressLz4Frame } from '../../src/codec/lz4-frames.ts';
import { amplify, ensureCorpus, posthogBatches } from '../corpus/corpus.ts';

export interface CodecFigure {
  readonly codec: string;
  readonly setting: string;
  /** JSONL bytes over compressed bytes. */
  readonly ratio: number;
  readonly compressMBPerCpuSecond: number;
}

export interface ReferenceFigures {
  readonly corpus: {
    readonly sessions: number;
    readonly bodies: number;
    readonly bodyMB: number;
    readonly jsonlMB: number;
  };
  /** `JSON.parse(body.toString())`: the UTF-8 decode and the parse, as capture does them. */
  readonly jsonParseMBPerCpuSecond: number;
  /** `Buffer.copy` of every body into one preallocated buffer of the corpus's size (larger than the CPU caches). */
  readonly memcpyMBPerCpuSecond: number;
  readonly codecs: readonly CodecFigure[];
}

interface SnapshotItem {
  readonly properties: { readonly $window_id: string; readonly $snapshot_data: readonly unknown[] };
}

/** CPU-seconds of this process since `start` (from process.cpuUsage()). */
const cpuSince = (start: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6;
};

/** Runs `pass` until it has used `minCpuSeconds`; MB of `bytesPerPass` per CPU-second. */
function mbPerCpuSecond(bytesPerPass: number, minCpuSeconds: number, pass: () => void): number {
  const start = process.cpuUsage();
  let passes = 0;
  do {
    pass();
    passes++;
  } while (cpuSince(start) < minCpuSeconds);
  return (bytesPerPass * passes) / 1e6 / cpuSince(start);
}

export async function measureReference(options: {
  readonly sessions: number;
  readonly minCpuSeconds: number;
}): Promise<ReferenceFigures> {
  const corpus = await ensureCorpus();
  // The capture bench's sessions (same seed and start), so the ratios compare like with like.
  const bodies = [...amplify(corpus, { count: options.sessions, seed: 1, startMs: Date.UTC(2026, 10, 22) })].flatMap(
    (session) => posthogBatches(session, { token: 'phc_bench' }),
  );
  const bodyBytes = bodies.reduce((n, body) => n + body.length, 0);

  const jsonParseMBPerCpuSecond = mbPerCpuSecond(bodyBytes, options.minCpuSeconds, () => {
    for (const body of bodies) JSON.parse(body.toString());
  });
  const target = Buffer.allocUnsafe(bodyBytes);
  const memcpyMBPerCpuSecond = mbPerCpuSecond(bodyBytes, options.minCpuSeconds, () => {
    let at = 0;
    for (const body of bodies) at += body.copy(target, at);
  });

  // One JSONL chunk per body, `[window id, event]` lines: what capture frames into one recordings message.
  const chunks = bodies.map((body) => {
    const lines: string[] = [];
    for (const item of JSON.parse(body.toString()) as SnapshotItem[]) {
      for (const event of item.properties.$snapshot_data) {
        lines.push(`${JSON.stringify([item.properties.$window_id, event])}\n`);
      }
    }
    return Buffer.from(lines.join(''));
  });
  const jsonlBytes = chunks.reduce((n, chunk) => n + chunk.length, 0);
  const codecs: [string, string, (chunk: Buffer) => Buffer][] = [
    ['LZ4 frame', "the pipeline's (src/codec/lz4-frames.ts)", compressLz4Frame],
    ['gzip', 'level 6 (zlib default)', (chunk) => gzipSync(chunk, { level: 6 })],
    [
      'zstd',
      'level 3 (default)',
      (chunk) => zstdCompressSync(chunk, { params: { [constants.ZSTD_c_compressionLevel]: 3 } }),
    ],
    [
      'brotli',
      'quality 5 (the default, 11, compressed under 1 MB per CPU-s here)',
      (chunk) => brotliCompressSync(chunk, { params: { [constants.BROTLI_PARAM_QUALITY]: 5 } }),
    ],
  ];
  const codecFigures = codecs.map(([codec, setting, compress]): CodecFigure => {
    const start = process.cpuUsage();
    const compressed = chunks.reduce((n, chunk) => n + compress(chunk).length, 0);
    return {
      codec,
      setting,
      ratio: jsonlBytes / compressed,
      compressMBPerCpuSecond: jsonlBytes / 1e6 / cpuSince(start),
    };
  });

  return {
    corpus: { sessions: options.sessions, bodies: bodies.length, bodyMB: bodyBytes / 1e6, jsonlMB: jsonlBytes / 1e6 },
    jsonParseMBPerCpuSecond,
    memcpyMBPerCpuSecond,
    codecs: codecFigures,
  };
}

/**
 * The reference measured in a child process of its own, which exits before the benches start. Measured in run-all's
 * own process, the ~1 GB it holds stayed held through every bench, and the blob consumer spawned next took twice the
 * CPU-seconds for the same work (2.1 against 0.9: on this VM, memory no process has touched yet costs the first
 * process to touch it; what an exited process gave back is cheap to take again).
 */
const REFERENCE_TIMEOUT_MS = 180_000;

export async function measureReferenceApart(options: {
  readonly sessions: number;
  readonly minCpuSeconds: number;
}): Promise<ReferenceFigures> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [import.meta.filename, String(options.sessions), String(options.minCpuSeconds)],
    // Bounded like every bench step: the reference takes about 15 s here.
    { maxBuffer: 16 << 20, timeout: REFERENCE_TIMEOUT_MS, killSignal: 'SIGKILL' },
  );
  return JSON.parse(stdout) as ReferenceFigures;
}

if (import.meta.main) {
  const [sessions, minCpuSeconds] = process.argv.slice(2).map(Number);
  const figures = await measureReference({ sessions: sessions!, minCpuSeconds: minCpuSeconds! });
  process.stdout.write(JSON.stringify(figures));
}
