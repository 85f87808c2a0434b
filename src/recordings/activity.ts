/**
 * Activity: a session is active while user-input events (mouse, scroll, input, touch, media, drag) follow each other
 * at most `ACTIVITY_GAP_MS` apart. Activity is kept as closed intervals `[start, end]` of event timestamps, which
 * merge associatively: merging the intervals of several messages (in any order) gives the intervals of all their
 * events together. That is what lets capture summarise each message and the consumer carry activity across message
 * and block boundaries. Self-contained, without imports: the player page loads this file to mark the same activity
 * on its scrubber (src/api/player/browser-modules.ts).
 */
export const ACTIVITY_GAP_MS = 5000;

export type ActiveInterval = readonly [start: number, end: number];

/** Intervals of the given active timestamps (any order). */
export function intervalsOf(timestamps: readonly number[]): ActiveInterval[] {
  if (timestamps.length === 0) return [];
  const sorted = [...timestamps].sort((a, b) => a - b);
  return mergeIntervals(sorted.map((t) => [t, t] as const));
}

/** Joins intervals that overlap or lie at most `ACTIVITY_GAP_MS` apart; the result is sorted and disjoint. */
export function mergeIntervals(intervals: readonly ActiveInterval[]): ActiveInterval[] {
  if (intervals.length <= 1) return intervals.slice();
  const sorted = [...intervals].sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [[sorted[0]![0], sorted[0]![1]]];
  for (let i = 1; i < sorted.length; i++) {
    const [start, end] = sorted[i]!;
    const last = merged[merged.length - 1]!;
    if (start - last[1] <= ACTIVITY_GAP_MS) last[1] = Math.max(last[1], end);
    else merged.push([start, end]);
  }
  return merged;
}

/**
 * Total active time: the sum of interval lengths, where an isolated active event counts 1 ms. Rounded to whole
 * milliseconds (timestamps may be fractional; the column is an Int64), so block shares still add up exactly.
 */
export function activeMilliseconds(intervals: readonly ActiveInterval[]): number {
  let total = 0;
  for (const [start, end] of intervals) total += Math.max(1, end - start);
  return Math.round(total);
}
