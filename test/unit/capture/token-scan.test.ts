import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseSnapshotRequest } from '../../../src/capture/parse-snapshots.ts';
import { findToken, lastTokenCandidate, TokenCandidates, TokenScanner } from '../../../src/capture/token-scan.ts';

/** A body the way posthog-js writes it: the token after the item's `$snapshot_data`. */
function posthogBody(token: unknown, data: unknown[], items = 1): Buffer {
  const item = (i: number) => ({
    uuid: `u-${i}`,
    event: '$snapshot',
    properties: {
      $snapshot_bytes: 123,
      $snapshot_data: data,
      $session_id: 'session-1',
      $window_id: 'window-1',
      $lib: 'web',
      token,
      distinct_id: 'user-1',
    },
    timestamp: '2026-11-22T12:00:00Z',
  });
  return Buffer.from(JSON.stringify(Array.from({ length: items }, (_, i) => item(i))));
}

/** What `finder` finds in `body` fed in pieces cut at `cuts`. */
function feedInPieces(
  finder: { feed(chunk: Buffer): string | undefined },
  body: Buffer,
  cuts: number[],
): string | undefined {
  let at = 0;
  let found: string | undefined;
  for (const cut of [...cuts].sort((a, b) => a - b).concat(body.length)) {
    if (cut < at) continue;
    found = finder.feed(body.subarray(at, cut)) ?? found;
    at = cut;
  }
  return found;
}

const scanInPieces = (body: Buffer, cuts: number[]) => feedInPieces(new TokenScanner(), body, cuts);

const tricky = [
  { type: 4, timestamp: 1, data: { href: 'https://a/?token=nope', attributes: { token: 'attr-token' } } },
  { type: 5, timestamp: 2, data: { tag: 'x', payload: { token: 'custom', api_key: 'custom-key' } } },
  { type: 3, timestamp: 3, data: { text: '"token":"in-a-string" \\"token\\":\\"escaped\\" ends with \\' } },
  { type: 3, timestamp: 4, data: { text: 'a\\', other: ['}', ']', '{', '[', '"'] } },
  [{ token: 'nested-array' }],
];

