/**
 * The one table run-all prints and the JSON it writes, assembled from the benches' outcomes and the reference line.
 * Pure: no clock, no files.
 */
import { buildFigures, type Figure, S3_PRICES } from './figures.ts';
import { formatNumber } from './format.ts';
import type { OtherWork } from './other-work.ts';
import type { BenchName, Mode } from './plan.ts';
import type { ReferenceFigures } from './reference.ts';
import type { BenchOutcome } from './run-bench.ts';
import type { Verdict } from './verdict.ts';

export interface RunContext {
  readonly mode: Mode;
  readonly startedAt: string;
  readonly wallSeconds: number;
  readonly boundSeconds: number;
  readonly machine: { readonly cpus: number; readonly cpuModel: string; readonly memoryGB: number };
  /** 1-minute load average at the start and at the end (this run's own benches included). */
  readonly loadAverage: { readonly before: number; readonly after: number };
  /** CPU used outside run-all's process tree during the run. */
  readonly otherWork: OtherWork;
}

export interface RunAllReport {
  readonly context: RunContext;
  readonly prices: string;
  readonly reference: ReferenceFigures | null;
  readonly referenceError?: string;
  readonly benches: readonly Omit<BenchOutcome, 'json'>[];
  readonly figures: readonly Figure[];
  readonly verdicts: Readonly<Record<Verdict, number>>;
  /** True when every bench and the reference ran: run-all's exit status. */
  readonly complete: boolean;
  readonly plots: readonly string[];
}

/** Above this share of the machine used by other work, the run's figures come from a shared machine. */
const SHARED_SHARE = 0.05;

const percent = (share: number) => `${formatNumber(share * 100)} %`;

export function assembleReport(input: {
  readonly context: RunContext;
  readonly reference: ReferenceFigures | undefined;
  readonly referenceError?: string;
  readonly outcomes: readonly BenchOutcome[];
  readonly plots?: readonly string[];
}): RunAllReport {
  const benches = Object.fromEntries(
    input.outcomes.map((o) => [o.name, { status: o.status, json: o.json }]),
  ) as Partial<Record<BenchName, { status: BenchOutcome['status']; json?: unknown }>>;
  const figures = buildFigures({ benches, reference: input.reference });
  const verdicts: Record<Verdict, number> = { met: 0, 'not met': 0, 'no target': 0, missing: 0, failed: 0 };
  for (const figure of figures) verdicts[figure.verdict]++;
  return {
    context: input.context,
    prices: S3_PRICES.text,
    reference: input.reference ?? null,
    ...(input.referenceError ? { referenceError: input.referenceError } : {}),
    benches: input.outcomes.map(({ json: _json, ...outcome }) => outcome),
    figures,
    verdicts,
    complete: input.reference !== undefined && input.outcomes.every((o) => o.status === 'ok'),
    plots: input.plots ?? [],
  };
}

const VERDICT_TEXT: Record<Verdict, string> = {
  met: 'met',
  'not met': '**not met**',
  'no target': 'no target',
  missing: 'missing',
  failed: '**failed**',
};

const escapeCell = (text: string) => text.replaceAll('|', '\\|');

function measured(figure: Figure): string {
  if (figure.value === null) return '—';
  const number = formatNumber(figure.value);
  if (figure.unit === '$') return `$${number}`;
  if (figure.unit === '×') return `${number}×`;
  return figure.unit ? `${number} ${figure.unit}` : number;
}

/** The markdown table of every figure, section by section, then one line per bench and the machine. */
export function renderTable(report: RunAllReport): string {
  const { context } = report;
  const shared = context.otherWork.share > SHARED_SHARE;
  const lines = [
    `run-all ${context.mode === 'quick' ? '--quick' : '(default)'}, ${context.startedAt}, ` +
      `${formatNumber(context.wallSeconds)} s of the ${context.boundSeconds} s bound; ` +
      `${context.machine.cpus} × ${context.machine.cpuModel}, ${context.machine.memoryGB} GB; other work used ` +
      `${formatNumber(context.otherWork.cpuSeconds)} CPU-s, ${percent(context.otherWork.share)} of the machine` +
      `${shared ? ' (machine shared: CPU figures high, wall figures low)' : ''}`,
    '',
    '| figure | measured | × JSON.parse | DESIGN §5 target | verdict | note |',
    '|---|---:|---:|---|---|---|',
  ];
  let section = '';
  for (const figure of report.figures) {
    if (figure.section !== section) {
      section = figure.section;
      lines.push(`| **${escapeCell(section)}** | | | | | |`);
    }
    lines.push(
      `| ${[
        figure.name,
        measured(figure),
        figure.vsJsonParse === null ? '' : `${formatNumber(figure.vsJsonParse)}×`,
        figure.target?.text ?? '—',
        VERDICT_TEXT[figure.verdict],
        figure.note,
      ]
        .map(escapeCell)
        .join(' | ')} |`,
    );
  }
  const v = report.verdicts;
  lines.push(
    '',
    `${v.met} met, ${v['not met']} not met, ${v['no target']} without a target, ${v.missing} missing, ${v.failed} failed. ` +
      `${report.prices}.`,
    ...(report.referenceError ? [`reference: failed: ${report.referenceError}`] : []),
    ...report.benches.map(
      (b) =>
        `${b.name}: ${b.status}, ${formatNumber(b.seconds)} s of ${b.budgetSeconds} s, other work ` +
        `${percent(b.otherWork.share)} of the machine${b.reason ? `; ${b.reason}` : ''} (${b.command})`,
    ),
  );
  return lines.join('\n');
}
