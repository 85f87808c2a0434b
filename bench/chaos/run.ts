/**
 * Chaos: randomized faults against the real pipeline on loopback, and what they cost in lost, doubled and late
 * events (DESIGN §5 "Reliability").
 *
 *   node bench/chaos/run.ts [--seed S] [--scenarios N] [--quick] [--only name,name] [--out FILE] [--help]
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from '../shared/args.ts';
import { prng } from '../shared/prng.ts';
import { failed, runScenario, type ScenarioResult, scenarioTiming, seconds } from './engine.ts';
import { S3_REQUEST_TIMEOUT_MS, startChaosPipeline } from './pipeline.ts';
import { chaosTotals, formatTable } from './report.ts';
import { isScenarioName, planScenarios, type ScenarioName, scenarioKinds, unavailableKinds } from './scenarios.ts';
import { startOwnServices } from './services.ts';

const kindList = Object.entries(scenarioKinds)
  .map(([name, kind]) => `  ${name.padEnd(20)} ${kind.summary}`)
  .join('\n');

const usage = `Chaos: randomized faults against the real pipeline on loopback.

  node bench/chaos/run.ts [options]

Starts Kafka, MinIO, PostgreSQL and Redis on loopback, then the pipeline as separate processes with stable
identities (capture, blob consumer, read side = summary sink + behaviour sink + API on one chDB, realtime sink),
and runs N scenarios drawn from the seed: each records sessions and behaviours through capture on a team of its
own, injects one fault at a drawn moment, waits for the pipeline to catch up, and reads everything back through
the replay API, ClickHouse and Redis.

Options:
  --seed S               seed of the scenario kinds, their timing and the traffic (default: drawn, and printed)
  --scenarios N          scenarios to run (default 12, every kind once; 5 with --quick)
  --quick                shorter faults and traffic: about 3 minutes
  --only a,b             draw only these kinds
  --flush-interval-ms MS BLOB_FLUSH_INTERVAL_MS of the blob consumers (default 1000)
  --recovery-timeout-s S longest wait per scenario for the pipeline to catch up (default 90; 40 with --quick)
  --out FILE             write the JSON here instead of bench/results/chaos-<time>.json
  --help                 this text

Scenario kinds:
${kindList}

Per scenario and in total: events sent, acknowledged (capture 200), replayable (through the API after recovery),
lost (acknowledged, not replayable), doubled (summary counters and raw blocks beyond one copy), the worst time to
playable and the recovery time; the same for behaviours in ClickHouse and Redis. Goal: 0 lost, 0 doubled,
playable within the flush interval + 5 s. Exits 1 when anything was lost or doubled.`;

const args = benchArgs(usage, {
  seed: { type: 'string', default: '' },
  scenarios: { type: 'string', default: '' },
  quick: { type: 'boolean', default: false },
  only: { type: 'string', default: '' },
  'flush-interval-ms': { type: 'string', default: '1000' },
  'recovery-timeout-s': { type: 'string', default: '' },
  out: { type: 'string', default: '' },
});
const quick = args.quick;
const seed = args.seed === '' ? Math.floor(Math.random() * 2 ** 31) : Math.floor(args.number('seed', 0));
const count = args.scenarios === '' ? (quick ? 5 : Object.keys(scenarioKinds).length) : args.number('scenarios');
const flushIntervalMs = Math.floor(args.number('flush-interval-ms', 100));
const only = args.only === '' ? undefined : args.only.split(',').map((name) => name.trim());
const unknown = only?.filter((name) => !isScenarioName(name)) ?? [];
if (unknown.length > 0) {
  process.stderr.write(`error: unknown scenario kind ${unknown.join(', ')}\n\n${usage}\n`);
  process.exit(2);
}

/** The whole run's bound, start-up and shutdown included: no scenario starts that would not end inside it. */
const budgetMs = (quick ? 3 : 10) * 60_000;
const timing = {
  ...scenarioTiming(quick, flushIntervalMs),
  ...(args['recovery-timeout-s'] === '' ? {} : { recoveryTimeoutMs: args.number('recovery-timeout-s') * 1000 }),
};
const goalMs = flushIntervalMs + 5000;

