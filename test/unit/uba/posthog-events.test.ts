import { describe, expect, it } from 'vitest';
import { isReplayError } from '../../../src/errors/index.ts';
import {
  MAX_BEHAVIORS_PER_REQUEST,
  MAX_CURRENT_URL_LENGTH,
  MAX_PROPERTIES_BYTES,
  UUID_PATTERN,
} from '../../../src/uba/behavior-bounds.ts';
import { posthogEventsToRecords, readPosthogEventsRequest } from '../../../src/uba/posthog-events.ts';

const capturedAt = Date.UTC(2026, 10, 22, 12, 0, 30);
const context = { tenantId: 3, capturedAt };
const uuid = '019a0b1c-2d3e-7f40-8a5b-6c7d8e9f0a1b';
const session = '019a0b1c-0000-7000-8000-000000000001';

/** A `$pageview` as posthog-js 1.449 sends it inside `{api_key, batch}`. */
const pageview = (overrides: Record<string, unknown> = {}, props: Record<string, unknown> = {}) => ({
  uuid,
  event: '$pageview',
  properties: {
    $os: 'Mac OS X',
    $browser: 'Chrome',
    $device_type: 'Desktop',
    $current_url: 'https://shop.example/cart?x=1',
    $host: 'shop.example',
    $pathname: '/cart',
    $screen_height: 1080,
    $is_identified: false,
    $referrer: '$direct',
    token: 'phc_abc',
    $session_id: session,
    $window_id: '019a0b1c-0000-7000-8000-000000000002',
    distinct_id: 'user-7',
    $lib: 'web',
    $lib_version: '1.449.2',
    $time: 1_763_812_800.123,
    $set_once: { $initial_os: 'Mac OS X' },
    $active_feature_flags: [],
    nothing: null,
    ...props,
  },
  timestamp: '2026-11-22T12:00:00.250Z',
  ...overrides,
});

const toBatch = (items: unknown[]) => posthogEventsToRecords(items, context);
const codeOf = (item: unknown) => toBatch([item]).rejected[0]?.code ?? 'ok';

