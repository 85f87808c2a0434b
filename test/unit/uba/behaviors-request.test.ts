import { describe, expect, it } from 'vitest';
import { isReplayError } from '../../../src/errors/index.ts';
import { MAX_TIMESTAMP_MS } from '../../../src/recordings/bounds.ts';
import { expectSomeAccepted } from '../../../src/uba/behavior-batch.ts';
import { MAX_BEHAVIORS_PER_REQUEST, MAX_PROPERTIES_BYTES, UUID_PATTERN } from '../../../src/uba/behavior-bounds.ts';
import type { BehaviorRecord } from '../../../src/uba/behavior-record.ts';
import { behaviorsToRecords, readBehaviorsRequest } from '../../../src/uba/behaviors-request.ts';

const t0 = 1_763_800_000_000;
const context = { tenantId: 7, capturedAt: t0 + 60_000 };

const good = (overrides: Record<string, unknown> = {}) => ({
  user_id: 'u-1',
  item_id: 'item-9',
  action_type: 'click',
  scenario_id: 'home_feed',
  timestamp: t0,
  context: { device_type: 'mobile', os: 'iOS', location: 'Paris', ip: '192.0.2.1' },
  extra_data: { position: 3, tags: ['a', 'b'], nested: { deep: true }, label: 'x', skip: null },
  watch_duration: 12.5,
  completion_rate: 0.25,
  experiment_id: 'exp-1',
  experiment_group: 'B',
  ...overrides,
});

const toBatch = (items: unknown[]) => behaviorsToRecords(items, context);

/** The code one behaviour is refused with, or 'ok'. */
function codeOf(overrides: Record<string, unknown>, base = good()): string {
  const batch = toBatch([{ ...base, ...overrides }]);
  return batch.rejected[0]?.code ?? 'ok';
}

