/**
 * The figures of one run-all, read from the JSON each bench wrote and the reference line, each beside its DESIGN §5
 * target. Pure: the benches' JSON in, figures out (a figure a bench did not report is null, never a guess).
 */
import { formatNumber as show } from './format.ts';
import type { BenchName } from './plan.ts';
import type { ReferenceFigures } from './reference.ts';
import type { BenchStatus } from './run-bench.ts';
import { judge, type Target, type Verdict } from './verdict.ts';

export type Source = BenchName | 'reference';

export interface Figure {
  /** Stable across runs (for comparing JSON files and choosing plots); the name is for people. */
  readonly id: string;
  readonly section: string;
  readonly name: string;
  readonly from: readonly Source[];
  readonly value: number | null;
  readonly unit: string;
  /** value over JSON.parse MB per CPU-second (the reference): for throughputs in MB. */
  readonly vsJsonParse: number | null;
  readonly target: Target | null;
  readonly verdict: Verdict;
  readonly note: string;
}

export interface FigureInputs {
  readonly benches: Partial<Record<BenchName, { readonly status: BenchStatus; readonly json?: unknown }>>;
  /** Undefined when the reference measurement failed. */
  readonly reference: ReferenceFigures | undefined;
}

/** S3 Standard list prices (us-east-1) the request costs use, USD per 1,000 requests. */
export const S3_PRICES = {
  writePer1000: 0.005,
  readPer1000: 0.0004,
  text: 'S3 Standard list prices: PUT, COPY, POST, LIST $0.005 per 1,000 requests; GET and others $0.0004 per 1,000',
} as const;

/** MinIO API names S3 bills at the PUT rate: PUT, COPY, POST (multipart create and complete), LIST. */
const WRITE_CLASS = /^(Put|Copy|NewMultipartUpload|CompleteMultipartUpload|ListObjects|ListMultipart)/;

/** The §5 query targets by read (at 10M rows; bench/uba/queries.ts reports the one it applied). */
const TARGETED_READS = ['dashboard', 'trends', 'top-items', 'timeline', 'funnel', 'retention'] as const;

/** The number at a dotted path of a bench's JSON, or null when it is absent or not a finite number. */
export function numberAt(json: unknown, path: string): number | null {
  let at: unknown = json;
  for (const key of path.split('.')) {
    if (at === null || typeof at !== 'object') return null;
    at = (at as Record<string, unknown>)[key];
  }
  return typeof at === 'number' && Number.isFinite(at) ? at : null;
}

function valueAt(json: unknown, path: string): unknown {
  let at: unknown = json;
  for (const key of path.split('.')) {
    if (at === null || typeof at !== 'object') return undefined;
    at = (at as Record<string, unknown>)[key];
  }
  return at;
}

/** a / b, or null when either is missing or b is 0. */
const ratio = (a: number | null, b: number | null) => (a === null || b === null || b === 0 ? null : a / b);

interface Spec {
  readonly id: string;
  readonly section: string;
  readonly name: string;
  readonly from: readonly Source[];
  readonly value: number | null;
  readonly unit: string;
  readonly inMB?: boolean;
  readonly target?: Target;
  readonly note?: string;
}

export function buildFigures(inputs: FigureInputs): Figure[] {
  const json = (name: BenchName) => inputs.benches[name]?.json;
  const n = (name: BenchName, path: string) => numberAt(json(name), path);
  const ref = inputs.reference;
  const jsonParse = ref?.jsonParseMBPerCpuSecond ?? null;
  const status = (source: Source): BenchStatus | undefined =>
    source === 'reference' ? (ref ? 'ok' : 'failed') : inputs.benches[source]?.status;

  const specs: Spec[] = [
    ...referenceSpecs(ref),
    ...captureSpecs(n, jsonParse),
    ...blobConsumerSpecs(n, json('blob-consumer')),
    ...clickhouseSpecs(n),
    ...latencySpecs(n),
    ...ubaSpecs(n, json('uba-throughput'), json('uba-queries')),
    ...costSpecs(n, json('blob-consumer')),
    ...compressionSpecs(n, ref),
    ...(inputs.benches.chaos ? chaosSpecs(n) : []),
  ];
  return specs.map((spec) => {
    const sourcesFailed = spec.from.some((source) => {
      const s = status(source);
      return s === 'failed' || s === 'timed out' || s === 'skipped' || s === undefined;
    });
    const target = spec.target ?? null;
    return {
      id: spec.id,
      section: spec.section,
      name: spec.name,
      from: spec.from,
      value: spec.value,
      unit: spec.unit,
      vsJsonParse: spec.inMB ? ratio(spec.value, jsonParse) : null,
      target,
      verdict: judge(spec.value, target, sourcesFailed),
      note: spec.note ?? '',
    };
  });
}

