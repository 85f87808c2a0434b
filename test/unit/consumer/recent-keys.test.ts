import { describe, expect, it } from 'vitest';
import { RecentKeys } from '../../../src/consumer/recent-keys.ts';

describe('the keys a sink took lately', () => {
  it('knows a request on its partition within the window, and only there', () => {
    const recent = new RecentKeys(10, 1000);
    recent.record('t:0', 'r1', 0);
    expect(recent.has('t:0', 'r1', 999)).toBe(true);
    expect(recent.has('t:1', 'r1', 1)).toBe(false);
    expect(recent.has('t:0', 'r2', 1)).toBe(false);
    expect(recent.has('t:0', 'r1', 1000)).toBe(false); // the window has passed
  });

  it('holds at most its bound per partition, forgetting the oldest first', () => {
    const recent = new RecentKeys(3, 60_000);
    for (let i = 0; i < 5; i++) recent.record('t:0', `r${i}`, i);
    expect([0, 1, 2, 3, 4].map((i) => recent.has('t:0', `r${i}`, 10))).toEqual([false, false, true, true, true]);
    recent.record('t:0', 'r2', 11); // recorded again: now the newest
    recent.record('t:0', 'r5', 12);
    expect(['r2', 'r3', 'r4', 'r5'].map((r) => recent.has('t:0', r, 13))).toEqual([true, false, true, true]);
  });

  it('forgets revoked partitions whole', () => {
    const recent = new RecentKeys();
    recent.record('t:0', 'r', 0);
    recent.record('t:1', 'r', 0);
    recent.forget((partition) => partition === 't:0');
    expect([recent.has('t:0', 'r', 1), recent.has('t:1', 'r', 1)]).toEqual([false, true]);
  });
});