describe('token scan', () => {
  it('finds the item token after $snapshot_data, not the "token" keys and strings inside events', () => {
    const body = posthogBody('phc_real', tricky);
    expect(findToken(body)).toBe('phc_real');
    expect(parseSnapshotRequest(body).token).toBe('phc_real'); // the same token the parser reads
  });

  it('finds it whatever the chunking, one byte at a time included', () => {
    const body = posthogBody('phc_real', tricky, 2);
    const oneByOne = new TokenScanner();
    let found: string | undefined;
    for (let i = 0; i < body.length && found === undefined; i++) found = oneByOne.feed(body.subarray(i, i + 1));
    expect(found).toBe('phc_real');
    fc.assert(
      fc.property(fc.array(fc.nat(body.length), { maxLength: 8 }), (cuts) => {
        expect(scanInPieces(body, cuts)).toBe('phc_real');
      }),
      { numRuns: 300 },
    );
  });

  it('reads the places parseSnapshotRequest reads a token from', () => {
    const json = (value: unknown) => Buffer.from(JSON.stringify(value));
    expect(findToken(json({ event: '$snapshot', properties: { $snapshot_data: [], token: 'single-object' } }))).toBe(
      'single-object',
    );
    expect(findToken(json({ api_key: 'top-level-key', batch: [] }))).toBe('top-level-key');
    expect(findToken(json({ token: 'top-level-token' }))).toBe('top-level-token');
    expect(findToken(json([{ api_key: 'item-key', event: '$snapshot', properties: {} }]))).toBe('item-key');
    expect(findToken(json([{ event: '$snapshot', properties: { token: 12345 } }]))).toBe('12345');
    // not a place a token is read from
    expect(findToken(json([{ token: 'item-level-token', properties: {} }]))).toBeUndefined();
    expect(findToken(json([[{ token: 'x' }], { properties: { nested: { token: 'y' } } }]))).toBeUndefined();
    expect(findToken(json({ properties: { token: null, $snapshot_data: [] }, api_key: 'after-null' }))).toBe(
      'after-null',
    );
    expect(findToken(json([{ properties: { token: true, t: 'e' } }]))).toBeUndefined();
    expect(findToken(json('"token":"x"'))).toBeUndefined();
    expect(findToken(Buffer.alloc(0))).toBeUndefined();
  });

  it('decodes escapes in keys and values as JSON.parse does', () => {
    const body = Buffer.from('[{"event":"$snapshot","prop\\u0065rties":{"tok\\u0065n":"phc_\\u00e9\\"x\\\\"}}]');
    expect(findToken(body)).toBe(JSON.parse(body.toString())[0].properties.token);
    expect(findToken(Buffer.from('[{"properties":{"token":"phc_ünï"}}]'))).toBe('phc_ünï');
  });

  it('cuts an over-long token to something still over 200 characters', () => {
    const found = findToken(posthogBody('t'.repeat(100_000), []));
    expect(found!.length).toBeGreaterThan(200);
    expect(found!.length).toBeLessThan(2000);
  });

  it('finds nothing in a body without a token, and never throws on garbage', () => {
    expect(findToken(posthogBody(undefined, tricky))).toBeUndefined();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        findToken(Buffer.from(bytes));
      }),
      { numRuns: 2000 },
    );
  });

  it('agrees with parseSnapshotRequest on posthog-js-shaped bodies with arbitrary events', () => {
    fc.assert(
      fc.property(
        fc.array(fc.jsonValue({ maxDepth: 4 }), { maxLength: 6 }),
        fc.string({ minLength: 1, maxLength: 40 }),
        fc.array(fc.nat(2000), { maxLength: 4 }),
        (data, token, cuts) => {
          const body = posthogBody(token, data);
          expect(scanInPieces(body, cuts)).toBe(token);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('token candidates (the fast search)', () => {
  const candidateIn = (body: Buffer, cuts: number[] = []) => feedInPieces(new TokenCandidates(), body, cuts);

  it('proposes the first "token": or "api_key": with a string or number, whatever the chunking', () => {
    const body = posthogBody('phc_real', [{ type: 3, timestamp: 1, data: { token: null, api_key: { a: 1 } } }]);
    fc.assert(
      fc.property(fc.array(fc.nat(body.length), { maxLength: 10 }), (cuts) => {
        expect(candidateIn(body, cuts)).toBe('phc_real');
      }),
      { numRuns: 500 },
    );
    expect(candidateIn(Buffer.from('[{"api_key":-12.5e1}]'))).toBe('-125');
    expect(candidateIn(Buffer.from('{"token": "with space"}'))).toBe('with space');
    expect(candidateIn(Buffer.from('{"token":"esc\\u0041\\""}'))).toBe('escA"');
    expect(candidateIn(Buffer.from('{"token":"unterminated'))).toBeUndefined();
    expect(candidateIn(Buffer.from('no keys here'))).toBeUndefined();
    expect(candidateIn(posthogBody('t'.repeat(5000), []))!.length).toBeGreaterThan(200);
  });

  it('is fooled by a decoy inside an event (which the exact scan is not)', () => {
    const body = posthogBody('phc_real', [{ type: 2, timestamp: 1, data: { attributes: { token: 'decoy' } } }]);
    expect(candidateIn(body)).toBe('decoy');
    expect(findToken(body)).toBe('phc_real');
  });

  it('over a whole body, takes the last token (every item carries one, after its events)', () => {
    expect(lastTokenCandidate(posthogBody('phc_real', tricky, 3))).toBe('phc_real');
    expect(lastTokenCandidate(Buffer.from('[{"properties":{"token":"a"}},{"properties":{"token":null}}]'))).toBe('a');
    expect(lastTokenCandidate(Buffer.from('{"api_key":"k","batch":[{"properties":{}}]}'))).toBe('k');
    expect(lastTokenCandidate(Buffer.from('"token":"cut'))).toBeUndefined();
    expect(lastTokenCandidate(Buffer.alloc(0))).toBeUndefined();
  });

  it('looks for "api_key": only in the first 64 KiB (further in, the exact scan finds it)', () => {
    const late = Buffer.from(JSON.stringify({ pad: 'x'.repeat(70_000), api_key: 'late' }));
    expect(candidateIn(late)).toBeUndefined();
    expect(findToken(late)).toBe('late');
    const early = Buffer.from(JSON.stringify({ api_key: 'early', pad: 'x'.repeat(70_000) }));
    expect(candidateIn(early, [3, 10, 65_000])).toBe('early');
  });
});