type Reader = (name: BenchName, path: string) => number | null;

function referenceSpecs(ref: ReferenceFigures | undefined): Spec[] {
  const section = 'Reference (same corpus, a process of its own, one core)';
  const corpus = ref ? `${ref.corpus.bodies} posthog-js bodies, ${ref.corpus.bodyMB.toFixed(1)} MB` : '';
  return [
    {
      section,
      id: 'reference.jsonParse',
      name: 'JSON.parse(body.toString()) MB per CPU-s',
      from: ['reference'],
      value: ref?.jsonParseMBPerCpuSecond ?? null,
      unit: 'MB/CPU-s',
      inMB: true,
      note: corpus,
    },
    {
      section,
      id: 'reference.memcpy',
      name: 'memcpy (Buffer.copy) MB per CPU-s',
      from: ['reference'],
      value: ref?.memcpyMBPerCpuSecond ?? null,
      unit: 'MB/CPU-s',
      inMB: true,
      note: corpus,
    },
  ];
}

function captureSpecs(n: Reader, jsonParse: number | null): Spec[] {
  const section = 'Capture (bench/capture/run.ts)';
  const perCore = n('capture', 'decompressedMBPerCaptureCoreSecond');
  const from: Source[] = ['capture'];
  return [
    {
      section,
      id: 'capture.mbPerCpuSecond',
      name: 'decompressed MB per capture CPU-s',
      from,
      value: perCore,
      unit: 'MB/CPU-s',
      inMB: true,
      target: { op: '>=', value: 50, text: '≥ 50 MB/s per core' },
      note: `${show(n('capture', 'decompressedMBps'))} MB/s wall, ${show(n('capture', 'captureCpuSeconds'))} CPU-s`,
    },
    {
      section,
      id: 'capture.overJsonParse',
      name: 'capture over the JSON.parse ceiling',
      from: ['capture', 'reference'],
      value: ratio(perCore, jsonParse),
      unit: '×',
      target: { op: '>', value: 1, text: 'beyond JSON.parse on the same corpus (> 1×)' },
    },
    {
      section,
      id: 'capture.requestsPerSecond',
      name: 'requests/s',
      from,
      value: n('capture', 'requestsPerSecond'),
      unit: '/s',
    },
    {
      section,
      id: 'capture.latencyP50',
      name: 'request latency p50',
      from,
      value: n('capture', 'latencyMs.p50'),
      unit: 'ms',
    },
    {
      section,
      id: 'capture.latencyP99',
      name: 'request latency p99',
      from,
      value: n('capture', 'latencyMs.p99'),
      unit: 'ms',
      note: `${show(n('capture', 'failures'))} failed of ${show(n('capture', 'requests'))}`,
    },
  ];
}

