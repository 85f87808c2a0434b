import { describe, expect, it } from 'vitest';
import type { RrwebEvent } from '../../../src/recordings/rrweb.ts';
import { MAX_URLS_PER_SUMMARY, SummaryBuilder } from '../../../src/recordings/summary.ts';

const t0 = 1_763_800_000_000;
const incremental = (at: number, source: number, extra: object = {}): RrwebEvent => ({
  type: 3,
  timestamp: t0 + at,
  data: { source, ...extra },
});
const consoleEvent = (at: number, level: string): RrwebEvent => ({
  type: 6,
  timestamp: t0 + at,
  data: { plugin: 'rrweb/console@1', payload: { level, payload: ['x'] } },
});

function summarize(events: RrwebEvent[]) {
  const builder = new SummaryBuilder();
  for (const event of events) builder.add(event);
  return builder.finish();
}

describe('summary of rrweb events (DESIGN §3.4)', () => {
  it('counts clicks, key presses, mouse activity and console levels by their definitions', () => {
    const s = summarize([
      incremental(0, 2, { type: 2 }), // click
      incremental(1, 2, { type: 3 }), // context menu
      incremental(2, 2, { type: 4 }), // double click
      incremental(3, 2, { type: 9 }), // touch end
      incremental(4, 2, { type: 0 }), // mouse up: mouse activity, not a click
      incremental(5, 1), // mouse move
      incremental(6, 6), // touch move
      incremental(7, 5), // input
      incremental(8, 5),
      incremental(9, 0), // mutation: nothing
      consoleEvent(10, 'log'),
      consoleEvent(11, 'info'),
      consoleEvent(12, 'warn'),
      consoleEvent(13, 'countReset'),
      consoleEvent(14, 'error'),
      consoleEvent(15, 'assert'),
      { type: 6, timestamp: t0 + 16, data: { plugin: 'other@1', payload: { level: 'error' } } },
    ]);
    expect(s).toMatchObject({
      eventCount: 17,
      clickCount: 4,
      mouseActivityCount: 7,
      keypressCount: 2,
      consoleLogCount: 2,
      consoleWarnCount: 2,
      consoleErrorCount: 2,
      firstTimestamp: t0,
      lastTimestamp: t0 + 16,
    });
  });

  it('takes the first URL by event time, not by arrival, and keeps distinct URLs capped', () => {
    const s = summarize([
      { type: 4, timestamp: t0 + 50, data: { href: 'https://b.example/' } },
      { type: 5, timestamp: t0 + 10, data: { tag: '$pageview', payload: { href: 'https://a.example/' } } },
      { type: 4, timestamp: t0 + 60, data: { href: 'https://b.example/' } },
      ...Array.from({ length: 40 }, (_, i) => ({ type: 4, timestamp: t0 + 100 + i, data: { href: `https://x/${i}` } })),
    ]);
    expect(s.firstUrl).toBe('https://a.example/');
    expect(s.firstUrlTimestamp).toBe(t0 + 10);
    expect(s.urls.slice(0, 3)).toEqual(['https://b.example/', 'https://a.example/', 'https://x/0']);
    expect(s.urls).toHaveLength(MAX_URLS_PER_SUMMARY);
  });

  it('derives activity from user-input sources only', () => {
    const s = summarize([
      incremental(0, 0), // mutation: not active
      incremental(1000, 1),
      incremental(3000, 3),
      incremental(20_000, 12),
      { type: 2, timestamp: t0 + 30_000, data: {} },
    ]);
    expect(s.activeIntervals).toEqual([
      [t0 + 1000, t0 + 3000],
      [t0 + 20_000, t0 + 20_000],
    ]);
  });

  it('works on posthog-js compressed events: counters read only fields that stay plain', () => {
    const s = summarize([
      { type: 3, timestamp: t0, cv: '2024-10', data: { source: 0, adds: 'H4sIAAAA...', texts: 'H4sI...' } },
      { type: 3, timestamp: t0 + 1, cv: '2024-10', data: { source: 2, type: 2, id: 5 } },
      { type: 2, timestamp: t0 + 2, cv: '2024-10', data: 'H4sIAAAAAAAA' },
    ]);
    expect(s).toMatchObject({ eventCount: 3, clickCount: 1, mouseActivityCount: 1 });
  });
});
