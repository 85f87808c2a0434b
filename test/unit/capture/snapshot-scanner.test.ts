import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildRecordingMessages } from '../../../src/capture/build-messages.ts';
import { parseSnapshotRequest } from '../../../src/capture/parse-snapshots.ts';
import { CONTAINER, type SnapshotBody, snapshotBodyOf } from '../../../src/capture/snapshot-body.ts';
import { scanSnapshotBody } from '../../../src/capture/snapshot-scanner.ts';
import { decompressLz4Frames } from '../../../src/codec/lz4-frames.ts';
import { nativeSkipValue, type SkipValue } from '../../../src/native/json-skip.ts';
import { decodeRecordingMessage } from '../../../src/recordings/message-codec.ts';
import { sampleTeam } from '../../support/teams.ts';

const team = sampleTeam;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** A value as the scanner keeps a field it reads for itself: objects and arrays only by kind. */
const scalar = (value: unknown) => (typeof value === 'object' && value !== null ? CONTAINER : value);

/** What the scanner must keep of an event `JSON.parse` read: the fields the summary and the bounds look at. */
function skeletonOf(event: unknown): unknown {
  if (!isObject(event)) return null;
  const fields = <T extends object>(value: unknown, pick: (o: Record<string, unknown>) => T) =>
    isObject(value) ? pick(value) : Array.isArray(value) ? {} : undefined;
  return {
    type: scalar(event.type),
    timestamp: scalar(event.timestamp),
    data: fields(event.data, (data) => ({
      source: scalar(data.source),
      type: scalar(data.type),
      href: scalar(data.href),
      plugin: scalar(data.plugin),
      payload: fields(data.payload, (payload) => ({ level: scalar(payload.level), href: scalar(payload.href) })),
    })),
  };
}

/**
 * The scanner's reading of a body must be `JSON.parse`'s, field for field: `toStrictEqual`, so -0 stays -0 and a
 * number read as a string fails. Each event's bytes must parse to exactly the element and hold no line break.
 */
function expectSameAsJsonParse(bytes: Buffer, scanned: SnapshotBody): void {
  const parsed = snapshotBodyOf(JSON.parse(bytes.toString('utf8')));
  expect(parsed).toBeDefined();
  expect(scanned.root).toBe(parsed!.root);
  expect(scanned.rootApiKey).toStrictEqual(scalar(parsed!.rootApiKey));
  expect(scanned.rootToken).toStrictEqual(scalar(parsed!.rootToken));
  expect(scanned.items.length).toBe(parsed!.items.length);
  scanned.items.forEach((item, index) => {
    const expected = parsed!.items[index];
    if (expected === undefined) {
      expect(item).toBeUndefined();
      return;
    }
    expect(item).toBeDefined();
    expect([item!.event, item!.apiKey, item!.distinctId]).toStrictEqual(
      [expected.event, expected.apiKey, expected.distinctId].map(scalar),
    );
    const props = item!.properties;
    const want = expected.properties;
    if (want === undefined) {
      expect(props).toBeUndefined();
      return;
    }
    expect(props).toBeDefined();
    const fields = (p: typeof want) => [p.token, p.sessionId, p.windowId, p.distinctId, p.lib, p.snapshotSource];
    expect(fields(props!)).toStrictEqual(fields(want).map(scalar));
    if (want.data === undefined) {
      expect(props!.data).toBeUndefined();
      return;
    }
    expect(props!.data?.length).toBe(want.data.length);
    props!.data!.forEach((element, e) => {
      const raw = element.raw!;
      expect(raw.includes(0x0a) || raw.includes(0x0d)).toBe(false);
      expect(JSON.parse(raw.toString('utf8'))).toStrictEqual(want.data![e]!.event);
      expect(element.event).toStrictEqual(skeletonOf(want.data![e]!.event));
    });
  });
}

type Scan = (bytes: Buffer) => SnapshotBody | undefined;

