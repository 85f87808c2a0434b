import { describe, expect, it } from 'vitest';
import type { Figure } from '../../../bench/run-all/figures.ts';
import { chartsFor } from '../../../bench/run-all/plots.ts';
import type { ReferenceFigures } from '../../../bench/run-all/reference.ts';
import { assembleReport, type RunContext, renderTable } from '../../../bench/run-all/report.ts';
import type { BenchOutcome, BenchStatus } from '../../../bench/run-all/run-bench.ts';
import { judge } from '../../../bench/run-all/verdict.ts';

const context: RunContext = {
  mode: 'quick',
  startedAt: '2026-12-02T05:00:00.000Z',
  wallSeconds: 150,
  boundSeconds: 180,
  machine: { cpus: 2, cpuModel: 'test CPU', memoryGB: 24 },
  loadAverage: { before: 1.5, after: 2.5 },
  otherWork: { cpuSeconds: 60, share: 0.2 },
};

const reference: ReferenceFigures = {
  corpus: { sessions: 20, bodies: 28, bodyMB: 14.5, jsonlMB: 14.7 },
  jsonParseMBPerCpuSecond: 160,
  memcpyMBPerCpuSecond: 13_000,
  codecs: [
    { codec: 'LZ4 frame', setting: "the pipeline's", ratio: 4.9, compressMBPerCpuSecond: 690 },
    { codec: 'zstd', setting: 'level 3', ratio: 8.4, compressMBPerCpuSecond: 500 },
  ],
};

// The fields run-all reads, as the benches write them (trimmed from real runs).
const samples = {
  capture: {
    requests: 338,
    failures: 0,
    requestsPerSecond: 144,
    decompressedMBps: 80.3,
    captureCpuSeconds: 4.25,
    decompressedMBPerCaptureCoreSecond: 82.4,
    latencyMs: { p50: 51, p99: 121, max: 130 },
  },
  'blob-consumer': {
    corpusSessions: 300,
    rawMB: 220,
    fastPath: {
      seconds: 8,
      cpuSeconds: 0.76,
      flushes: 1,
      objects: 1,
      rows: 300,
      wallMBps: 27.5,
      rawMBPerCoreSecond: 291,
      s3Requests: { NewMultipartUpload: 1, PutObjectPart: 6, CompleteMultipartUpload: 1, HeadBucket: 1 },
      sustained: { seconds: 1.4, rawMB: 200, wallMBps: 142.9, cpuSeconds: 0.7, rawMBPerCoreSecond: 285.7 },
    },
    parsePath: { cpuSeconds: 4.1, wallMBps: 20, rawMBPerCoreSecond: 54, sustained: null },
    speedupPerCore: 4.2,
    objectsPerFlush: 1,
    objectMBPerFlush: 45,
    compressionRatio: 4.88,
    memoryByOpenSessions: { '1000': { peakRssMb: 133 }, '10000': { peakRssMb: 166 }, '100000': { peakRssMb: 481 } },
  },
  'end-to-end-latency': {
    settings: { flushIntervalMs: 10_000 },
    probes: { measured: 60, playable: 60, timedOut: 0 },
    latencyMs: { p50: 5770, p90: 9910, p99: 10_590, max: 10_590 },
    target: { p99AtMostMs: 15_000, met: true },
    sinkInserts: { count: 9, perSecond: 0.1 },
    background: { rawMBps: 1.0 },
    benchProcess: { cpuPercentOfOneCore: 40 },
    measureSeconds: 90,
  },
  'uba-throughput': {
    complete: true,
    options: { behaviors: 100_000 },
    behaviorsPerSecondWall: 5200,
    behaviorsPerCpuSecond: { captureAndBehaviorSink: 7900 },
    clickhouse: {
      insertsPerSecond: { user_behaviors: 0.4, user_watches: 1.3 },
      rowsPerInsert: { user_behaviors: 16_700, user_watches: 900 },
    },
  },
  'uba-queries': {
    shape: { rows: 1_000_000 },
    runs: 10,
    figures: [
      { name: 'dashboard', runs: 10, p50: 30, p99: 84, target: 150 },
      { name: 'timeline', runs: 10, p50: 26, p99: 33, target: 20 },
      { name: 'audiences', runs: 10, p50: 300, p99: 500 },
    ],
  },
} as const;

/** A bench's outcome; `wroteJson: false` for one that ended before writing its JSON. */
function outcome(name: keyof typeof samples, status: BenchStatus = 'ok', wroteJson = true): BenchOutcome {
  const json = wroteJson ? samples[name] : undefined;
  return {
    name,
    status,
    command: `node bench/${name}.ts --out /tmp/${name}.json`,
    seconds: 20,
    budgetSeconds: 40,
    exitCode: status === 'ok' ? 0 : 1,
    ...(status === 'ok' ? {} : { reason: 'exit 1' }),
    outFile: `/tmp/${name}.json`,
    logFile: `/tmp/${name}.log`,
    ...(json === undefined ? {} : { json }),
    loadAverage: { before: 0.5, after: 1.0 },
    otherWork: { cpuSeconds: 4, share: 0.1 },
  };
}

