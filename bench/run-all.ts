/**
 * One benchmark command: the reference line, then each bench as a child process (as users run it) with sizes that
 * keep the whole inside its bound, then one table of every figure beside its DESIGN §5 target, the JSON and PNG
 * plots in bench/results/.
 *
 *   node bench/run-all.ts [--quick] [--with-chaos] [--help]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { measureOtherWork } from './run-all/other-work.ts';
import { benchPlan } from './run-all/plan.ts';
import { chartsFor } from './run-all/plots.ts';
import { measureReferenceApart, type ReferenceFigures } from './run-all/reference.ts';
import { renderPngs } from './run-all/render-png.ts';
import { assembleReport, renderTable } from './run-all/report.ts';
import { type BenchOutcome, runBench, skippedOutcome } from './run-all/run-bench.ts';
import { benchArgs } from './shared/args.ts';

const args = benchArgs(
  `One benchmark command: every bench on real services on loopback, one table of the figures beside their
DESIGN §5 targets (met / not met / no target), JSON and PNG plots.

  node bench/run-all.ts [options]

  --quick        smaller sizes: at most 3 minutes on 2 cores (default: at most 15 minutes)
  --with-chaos   also bench/chaos/run.ts --quick (about 3 minutes more; the bound grows by 4 minutes)
  --help         this text

Runs, in order: the reference (JSON.parse, memcpy and codecs on the corpus, in a process of its own),
bench/capture/run.ts, bench/blob-consumer/run.ts, bench/end-to-end/latency.ts, bench/uba/throughput.ts and
bench/uba/queries.ts, each with --out FILE and a budget (killed past it; its figures then count as failed).
Progress goes to stderr, the table to stdout. Writes bench/results/run-all-<time>.json, each bench's JSON and log
(run-all-<time>-<bench>.json, .log) and run-all-<time>-{throughput,latency,uba-queries,rss}.png. Exits 1 when a
bench failed, timed out or was skipped, or the reference or the plots failed; a target not met is not an error.`,
  { quick: { type: 'boolean', default: false }, 'with-chaos': { type: 'boolean', default: false } },
);

const plan = benchPlan(args.quick ? 'quick' : 'default', { withChaos: args['with-chaos'] });
const root = fileURLToPath(new URL('../', import.meta.url));
const startedAt = new Date();
const prefix = join(root, 'bench/results', `run-all-${startedAt.toISOString().replace(/[:.]/g, '-')}`);
/** Seconds kept back at the end for the report and the plots. */
const RESERVE_SECONDS = 15;

const started = performance.now();
const elapsed = () => (performance.now() - started) / 1000;
const left = () => plan.boundSeconds - elapsed();
const progress = (message: string) =>
  process.stderr.write(`[run-all ${elapsed().toFixed(0)} s, ${Math.max(0, left()).toFixed(0)} s left] ${message}\n`);

const interrupted = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    progress(`${signal}: stopping the running bench, then reporting what there is (again to exit now)`);
    interrupted.abort();
    process.once(signal, () => process.exit(130));
  });
}

await mkdir(join(root, 'bench/results'), { recursive: true });
const loadBefore = Number(loadavg()[0]!.toFixed(2));
const otherWork = await measureOtherWork();
progress(`${plan.mode} run, bound ${plan.boundSeconds} s; files ${prefix}-*`);

progress(`reference: JSON.parse, memcpy and codecs on ${plan.reference.sessions} corpus sessions`);
let reference: ReferenceFigures | undefined;
let referenceError: string | undefined;
try {
  reference = await measureReferenceApart(plan.reference);
} catch (error) {
  referenceError = (error as Error).message;
  progress(`reference failed: ${referenceError}`);
}

const outcomes: BenchOutcome[] = [];
for (const step of plan.steps) {
  const files = { outFile: `${prefix}-${step.name}.json`, logFile: `${prefix}-${step.name}.log` };
  const budget = Math.min(step.budgetSeconds, Math.floor(left() - RESERVE_SECONDS));
  if (interrupted.signal.aborted || budget < 15) {
    const reason = interrupted.signal.aborted ? 'run-all interrupted' : `${budget} s left of the bound`;
    progress(`${step.name}: skipped (${reason})`);
    outcomes.push(skippedOutcome(step, files, reason));
    continue;
  }
  progress(`${step.name}: starting, budget ${budget} s: node ${step.script} ${step.args.join(' ')}`);
  const outcome = await runBench(step, {
    cwd: root,
    ...files,
    budgetSeconds: budget,
    signal: interrupted.signal,
    progress,
  });
  progress(`${step.name}: ${outcome.status} after ${outcome.seconds} s${outcome.reason ? ` (${outcome.reason})` : ''}`);
  outcomes.push(outcome);
}

const context = {
  mode: plan.mode,
  startedAt: startedAt.toISOString(),
  wallSeconds: 0,
  boundSeconds: plan.boundSeconds,
  machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryGB: Math.round(totalmem() / 2 ** 30) },
  loadAverage: { before: loadBefore, after: Number(loadavg()[0]!.toFixed(2)) },
  otherWork: await otherWork(),
};
const draft = assembleReport({ context, reference, referenceError, outcomes });
let plots: string[] = [];
let plotError: string | undefined;
progress('plots: rendering with headless Chromium');
try {
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error('Chromium took over 30 s')), 30_000).unref(),
  );
  plots = await Promise.race([renderPngs(chartsFor(draft), prefix), timeout]);
} catch (error) {
  plotError = (error as Error).message;
  progress(`plots failed: ${plotError}`);
}

const report = assembleReport({
  context: { ...context, wallSeconds: Number(elapsed().toFixed(1)) },
  reference,
  referenceError,
  outcomes,
  plots,
});
const jsonFile = `${prefix}.json`;
await writeFile(jsonFile, `${JSON.stringify({ ...report, ...(plotError ? { plotError } : {}) }, null, 2)}\n`);
process.stdout.write(`${renderTable(report)}\n`);
progress(`wrote ${jsonFile}${plots.length ? ` and ${plots.length} plots` : ''}`);
process.exit(report.complete && !plotError ? 0 : 1);