/** `bytes` copied to start at `offset` of a fresh allocation (the scanner reads aligned bodies a word at a time). */
function placed(bytes: Buffer, offset: number): Buffer {
  const copy = Buffer.alloc(bytes.length + offset).subarray(offset);
  bytes.copy(copy);
  return copy;
}

/**
 * For any bytes: what the scanner takes `JSON.parse` takes, and reads the same, whether the body is word-aligned in
 * memory or not. Answers whether it took them.
 */
function differential(bytes: Buffer, scan: Scan): boolean {
  const aligned = scan(placed(bytes, 0));
  const unaligned = scan(placed(bytes, 1));
  expect(unaligned === undefined).toBe(aligned === undefined);
  if (aligned === undefined) return false;
  expectSameAsJsonParse(bytes, aligned);
  expectSameAsJsonParse(bytes, unaligned!);
  return true;
}

const t0 = 1_763_800_000_000;
const KEYS = [
  'event',
  'properties',
  'api_key',
  'token',
  'distinct_id',
  '$snapshot_data',
  '$session_id',
  '$window_id',
  '$lib',
  '$snapshot_source',
  'type',
  'timestamp',
  'data',
  'source',
  'href',
  'plugin',
  'payload',
  'level',
  '__proto__',
  'x',
];
/** JSON values built from the keys the scanner reads (at any depth), so every reading branch is hit. */
const { value: anyValue } = fc.letrec<{ value: Json }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom<Json>(null, true, false, 0, -0, 1, 3, 2.5, -1, 1e21, 5e-324, t0, '$snapshot', 'mobile', 's-1', ''),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string({ unit: 'binary' }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(fc.constantFrom(...KEYS), fc.string()), tie('value'), { maxKeys: 5 }),
  ),
}));
const event = fc.record(
  {
    type: fc.oneof(fc.integer({ min: 0, max: 6 }), anyValue),
    timestamp: fc.oneof(fc.constant(t0), fc.double(), anyValue),
    data: fc.oneof(
      fc.record(
        {
          source: fc.oneof(fc.integer({ min: 0, max: 12 }), anyValue),
          type: fc.integer({ min: 0, max: 9 }),
          href: fc.oneof(fc.webUrl(), anyValue),
          plugin: fc.constantFrom('rrweb/console@1', 'other'),
          payload: fc.oneof(fc.record({ level: fc.constantFrom('log', 'warn', 'error'), href: fc.webUrl() }), anyValue),
          node: anyValue,
        },
        { requiredKeys: [] },
      ),
      anyValue,
    ),
    x: anyValue,
  },
  { requiredKeys: [] },
);
const item = fc.oneof(
  fc.record(
    {
      event: fc.oneof(fc.constant('$snapshot'), anyValue),
      api_key: anyValue,
      distinct_id: anyValue,
      properties: fc.oneof(
        fc.record(
          {
            $snapshot_data: fc.oneof(fc.array(fc.oneof(event, anyValue), { maxLength: 5 }), anyValue),
            $session_id: fc.oneof(fc.constant('s-1'), anyValue),
            $window_id: anyValue,
            token: anyValue,
            distinct_id: anyValue,
            $lib: anyValue,
            $snapshot_source: anyValue,
          },
          { requiredKeys: [] },
        ),
        anyValue,
      ),
    },
    { requiredKeys: [] },
  ),
  anyValue,
);
/** A batch: an array of items, or one item object. */
const body = fc.oneof(
  fc.array(item, { maxLength: 4 }),
  item.filter((value) => typeof value === 'object' && value !== null && !Array.isArray(value)),
);

