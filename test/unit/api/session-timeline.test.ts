import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadBrowserModules } from '../../../src/api/player/browser-modules.ts';
import {
  analyticsEntries,
  MIN_SEGMENT_MS,
  sessionTimeline,
  skipInactive,
  type TimelineEvent,
  windowAt,
} from '../../../src/api/player/session-timeline.ts';

type Events = Record<string, TimelineEvent[]>;
let serial = 0;
/** An event tagged with a serial number (`data.n`) so the tests can follow it through the merge. */
const meta = (timestamp: number, href = 'https://shop.test/'): TimelineEvent => ({
  type: 4,
  timestamp,
  data: { href, width: 800, height: 600, n: ++serial },
});
const full = (timestamp: number, node: unknown = { type: 0, childNodes: [], id: 1 }): TimelineEvent => ({
  type: 2,
  timestamp,
  data: { node, initialOffset: { top: 0, left: 0 }, n: ++serial },
});
const mutation = (timestamp: number, extra: Record<string, unknown> = {}): TimelineEvent => ({
  type: 3,
  timestamp,
  data: { source: 0, adds: [], removes: [], texts: [], attributes: [], ...extra, n: ++serial },
});
const mouse = (timestamp: number): TimelineEvent => ({
  type: 3,
  timestamp,
  data: { source: 1, positions: [], n: ++serial },
});
const click = (timestamp: number, id: number): TimelineEvent => ({
  type: 3,
  timestamp,
  data: { source: 2, type: 2, id, n: ++serial },
});
const input = (timestamp: number, id: number): TimelineEvent => ({
  type: 3,
  timestamp,
  data: { source: 5, id, text: '***', isChecked: false, n: ++serial },
});
const consoleEvent = (timestamp: number, level: string, args: string[], trace: string[] = []): TimelineEvent => ({
  type: 6,
  timestamp,
  data: { plugin: 'rrweb/console@1', payload: { level, payload: args, trace }, n: ++serial },
});
const serialOf = (event: TimelineEvent) => (event.data as { n: number }).n;