describe('POST /api/v1/behaviors: each behaviour is checked against the bounds, alone', () => {
  it('maps a good behaviour to its BehaviorRecord, every field present', () => {
    const batch = toBatch([good({ view_id: 'v-1', session_id: '0190aaaa-bbbb-7ccc-8ddd-eeeeffff0000' })]);
    expect(batch.rejected).toEqual([]);
    const [record] = batch.records;
    expect(record).toEqual({
      event_id: expect.stringMatching(UUID_PATTERN),
      tenant_id: 7,
      user_id: 'u-1',
      item_id: 'item-9',
      action_type: 'click',
      scenario_id: 'home_feed',
      timestamp: t0,
      session_id: '0190aaaa-bbbb-7ccc-8ddd-eeeeffff0000',
      view_id: 'v-1',
      watch_duration: 12.5,
      completion_rate: 0.25,
      experiment_id: 'exp-1',
      experiment_group: 'B',
      device_type: 'mobile',
      os: 'iOS',
      location: 'Paris',
      ip: '192.0.2.1',
      current_url: '',
      properties: { position: '3', tags: '["a","b"]', nested: '{"deep":true}', label: 'x' },
      source: 'behaviors-api',
      captured_at: t0 + 60_000,
    } satisfies BehaviorRecord);
  });

  it('fills the defaults of the optional fields', () => {
    const batch = toBatch([{ user_id: 42, item_id: 9001, action_type: 'order', timestamp: t0 + 0.5 }]);
    expect(batch.records[0]).toMatchObject({
      user_id: '42',
      item_id: '9001',
      scenario_id: '',
      view_id: '',
      session_id: '',
      watch_duration: 0,
      completion_rate: 0,
      experiment_id: '',
      experiment_group: '',
      device_type: '',
      os: '',
      location: '',
      ip: '',
      properties: {},
      timestamp: t0 + 0.5,
    });
  });

  it('keeps a client event_id (lower-cased) and generates one when absent', () => {
    const id = '0F8FAD5B-D9CB-469F-A165-70867728950E';
    const batch = behaviorsToRecords([good({ event_id: id }), good(), good()], context);
    expect(batch.records[0]!.event_id).toBe(id.toLowerCase());
    expect(batch.records[1]!.event_id).toMatch(UUID_PATTERN);
    expect(batch.records[2]!.event_id).toMatch(UUID_PATTERN);
    expect(batch.records[1]!.event_id).not.toBe(batch.records[2]!.event_id);
    const fixed = behaviorsToRecords([good()], { ...context, newEventId: () => 'e' });
    expect(fixed.records[0]!.event_id).toBe('e');
  });

  it.each([
    ['not an object', null, 'invalid_behavior'],
    ['no user_id', { user_id: undefined }, 'missing_user_id'],
    ['an empty user_id', { user_id: '' }, 'missing_user_id'],
    ['a user_id of 201 characters', { user_id: 'u'.repeat(201) }, 'invalid_user_id'],
    ['a user_id object', { user_id: { id: 1 } }, 'invalid_user_id'],
    ['no item_id', { item_id: undefined }, 'missing_item_id'],
    ['an item_id of 201 characters', { item_id: 'i'.repeat(201) }, 'invalid_item_id'],
    ['an item_id true', { item_id: true }, 'invalid_item_id'],
    ['an unknown action_type', { action_type: 'purchase' }, 'invalid_action_type'],
    ['no action_type', { action_type: undefined }, 'invalid_action_type'],
    ['an action_type in capitals', { action_type: 'CLICK' }, 'invalid_action_type'],
    ['no timestamp', { timestamp: undefined }, 'invalid_timestamp'],
    ['a timestamp string', { timestamp: String(t0) }, 'invalid_timestamp'],
    ['timestamp 0', { timestamp: 0 }, 'invalid_timestamp'],
    ['a timestamp past DateTime64', { timestamp: MAX_TIMESTAMP_MS + 1 }, 'timestamp_out_of_range'],
    ['an event_id that is not a UUID', { event_id: 'retry-1' }, 'invalid_event_id'],
    ['an event_id number', { event_id: 12 }, 'invalid_event_id'],
    ['a scenario_id of 201 characters', { scenario_id: 's'.repeat(201) }, 'invalid_scenario_id'],
    ['a view_id array', { view_id: ['v'] }, 'invalid_view_id'],
    ['an experiment_id of 201 characters', { experiment_id: 'e'.repeat(201) }, 'invalid_experiment_id'],
    ['an experiment_group object', { experiment_group: {} }, 'invalid_experiment_group'],
    ['a session_id with a slash', { session_id: '../x' }, 'invalid_session_id'],
    ['a session_id of 71 characters', { session_id: 'a'.repeat(71) }, 'invalid_session_id'],
    ['a negative watch_duration', { watch_duration: -1 }, 'invalid_watch_duration'],
    ['a watch_duration over a week', { watch_duration: 7 * 24 * 3600 + 1 }, 'invalid_watch_duration'],
    ['a watch_duration string', { watch_duration: '12' }, 'invalid_watch_duration'],
    ['a completion_rate of 1.01', { completion_rate: 1.01 }, 'invalid_completion_rate'],
    ['a negative completion_rate', { completion_rate: -0.1 }, 'invalid_completion_rate'],
    ['a context string', { context: 'mobile' }, 'invalid_context'],
    ['a context.os of 201 characters', { context: { os: 'o'.repeat(201) } }, 'invalid_context'],
    ['a context.ip number', { context: { ip: 1 } }, 'invalid_context'],
    ['extra_data an array', { extra_data: [1, 2] }, 'invalid_extra_data'],
    ['extra_data a string', { extra_data: 'x' }, 'invalid_extra_data'],
    ['an extra_data key of 201 characters', { extra_data: { ['k'.repeat(201)]: 1 } }, 'invalid_extra_data'],
    ['an empty extra_data key', { extra_data: { '': 1 } }, 'invalid_extra_data'],
    ['extra_data over 16 KiB', { extra_data: { blob: 'x'.repeat(MAX_PROPERTIES_BYTES) } }, 'extra_data_too_large'],
    // {"blob":"x...x"} is 11 bytes plus the x's: one byte over
    [
      'extra_data one byte over',
      { extra_data: { blob: 'x'.repeat(MAX_PROPERTIES_BYTES - 10) } },
      'extra_data_too_large',
    ],
    [
      'extra_data over 16 KiB once escaped',
      { extra_data: { q: '"'.repeat(MAX_PROPERTIES_BYTES / 2) } },
      'extra_data_too_large',
    ],
  ])('%s is refused with its code', (_name, overrides, code) => {
    const item = overrides === null ? null : { ...good(), ...overrides };
    expect(toBatch([item]).rejected[0]?.code ?? 'ok').toBe(code);
  });

  it.each([
    ['completion_rate 1', { completion_rate: 1 }],
    ['null optional fields', { scenario_id: null, context: null, extra_data: null, event_id: null }],
    ['a user_id of 200 characters', { user_id: 'u'.repeat(200) }],
    ['each action type', { action_type: 'add_cart' }],
    ['extra_data just under 16 KiB', { extra_data: { blob: 'x'.repeat(MAX_PROPERTIES_BYTES - 11) } }],
  ])('%s is accepted', (_name, overrides) => {
    expect(codeOf(overrides)).toBe('ok');
  });

  it('refuses the bad ones alone, by index, and keeps every good neighbour in order', () => {
    const items = [
      good({ user_id: 'a' }),
      good({ action_type: 'buy' }),
      good({ user_id: 'b' }),
      'oops',
      good({ completion_rate: 2 }),
      good({ user_id: 'c' }),
    ];
    const batch = toBatch(items);
    expect(batch.records.map((r) => r.user_id)).toEqual(['a', 'b', 'c']);
    expect(batch.rejected.map(({ index, code }) => ({ index, code }))).toEqual([
      { index: 1, code: 'invalid_action_type' },
      { index: 3, code: 'invalid_behavior' },
      { index: 4, code: 'invalid_completion_rate' },
    ]);
    for (const r of batch.rejected) expect(r.detail).not.toBe('');
    expect(() => expectSomeAccepted(batch)).not.toThrow();
  });

  it('fails the request with the first code when nothing is accepted', () => {
    const batch = toBatch([good({ item_id: '' }), good({ action_type: 'x' })]);
    let code = 'ok';
    try {
      expectSomeAccepted(batch);
    } catch (error) {
      if (isReplayError(error)) code = error.code;
    }
    expect(code).toBe('missing_item_id');
  });

  it('keeps a __proto__ key of extra_data as a key', () => {
    const item = JSON.parse(
      `{"user_id":"u","item_id":"i","action_type":"like","timestamp":${t0},"extra_data":{"__proto__":{"x":1}}}`,
    );
    const record = toBatch([item]).records[0]!;
    expect(Object.keys(record.properties)).toEqual(['__proto__']);
    expect(JSON.parse(JSON.stringify(record.properties))).toEqual(JSON.parse('{"__proto__":"{\\"x\\":1}"}'));
  });
});

