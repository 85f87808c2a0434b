import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { prng } from '../../../bench/shared/prng.ts';
import { buildRecordingMessages } from '../../../src/capture/build-messages.ts';
import { locateSnapshotEvents, NOT_COMPACT } from '../../../src/capture/event-slices.ts';
import { parseSnapshotRequest } from '../../../src/capture/parse-snapshots.ts';
import { decompressLz4Frames } from '../../../src/codec/lz4-frames.ts';
import { decodeRecordingMessage } from '../../../src/recordings/message-codec.ts';
import type { Team } from '../../../src/teams/team-store.ts';

const team: Team = {
  id: 1,
  name: 't',
  apiToken: 'phc_x',
  sessionRecordingEnabled: true,
  retention: '30d',
  consoleLogCaptureEnabled: true,
};

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The `$snapshot_data` array `JSON.parse` gives for each item, as parse-snapshots reads the body. */
function parsedEvents(text: string): (Json[] | undefined)[] {
  const body = JSON.parse(text) as Json;
  const items = Array.isArray(body) ? body : [body];
  return items.map((item) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) return undefined;
    const props = item.properties;
    if (typeof props !== 'object' || props === null || Array.isArray(props)) return undefined;
    const data = props.$snapshot_data;
    return Array.isArray(data) ? data : undefined;
  });
}

/**
 * Checks the slices of a body against `JSON.parse`: one range list per item that has a `$snapshot_data` array, one
 * range per element, every compact range parsing to exactly the element (`toStrictEqual`: -0 stays -0) and holding
 * no line break. Returns the compactness of each element, item by item.
 */
function checkSlices(body: Buffer | string): boolean[][] {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const expected = parsedEvents(bytes.toString('utf8'));
  const slices = locateSnapshotEvents(bytes);
  expect(slices).toBeDefined();
  expect(slices!.length).toBe(expected.length);
  return expected.map((events, item) => {
    const ranges = slices![item];
    if (events === undefined) {
      expect(ranges).toBeUndefined();
      return [];
    }
    expect(ranges).toBeDefined();
    expect(ranges!.length).toBe(2 * events.length);
    return events.map((event, index) => {
      const start = ranges![2 * index]!;
      if (start === NOT_COMPACT) return false;
      const slice = bytes.subarray(start, ranges![2 * index + 1]);
      expect(slice.includes(0x0a) || slice.includes(0x0d)).toBe(false);
      expect(JSON.parse(slice.toString('utf8'))).toStrictEqual(event);
      return true;
    });
  });
}

/** The JSONL lines capture produces for a body (every session, every message, in order). */
function linesOf(body: Buffer | string, maxMessageBytes = 20 * 1024 * 1024): Buffer[] {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const lines: Buffer[] = [];
  for (const session of parseSnapshotRequest(bytes).sessions) {
    const records = buildRecordingMessages({ ...session, team }, { maxMessageBytes, requestId: 'r', capturedAt: 1 });
    for (const record of records) {
      const { header, payload } = decodeRecordingMessage(record.value);
      const jsonl = decompressLz4Frames(payload);
      expect(jsonl.length).toBe(header.rawBytes);
      let at = 0;
      while (at < jsonl.length) {
        const end = jsonl.indexOf(0x0a, at);
        expect(end).toBeGreaterThan(at);
        lines.push(jsonl.subarray(at, end));
        at = end + 1;
      }
    }
  }
  return lines;
}

/** What the lines were before slicing: `JSON.stringify([windowId, event])` of every parsed event. */
function stringifiedLines(body: Buffer | string): string[] {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return parseSnapshotRequest(bytes).sessions.flatMap((session) =>
    session.events.map(({ windowId, event }) => JSON.stringify([windowId, event])),
  );
}

/** Lines must parse to what re-serialising the parsed events gave (the message contract). */
function expectSameEvents(body: Buffer | string): void {
  const lines = linesOf(body);
  const expected = stringifiedLines(body);
  expect(lines.length).toBe(expected.length);
  lines.forEach((line, index) => {
    expect(JSON.parse(line.toString('utf8'))).toStrictEqual(JSON.parse(expected[index]!));
  });
}