/** Edits that break JSON in every way a byte can: structure, strings, escapes, numbers, literals, UTF-8. */
const SPLICES = ['"', '\\', '{', '}', '[', ']', ',', ':', ' ', '\n', '0', '-', '+', 'e', '.', 't', 'n', 'u', '\\u00'];
const RAW_BYTES = [0x00, 0x09, 0x1f, 0x7f, 0x80, 0xc0, 0xc3, 0xe2, 0xed, 0xef, 0xf0, 0xf4, 0xff];
type Mutation =
  | { kind: 'splice'; at: number; text: string; cut: number }
  | { kind: 'byte'; at: number; byte: number }
  | { kind: 'truncate'; at: number };
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('splice' as const), at: fc.nat(), text: fc.constantFrom(...SPLICES), cut: fc.nat(3) }),
  fc.record({ kind: fc.constant('byte' as const), at: fc.nat(), byte: fc.constantFrom(...RAW_BYTES) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);
function mutate(bytes: Buffer, edits: readonly Mutation[]): Buffer {
  let out = bytes;
  for (const edit of edits) {
    const at = edit.at % (out.length + 1);
    const before = out.subarray(0, at);
    if (edit.kind === 'truncate') out = before;
    else if (edit.kind === 'byte') out = Buffer.concat([before, Buffer.from([edit.byte]), out.subarray(at + 1)]);
    else out = Buffer.concat([before, Buffer.from(edit.text), out.subarray(at + edit.cut)]);
  }
  return out;
}

// Both ways of stepping over the values the scanner does not read must give JSON.parse's answers: the native skipper
// (scripts/setup builds it; the test fails when it is missing, so a build that silently stopped working is noticed)
// and the JavaScript one, which capture runs without it.
it('the native skipper is built', () => {
  expect(nativeSkipValue).toBeTypeOf('function');
});

describe.each<[string, SkipValue | undefined]>([
  ['the native skipper', nativeSkipValue],
  ['the JavaScript skipper', undefined],
])('the snapshot scanner reads bodies as JSON.parse does, with %s', (_skipper, skip) => {
  const scan: Scan = (bytes) => scanSnapshotBody(bytes, skip);

  it('takes every body JSON.stringify makes, and reads each field and event as JSON.parse does', () => {
    fc.assert(
      fc.property(body, (value) => {
        expect(differential(Buffer.from(JSON.stringify(value)), scan)).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it('never takes what JSON.parse refuses, nor reads a mutated body differently', () => {
    let taken = 0;
    fc.assert(
      fc.property(body, fc.array(mutation, { minLength: 1, maxLength: 3 }), (value, edits) => {
        const bytes = mutate(Buffer.from(JSON.stringify(value)), edits);
        let parses = true;
        try {
          JSON.parse(bytes.toString('utf8'));
        } catch {
          parses = false;
        }
        const took = differential(bytes, scan);
        if (!parses) expect(took).toBe(false);
        if (took) taken++;
      }),
      { numRuns: 5000 },
    );
    expect(taken).toBeGreaterThan(100); // mutations that stay valid JSON are compared too
  });

  it.each([
    ['numbers', ['-', '01', '1.', '.5', '1e', '1e+', '-01', '1.e5', '+1', '0x10', 'Infinity', 'NaN', '1_000', '٣']],
    ['literals', ['tru', 'nul', 'fals', 'True', 'nulll', 'undefined']],
    ['strings', ['"\\x"', '"\\u12"', '"\\u12g4"', '"\\', '"a', "'a'", '"\u0000"', '"\u001f"', '"\t"', '"\\\n"']],
    ['structure', ['[1,]', '{"a":1,}', '{"a"}', '{"a":}', '{1:2}', '[1 2]', '{"a":1 "b":2}', ']', '[[]', '{"a":1}}']],
  ])('refuses broken %s wherever they sit, as JSON.parse does', (_what, fragments) => {
    for (const fragment of fragments) {
      for (const bytes of [
        `[${fragment}]`,
        `{"event":"$snapshot","properties":{"$snapshot_data":[{"type":3,"timestamp":1,"data":{"source":${fragment}}}]}}`,
        `[{"event":"$snapshot","properties":{"$session_id":${fragment},"$snapshot_data":[]}}]`,
        `[{"properties":{"$snapshot_data":[{"data":{"node":[${fragment}]}}]}}]`,
      ]) {
        expect(() => JSON.parse(bytes), bytes).toThrow();
        for (const offset of [0, 1, 2, 3]) {
          expect(scan(placed(Buffer.from(bytes), offset)), bytes).toBeUndefined();
        }
      }
    }
  });

  it('finds the end of long strings, and every control byte, quote and escape in them, at any alignment', () => {
    const text = 'x'.repeat(40);
    for (let at = 0; at < 12; at++) {
      for (const [insert, valid] of [
        ['\u0001', false],
        ['\u001f', false],
        ['\t', false],
        ['\\"', true],
        ['\\\\', true],
        ['\\u00e9', true],
        ['\\q', false],
        ['é😀', true],
        ['"', false],
      ] as const) {
        const value = `${text.slice(0, at)}${insert}${text.slice(at)}`;
        const body = `[{"event":"$snapshot","properties":{"$session_id":"s-1","$snapshot_data":[{"type":3,"timestamp":1,"data":{"text":"${value}","href":"${value}"}}]}}]`;
        for (const offset of [0, 1, 2, 3]) {
          const bytes = placed(Buffer.from(body), offset);
          if (valid) expect(differential(bytes, scan), body).toBe(true);
          else expect(scan(bytes), body).toBeUndefined();
        }
      }
    }
  });

  it('refuses what is not UTF-8, and leaves whitespace inside the items to JSON.parse', () => {
    const good =
      '[{"event":"$snapshot","properties":{"$session_id":"s-1","$snapshot_data":[{"type":3,"timestamp":1}]}}]';
    expect(differential(Buffer.from(good), scan)).toBe(true);
    expect(differential(Buffer.from(` \r\n\t${good}\n`), scan)).toBe(true); // around the top-level value it is fine
    for (const bad of [[0xc3, 0x28], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xff], [0xf4, 0x90, 0x80, 0x80]]) {
      const bytes = Buffer.concat([Buffer.from(good.slice(0, 40)), Buffer.from(bad), Buffer.from(good.slice(40))]);
      expect(scan(bytes)).toBeUndefined();
    }
    expect(scan(Buffer.from(good.replace(',"$snapshot_data"', ', "$snapshot_data"')))).toBeUndefined();
    expect(scan(Buffer.from(`\uFEFF${good}`))).toBeUndefined(); // JSON.parse refuses a byte order mark
    expect(scan(Buffer.from('"not a batch"'))).toBeUndefined();
    expect(scan(Buffer.from(''))).toBeUndefined();
  });

  it('reads keys as JSON.parse does: escaped names, near misses, and the last of duplicate keys', () => {
    const e = (ts: number) => `{"type":3,"timestamp":${ts}}`;
    for (const text of [
      `[{"event":"$snapshot","propert\\u0069es":{"$session_id":"s-1","\\u0024snapshot_data":[${e(1)}]}}]`,
      `[{"event":"$snapshot","properties":{"$session_id":"s-1","$snapshot_data ":[${e(9)}],"$snapshot_data":[${e(1)}],"$Snapshot_data":[${e(8)}]}}]`,
      `[{"event":"$snapshot","properties":{"$snapshot_data":[${e(9)},${e(9)}]},"properties":{"$session_id":"s-1","$snapshot_data":[${e(1)}]}}]`,
      `[{"event":"$snapshot","properties":{"$session_id":"s-1","$snapshot_data":[${e(9)}],"$snapshot_data":[${e(1)},${e(2)}]}}]`,
      `[{"event":"$snapshot","properties":{"$session_id":"s-1","$snapshot_data":[{"type":3,"timestamp":9,"timestamp":1,"type":2}]}}]`,
      `[{"properties":{"$snapshot_data":[${e(1)}]},"properties":[]}]`,
      `[{"properties":{"$snapshot_data":[${e(1)}],"$snapshot_data":{"0":${e(1)}}}}]`,
      `{"event":"$snapshot","properties":{"$session_id":"s-1","$snapshot_data":[${e(1)}]},"api_key":"phc_x","token":"t"}`,
      `[{"event":"\\u0024snapshot","properties":{"\\u0074oken":"\\u0070hc","$snapshot_data":[{"\\u0074ype":3,"timestamp":1,"d\\u0061ta":{"h\\u0072ef":"\\/a\\u00e9"}}]}}]`,
    ]) {
      expect(differential(Buffer.from(text), scan), text).toBe(true);
    }
  });

  it('follows nesting thousands of levels deep, in the events and around them', () => {
    const depth = 5000;
    const deep = `{"type":3,"timestamp":1,"data":{"node":${'['.repeat(depth)}"]"${']'.repeat(depth)}}}`;
    const deepObjects = `{"type":3,"timestamp":2,"data":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`;
    const body = `[{"x":${'['.repeat(depth)}${']'.repeat(depth)}},{"event":"$snapshot","properties":{"$session_id":"s-1","$snapshot_data":[${deep},${deepObjects}]}}]`;
    expect(differential(Buffer.from(body), scan)).toBe(true);
    expect(scan(Buffer.from(body.slice(0, -3)))).toBeUndefined();
  });
});

/** The JSONL lines capture produces for a body (every session, every message, in order). */
function linesOf(text: string): string[] {
  const lines: string[] = [];
  for (const session of parseSnapshotRequest(Buffer.from(text)).sessions) {
    const records = buildRecordingMessages(
      { ...session, team },
      { maxMessageBytes: 20 * 1024 * 1024, requestId: 'r', capturedAt: 1 },
    );
    for (const record of records) {
      const { header, payload } = decodeRecordingMessage(record.value);
      const jsonl = decompressLz4Frames(payload).toString('utf8');
      expect(Buffer.byteLength(jsonl)).toBe(header.rawBytes);
      lines.push(...jsonl.split('\n').slice(0, -1));
    }
  }
  return lines;
}

describe('capture writes the events of a scanned body byte for byte', () => {
  it('a posthog-js body: every line is JSON.stringify([window, event]) of what JSON.parse reads', () => {
    const events = [
      { type: 4, timestamp: t0, data: { href: 'https://example.com/a?b=[1]&c={"d"}', width: 800 } },
      { type: 2, timestamp: t0 + 1, data: { node: { id: 1, childNodes: [{ textContent: 'é 中 😀 \u2028' }] } } },
      { type: 3, timestamp: t0 + 2, data: { source: 2, type: 2, id: 5, x: 1.5, y: -3e-7 } },
      {
        type: 6,
        timestamp: t0 + 3,
        data: { plugin: 'rrweb/console@1', payload: { level: 'log', payload: ['"\\n\t\u0000'] } },
      },
      { type: 5, timestamp: t0 + 4, data: { tag: '$pageview', payload: { href: 'https://b/' } }, cv: '2024-10' },
    ];
    const text = JSON.stringify([
      { event: '$pageview', properties: { $snapshot_data: [{ type: 1, timestamp: 1 }] } },
      {
        event: '$snapshot',
        properties: { $snapshot_data: events, $session_id: 's-1', $window_id: 'w-1', token: 'phc_x', distinct_id: 'd' },
      },
    ]);
    expect(scanSnapshotBody(Buffer.from(text))).toBeDefined();
    const request = parseSnapshotRequest(Buffer.from(text));
    expect(request.sessions[0]!.events.every((e) => e.raw !== undefined)).toBe(true);
    expect(linesOf(text)).toEqual(events.map((event) => JSON.stringify(['w-1', event])));
  });

  it('the same lines, up to re-serialisation, when the body holds whitespace and JSON.parse reads it', () => {
    const compact = `[{"event":"$snapshot","properties":{"$session_id":"s-1","$window_id":"w-1","token":"phc_x","$snapshot_data":[{"type":3,"timestamp":1},{"type":3,"timestamp":2,"data":"a\\tb"}]}}]`;
    const spaced = compact.replaceAll(',', ' ,\n\t').replaceAll(':', ' : ');
    expect(scanSnapshotBody(Buffer.from(spaced))).toBeUndefined();
    expect(linesOf(spaced)).toEqual(linesOf(compact));
  });
});
