import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { activeMilliseconds, intervalsOf, mergeIntervals } from '../../../src/recordings/activity.ts';

describe('activity intervals', () => {
  it('joins events at most 5 s apart and counts an isolated event as 1 ms', () => {
    expect(intervalsOf([1000, 3000, 8000, 20_000])).toEqual([
      [1000, 8000],
      [20_000, 20_000],
    ]);
    expect(activeMilliseconds(intervalsOf([1000, 3000, 8000, 20_000]))).toBe(7001);
    expect(intervalsOf([1, 5001])).toEqual([[1, 5001]]);
    expect(intervalsOf([1, 5002])).toEqual([
      [1, 1],
      [5002, 5002],
    ]);
  });

  it('gives the same total whether events are merged at once or message by message, in any order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.integer({ min: 1, max: 200_000 }), { maxLength: 30 }), { maxLength: 8 }),
        (messages) => {
          const direct = intervalsOf(messages.flat());
          const perMessage = mergeIntervals(messages.flatMap((timestamps) => intervalsOf(timestamps)));
          const reversed = mergeIntervals(messages.toReversed().flatMap((timestamps) => intervalsOf(timestamps)));
          expect(perMessage).toEqual(direct);
          expect(reversed).toEqual(direct);
          expect(activeMilliseconds(perMessage)).toBe(activeMilliseconds(direct));
        },
      ),
    );
  });
});