describe('posthog-js analytics events become BehaviorRecords', () => {
  it('maps the event name, distinct_id, $session_id, $current_url, uuid, time and the remaining properties', () => {
    const batch = toBatch([pageview()]);
    expect(batch.rejected).toEqual([]);
    expect(batch.records).toEqual([
      {
        event_id: uuid,
        tenant_id: 3,
        user_id: 'user-7',
        item_id: '',
        action_type: '$pageview',
        scenario_id: '',
        timestamp: Date.UTC(2026, 10, 22, 12, 0, 0, 250),
        session_id: session,
        view_id: '',
        watch_duration: 0,
        completion_rate: 0,
        experiment_id: '',
        experiment_group: '',
        device_type: 'Desktop',
        os: 'Mac OS X',
        location: '',
        ip: '',
        current_url: 'https://shop.example/cart?x=1',
        properties: {
          $browser: 'Chrome',
          $host: 'shop.example',
          $pathname: '/cart',
          $screen_height: '1080',
          $is_identified: 'false',
          $referrer: '$direct',
          $window_id: '019a0b1c-0000-7000-8000-000000000002',
          $lib: 'web',
          $lib_version: '1.449.2',
          $set_once: '{"$initial_os":"Mac OS X"}',
          $active_feature_flags: '[]',
        },
        source: 'posthog-js',
        captured_at: capturedAt,
      },
    ]);
  });

  it('takes the time from timestamp, else $time (seconds), else offset, else the capture clock', () => {
    const [a, b, c, d] = toBatch([
      pageview(),
      pageview({ timestamp: undefined }),
      pageview({ timestamp: undefined, offset: 1500 }, { $time: undefined }),
      pageview({ timestamp: undefined }, { $time: undefined }),
    ]).records;
    expect(a!.timestamp).toBe(Date.UTC(2026, 10, 22, 12, 0, 0, 250));
    expect(b!.timestamp).toBeCloseTo(1_763_812_800_123, 3);
    expect(c!.timestamp).toBe(capturedAt - 1500);
    expect(d!.timestamp).toBe(capturedAt);
  });

  it('keeps a UUID uuid (lower-cased) as the event id, and generates one otherwise', () => {
    const [kept, upper, made, none] = toBatch([
      pageview(),
      pageview({ uuid: uuid.toUpperCase() }),
      pageview({ uuid: 'not-a-uuid' }),
      pageview({ uuid: undefined }),
    ]).records;
    expect(kept!.event_id).toBe(uuid);
    expect(upper!.event_id).toBe(uuid);
    expect(made!.event_id).toMatch(UUID_PATTERN);
    expect(made!.event_id).not.toBe(uuid);
    expect(none!.event_id).toMatch(UUID_PATTERN);
  });

  it('takes a custom event as it is, and an event without a session as session-less', () => {
    const [record] = toBatch([
      { event: 'added to cart', properties: { distinct_id: 42, sku: 'A-1', price: 9.5 }, timestamp: capturedAt - 5 },
    ]).records;
    expect(record).toMatchObject({
      action_type: 'added to cart',
      user_id: '42',
      session_id: '',
      current_url: '',
      timestamp: capturedAt - 5,
      properties: { sku: 'A-1', price: '9.5' },
    });
  });

  it('skips $snapshot events: neither accepted nor refused', () => {
    const batch = toBatch([{ event: '$snapshot', properties: { $snapshot_data: [] } }, pageview()]);
    expect(batch.records).toHaveLength(1);
    expect(batch.rejected).toEqual([]);
  });

  it('leaves out huge properties and what passes 16 KiB, keeps the event, and counts them', () => {
    const batch = toBatch([
      pageview(
        {},
        {
          $snapshot_data: [{ type: 2, data: 'x'.repeat(100_000) }],
          $elements_chain: 'e'.repeat(9000),
          a: 'a'.repeat(7000),
          b: 'b'.repeat(7000),
          c: 'c'.repeat(7000), // would pass 16 KiB
          small: 'fits',
          ['k'.repeat(201)]: 'key too long',
        },
      ),
    ]);
    const record = batch.records[0]!;
    expect(record.properties.$snapshot_data).toBeUndefined();
    expect(record.properties.$elements_chain).toBeUndefined();
    expect(record.properties.a).toHaveLength(7000);
    expect(record.properties.b).toHaveLength(7000);
    expect(record.properties.c).toBeUndefined();
    expect(record.properties.small).toBe('fits');
    expect(batch.omittedProperties).toBe(3);
    expect(Buffer.byteLength(JSON.stringify(record.properties))).toBeLessThanOrEqual(MAX_PROPERTIES_BYTES);
  });

  it('cuts a long $current_url', () => {
    const record = toBatch([pageview({}, { $current_url: `https://x/${'p'.repeat(10_000)}` })]).records[0]!;
    expect(record.current_url).toHaveLength(MAX_CURRENT_URL_LENGTH);
  });

  it.each([
    ['not an object', 'event', 'invalid_behavior'],
    ['properties that are an array', pageview({ properties: [1] }), 'invalid_behavior'],
    ['no event name', pageview({ event: undefined }), 'invalid_action_type'],
    ['an event name of 201 characters', pageview({ event: 'e'.repeat(201) }), 'invalid_action_type'],
    ['no distinct_id', pageview({}, { distinct_id: undefined }), 'missing_user_id'],
    ['a distinct_id of 201 characters', pageview({}, { distinct_id: 'd'.repeat(201) }), 'distinct_id_too_long'],
    ['an unparseable timestamp', pageview({ timestamp: 'yesterday' }), 'invalid_timestamp'],
    ['a $time string', pageview({ timestamp: undefined }, { $time: 'now' }), 'invalid_timestamp'],
    ['a timestamp in the year 2300', pageview({ timestamp: '2300-01-01T00:00:00Z' }), 'timestamp_out_of_range'],
    ['a $session_id with a slash', pageview({}, { $session_id: 'a/b' }), 'invalid_session_id'],
    ['a $session_id number', pageview({}, { $session_id: 5 }), 'invalid_session_id'],
    ['an $os of 201 characters', pageview({}, { $os: 'o'.repeat(201) }), 'invalid_context'],
  ])('%s is refused with its code', (_name, item, code) => {
    expect(codeOf(item)).toBe(code);
  });

  it('refuses the bad ones alone, by index, and keeps the good neighbours', () => {
    const batch = toBatch([
      pageview({}, { distinct_id: 'a' }),
      pageview({}, { distinct_id: '' }),
      { event: '$snapshot', properties: {} },
      pageview({}, { distinct_id: 'b' }),
    ]);
    expect(batch.records.map((r) => r.user_id)).toEqual(['a', 'b']);
    expect(batch.rejected.map(({ index, code }) => ({ index, code }))).toEqual([{ index: 1, code: 'missing_user_id' }]);
  });
});

describe('readPosthogEventsRequest', () => {
  const body = (value: unknown) => Buffer.from(JSON.stringify(value));
  const codeOfRequest = (json: Buffer) => {
    try {
      readPosthogEventsRequest(json);
      return 'ok';
    } catch (error) {
      if (isReplayError(error)) return error.code;
      throw error;
    }
  };

  it('reads {api_key, batch}, an array of events, and one event, with their token', () => {
    expect(readPosthogEventsRequest(body({ api_key: 'phc_abc', batch: [pageview(), pageview()] }))).toMatchObject({
      token: 'phc_abc',
      items: [pageview(), pageview()],
    });
    expect(readPosthogEventsRequest(body([pageview()])).token).toBe('phc_abc');
    expect(readPosthogEventsRequest(body({ ...pageview(), api_key: 'phc_abc' })).items).toHaveLength(1);
    expect(readPosthogEventsRequest(body([{ event: 'x', properties: {} }])).token).toBeUndefined();
  });

  it.each([
    ['not JSON', Buffer.from('{"batch": ['), 'invalid_json'],
    ['a number', body(5), 'invalid_payload'],
    ['an object that is no event', body({ api_key: 'phc_abc' }), 'invalid_payload'],
    ['an api_key and another token', body({ api_key: 'phc_x', batch: [pageview()] }), 'invalid_payload'],
    [
      `${MAX_BEHAVIORS_PER_REQUEST + 1} events`,
      body({ api_key: 'phc_abc', batch: Array.from({ length: MAX_BEHAVIORS_PER_REQUEST + 1 }, () => pageview()) }),
      'too_many_events',
    ],
  ])('%s: %s', (_name, json, code) => {
    expect(codeOfRequest(json)).toBe(code);
  });
});
