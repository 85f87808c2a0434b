/** Which charts a run-all report gets, as SVG: throughput against its targets, latency percentiles, RSS. */
import type { Figure } from './figures.ts';
import type { RunAllReport } from './report.ts';
import { type Bar, barChartSvg, logLineChartSvg } from './svg-charts.ts';

export interface Chart {
  /** File name part: run-all-<time>-<name>.png. */
  readonly name: string;
  readonly svg: string;
}

function bar(figures: ReadonlyMap<string, Figure>, id: string, label: string): Bar {
  const figure = figures.get(id);
  return {
    label,
    value: figure?.value ?? null,
    target: figure?.target?.value ?? null,
    ...(figure ? { verdict: figure.verdict } : {}),
  };
}

export function chartsFor(report: RunAllReport): Chart[] {
  const byId = new Map(report.figures.map((f) => [f.id, f]));
  const when = `${report.context.mode === 'quick' ? 'run-all --quick' : 'run-all'}, ${report.context.startedAt}`;
  const throughput = barChartSvg({
    title: 'Throughput against DESIGN §5 targets',
    unit: 'MB/s',
    bars: [
      bar(byId, 'capture.mbPerCpuSecond', 'capture, decompressed MB per CPU-s'),
      bar(byId, 'blob.fastMBPerCpuSecond', 'blob consumer fast path, per CPU-s'),
      bar(byId, 'blob.parseMBPerCpuSecond', 'blob consumer parse-based, per CPU-s'),
      bar(byId, 'blob.fastSustainedMBps', 'fast path sustained, wall'),
      bar(byId, 'blob.parseSustainedMBps', 'parse-based sustained, wall'),
      bar(byId, 'reference.jsonParse', 'reference: JSON.parse per CPU-s'),
      bar(byId, 'reference.memcpy', 'reference: memcpy per CPU-s'),
    ],
    scale: 'log',
    footnote: `${when}. Green: target met, red: not met, blue: no target; the black ticks are the targets.`,
  });
  const latency = barChartSvg({
    title: 'Accept to playable through the API',
    unit: 's',
    bars: [bar(byId, 'latency.p50', 'p50'), bar(byId, 'latency.p99', 'p99 (target: flush interval + 5 s)')],
    footnote: `${when}. ${byId.get('latency.p99')?.note ?? ''}`,
  });
  const queries = barChartSvg({
    title: 'UBA query p99 against DESIGN §5 targets',
    unit: 'ms',
    bars: report.figures
      .filter((f) => f.id.startsWith('uba.queryP99.'))
      .map((f) => bar(byId, f.id, f.name.replace('query p99: ', ''))),
    footnote: `${when}. ${report.figures.find((f) => f.id.startsWith('uba.queryP99.'))?.note ?? ''}; the targets are for 10M rows.`,
  });
  const rss = logLineChartSvg({
    title: 'Blob consumer peak RSS against open sessions in one batch',
    xLabel: 'open sessions',
    unit: 'MB',
    points: report.figures
      .filter((f) => f.id.startsWith('blob.peakRssMb.'))
      .map((f) => ({ x: Number(f.id.slice('blob.peakRssMb.'.length)), y: f.value })),
    limit: { value: 512, label: 'target at 100k: < 512 MB' },
    footnote: `${when}.`,
  });
  return [
    { name: 'throughput', svg: throughput },
    { name: 'latency', svg: latency },
    { name: 'uba-queries', svg: queries },
    { name: 'rss', svg: rss },
  ];
}