const item = (events: string, extra = '') =>
  `{"event":"$snapshot","properties":{"$session_id":"s-1","$window_id":"w-1","token":"phc_x"${extra},"$snapshot_data":[${events}]}}`;

describe('locating events in a request body', () => {
  it('slices every event of a posthog-js body, and the lines are byte for byte JSON.stringify', () => {
    const events = [
      { type: 4, timestamp: 1_763_800_000_000, data: { href: 'https://example.com/a?b=[1]&c={"d"}', width: 800 } },
      {
        type: 2,
        timestamp: 1_763_800_000_001,
        data: { node: { id: 1, childNodes: [{ textContent: 'é 中 😀 \u2028' }] } },
      },
      { type: 3, timestamp: 1_763_800_000_002, data: { source: 2, type: 2, id: 5, x: 1.5, y: -3e-7 } },
      {
        type: 6,
        timestamp: 1_763_800_000_003,
        data: { plugin: 'rrweb/console@1', payload: { level: 'log', payload: ['"\\n\t\u0000'] } },
      },
      {
        type: 5,
        timestamp: 1_763_800_000_004,
        data: { tag: '$pageview', payload: { href: 'https://b/' } },
        cv: '2024-10',
      },
    ];
    const body = JSON.stringify([
      { event: '$pageview', properties: { $snapshot_data: [{ type: 1, timestamp: 1 }] } },
      {
        event: '$snapshot',
        properties: { $snapshot_data: events, $session_id: 's-1', $window_id: 'w-1', token: 'phc_x', distinct_id: 'd' },
      },
    ]);
    expect(checkSlices(body)).toEqual([[true], events.map(() => true)]);
    const request = parseSnapshotRequest(Buffer.from(body));
    expect(request.sessions[0]!.events.every((e) => e.raw !== undefined)).toBe(true);
    expect(linesOf(body).map((line) => line.toString('utf8'))).toEqual(stringifiedLines(body));
  });

  it('follows strings holding quotes, backslashes, brackets and escapes', () => {
    const hostile = [
      String.raw`{"type":3,"timestamp":1,"data":{"text":"]}\"{[,:\\"}}`,
      String.raw`{"type":3,"timestamp":2,"data":"\\"}`,
      String.raw`{"type":3,"timestamp":3,"data":["\\\"]","}{"]}`,
      String.raw`{"type":3,"timestamp":4,"data":{"q":"\u0022\u005c\u007b\u005d","s":"\ud83d\ude00 \udc00 \/ \b\f\n\r\t"}}`,
      `{"type":3,"timestamp":5,"data":{"raw":"é 中 😀 \u2028 \u2029 \u007f"}}`,
      `{"type":3,"timestamp":6,"data":{"properties":{"$snapshot_data":[1,2,3]},"$snapshot_data":"x"}}`,
      String.raw`{"type":3,"timestamp":7,"data":{"":"","\"":"}"}}`,
    ];
    const body = `[${item(hostile.join(','))}]`;
    expect(checkSlices(body)).toEqual([hostile.map(() => true)]);
    expect(linesOf(body).map(String)).toEqual(hostile.map((event) => `["w-1",${event}]`));
    expectSameEvents(body);
  });

  it('slices events nested thousands of levels deep', () => {
    const depth = 5000;
    const deep = `{"type":3,"timestamp":1,"data":${'['.repeat(depth)}"]"${']'.repeat(depth)}}`;
    const deepObjects = `{"type":3,"timestamp":2,"data":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`;
    const body = `[${item(`${deep},${deepObjects}`)}]`;
    expect(checkSlices(body)).toEqual([[true, true]]);
    expect(linesOf(body).map(String)).toEqual([`["w-1",${deep}]`, `["w-1",${deepObjects}]`]);
  });

  it('slices compact events in a body with whitespace around them, and re-serialises events holding whitespace', () => {
    const spaced = ` \t\r\n[ \n { "event" :\t"$snapshot" , "properties" : { "$session_id" : "s-1" ,\r\n "$window_id":"w-1",
      "token" : "phc_x" , "$snapshot_data" : [ {"type":3,"timestamp":1} ,\n\t{ "type": 3, "timestamp": 2 },{"type":3,
      "timestamp":3},{"type":3,"timestamp":4,"data":"with spaces\\tand\\nescapes"}\r\n,{"type":3,"timestamp":5,"data":[1 ]} ] } } ] \n`;
    expect(checkSlices(spaced)).toEqual([[true, false, false, true, false]]);
    expectSameEvents(spaced);
    const lines = linesOf(spaced).map(String);
    expect(lines).toEqual(stringifiedLines(spaced)); // the non-compact ones are re-serialised
    for (const line of lines) expect(line).not.toMatch(/[\n\r]/);
  });

  it('reads keys as JSON.parse does: escaped names, and the last of duplicate keys', () => {
    const e = (ts: number) => `{"type":3,"timestamp":${ts}}`;
    const cases: [string, boolean[][]][] = [
      // escaped key names are the same keys
      [`[{"event":"$snapshot","propert\\u0069es":{"$session_id":"s-1","\\u0024snapshot_data":[${e(1)}]}}]`, [[true]]],
      // near misses are other keys
      [
        `[{"event":"$snapshot","properties":{"$session_id":"s-1","$snapshot_data ":[${e(9)}],"$snapshot_data":[${e(1)}],"$Snapshot_data":[${e(8)}]}}]`,
        [[true]],
      ],
      // duplicate "properties": the last wins
      [
        `[{"event":"$snapshot","properties":{"$snapshot_data":[${e(9)},${e(9)}]},"properties":{"$session_id":"s-1","$snapshot_data":[${e(1)}]}}]`,
        [[true]],
      ],
      // duplicate "$snapshot_data": the last wins
      [
        `[{"event":"$snapshot","properties":{"$session_id":"s-1","$snapshot_data":[${e(9)}],"$snapshot_data":[${e(1)},${e(2)}]}}]`,
        [[true, true]],
      ],
      // duplicate keys inside an event: its bytes still parse to the same value (last wins both ways)
      [
        `[{"event":"$snapshot","properties":{"$session_id":"s-1","$snapshot_data":[{"type":3,"timestamp":9,"timestamp":1,"type":2}]}}]`,
        [[true]],
      ],
      // a top-level object is the one item
      [
        `{"event":"$snapshot","properties":{"$session_id":"s-1","$snapshot_data":[${e(1)}]},"api_key":"phc_x"}`,
        [[true]],
      ],
    ];
    for (const [body, compact] of cases) {
      expect(checkSlices(body), body).toEqual(compact);
      expectSameEvents(body);
    }
    // a last "properties" or "$snapshot_data" that is not an object or array leaves the item without slices
    for (const body of [
      `[{"properties":{"$snapshot_data":[${e(1)}]},"properties":[]}]`,
      `[{"properties":{"$snapshot_data":[${e(1)}],"$snapshot_data":{"0":${e(1)}}}}]`,
      `[{"properties":{"$snapshot_data":[${e(1)}]},"properties":"{\\"$snapshot_data\\":[]}"}]`,
    ]) {
      expect(locateSnapshotEvents(Buffer.from(body))).toEqual([undefined]);
    }
  });

  it('stays aligned across items of any kind, empty arrays and empty events', () => {
    const body = `[1,"[{\\"x",null,[[{}]],{"event":"$pageview"},${item('')},${item(' ')},${item('{}, { } ,{"type":3,"timestamp":1}')},true]`;
    expect(checkSlices(body)).toEqual([[], [], [], [], [], [], [], [true, false, true], []]);
    expect(locateSnapshotEvents(Buffer.from('[]'))).toEqual([]);
    expect(locateSnapshotEvents(Buffer.from(' [ ] '))).toEqual([]);
    expect(locateSnapshotEvents(Buffer.from('"x"'))).toEqual([undefined]);
  });

  it('carries numbers as sent: the line parses to what JSON.parse read from the body', () => {
    const event =
      '{"type":3,"timestamp":1.0,"data":{"a":1E+2,"b":0.10,"c":-0,"d":1e400,"e":-1e-400,"f":12345678901234567890}}';
    const body = `[${item(event)}]`;
    expect(checkSlices(body)).toEqual([[true]]);
    const [line] = linesOf(body);
    expect(line!.toString()).toBe(`["w-1",${event}]`);
    const [, parsed] = JSON.parse(line!.toString()) as [string, { data: Record<string, number> }];
    expect(parsed).toStrictEqual(parsedEvents(body)[0]![0]);
    // where re-serialising was lossy, the bytes are not: -0 stays -0, an overflow stays Infinity (not null)
    expect(Object.is(parsed.data.c, -0)).toBe(true);
    expect(parsed.data.d).toBe(Number.POSITIVE_INFINITY);
    expect(JSON.parse(stringifiedLines(body)[0]!)[1].data.d).toBeNull();
  });

  it('does not slice a body that is not valid UTF-8, and its lines are re-serialised as before', () => {
    const body = Buffer.concat([
      Buffer.from(`[${item('{"type":3,"timestamp":1,"data":"bad ')}`),
      Buffer.from([0xff, 0xc3, 0x28, 0xed, 0xa0, 0x80]),
      Buffer.from('"}]}}]'),
    ]);
    expect(locateSnapshotEvents(body)).toBeUndefined();
    expect(parseSnapshotRequest(body).sessions[0]!.events[0]!.raw).toBeUndefined();
    expect(linesOf(body).map(String)).toEqual(stringifiedLines(body));
  });

  it('splits messages at the same event boundaries as before', () => {
    const events = Array.from({ length: 400 }, (_, i) => ({
      type: 3,
      timestamp: 1_763_800_000_000 + i,
      data: { source: 0, text: 'x'.repeat(i * 37) },
    }));
    const body = JSON.stringify([
      { event: '$snapshot', properties: { $snapshot_data: events, $session_id: 's-1', $window_id: 'w-1', token: 't' } },
    ]);
    const maxMessageBytes = 256 * 1024 + 300 * 1024;
    const session = parseSnapshotRequest(Buffer.from(body)).sessions[0]!;
    const options = { maxMessageBytes, requestId: 'r', capturedAt: 1 };
    const sliced = buildRecordingMessages({ ...session, team }, options);
    const stringified = buildRecordingMessages(
      { ...session, team, events: session.events.map(({ windowId, event }) => ({ windowId, event })) },
      options,
    );
    expect(sliced.length).toBeGreaterThan(2);
    expect(sliced.map((m) => m.header)).toEqual(stringified.map((m) => m.header));
    sliced.forEach((message, index) => {
      const a = decompressLz4Frames(decodeRecordingMessage(message.value).payload);
      const b = decompressLz4Frames(decodeRecordingMessage(stringified[index]!.value).payload);
      expect(a.equals(b)).toBe(true);
    });
  });
});

