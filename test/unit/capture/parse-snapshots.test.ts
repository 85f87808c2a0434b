import { describe, expect, it } from 'vitest';
import { parseSnapshotRequest } from '../../../src/capture/parse-snapshots.ts';
import { isReplayError } from '../../../src/errors/index.ts';
import { MAX_TIMESTAMP_MS } from '../../../src/recordings/bounds.ts';

const t0 = 1_763_800_000_000;
const good = (offset = 0) => ({ type: 3, timestamp: t0 + offset, data: { source: 1 } });

function item(events: unknown[], props: Record<string, unknown> = {}) {
  return {
    event: '$snapshot',
    properties: {
      $snapshot_data: events,
      $session_id: 'session-1',
      $window_id: 'window-1',
      token: 'phc_x',
      distinct_id: 'user-1',
      ...props,
    },
  };
}

const parse = (body: unknown) =>
  parseSnapshotRequest(Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)));

function codeOf(body: unknown): string {
  try {
    parse(body);
    return 'ok';
  } catch (error) {
    if (isReplayError(error)) return error.code;
    throw error;
  }
}

describe('parseSnapshotRequest drops what breaks an input bound, alone', () => {
  it.each([
    ['a timestamp past DateTime64 (9e15)', { type: 3, timestamp: 9e15 }, 'timestamp_out_of_range'],
    ['one millisecond past the last one', { type: 3, timestamp: MAX_TIMESTAMP_MS + 1 }, 'timestamp_out_of_range'],
    ['timestamp 0', { type: 3, timestamp: 0 }, 'invalid_timestamp'],
    ['a negative timestamp', { type: 3, timestamp: -5 }, 'invalid_timestamp'],
    ['a timestamp "NaN"', { type: 3, timestamp: 'NaN' }, 'invalid_timestamp'],
    ['a timestamp "Infinity"', { type: 3, timestamp: 'Infinity' }, 'invalid_timestamp'],
    ['a string timestamp', { type: 3, timestamp: String(t0) }, 'invalid_timestamp'],
    ['no timestamp', { type: 3 }, 'invalid_timestamp'],
    ['a null timestamp', { type: 3, timestamp: null }, 'invalid_timestamp'],
    ['no type', { timestamp: t0 }, 'invalid_event'],
    ['a string type', { type: '3', timestamp: t0 }, 'invalid_event'],
    ['a fractional type', { type: 3.5, timestamp: t0 }, 'invalid_event'],
    ['a negative type', { type: -1, timestamp: t0 }, 'invalid_event'],
    ['an event that is not an object', 'hello', 'invalid_event'],
    ['an event that is an array', [3, t0], 'invalid_event'],
    ['null', null, 'invalid_event'],
  ])('%s: dropped, the others kept', (_name, bad, code) => {
    const request = parse([item([good(0), bad, good(1)])]);
    expect(request.eventCount).toBe(2);
    expect(request.sessions[0]!.events.map((e) => e.event.timestamp)).toEqual([t0, t0 + 1]);
    expect(request.dropped).toEqual({ count: 1, byCode: { [code]: 1 }, examples: [{ item: 0, event: 1, code }] });
    // alone, it fails the request with its code
    expect(codeOf([item([bad])])).toBe(code);
  });

  it('an overflowing number (1e400 parses to Infinity) is an invalid timestamp', () => {
    const body = `[{"event":"$snapshot","properties":{"$session_id":"s","token":"t","$snapshot_data":[{"type":3,"timestamp":1e400},{"type":3,"timestamp":${t0}}]}}]`;
    expect(parse(body).dropped.byCode).toEqual({ invalid_timestamp: 1 });
  });

  it('keeps fractional millisecond timestamps, and the last one DateTime64 holds', () => {
    const events = [
      { type: 3, timestamp: t0 + 0.25 },
      { type: 3, timestamp: 1_763_800_000_123.456 },
      { type: 3, timestamp: MAX_TIMESTAMP_MS },
      { type: 3, timestamp: 0.5 },
    ];
    const request = parse([item(events)]);
    expect(request.dropped.count).toBe(0);
    expect(request.sessions[0]!.events.map((e) => e.event.timestamp)).toEqual(events.map((e) => e.timestamp));
  });

  it('drops an item whose distinct_id is over 200 characters, with all its events', () => {
    const request = parse([
      item([good(0), good(1)], { distinct_id: 'd'.repeat(201), $session_id: 'long-id' }),
      item([good(2)], { distinct_id: 'd'.repeat(200) }),
    ]);
    expect(request.sessions.map((s) => s.sessionId)).toEqual(['session-1']);
    expect(request.sessions[0]!.distinctId).toHaveLength(200);
    expect(request.dropped).toEqual({
      count: 2,
      byCode: { distinct_id_too_long: 2 },
      examples: [{ item: 0, code: 'distinct_id_too_long' }],
    });
  });

  it('keeps 100 windows of a session and drops the items of any window past them', () => {
    const items = Array.from({ length: 103 }, (_, i) => item([good(i)], { $window_id: `window-${i}` }));
    items.push(item([good(500)], { $window_id: 'window-7' })); // a window already seen is fine
    const request = parse(items);
    const windows = new Set(request.sessions[0]!.events.map((e) => e.windowId));
    expect(windows.size).toBe(100);
    expect(request.eventCount).toBe(101);
    expect(request.dropped.byCode).toEqual({ too_many_windows: 3 });
    expect(request.dropped.examples.map((e) => e.item)).toEqual([100, 101, 102]);
    // another session has its own 100
    const other = parse([
      ...items.slice(0, 101),
      item([good(1)], { $session_id: 'session-2', $window_id: 'window-100' }),
    ]);
    expect(other.sessions.map((s) => s.sessionId)).toEqual(['session-1', 'session-2']);
  });

  it('drops a bad item among good ones, and counts each code', () => {
    const request = parse([
      item([good(0)]),
      item([good(1), good(2)], { $session_id: '../../etc/passwd' }),
      item([good(3)], { $session_id: '' }),
      item([good(4)], { $window_id: 'w'.repeat(71) }),
      { event: '$snapshot', properties: { $session_id: 'session-1', $snapshot_data: 'not an array' } },
      { event: '$pageview', properties: { token: 'phc_x' } }, // not a snapshot: ignored, not dropped
      item([good(5), { type: 3, timestamp: 9e15 }], { $session_id: 'session-2' }),
    ]);
    expect(request.eventCount).toBe(2);
    expect(request.sessions.map((s) => [s.sessionId, s.events.length])).toEqual([
      ['session-1', 1],
      ['session-2', 1],
    ]);
    expect(request.dropped.count).toBe(6);
    expect(request.dropped.byCode).toEqual({
      invalid_session_id: 2,
      missing_session_id: 1,
      invalid_window_id: 1,
      invalid_payload: 1,
      timestamp_out_of_range: 1,
    });
    expect(request.dropped.examples).toEqual([
      { item: 1, code: 'invalid_session_id' },
      { item: 2, code: 'missing_session_id' },
      { item: 3, code: 'invalid_window_id' },
      { item: 4, code: 'invalid_payload' },
      { item: 6, event: 1, code: 'timestamp_out_of_range' },
    ]);
  });

  it('names at most 20 dropped events, and counts them all', () => {
    const bad = Array.from({ length: 50 }, () => ({ type: 3, timestamp: -1 }));
    const request = parse([item([good(0), ...bad])]);
    expect(request.dropped.count).toBe(50);
    expect(request.dropped.examples).toHaveLength(20);
    expect(request.dropped.byCode).toEqual({ invalid_timestamp: 50 });
  });

  it('fails with the first drop code when nothing is left, and keeps the request-level refusals', () => {
    expect(codeOf([item([{ type: 3 }]), item([{ type: 3, timestamp: 9e15 }])])).toBe('invalid_timestamp');
    expect(codeOf([item([good(0)], { $session_id: 'bad id' }), item([{ timestamp: 1 }])])).toBe('invalid_session_id');
    expect(codeOf('"a string"')).toBe('invalid_payload');
    expect(codeOf('[{"event": "$snapshot", ')).toBe('invalid_json');
    expect(codeOf([{ event: '$pageview' }])).toBe('invalid_payload');
    expect(codeOf([item([good(0)]), item([good(1)], { token: 'phc_other' })])).toBe('invalid_payload');
    // an item with no events is neither kept nor dropped
    const request = parse([item([]), item([good(0)])]);
    expect([request.eventCount, request.dropped.count]).toEqual([1, 0]);
  });

  it('cuts $lib to 1000 characters', () => {
    expect(parse([item([good(0)], { $lib: 'l'.repeat(5000) })]).sessions[0]!.snapshotLibrary).toHaveLength(1000);
  });
});