function blobConsumerSpecs(n: Reader, json: unknown): Spec[] {
  const section = 'Blob consumer (bench/blob-consumer/run.ts)';
  const from: Source[] = ['blob-consumer'];
  const sustainedNote = (path: string) => {
    const seconds = n('blob-consumer', `${path}.sustained.seconds`);
    const perCore = n('blob-consumer', `${path}.sustained.rawMBPerCoreSecond`);
    if (seconds === null) {
      return valueAt(json, `${path}.sustained`) === null ? 'everything taken within one 2 ms sample: too short' : '';
    }
    return (
      `${show(n('blob-consumer', `${path}.sustained.rawMB`))} MB in ${show(seconds)} s` +
      (perCore === null ? '' : `, ${show(perCore)} MB per CPU-s`) +
      `; whole run with start-up and final flush ${show(n('blob-consumer', `${path}.wallMBps`))} MB/s`
    );
  };
  const memory = valueAt(json, 'memoryByOpenSessions');
  const counts = memory && typeof memory === 'object' ? Object.keys(memory) : [];
  const openSessions = [...new Set(['1000', '10000', '100000', ...counts])].sort((a, b) => Number(a) - Number(b));
  return [
    {
      section,
      id: 'blob.fastMBPerCpuSecond',
      name: 'fast path: raw MB per consumer CPU-s',
      from,
      value: n('blob-consumer', 'fastPath.rawMBPerCoreSecond'),
      unit: 'MB/CPU-s',
      inMB: true,
      target: { op: '>=', value: 250, text: '≥ 250 MB/s per core' },
      note: `${show(n('blob-consumer', 'rawMB'))} MB raw, ${show(n('blob-consumer', 'fastPath.cpuSeconds'))} CPU-s`,
    },
    {
      section,
      id: 'blob.parseMBPerCpuSecond',
      name: 'parse-based path: raw MB per consumer CPU-s',
      from,
      value: n('blob-consumer', 'parsePath.rawMBPerCoreSecond'),
      unit: 'MB/CPU-s',
      inMB: true,
      note: `${show(n('blob-consumer', 'parsePath.cpuSeconds'))} CPU-s`,
    },
    {
      section,
      id: 'blob.speedup',
      name: 'fast / parse-based, per CPU-s',
      from,
      value: n('blob-consumer', 'speedupPerCore'),
      unit: '×',
      target: { op: '>=', value: 5, text: '≥ 5× in the same run' },
    },
    {
      section,
      id: 'blob.fastSustainedMBps',
      name: 'fast path sustained wall MB/s (first to last message)',
      from,
      value: n('blob-consumer', 'fastPath.sustained.wallMBps'),
      unit: 'MB/s',
      inMB: true,
      note: sustainedNote('fastPath'),
    },
    {
      section,
      id: 'blob.parseSustainedMBps',
      name: 'parse-based sustained wall MB/s',
      from,
      value: n('blob-consumer', 'parsePath.sustained.wallMBps'),
      unit: 'MB/s',
      inMB: true,
      note: sustainedNote('parsePath'),
    },
    ...openSessions.map(
      (count): Spec => ({
        section,
        id: `blob.peakRssMb.${count}`,
        name: `peak RSS, ${Number(count).toLocaleString('en')} open sessions in one batch`,
        from,
        value: n('blob-consumer', `memoryByOpenSessions.${count}.peakRssMb`),
        unit: 'MB',
        ...(count === '100000' ? { target: { op: '<', value: 512, text: '< 512 MB' } as const } : {}),
      }),
    ),
    {
      section: 'S3 per flush (blob consumer fast path, one retention class)',
      id: 's3.objectsPerFlush',
      name: 'objects per flush',
      from,
      value: n('blob-consumer', 'objectsPerFlush'),
      unit: '',
      target: { op: '=', value: 1, text: '1 per retention class per consumer' },
      note: `${show(n('blob-consumer', 'corpusSessions'))} sessions, ${show(n('blob-consumer', 'fastPath.rows'))} session blocks in ${show(n('blob-consumer', 'fastPath.flushes'))} flushes`,
    },
    {
      section: 'S3 per flush (blob consumer fast path, one retention class)',
      id: 's3.writeRequestsPerFlush',
      name: 'S3 PUT-class requests per flush',
      from,
      value: writeRequestsPerFlush(n, json),
      unit: '',
      note: requestMix(json),
    },
    {
      section: 'S3 per flush (blob consumer fast path, one retention class)',
      id: 's3.mbPerFlush',
      name: 'MB stored per flush',
      from,
      value: n('blob-consumer', 'objectMBPerFlush'),
      unit: 'MB',
    },
  ];
}