const allOk = () => (Object.keys(samples) as (keyof typeof samples)[]).map((name) => outcome(name));

function figure(figures: readonly Figure[], id: string): Figure {
  const found = figures.find((f) => f.id === id);
  if (!found) throw new Error(`no figure ${id}`);
  return found;
}

describe('judge', () => {
  it('compares a value with its target by the target operator', () => {
    expect(judge(250, { op: '>=', value: 250, text: '' }, false)).toBe('met');
    expect(judge(249.9, { op: '>=', value: 250, text: '' }, false)).toBe('not met');
    expect(judge(1, { op: '>', value: 1, text: '' }, false)).toBe('not met');
    expect(judge(1, { op: '<=', value: 1, text: '' }, false)).toBe('met');
    expect(judge(512, { op: '<', value: 512, text: '' }, false)).toBe('not met');
    expect(judge(1, { op: '=', value: 1, text: '' }, false)).toBe('met');
    expect(judge(2, { op: '=', value: 1, text: '' }, false)).toBe('not met');
  });

  it('tells a figure without a target from one that is missing or whose bench failed', () => {
    expect(judge(3, null, false)).toBe('no target');
    expect(judge(null, { op: '>=', value: 1, text: '' }, false)).toBe('missing');
    expect(judge(null, { op: '>=', value: 1, text: '' }, true)).toBe('failed');
  });
});

describe('assembleReport', () => {
  const report = assembleReport({ context, reference, outcomes: allOk() });

  it('judges each figure against its DESIGN §5 target', () => {
    const verdict = (id: string) => figure(report.figures, id).verdict;
    expect(verdict('capture.mbPerCpuSecond')).toBe('met');
    expect(verdict('capture.overJsonParse')).toBe('not met');
    expect(verdict('blob.fastMBPerCpuSecond')).toBe('met');
    expect(verdict('blob.speedup')).toBe('not met');
    expect(verdict('blob.peakRssMb.100000')).toBe('met');
    expect(verdict('blob.peakRssMb.1000')).toBe('no target');
    expect(verdict('s3.objectsPerFlush')).toBe('met');
    expect(verdict('latency.p99')).toBe('met');
    expect(verdict('clickhouse.insertsPerSecond.user_behaviors')).toBe('met');
    expect(verdict('clickhouse.insertsPerSecond.user_watches')).toBe('not met');
    expect(verdict('uba.behavioursPerCpuSecond')).toBe('not met');
    expect(verdict('uba.queryP99.dashboard')).toBe('met');
    expect(verdict('uba.queryP99.timeline')).toBe('not met');
    // Parse-based sustained was too short to measure: the bench reported null.
    expect(verdict('blob.parseSustainedMBps')).toBe('missing');
    // A read the bench did not run.
    expect(verdict('uba.queryP99.funnel')).toBe('missing');
  });

  it('derives ratios, costs and CPU per GB from the benches and the reference', () => {
    expect(figure(report.figures, 'capture.mbPerCpuSecond').vsJsonParse).toBeCloseTo(82.4 / 160);
    expect(figure(report.figures, 'capture.overJsonParse').value).toBeCloseTo(82.4 / 160);
    expect(figure(report.figures, 'reference.jsonParse').vsJsonParse).toBe(1);
    // PUT-class only: the multipart create, 6 parts and complete; HEAD is billed at the GET rate.
    expect(figure(report.figures, 's3.writeRequestsPerFlush').value).toBe(8);
    // 8 requests per flush of 300 sessions: 26,667 per million, at $0.005 per 1,000.
    expect(figure(report.figures, 'cost.s3WriteDollarsPerMillionSessions').value).toBeCloseTo((8 / 300) * 1e3 * 0.005);
    // One block per session, one GET per block, $0.0004 per 1,000.
    expect(figure(report.figures, 'cost.s3ReadDollarsPerMillionSessions').value).toBeCloseTo(0.4);
    expect(figure(report.figures, 'cost.cpuSecondsPerGb.captureAndBlobConsumer').value).toBeCloseTo(
      1000 / 82.4 + 1000 / 291,
    );
    expect(figure(report.figures, 'cost.cpuSecondsPerGb.endToEndProcess').value).toBeCloseTo(400);
    expect(figure(report.figures, 'latency.p99').value).toBeCloseTo(10.59);
    expect(figure(report.figures, 'latency.p99').target?.value).toBe(15);
    expect(figure(report.figures, 'compression.zstd').value).toBe(8.4);
  });

  it('counts the verdicts, leaves the benches JSON out, and is complete when everything ran', () => {
    const counted = Object.values(report.verdicts).reduce((a, b) => a + b, 0);
    expect(counted).toBe(report.figures.length);
    expect(report.complete).toBe(true);
    expect(report.benches.every((b) => !('json' in b))).toBe(true);
    expect(JSON.parse(JSON.stringify(report)).figures).toHaveLength(report.figures.length);
  });

  it('marks the figures of a failed bench as failed and the run as incomplete', () => {
    const outcomes = allOk().map((o) =>
      o.name === 'blob-consumer' ? outcome('blob-consumer', 'timed out', false) : o,
    );
    const failed = assembleReport({ context, reference, outcomes });
    expect(figure(failed.figures, 'blob.fastMBPerCpuSecond').verdict).toBe('failed');
    expect(figure(failed.figures, 'blob.peakRssMb.100000').verdict).toBe('failed');
    // Derived from the failed bench and a good one: failed too.
    expect(figure(failed.figures, 'cost.cpuSecondsPerGb.captureAndBlobConsumer').verdict).toBe('failed');
    expect(figure(failed.figures, 'capture.mbPerCpuSecond').verdict).toBe('met');
    expect(failed.complete).toBe(false);
  });

  it('keeps the figures a failed bench wrote before failing', () => {
    const outcomes = allOk().map((o) =>
      o.name === 'end-to-end-latency' ? outcome('end-to-end-latency', 'failed') : o,
    );
    const failed = assembleReport({ context, reference, outcomes });
    expect(figure(failed.figures, 'latency.p99').verdict).toBe('met');
    expect(failed.complete).toBe(false);
  });

  it('is incomplete without the reference, whose figures then fail', () => {
    const noReference = assembleReport({ context, reference: undefined, referenceError: 'boom', outcomes: allOk() });
    expect(figure(noReference.figures, 'reference.jsonParse').verdict).toBe('failed');
    expect(figure(noReference.figures, 'capture.overJsonParse').verdict).toBe('failed');
    expect(figure(noReference.figures, 'capture.mbPerCpuSecond').vsJsonParse).toBeNull();
    expect(noReference.complete).toBe(false);
  });
});

