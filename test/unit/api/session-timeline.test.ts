import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadBrowserModules } from '../../../src/api/player/browser-modules.ts';
import {
  analyticsEntries,
  sessionTimeline,
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

/**
 * What a window looks like at `t` when its own events are played: the serials of its last full snapshot at or before
 * `t` and of everything after it up to `t`.
 */
function windowStateAt(events: readonly TimelineEvent[], t: number): number[] {
  const upTo = [...events].sort((a, b) => a.timestamp - b.timestamp).filter((e) => e.timestamp <= t);
  const last = upTo.findLastIndex((e) => e.type === 2);
  return upTo.slice(last).map(serialOf);
}

describe('sessionTimeline', () => {
  it('plays one window as it was recorded, from its first full snapshot', () => {
    const events = [meta(1000), full(1000), mouse(1500), click(2000, 1), mutation(2500)];
    const timeline = sessionTimeline({ w1: [mutation(900), ...events] });
    expect(timeline.windows).toEqual(['w1']);
    expect(timeline.segments).toEqual([{ windowId: 'w1', start: 1000, end: 2500 }]);
    // The mutation before the first full snapshot cannot be drawn: it is left out.
    expect(timeline.events.map(serialOf)).toEqual(events.map(serialOf));
    expect(timeline.start).toBe(1000);
    expect(timeline.end).toBe(2500);
  });

  it('switches to the window the user acts in, drawing it as it was at that moment', () => {
    const a = [meta(1000), full(1000), mouse(1200), mutation(2000), mutation(4000), mouse(6000), mutation(6500)];
    const b = [meta(3000, 'https://shop.test/b'), full(3000), mutation(3200), click(3500, 5), mutation(5000)];
    const timeline = sessionTimeline({ a, b });
    expect(timeline.windows).toEqual(['a', 'b']);
    expect(timeline.segments).toEqual([
      { windowId: 'a', start: 1000, end: 3500 },
      { windowId: 'b', start: 3500, end: 6000 },
      { windowId: 'a', start: 6000, end: 6500 },
    ]);
    const stream = timeline.events;
    for (let i = 1; i < stream.length; i++)
      expect(stream[i]!.timestamp).toBeGreaterThanOrEqual(stream[i - 1]!.timestamp);
    // At 3500: B's Meta, full snapshot and the mutation after it, all at 3500, then B's click.
    const atSwitch = stream.filter((e) => e.timestamp === 3500).map(serialOf);
    expect(atSwitch).toEqual(b.slice(0, 4).map(serialOf));
    // At 6000 A is drawn again from its full snapshot, with the mutation at 4000 it made while hidden.
    expect(stream.filter((e) => e.timestamp === 6000).map(serialOf)).toEqual(a.slice(0, 6).map(serialOf));
    expect(windowAt(timeline.segments, 4000)).toBe('b');
    expect(windowAt(timeline.segments, 500)).toBe('a');
  });

  it('does not switch to a window that has no full snapshot yet', () => {
    const a = [meta(1000), full(1000), mouse(1100), mutation(5000)];
    const b = [mouse(2000), meta(3000), full(3000), mouse(4000)];
    expect(sessionTimeline({ a, b }).segments).toEqual([
      { windowId: 'a', start: 1000, end: 4000 },
      { windowId: 'b', start: 4000, end: 5000 },
    ]);
  });

  it('has nothing to play without a full snapshot', () => {
    const timeline = sessionTimeline({ a: [meta(1000), mouse(1100)] });
    expect(timeline.events).toEqual([]);
    expect(timeline.segments).toEqual([]);
  });

  it('at every moment, the merged stream shows the window the user was in, in the state its own events give', () => {
    const windowEvents = fc.array(
      fc.record({
        at: fc.integer({ min: 0, max: 60_000 }),
        kind: fc.constantFrom('full', 'mutation', 'mouse', 'click'),
      }),
      { minLength: 1, maxLength: 40 },
    );
    fc.assert(
      fc.property(
        fc.array(windowEvents, { minLength: 1, maxLength: 4 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true })),
        (windows, probes) => {
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
          if (timeline.segments.length === 0) {
            expect(
              Object.values(byWindow)
                .flat()
                .some((e) => e.type === 2),
            ).toBe(false);
            return;
          }
          for (const probe of [0, 1, ...probes]) {
            const t = Math.round(timeline.start + probe * (timeline.end - timeline.start));
            const shown = windowAt(timeline.segments, t)!;
            expect(windowStateAt(timeline.events, t)).toEqual(windowStateAt(byWindow[shown]!, t));
          }
        },
      ),
      { numRuns: 300 },
    );
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
