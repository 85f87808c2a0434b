/**
 * The tests' own reading of DESIGN §3.4, written apart from src/recordings/summary.ts on purpose: a test that
 * reused the production code to compute its expectations could not catch a wrong definition.
 */
type Event = Record<string, unknown>;
const dataOf = (e: Event) => (e.data ?? {}) as Record<string, unknown>;

export function expectedSummary(events: readonly Event[]) {
  const incremental = events.filter((e) => e.type === 3);
  const levels = events
    .filter((e) => e.type === 6 && dataOf(e).plugin === 'rrweb/console@1')
    .map((e) => (dataOf(e).payload as { level: string }).level);
  const activeTimes = incremental
    .filter((e) => [1, 2, 3, 4, 5, 6, 7, 12].includes(dataOf(e).source as number))
    .map((e) => e.timestamp as number)
    .sort((a, b) => a - b);
  let activeMilliseconds = 0;
  let segmentStart: number | undefined;
  let previous = 0;
  for (const t of activeTimes) {
    if (segmentStart === undefined) segmentStart = t;
    else if (t - previous > 5000) {
      activeMilliseconds += Math.max(1, previous - segmentStart);
      segmentStart = t;
    }
    previous = t;
  }
  if (segmentStart !== undefined) activeMilliseconds += Math.max(1, previous - segmentStart);
  const withUrl = events
    .map((e) => ({
      t: e.timestamp as number,
      url: e.type === 4 ? dataOf(e).href : e.type === 5 ? (dataOf(e).payload as Event | undefined)?.href : undefined,
    }))
    .filter((x): x is { t: number; url: string } => typeof x.url === 'string')
    .sort((a, b) => a.t - b.t);
  const timestamps = events.map((e) => e.timestamp as number);
  return {
    eventCount: events.length,
    clickCount: incremental.filter((e) => dataOf(e).source === 2 && [2, 3, 4, 9].includes(dataOf(e).type as number))
      .length,
    keypressCount: incremental.filter((e) => dataOf(e).source === 5).length,
    mouseActivityCount: incremental.filter((e) => [1, 2, 6].includes(dataOf(e).source as number)).length,
    consoleErrorCount: levels.filter((l) => l === 'error' || l === 'assert').length,
    consoleWarnCount: levels.filter((l) => l === 'warn' || l === 'countReset').length,
    consoleLogCount: levels.filter((l) => !['error', 'assert', 'warn', 'countReset'].includes(l)).length,
    activeMilliseconds,
    firstTimestamp: Math.min(...timestamps),
    lastTimestamp: Math.max(...timestamps),
    firstUrl: withUrl[0]?.url ?? null,
    urls: [...new Set(withUrl.map((x) => x.url))],
  };
}

/** A deterministic pseudo-random rrweb session: pages, snapshots, mouse, scroll, input, clicks, console, idle gaps. */
export function syntheticSession(seed: number, start: number, count: number): Event[] {
  let state = seed * 2654435761 + 1;
  const random = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
  const events: Event[] = [
    { type: 4, timestamp: start, data: { href: `https://app.example/page-${seed}`, width: 1280, height: 800 } },
    {
      type: 2,
      timestamp: start + 1,
      data: { node: { type: 0, id: 1, childNodes: [] }, initialOffset: { top: 0, left: 0 } },
    },
  ];
  let t = start + 1;
  for (let i = 0; i < count; i++) {
    t += random() < 0.08 ? 6000 + Math.floor(random() * 4000) : Math.floor(random() * 900);
    const r = random();
    if (r < 0.3)
      events.push({ type: 3, timestamp: t, data: { source: 1, positions: [{ x: i, y: i, id: 3, timeOffset: 0 }] } });
    else if (r < 0.45)
      events.push({ type: 3, timestamp: t, data: { source: 2, type: [0, 1, 2, 3, 4, 9][i % 6], id: 3, x: 1, y: 2 } });
    else if (r < 0.55)
      events.push({ type: 3, timestamp: t, data: { source: 5, text: `typed ${i}`, isChecked: false, id: 7 } });
    else if (r < 0.65) events.push({ type: 3, timestamp: t, data: { source: 3, id: 1, x: 0, y: i * 10 } });
    else if (r < 0.8)
      events.push({
        type: 3,
        timestamp: t,
        data: {
          source: 0,
          adds: [
            {
              parentId: 1,
              nextId: null,
              node: { type: 3, textContent: `row ${i} ${'x'.repeat(Math.floor(random() * 200))}`, id: 100 + i },
            },
          ],
          removes: [],
          texts: [],
          attributes: [],
        },
      });
    else if (r < 0.87)
      events.push({
        type: 6,
        timestamp: t,
        data: {
          plugin: 'rrweb/console@1',
          payload: {
            level: ['log', 'info', 'warn', 'error', 'assert', 'countReset'][i % 6],
            trace: [],
            payload: [`"msg ${i}"`],
          },
        },
      });
    else if (r < 0.9)
      events.push({
        type: 5,
        timestamp: t,
        data: { tag: '$pageview', payload: { href: `https://app.example/page-${seed}/step-${i}` } },
      });
    else
      events.push({
        type: 3,
        timestamp: t,
        data: { source: 0, texts: [{ id: 5, value: `v${i}` }], adds: [], removes: [], attributes: [] },
      });
  }
  return events;
}