function fastPathRequests(json: unknown): Record<string, number> {
  const requests = valueAt(json, 'fastPath.s3Requests');
  return requests && typeof requests === 'object' ? (requests as Record<string, number>) : {};
}

function writeRequestsPerFlush(n: Reader, json: unknown): number | null {
  const flushes = n('blob-consumer', 'fastPath.flushes');
  const requests = Object.entries(fastPathRequests(json));
  if (!flushes || requests.length === 0) return null;
  return requests.filter(([api]) => WRITE_CLASS.test(api)).reduce((sum, [, count]) => sum + count, 0) / flushes;
}

function requestMix(json: unknown): string {
  return Object.entries(fastPathRequests(json))
    .map(([api, count]) => `${api} ${count}`)
    .join(', ');
}

function clickhouseSpecs(n: Reader): Spec[] {
  const section = 'ClickHouse inserts';
  const target: Target = { op: '<=', value: 1, text: '≤ 1 per second per table' };
  return [
    {
      section,
      id: 'clickhouse.insertsPerSecond.session_replay_events',
      name: 'inserts/s into session_replay_events (summary sink)',
      from: ['end-to-end-latency'],
      value: n('end-to-end-latency', 'sinkInserts.perSecond'),
      unit: '/s',
      target,
      note: `${show(n('end-to-end-latency', 'sinkInserts.count'))} inserts in ${show(n('end-to-end-latency', 'measureSeconds'))} s`,
    },
    ...(['user_behaviors', 'user_watches'] as const).map(
      (table): Spec => ({
        section,
        id: `clickhouse.insertsPerSecond.${table}`,
        name: `inserts/s into ${table} (behaviour sink)`,
        from: ['uba-throughput'],
        value: n('uba-throughput', `clickhouse.insertsPerSecond.${table}`),
        unit: '/s',
        target,
        note: `${show(n('uba-throughput', `clickhouse.rowsPerInsert.${table}`))} rows per insert`,
      }),
    ),
  ];
}

function latencySpecs(n: Reader): Spec[] {
  const section = 'Accept to playable (bench/end-to-end/latency.ts)';
  const from: Source[] = ['end-to-end-latency'];
  const seconds = (path: string) => {
    const ms = n('end-to-end-latency', path);
    return ms === null ? null : ms / 1000;
  };
  const targetS = seconds('target.p99AtMostMs');
  const flushS = seconds('settings.flushIntervalMs');
  const note =
    `flush interval ${show(flushS)} s; ${show(n('end-to-end-latency', 'probes.playable'))} of ` +
    `${show(n('end-to-end-latency', 'probes.measured'))} probes playable`;
  return [
    { section, id: 'latency.p50', name: 'latency p50', from, value: seconds('latencyMs.p50'), unit: 's', note },
    {
      section,
      id: 'latency.p99',
      name: 'latency p99',
      from,
      value: seconds('latencyMs.p99'),
      unit: 's',
      ...(targetS === null
        ? {}
        : { target: { op: '<=', value: targetS, text: `≤ flush interval + 5 s = ${targetS} s` } }),
      note,
    },
  ];
}