/**
 * Writes `value` as JSON a hostile client may send: random whitespace between tokens, `\uXXXX` and `\/` escapes in
 * strings, other spellings of numbers, junk duplicate keys before the real ones (JSON.parse keeps the last).
 * `spaced` says whether any whitespace went inside the value (then it cannot be sliced onto one JSONL line).
 */
function hostileJson(value: unknown, rand: () => number, hostility: number): { text: string; spaced: boolean } {
  let spaced = false;
  const ws = () => {
    if (rand() >= hostility) return '';
    spaced = true;
    return [' ', '\t', '\n', '\r\n'][Math.floor(rand() * 4)]!;
  };
  const str = (text: string) => {
    let out = '"';
    for (let i = 0; i < text.length; i++) {
      const ch = text[i]!;
      const code = text.charCodeAt(i);
      if (ch === '"' || ch === '\\') out += `\\${ch}`;
      else if (code < 0x20 || rand() < hostility / 2) out += `\\u${code.toString(16).padStart(4, '0')}`;
      else if (ch === '/' && rand() < hostility) out += '\\/';
      else out += ch;
    }
    return `${out}"`;
  };
  const num = (n: number) => {
    const plain = JSON.stringify(n);
    if (!Number.isFinite(n) || Object.is(n, -0) || rand() >= hostility) return plain;
    return Number.isInteger(n) && Math.abs(n) < 1e15 ? `${n}.0e0` : plain.replace('e', 'E');
  };
  const write = (v: unknown, atTop: boolean): string => {
    const lead = atTop ? '' : ws();
    if (v === null || typeof v === 'boolean') return lead + String(v);
    if (typeof v === 'number') return lead + num(v);
    if (typeof v === 'string') return lead + str(v);
    if (Array.isArray(v)) {
      if (v.length === 0) return `${lead}[${ws()}]`;
      return `${lead}[${v.map((x) => `${write(x, false)}${ws()}`).join(',')}]`;
    }
    const entries = Object.entries(v as Record<string, unknown>);
    const members: string[] = [];
    for (const [k, x] of entries) {
      if (rand() < hostility / 3) members.push(`${ws()}${str(k)}${ws()}:${write({ junk: [k, '}'] }, false)}`);
      members.push(`${ws()}${str(k)}${ws()}:${write(x, false)}${ws()}`);
    }
    return `${lead}{${members.length === 0 ? ws() : members.join(',')}}`;
  };
  const text = write(value, true);
  return { text, spaced };
}