const benchStart = Date.now();
const elapsed = () => `${((Date.now() - benchStart) / 1000).toFixed(0).padStart(3)} s`;
const log = (message: string) => process.stderr.write(`[chaos ${elapsed()}] ${message}\n`);
// Last resort if a shutdown hangs: the services and roles die with this process (pdeathsig).
setTimeout(() => {
  log('hard deadline passed; exiting');
  process.exit(3);
}, budgetMs + 90_000).unref();

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const dir = await mkdtemp(join(tmpdir(), 'replay-chaos-'));
let exitCode = 0;
log(`seed ${seed} (run again with --seed ${seed}${quick ? ' --quick' : ''})`);
try {
  log('starting Kafka, MinIO, PostgreSQL and Redis on loopback');
  const services = await startOwnServices(dir, log);
  try {
    const missing = unavailableKinds(services);
    if (missing.length > 0) log(`this run cannot cause: ${missing.join(', ')}`);
    log('starting capture, blob consumer, read side and realtime sink as processes');
    const pipeline = await startChaosPipeline(services, { dir, flushIntervalMs });
    const results: ScenarioResult[] = [];
    const skipped: ScenarioName[] = [];
    try {
      const plan = planScenarios(prng(seed), {
        count,
        quick,
        services,
        ...(only ? { only: only as ScenarioName[] } : {}),
      });
      log(`plan: ${plan.map((s) => s.name).join(', ')}`);
      for (const [index, scenario] of plan.entries()) {
        // Room for the longest scenario so far (at least a typical one) and the shutdown.
        const longest = Math.max(quick ? 20_000 : 30_000, ...results.map((r) => r.wallMs));
        if (Date.now() - benchStart + longest + 30_000 > budgetMs) {
          skipped.push(scenario.name);
          continue;
        }
        results.push(
          await runScenario({
            index,
            scenario,
            pipeline,
            services,
            rand: prng(seed + 7919 * (index + 1)),
            timing,
            log,
          }),
        );
      }
    } finally {
      await pipeline.stop();
    }
    if (skipped.length > 0) log(`left out to stay inside ${seconds(budgetMs)}: ${skipped.join(', ')}`);

    const totals = chaosTotals(results);
    const passed = totals.failedScenarios === 0 && results.length > 0;
    process.stdout.write(`\nchaos, seed ${seed}${quick ? ', --quick' : ''}, ${results.length} scenarios\n\n`);
    process.stdout.write(`${formatTable(results, goalMs)}\n\n`);
    process.stdout.write(
      `goal: 0 lost, 0 doubled, playable within the flush interval + 5 s = ${seconds(goalMs)} ` +
        `(worst time to playable ${seconds(totals.worstTimeToPlayableMs)}, worst recovery ${seconds(totals.worstRecoveryMs)})\n`,
    );
    for (const r of results.filter((r) => r.problems.length > 0 || failed(r))) {
      process.stdout.write(`  ${r.index + 1} ${r.name}: ${JSON.stringify(r.params)} ${r.problems.join('; ')}\n`);
    }
    const file =
      args.out || join(repoRoot, 'bench/results', `chaos-${new Date().toISOString().replaceAll(/[:.]/g, '-')}.json`);
    await mkdir(dirname(file), { recursive: true });
    const report = {
      bench: 'chaos',
      seed,
      quick,
      command: process.argv.slice(2),
      startedAt: new Date(benchStart).toISOString(),
      wallMs: Date.now() - benchStart,
      loadAverage: loadavg(),
      settings: { ...timing, s3RequestTimeoutMs: S3_REQUEST_TIMEOUT_MS },
      goal: { lost: 0, doubled: 0, playableWithinMs: goalMs },
      unavailable: missing,
      skipped,
      scenarios: results,
      totals,
      passed,
    };
    await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
    log(`wrote ${file}`);
    if (!passed) exitCode = 1;
  } finally {
    await services.stop();
  }
} catch (error) {
  log(`failed: ${(error as Error).stack ?? String(error)}`);
  exitCode = 1;
} finally {
  await rm(dir, { recursive: true, force: true });
}
process.exit(exitCode);