describe('sessionTimeline', () => {
  it('plays one window from its first full snapshot, led by its Meta', () => {
    const events = [meta(1000), full(1000), mouse(1500), click(2000, 1), mutation(2500)];
    const timeline = sessionTimeline({ w1: [mutation(900), ...events] });
    expect(timeline.windows).toEqual(['w1']);
    expect(timeline.segments).toEqual([{ windowId: 'w1', start: 1000, end: 2500 }]);
    // The mutation before the first full snapshot cannot be drawn: it is left out.
    expect(timeline.streams.w1!.map(serialOf)).toEqual(events.map(serialOf));
    expect(timeline.start).toBe(1000);
    expect(timeline.end).toBe(2500);
  });

  it('switches to the window the user acts in; each window keeps a stream of its own events only', () => {
    const a = [meta(1000), full(1000), mouse(1200), mutation(2000), mutation(4000), mouse(6000), mutation(6500)];
    const b = [meta(3000, 'https://shop.test/b'), full(3000), mutation(3200), click(3500, 5), mutation(5000)];
    const timeline = sessionTimeline({ a, b });
    expect(timeline.windows).toEqual(['a', 'b']);
    expect(timeline.segments).toEqual([
      { windowId: 'a', start: 1000, end: 3500 },
      { windowId: 'b', start: 3500, end: 6000 },
      { windowId: 'a', start: 6000, end: 6500 },
    ]);
    expect(timeline.streams.a!.map(serialOf)).toEqual(a.map(serialOf));
    expect(timeline.streams.b!.map(serialOf)).toEqual(b.map(serialOf));
    expect(windowAt(timeline.segments, 4000)).toBe('b');
    expect(windowAt(timeline.segments, 500)).toBe('a');
  });

  it('switches only on what a user does, and not sooner than MIN_SEGMENT_MS after the last switch', () => {
    const scroll = (timestamp: number): TimelineEvent => ({
      type: 3,
      timestamp,
      data: { source: 3, id: 1, x: 0, y: 9 },
    });
    const a = [meta(1000), full(1000), mouse(1100), mouse(9000)];
    // B scrolls by itself (a feed in a background tab), then the user moves in it, then back and forth quickly.
    const b = [meta(2000), full(2000), scroll(3000), mouse(4000), mouse(4000 + MIN_SEGMENT_MS - 100)];
    const back = [mouse(4500), mouse(5500)];
    const timeline = sessionTimeline({ a: [...a, ...back], b });
    expect(timeline.segments).toEqual([
      { windowId: 'a', start: 1000, end: 4000 },
      { windowId: 'b', start: 4000, end: 5500 },
      { windowId: 'a', start: 5500, end: 9000 },
    ]);
  });

  it('switches at the first position of a batch of mouse moves, not at the batch time', () => {
    const a = [meta(1000), full(1000), mouse(1100)];
    const moves: TimelineEvent = {
      type: 3,
      timestamp: 5000,
      data: {
        source: 1,
        positions: [
          { x: 1, y: 1, id: 1, timeOffset: -400 },
          { x: 2, y: 2, id: 1, timeOffset: 0 },
        ],
      },
    };
    const b = [meta(2000), full(2000), moves];
    expect(sessionTimeline({ a, b }).segments[1]).toEqual({ windowId: 'b', start: 4600, end: 5000 });
  });

  it('keeps each event once however often the user goes back and forth', () => {
    const a: TimelineEvent[] = [meta(0), full(0)];
    const b: TimelineEvent[] = [meta(0), full(0)];
    for (let i = 1; i <= 25_000; i++) (Math.floor(i / 25) % 2 === 0 ? a : b).push(mouse(i * 50));
    const timeline = sessionTimeline({ a, b });
    expect(timeline.segments.length).toBeGreaterThan(900);
    expect(timeline.streams.a!.length + timeline.streams.b!.length).toBe(a.length + b.length);
  });

  it('does not switch to a window that has no full snapshot yet', () => {
    const a = [meta(1000), full(1000), mouse(1100), mutation(5000)];
    const b = [mouse(2000), meta(3000), full(3000), mouse(4000)];
    expect(sessionTimeline({ a, b }).segments).toEqual([
      { windowId: 'a', start: 1000, end: 4000 },
      { windowId: 'b', start: 4000, end: 5000 },
    ]);
  });

  it('leaves events whose data is not an object out of the replayers', () => {
    const broken = [
      { type: 4, timestamp: 900, data: null },
      { type: 3, timestamp: 1100, data: 'x' },
    ] as TimelineEvent[];
    const events = [meta(1000), full(1000), mouse(1200)];
    expect(sessionTimeline({ a: [...broken, ...events] }).streams.a!.map(serialOf)).toEqual(events.map(serialOf));
  });

  it('gives a window whose Meta was lost its next Meta, or a default viewport', () => {
    const lateMeta = meta(3000, 'https://shop.test/late');
    const timeline = sessionTimeline({ a: [full(1000), mouse(1100), lateMeta], b: [full(2000)] });
    const [aMeta, aFull] = timeline.streams.a!;
    expect(aMeta).toMatchObject({ type: 4, timestamp: 1000, data: lateMeta.data });
    expect(aFull!.type).toBe(2);
    expect(timeline.streams.b![0]).toEqual({ type: 4, timestamp: 2000, data: { href: '', width: 1280, height: 720 } });
  });

  it('has nothing to play without a full snapshot', () => {
    const timeline = sessionTimeline({ a: [meta(1000), mouse(1100)] });
    expect(timeline.windows).toEqual([]);
    expect(timeline.segments).toEqual([]);
    expect(timeline.streams).toEqual({});
  });

  it('segments cover the session, each shows a drawable window, and switches are user events at least MIN_SEGMENT_MS apart', () => {
    const windowEvents = fc.array(
      fc.record({
        at: fc.integer({ min: 0, max: 60_000 }),
        kind: fc.constantFrom('full', 'mutation', 'mouse', 'click'),
      }),
      { minLength: 1, maxLength: 40 },
    );
    fc.assert(
      fc.property(fc.array(windowEvents, { minLength: 1, maxLength: 4 }), (windows) => {
        const byWindow: Events = {};
        windows.forEach((specs, w) => {
          byWindow[`w${w}`] = specs.flatMap(({ at, kind }) =>
            kind === 'full'
              ? [meta(at), full(at)]
              : kind === 'mutation'
                ? [mutation(at)]
                : kind === 'mouse'
                  ? [mouse(at)]
                  : [click(at, 1)],
          );
        });
        const timeline = sessionTimeline(byWindow);
        const all = Object.values(byWindow).flat();
        if (!all.some((e) => e.type === 2)) {
          expect(timeline.segments).toEqual([]);
          return;
        }
        const segments = timeline.segments;
        expect(segments[0]!.start).toBe(Math.min(...all.filter((e) => e.type === 2).map((e) => e.timestamp)));
        expect(segments.at(-1)!.end).toBe(Math.max(...all.map((e) => e.timestamp)));
        segments.forEach((segment, i) => {
          const own = byWindow[segment.windowId]!;
          expect(own.some((e) => e.type === 2 && e.timestamp <= segment.start)).toBe(true);
          if (i === 0) return;
          expect(segment.start).toBe(segments[i - 1]!.end);
          expect(segment.windowId).not.toBe(segments[i - 1]!.windowId);
          expect(segment.start - segments[i - 1]!.start).toBeGreaterThanOrEqual(MIN_SEGMENT_MS);
          expect(
            own.some(
              (e) =>
                e.type === 3 && e.timestamp === segment.start && [1, 2].includes((e.data as { source: number }).source),
            ),
          ).toBe(true);
        });
        // Every window's stream is its own events from its first full snapshot on, each once, in time order.
        for (const [id, stream] of Object.entries(timeline.streams)) {
          const own = [...byWindow[id]!].sort((x, y) => x.timestamp - y.timestamp);
          const from = own.findIndex((e) => e.type === 2);
          expect(stream.slice(1).map(serialOf)).toEqual(own.slice(from).map(serialOf));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('skip-inactivity jumps over gaps longer than the activity rule allows, after a lead-out, and nothing else', () => {
    const active: [number, number][] = [
      [10_000, 12_000],
      [14_000, 15_000],
      [30_000, 31_000],
    ];
    expect(skipInactive(active, 1500, 0, 60_000)).toBe(10_000); // before the first stretch, 10 s after the start
    expect(skipInactive(active, 500, 0, 60_000)).toBe(500); // the first second plays
    expect(skipInactive(active, 6000, 6000, 60_000)).toBe(6000); // the first stretch is 4 s after this start
    expect(skipInactive(active, 11_000, 0, 60_000)).toBe(11_000);
    expect(skipInactive(active, 13_000, 0, 60_000)).toBe(13_000); // a 2 s gap is still active by the rule
    expect(skipInactive(active, 15_800, 0, 60_000)).toBe(15_800); // the lead-out after a stretch plays
    expect(skipInactive(active, 20_000, 0, 60_000)).toBe(30_000);
    expect(skipInactive(active, 40_000, 0, 60_000)).toBe(60_000); // after the last stretch: the end
    expect(skipInactive(active, 33_000, 0, 35_000)).toBe(33_000); // the end is within the gap allowed
    expect(skipInactive([], 20_000, 0, 60_000)).toBe(20_000); // no activity at all: played as it is
    // A stretch from before the start (a seek's own start) does not move the start back.
    expect(
      skipInactive(
        [
          [0, 100],
          [20_000, 21_000],
        ],
        9000,
        8000,
        60_000,
      ),
    ).toBe(9000);
  });

  it('lists console output with its level, class, text and trace', () => {
    const timeline = sessionTimeline({
      w: [
        meta(1000),
        full(1000),
        consoleEvent(1100, 'log', ['"hello"', '42']),
        consoleEvent(1200, 'warn', ['"careful"']),
        consoleEvent(1300, 'error', ['"checkout failed for"', '"teapot"'], ['at addToCart (shop.js:10:3)']),
        consoleEvent(1400, 'assert', ['"not \\"quoted\\" here"']),
        consoleEvent(1500, 'info', ['{"a":1}']),
      ],
    });
    expect(timeline.console.map(({ level, kind, text, trace }) => ({ level, kind, text, trace }))).toEqual([
      { level: 'log', kind: 'log', text: 'hello 42', trace: [] },
      { level: 'warn', kind: 'warn', text: 'careful', trace: [] },
      { level: 'error', kind: 'error', text: 'checkout failed for teapot', trace: ['at addToCart (shop.js:10:3)'] },
      { level: 'assert', kind: 'error', text: 'not "quoted" here', trace: [] },
      { level: 'info', kind: 'log', text: '{"a":1}', trace: [] },
    ]);
  });

  it('lists clicks on named elements, one entry per burst of input, page loads and custom events', () => {
    const page = {
      type: 0,
      id: 1,
      childNodes: [
        {
          type: 2,
          id: 2,
          tagName: 'BUTTON',
          attributes: { id: 'buy' },
          childNodes: [{ type: 3, id: 3, textContent: ' Add to cart ' }],
        },
        { type: 2, id: 4, tagName: 'input', attributes: { class: 'search box' }, childNodes: [] },
      ],
    };
    const added = mutation(1700, {
      adds: [{ parentId: 1, node: { type: 2, id: 9, tagName: 'a', attributes: {}, childNodes: [] } }],
    });
    const timeline = sessionTimeline({
      w: [
        meta(1000, 'https://shop.test/'),
        full(1000, page),
        input(1100, 4),
        input(1150, 4),
        input(1200, 4),
        click(1300, 2),
        input(1400, 4),
        added,
        click(1800, 9),
        click(1900, 77),
        { type: 5, timestamp: 2000, data: { tag: 'checkout', payload: {} } },
        { type: 5, timestamp: 2050, data: { tag: '$session_options', payload: {} } },
        { type: 5, timestamp: 2100, data: { tag: '$url_changed', payload: { href: 'https://shop.test/cart' } } },
        meta(2200, 'https://shop.test/cart'),
      ],
    });
    expect(timeline.listed.map(({ timestamp, kind, label }) => [timestamp, kind, label])).toEqual([
      [1000, 'navigation', 'https://shop.test/'],
      [1100, 'input', 'Input in input.search'],
      [1300, 'click', 'Click on button#buy "Add to cart"'],
      [1400, 'input', 'Input in input.search'],
      [1800, 'click', 'Click on a'],
      [1900, 'click', 'Click on an element'],
      [2000, 'custom', 'checkout'],
      [2100, 'navigation', 'https://shop.test/cart'],
    ]);
  });

  it('lists what a hostile page recorded without failing: objects whose toString throws, absurd nesting', () => {
    const hostile = JSON.parse('{"toString": 1}') as unknown;
    let deep: Record<string, unknown> = { type: 3, id: 100_001, textContent: 'bottom' };
    for (let id = 100_000; id > 1; id--) deep = { type: 2, id, tagName: 'div', attributes: {}, childNodes: [deep] };
    const timeline = sessionTimeline({
      w: [
        meta(1000),
        full(1000, { type: 0, id: 1, childNodes: [deep] }),
        {
          type: 6,
          timestamp: 1100,
          data: {
            plugin: 'rrweb/console@1',
            payload: { level: hostile, payload: [hostile, 'x'.repeat(10_000)], trace: [hostile] },
          },
        },
        { type: 5, timestamp: 1200, data: { tag: hostile, payload: {} } },
        { type: 3, timestamp: 1300, data: { source: 2, type: 2, id: 100_000 } },
      ],
    });
    expect(timeline.console).toHaveLength(1);
    expect(timeline.console[0]!.text).toHaveLength(2000);
    expect(timeline.console[0]!.text.startsWith('{"toString":1} xxx')).toBe(true);
    expect(timeline.console[0]!.trace).toEqual(['{"toString":1}']);
    expect(timeline.listed.map((e) => e.label)).toEqual([
      'https://shop.test/',
      '{"toString":1}',
      'Click on div "bottom"',
    ]);
  });

  it('marks activity by the summary rule and places analytics events in the window of their page', () => {
    const a = [meta(1000, 'https://shop.test/a'), full(1000), mouse(1000), mouse(3000), mouse(20_000)];
    const b = [meta(9000, 'https://shop.test/b'), full(9000), click(10_000, 1)];
    const timeline = sessionTimeline({ a, b });
    expect(timeline.active).toEqual([
      [1000, 3000],
      [10_000, 10_000],
      [20_000, 20_000],
    ]);
    const rows = [
      { timestamp: new Date(2000).toISOString(), action_type: '$pageview', current_url: 'https://shop.test/a' },
      // B's page, while A is shown (before anything happened in B).
      { timestamp: new Date(9500).toISOString(), action_type: '$pageview', current_url: 'https://shop.test/b' },
      // A page no window was on: the window shown then.
      { timestamp: new Date(12_000).toISOString(), action_type: 'add_to_cart', item_id: 'teapot', current_url: 'x' },
      { timestamp: 'not a time', action_type: 'broken' },
    ];
    expect(analyticsEntries(rows, timeline)).toEqual([
      { timestamp: 2000, windowId: 'a', kind: 'analytics', label: '$pageview' },
      { timestamp: 9500, windowId: 'b', kind: 'analytics', label: '$pageview' },
      { timestamp: 12_000, windowId: 'b', kind: 'analytics', label: 'add_to_cart teapot' },
    ]);
  });
});

describe('the player modules as the browser gets them', () => {
  it('are JavaScript that imports only served modules, and the timeline served behaves as its source', async () => {
    const modules = loadBrowserModules();
    expect([...modules.keys()].sort()).toEqual([
      'activity.js',
      'event-kinds.js',
      'player-app.js',
      'session-timeline.js',
      'timeline-player.js',
    ]);
    const dir = await mkdtemp(join(tmpdir(), 'player-modules-'));
    try {
      await writeFile(join(dir, 'package.json'), '{"type":"module"}');
      for (const [name, module] of modules) {
        const code = module.code.toString('utf8');
        for (const [, specifier] of code.matchAll(/\bfrom\s*['"]([^'"]+)['"]/g)) {
          expect(modules.has(specifier!.replace(/^\.\//, '')), `${name} imports ${specifier}`).toBe(true);
        }
        await writeFile(join(dir, name), code);
      }
      const served = await import(pathToFileURL(join(dir, 'session-timeline.js')).href);
      const events = {
        a: [meta(1000), full(1000), mouse(1200), consoleEvent(1300, 'error', ['"x"'])],
        b: [meta(2000), full(2000), click(2500, 1)],
      };
      expect(served.sessionTimeline(events)).toEqual(sessionTimeline(events));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
