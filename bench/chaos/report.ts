import type { BehaviourFigures, ReplayFigures } from './audit.ts';
import { failed, type ScenarioResult, seconds } from './engine.ts';

export interface ChaosTotals {
  readonly scenarios: number;
  readonly failedScenarios: number;
  readonly replay: ReplayFigures;
  readonly behaviours: BehaviourFigures;
  /** Worst over the scenarios; undefined when one never caught up. */
  readonly worstTimeToPlayableMs: number | undefined;
  readonly worstRecoveryMs: number | undefined;
}

/** Sums the counts of every scenario (numbers add, flags or), and takes the worst of the times. */
function sum<T extends object>(figures: readonly T[]): T {
  const total: Record<string, number | boolean> = {};
  for (const f of figures) {
    for (const [name, value] of Object.entries(f)) {
      total[name] =
        typeof value === 'boolean' ? Boolean(total[name]) || value : Number(total[name] ?? 0) + Number(value);
    }
  }
  return total as T;
}

const worst = (values: readonly (number | undefined)[]) =>
  values.some((v) => v === undefined) ? undefined : Math.max(0, ...(values as number[]));

export function chaosTotals(results: readonly ScenarioResult[]): ChaosTotals {
  return {
    scenarios: results.length,
    failedScenarios: results.filter(failed).length,
    replay: sum(results.map((r) => r.replay)),
    behaviours: sum(results.map((r) => r.behaviours)),
    worstTimeToPlayableMs: worst(results.map((r) => r.worstTimeToPlayableMs)),
    worstRecoveryMs: worst(results.map((r) => r.recoveryMs)),
  };
}

const columns = [
  '#',
  'scenario',
  'sent',
  'acked',
  'replayable',
  'lost',
  'doubled',
  'worst ttp',
  'recovery',
  'uba acked',
  'uba lost',
  'uba doubled',
  'verdict',
] as const;

function row(
  label: [string, string],
  replay: ReplayFigures,
  behaviours: BehaviourFigures,
  times: [number | undefined, number | undefined],
  verdict: string,
): string[] {
  return [
    ...label,
    String(replay.sent),
    String(replay.acknowledged),
    String(replay.replayable),
    String(replay.lost),
    String(replay.duplicated),
    seconds(times[0]),
    seconds(times[1]),
    String(behaviours.acknowledged),
    String(behaviours.lost + behaviours.realtimeLost),
    String(behaviours.duplicated + behaviours.rollupDuplicated + behaviours.realtimeDuplicated),
    verdict,
  ];
}

/**
 * The per-scenario table and the totals, with the goal beside them: `verdict` is FAIL when anything was lost or
 * doubled, "slow" when the worst time to playable or the recovery passed the flush interval + 5 s.
 */
export function formatTable(results: readonly ScenarioResult[], goalMs: number): string {
  const verdict = (lostOrDoubled: boolean, times: (number | undefined)[]) =>
    lostOrDoubled ? 'FAIL' : times.every((t) => t !== undefined && t <= goalMs) ? 'ok' : 'slow';
  const lines = results.map((r) =>
    row(
      [String(r.index + 1), r.name],
      r.replay,
      r.behaviours,
      [r.worstTimeToPlayableMs, r.recoveryMs],
      verdict(failed(r), [r.worstTimeToPlayableMs, r.recoveryMs]),
    ),
  );
  const totals = chaosTotals(results);
  const total = row(
    ['', 'total'],
    totals.replay,
    totals.behaviours,
    [totals.worstTimeToPlayableMs, totals.worstRecoveryMs],
    verdict(totals.failedScenarios > 0, [totals.worstTimeToPlayableMs, totals.worstRecoveryMs]),
  );
  const table = [[...columns], ...lines, total];
  const widths = columns.map((_, c) => Math.max(...table.map((cells) => cells[c]!.length)));
  const format = (cells: string[]) =>
    cells.map((cell, c) => (c === 1 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [format(table[0]!), rule, ...lines.map(format), rule, format(total)].join('\n');
}