describe('the chaos bench (--with-chaos)', () => {
  it('adds its loss and duplication figures only when it ran', () => {
    expect(
      assembleReport({ context, reference, outcomes: allOk() }).figures.some((f) => f.from.includes('chaos')),
    ).toBe(false);
    const chaos: BenchOutcome = {
      ...outcome('capture'),
      name: 'chaos',
      json: {
        totals: {
          scenarios: 5,
          failedScenarios: 1,
          replay: { lost: 18, duplicated: 0 },
          behaviours: { lost: 0, duplicated: 0 },
          worstTimeToPlayableMs: 1764,
        },
      },
    };
    const report = assembleReport({ context, reference, outcomes: [...allOk(), chaos] });
    expect(figure(report.figures, 'chaos.eventsLost').verdict).toBe('not met');
    expect(figure(report.figures, 'chaos.eventsDoubled').verdict).toBe('met');
    expect(figure(report.figures, 'chaos.behavioursLost').verdict).toBe('met');
    expect(figure(report.figures, 'chaos.worstTimeToPlayable').value).toBe(1764);
  });
});

describe('renderTable', () => {
  it('prints one table with sections, targets and verdicts, then a line per bench', () => {
    const outcomes = allOk().map((o) => (o.name === 'uba-queries' ? outcome('uba-queries', 'failed', false) : o));
    const text = renderTable(assembleReport({ context, reference, outcomes }));
    const lines = text.split('\n');
    expect(lines.filter((l) => l.startsWith('|---'))).toHaveLength(1);
    expect(text).toContain('| figure | measured | × JSON.parse | DESIGN §5 target | verdict | note |');
    expect(text).toContain('| **Capture (bench/capture/run.ts)** | | | | | |');
    expect(text).toMatch(
      /\| decompressed MB per capture CPU-s \| 82\.4 MB\/CPU-s \| 0\.52× \| ≥ 50 MB\/s per core \| met \|/,
    );
    expect(text).toMatch(
      /\| fast \/ parse-based, per CPU-s \| 4\.20× \| {2}\| ≥ 5× in the same run \| \*\*not met\*\* \|/,
    );
    expect(text).toMatch(/\| query p99: timeline \| — \| {2}\| — \| \*\*failed\*\* \|/);
    expect(text).toContain('| S3 write cost per million sessions | $0.13 |');
    expect(text).toContain('other work used 60 CPU-s, 20 % of the machine (machine shared');
    expect(text).toContain('uba-queries: failed, 20 s of 40 s, other work 10 % of the machine; exit 1');
  });
});

describe('chartsFor', () => {
  it('draws throughput, latency, query and RSS charts, a missing figure as "missing"', () => {
    const outcomes = allOk().map((o) => (o.name === 'uba-queries' ? outcome('uba-queries', 'failed', false) : o));
    const charts = chartsFor(assembleReport({ context, reference, outcomes }));
    expect(charts.map((c) => c.name)).toEqual(['throughput', 'latency', 'uba-queries', 'rss']);
    for (const chart of charts) expect(chart.svg).toMatch(/^<svg [^>]+>[\s\S]*<\/svg>$/);
    expect(charts[0]!.svg).toContain('blob consumer fast path, per CPU-s');
    expect(charts[0]!.svg).toContain('target 250');
    expect(charts[2]!.svg).toContain('missing');
    expect(charts[3]!.svg).toContain('481 MB');
  });
});
