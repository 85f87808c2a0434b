import { type MetricEntry, metricCatalogue } from '../../src/metrics/catalogue.ts';

/** The series names a metric of each type exposes: its name plus these suffixes. */
const seriesSuffixes: Readonly<Record<string, readonly string[]>> = {
  counter: [''],
  gauge: [''],
  histogram: ['_bucket', '_sum', '_count'],
  summary: ['', '_sum', '_count'],
};

function seriesNames(metric: MetricEntry): string[] {
  const suffixes = seriesSuffixes[metric.type];
  if (!suffixes) throw new Error(`metric ${metric.name} has an unknown type ${metric.type}`);
  return suffixes.map((suffix) => `${metric.name}${suffix}`);
}

/**
 * Every series name the processes can expose, from the metric catalogue (src/metrics/catalogue.ts, built from the
 * factories the services call): the HTTP layer's, each service's and prom-client's process metrics, histograms as
 * `_bucket`/`_sum`/`_count`, summaries as themselves, `_sum` and `_count`; plus `up`, which Prometheus adds.
 */
export async function knownMetricNames(): Promise<Set<string>> {
  const catalogue = await metricCatalogue();
  const metrics = [...catalogue.http, ...Object.values(catalogue.services).flat(), ...catalogue.process];
  return new Set(['up', ...metrics.flatMap(seriesNames)]);
}

const promqlKeywords = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'offset',
  'bool',
  'inf',
  'nan',
  'atan2',
]);

/** Metric names a PromQL expression reads (strings, label matchers, ranges and grouping labels left out). */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  // A name not preceded by a word character or a dot (so not the exponent of 1e6, not the unit of 15m) and not
  // followed by `(` (a function or an aggregation).
  for (const match of bare.matchAll(/(?<![\w:.])([a-zA-Z_:][\w:]*)(?![\w:]|\s*\()/g)) {
    if (!promqlKeywords.has(match[1]!.toLowerCase())) names.add(match[1]!);
  }
  return [...names];
}
