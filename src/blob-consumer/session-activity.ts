import { type ActiveInterval, activeMilliseconds, mergeIntervals } from '../recordings/activity.ts';

/**
 * Active time carried across blocks. A session's summary rows are summed by ClickHouse, so each block reports the
 * growth of the session's active time: active(all intervals so far) - active(intervals before this block). Intervals
 * that join across a block boundary are then counted once. State for a session is dropped after `idleMs` without new
 * blocks (and on partition revocation); a session resumed after that starts a fresh tally, which can only differ by
 * the gap at that boundary.
 */
export class SessionActivity {
  private readonly sessions = new Map<string, { intervals: ActiveInterval[]; total: number; touchedAt: number }>();
  private readonly idleMs: number;

  constructor(idleMs = 30 * 60_000) {
    this.idleMs = idleMs;
  }

  /** What a block with `intervals` adds to the session's active time, without recording it (see `commit`). */
  preview(
    sessionKey: string,
    intervals: readonly ActiveInterval[],
  ): { share: number; merged: ActiveInterval[]; total: number } {
    const known = this.sessions.get(sessionKey);
    if (!known) {
      const total = activeMilliseconds(intervals);
      return { share: total, merged: [...intervals], total };
    }
    if (intervals.length === 0) return { share: 0, merged: known.intervals, total: known.total };
    const merged = mergeIntervals([...known.intervals, ...intervals]);
    const total = activeMilliseconds(merged);
    return { share: total - known.total, merged, total };
  }

  /** Records a block's activity once its summary row is committed. */
  commit(sessionKey: string, merged: ActiveInterval[], total: number, now = Date.now()): void {
    this.sessions.delete(sessionKey); // re-inserted last: Map order is recency order
    this.sessions.set(sessionKey, { intervals: merged, total, touchedAt: now });
    for (const [key, state] of this.sessions) {
      if (now - state.touchedAt < this.idleMs) break;
      this.sessions.delete(key);
    }
  }

  forget(predicate: (sessionKey: string) => boolean): void {
    for (const key of this.sessions.keys()) if (predicate(key)) this.sessions.delete(key);
  }

  get size(): number {
    return this.sessions.size;
  }
}