function ubaSpecs(n: Reader, throughput: unknown, queries: unknown): Spec[] {
  const section = 'UBA (bench/uba/throughput.ts, bench/uba/queries.ts)';
  const rows = n('uba-queries', 'shape.rows');
  const runs = n('uba-queries', 'runs');
  const figures = valueAt(queries, 'figures');
  const byName = new Map(
    (Array.isArray(figures) ? figures : []).map((f: { name?: string }) => [String(f.name), f] as const),
  );
  return [
    {
      section,
      id: 'uba.behavioursPerCpuSecond',
      name: 'behaviours per CPU-s, capture + behaviour sink',
      from: ['uba-throughput'],
      value: n('uba-throughput', 'behaviorsPerCpuSecond.captureAndBehaviorSink'),
      unit: '/CPU-s',
      target: { op: '>=', value: 50_000, text: '≥ 50k/s per core' },
      note: `${show(n('uba-throughput', 'options.behaviors'))} behaviours${valueAt(throughput, 'complete') === false ? ', incomplete at its time bound' : ''}`,
    },
    {
      section,
      id: 'uba.behavioursPerSecondWall',
      name: 'behaviours/s, capture to queryable row (wall)',
      from: ['uba-throughput'],
      value: n('uba-throughput', 'behaviorsPerSecondWall'),
      unit: '/s',
    },
    ...TARGETED_READS.map((read): Spec => {
      const figure = byName.get(read);
      const target = numberAt(figure, 'target');
      return {
        section,
        id: `uba.queryP99.${read}`,
        name: `query p99: ${read}`,
        from: ['uba-queries'],
        value: numberAt(figure, 'p99'),
        unit: 'ms',
        ...(target === null ? {} : { target: { op: '<=', value: target, text: `≤ ${target} ms (at 10M rows)` } }),
        note: `${rows === null ? '?' : `${show(rows / 1e6)}M`} rows, ${show(numberAt(figure, 'runs') ?? runs)} runs`,
      };
    }),
  ];
}

function costSpecs(n: Reader, blob: unknown): Spec[] {
  const section = 'Cost';
  const perGb = (mbPerCpuSecond: number | null) =>
    mbPerCpuSecond === null || mbPerCpuSecond === 0 ? null : 1000 / mbPerCpuSecond;
  const capture = perGb(n('capture', 'decompressedMBPerCaptureCoreSecond'));
  const consumer = perGb(n('blob-consumer', 'fastPath.rawMBPerCoreSecond'));
  const e2eCpuShare = n('end-to-end-latency', 'benchProcess.cpuPercentOfOneCore');
  const e2eMBps = n('end-to-end-latency', 'background.rawMBps');
  const e2e = e2eCpuShare === null || !e2eMBps ? null : ((e2eCpuShare / 100) * 1000) / e2eMBps;

  // A summary row is one session's block in one flush's object.
  const blocks = n('blob-consumer', 'fastPath.rows');
  const flushes = n('blob-consumer', 'fastPath.flushes');
  const objects = n('blob-consumer', 'fastPath.objects');
  const sessions = n('blob-consumer', 'corpusSessions');
  const writesPerFlush = writeRequestsPerFlush(n, blob);
  const writesPerMillion =
    writesPerFlush === null || flushes === null || !sessions ? null : ((writesPerFlush * flushes) / sessions) * 1e6;
  // A replay reads each of its blocks with one ranged GET.
  const blocksPerSession = ratio(blocks, sessions);
  const readsPerMillion = blocksPerSession === null ? null : blocksPerSession * 1e6;
  const dollars = (requests: number | null, per1000: number) =>
    requests === null ? null : (requests / 1000) * per1000;
  return [
    {
      section,
      id: 'cost.cpuSecondsPerGb.capture',
      name: 'CPU-s per GB: capture',
      from: ['capture'],
      value: capture,
      unit: 'CPU-s/GB',
    },
    {
      section,
      id: 'cost.cpuSecondsPerGb.blobConsumer',
      name: 'CPU-s per GB: blob consumer (fast path)',
      from: ['blob-consumer'],
      value: consumer,
      unit: 'CPU-s/GB',
    },
    {
      section,
      id: 'cost.cpuSecondsPerGb.captureAndBlobConsumer',
      name: 'CPU-s per GB: capture + blob consumer',
      from: ['capture', 'blob-consumer'],
      value: capture === null || consumer === null ? null : capture + consumer,
      unit: 'CPU-s/GB',
      note: 'the summary sink handles one row per session per flush, not bytes: see the next line',
    },
    {
      section,
      id: 'cost.cpuSecondsPerGb.endToEndProcess',
      name: 'CPU-s per GB: capture + blob consumer + sink + API in one process',
      from: ['end-to-end-latency'],
      value: e2e,
      unit: 'CPU-s/GB',
      note: `end-to-end bench process, load generator and polling included, at ${show(e2eMBps)} MB/s: fixed costs dominate`,
    },
    {
      section,
      id: 'cost.s3WriteDollarsPerMillionSessions',
      name: 'S3 write cost per million sessions',
      from: ['blob-consumer'],
      value: dollars(writesPerMillion, S3_PRICES.writePer1000),
      unit: '$',
      note:
        `${show(writesPerMillion)} PUT-class requests; ` +
        `${show(sessions)} sessions in ${show(flushes)} flushes, ${show(ratio(blocks, objects))} session blocks per object ` +
        `(this bench's batch); ` +
        `$${S3_PRICES.writePer1000} per 1,000`,
    },
    {
      section,
      id: 'cost.s3ReadDollarsPerMillionSessions',
      name: 'S3 read cost per million sessions, each replayed once',
      from: ['blob-consumer'],
      value: dollars(readsPerMillion, S3_PRICES.readPer1000),
      unit: '$',
      note: `one ranged GET per block, ${show(blocksPerSession)} blocks per session; $${S3_PRICES.readPer1000} per 1,000`,
    },
  ];
}

