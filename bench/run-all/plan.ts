/**
 * What `node bench/run-all.ts` runs, in order, and how big: sizes chosen so the whole stays inside the bound on this
 * 2-core machine (each bench's own time bound, where it has one, inside its budget here).
 */

export type BenchName = 'capture' | 'blob-consumer' | 'end-to-end-latency' | 'uba-throughput' | 'uba-queries' | 'chaos';

export interface BenchStep {
  readonly name: BenchName;
  readonly script: string;
  /** Arguments before the `--out FILE` run-all adds. */
  readonly args: readonly string[];
  /** Wall seconds it may take, start-up and shutdown included; it is killed past them. */
  readonly budgetSeconds: number;
}

export type Mode = 'quick' | 'default';

export interface Plan {
  readonly mode: Mode;
  /** The bound on the whole command, reference and plots included. */
  readonly boundSeconds: number;
  readonly reference: { readonly sessions: number; readonly minCpuSeconds: number };
  readonly steps: readonly BenchStep[];
}

/** The chaos bench's own --quick takes about 3 minutes, whatever run-all's mode. */
const CHAOS_BUDGET_SECONDS = 240;

export function benchPlan(mode: Mode, options: { readonly withChaos: boolean }): Plan {
  const quick = mode === 'quick';
  const steps: BenchStep[] = [
    {
      name: 'capture',
      script: 'bench/capture/run.ts',
      args: quick ? ['--seconds', '4', '--sessions', '20'] : ['--seconds', '20', '--sessions', '200'],
      budgetSeconds: quick ? 40 : 90,
    },
    {
      name: 'blob-consumer',
      script: 'bench/blob-consumer/run.ts',
      args: ['--sessions', quick ? '60' : '600', '--open-sessions', '1000,10000,100000'],
      budgetSeconds: quick ? 70 : 240,
    },
    {
      name: 'end-to-end-latency',
      script: 'bench/end-to-end/latency.ts',
      // Quick: a 3 s flush interval (the target moves with it: interval + 5 s) and 8 probes over 2-3 flush cycles.
      args: quick
        ? [
            '--probes',
            '8',
            '--probe-interval-ms',
            '700',
            '--background-sessions',
            '10',
            '--flush-interval-ms',
            '3000',
            '--max-seconds',
            '30',
          ]
        : ['--max-seconds', '240'],
      budgetSeconds: quick ? 60 : 330,
    },
    {
      name: 'uba-throughput',
      script: 'bench/uba/throughput.ts',
      args: quick ? ['--quick', '--behaviors', '20000', '--max-seconds', '35'] : ['--quick'],
      budgetSeconds: quick ? 45 : 100,
    },
    {
      name: 'uba-queries',
      script: 'bench/uba/queries.ts',
      args: quick
        ? ['--quick', '--rows', '200000', '--runs', '5', '--route-seconds', '5', '--max-minutes', '1']
        : ['--quick'],
      budgetSeconds: quick ? 45 : 240,
    },
  ];
  if (options.withChaos) {
    steps.push({ name: 'chaos', script: 'bench/chaos/run.ts', args: ['--quick'], budgetSeconds: CHAOS_BUDGET_SECONDS });
  }
  return {
    mode,
    boundSeconds: (quick ? 180 : 900) + (options.withChaos ? CHAOS_BUDGET_SECONDS : 0),
    reference: quick ? { sessions: 20, minCpuSeconds: 0.5 } : { sessions: 60, minCpuSeconds: 1.5 },
    steps,
  };
}