describe('readBehaviorsRequest', () => {
  const body = (value: unknown) => Buffer.from(JSON.stringify(value));
  const codeOfRequest = (json: Buffer) => {
    try {
      readBehaviorsRequest(json);
      return 'ok';
    } catch (error) {
      if (isReplayError(error)) return error.code;
      throw error;
    }
  };

  it('takes one object or an array, and the token of the behaviours', () => {
    expect(readBehaviorsRequest(body({ ...good(), token: 'phc_a' }))).toEqual({
      token: 'phc_a',
      items: [{ ...good(), token: 'phc_a' }],
    });
    const read = readBehaviorsRequest(body([good(), { ...good(), api_key: 'phc_b' }, { ...good(), token: 'phc_b' }]));
    expect(read.token).toBe('phc_b');
    expect(read.items).toHaveLength(3);
    expect(readBehaviorsRequest(body([good()])).token).toBeUndefined();
  });

  it.each([
    ['not JSON', Buffer.from('[{"user_id":'), 'invalid_json'],
    ['a string', body('click'), 'invalid_payload'],
    ['an empty array', body([]), 'invalid_payload'],
    [
      'two tokens',
      body([
        { ...good(), token: 'a' },
        { ...good(), token: 'b' },
      ]),
      'invalid_payload',
    ],
    [
      `${MAX_BEHAVIORS_PER_REQUEST + 1} behaviours`,
      body(Array.from({ length: MAX_BEHAVIORS_PER_REQUEST + 1 }, () => good())),
      'too_many_events',
    ],
    [
      `${MAX_BEHAVIORS_PER_REQUEST} behaviours`,
      body(Array.from({ length: MAX_BEHAVIORS_PER_REQUEST }, () => good())),
      'ok',
    ],
  ])('%s: %s', (_name, json, code) => {
    expect(codeOfRequest(json)).toBe(code);
  });
});