function compressionSpecs(n: Reader, ref: ReferenceFigures | undefined): Spec[] {
  const section = 'Compression (raw JSONL / compressed bytes)';
  const jsonParse = ref?.jsonParseMBPerCpuSecond;
  return [
    {
      section,
      id: 'compression.stored',
      name: "pipeline's stored objects (LZ4 frames as captured)",
      from: ['blob-consumer'],
      value: n('blob-consumer', 'compressionRatio'),
      unit: '×',
      note: 'blob consumer bench: raw JSONL over object bytes',
    },
    ...(ref?.codecs ?? [{ codec: 'LZ4, gzip, zstd, brotli', setting: 'on the same corpus', ratio: null }]).map(
      (codec): Spec => ({
        section,
        id: `compression.${codec.codec.toLowerCase().replace(/\W+/g, '-')}`,
        name: `${codec.codec}, ${codec.setting}`,
        from: ['reference'],
        value: codec.ratio,
        unit: '×',
        note:
          'compressMBPerCpuSecond' in codec
            ? `compresses ${show(codec.compressMBPerCpuSecond)} MB per CPU-s` +
              (jsonParse ? ` (${show(codec.compressMBPerCpuSecond / jsonParse)}× JSON.parse)` : '')
            : '',
      }),
    ),
  ];
}

function chaosSpecs(n: Reader): Spec[] {
  const section = 'Reliability (bench/chaos/run.ts --quick, with --with-chaos)';
  const none: Target = { op: '=', value: 0, text: '0 (acknowledged, then lost or doubled)' };
  const from: Source[] = ['chaos'];
  const scenarios = `${show(n('chaos', 'totals.scenarios'))} scenarios, ${show(n('chaos', 'totals.failedScenarios'))} failed`;
  return [
    {
      id: 'chaos.eventsLost',
      section,
      name: 'replay events lost',
      from,
      value: n('chaos', 'totals.replay.lost'),
      unit: '',
      target: none,
      note: scenarios,
    },
    {
      id: 'chaos.eventsDoubled',
      section,
      name: 'replay events doubled',
      from,
      value: n('chaos', 'totals.replay.duplicated'),
      unit: '',
      target: none,
    },
    {
      id: 'chaos.behavioursLost',
      section,
      name: 'behaviours lost',
      from,
      value: n('chaos', 'totals.behaviours.lost'),
      unit: '',
      target: none,
    },
    {
      id: 'chaos.behavioursDoubled',
      section,
      name: 'behaviours doubled',
      from,
      value: n('chaos', 'totals.behaviours.duplicated'),
      unit: '',
      target: none,
    },
    {
      id: 'chaos.worstTimeToPlayable',
      section,
      name: 'worst time to playable under faults',
      from,
      value: n('chaos', 'totals.worstTimeToPlayableMs'),
      unit: 'ms',
      note: `worst recovery ${show(n('chaos', 'totals.worstRecoveryMs'))} ms`,
    },
  ];
}