const eventArbitrary = fc.record(
  {
    type: fc.integer({ min: 0, max: 7 }),
    timestamp: fc.integer({ min: 1, max: 10_000_000_000_000 }), // inside DateTime64's range (to 2299)
    data: fc.jsonValue({ maxDepth: 4 }),
    cv: fc.constant('2024-10'),
    text: fc.oneof(fc.string({ unit: 'binary' }), fc.constantFrom('"', '\\', ']}', '{[', '\\"', '\u2028', '😀')),
  },
  { requiredKeys: ['type', 'timestamp'] },
);

describe('locating events in hostile JSON (property-based)', () => {
  it('every compact slice parses to the event JSON.parse read, whatever the spacing, escapes and key order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(eventArbitrary, { maxLength: 6 }), { minLength: 1, maxLength: 3 }),
        fc.integer(),
        fc.double({ min: 0, max: 0.5, noNaN: true }),
        (batches, seed, hostility) => {
          const rand = prng(seed);
          const spacedFlags: boolean[][] = [];
          const items = batches.map((events, i) => {
            const written = events.map((event) => hostileJson(event, rand, hostility));
            spacedFlags.push(written.map((w) => w.spaced));
            const header = hostileJson({ event: '$snapshot', i }, rand, hostility).text.slice(0, -1);
            const props = hostileJson(
              { $session_id: `s-${i % 2}`, $window_id: `w-${i}`, token: 'phc_x' },
              rand,
              hostility,
            ).text.slice(0, -1);
            const sep = rand() < hostility ? ' ,\n' : ',';
            const data = `[${written.map((w) => w.text).join(sep)}]`;
            return `${header},"properties":${props},"$snapshot_data":${data}}}`;
          });
          const body = `[${items.join(rand() < hostility ? ' , ' : ',')}]`;
          const compact = checkSlices(body);
          // an event is sliced exactly when no whitespace went inside it
          expect(compact).toEqual(spacedFlags.map((flags) => flags.map((spaced) => !spaced)));
          expectSameEvents(body);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('bodies written by JSON.stringify give byte-identical lines', () => {
    fc.assert(
      fc.property(fc.array(eventArbitrary, { minLength: 1, maxLength: 8 }), (events) => {
        const body = JSON.stringify({
          event: '$snapshot',
          properties: { $snapshot_data: events, $session_id: 's-1', $window_id: 'w-1', token: 't' },
        });
        expect(checkSlices(body)).toEqual([events.map(() => true)]);
        expect(linesOf(body).map((line) => line.toString('utf8'))).toEqual(stringifiedLines(body));
      }),
      { numRuns: 200 },
    );
  });
});
