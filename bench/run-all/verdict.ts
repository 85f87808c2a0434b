/** Whether a measured figure meets its DESIGN §5 target. */

export interface Target {
  readonly op: '>=' | '>' | '<=' | '<' | '=';
  readonly value: number;
  /** The target as the table shows it, e.g. "≥ 250 MB/s per core". */
  readonly text: string;
}

/**
 * met / not met against the target; no target; missing (the bench ran but did not report the figure); failed (a
 * bench the figure comes from failed, timed out or was skipped, and the figure is not there).
 */
export type Verdict = 'met' | 'not met' | 'no target' | 'missing' | 'failed';

export function judge(value: number | null, target: Target | null, sourcesFailed: boolean): Verdict {
  if (value === null) return sourcesFailed ? 'failed' : 'missing';
  if (target === null) return 'no target';
  const met = {
    '>=': value >= target.value,
    '>': value > target.value,
    '<=': value <= target.value,
    '<': value < target.value,
    '=': value === target.value,
  }[target.op];
  return met ? 'met' : 'not met';
}
