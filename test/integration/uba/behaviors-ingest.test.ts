import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import Kafka from 'node-rdkafka';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { topicNames } from '../../../src/kafka/topics.ts';
import type { Team } from '../../../src/teams/team-store.ts';
import type { BehaviorRecord } from '../../../src/uba/behavior-record.ts';
import { postRaw, startTestCapture, type TestCapture } from '../../support/capture.ts';
import { headerOf, readTopic } from '../../support/kafka.ts';
import { metricValue, scrape } from '../../support/metrics.ts';

const stack = inject('stack');
const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const t0 = Date.UTC(2026, 10, 22, 12, 0, 0);

async function partitionCount(topic: string): Promise<number> {
  const producer = new Kafka.Producer({ 'metadata.broker.list': stack.kafka!.brokers });
  await new Promise<void>((resolve, reject) =>
    producer.connect({ timeout: 10_000 }, (error) => (error ? reject(error) : resolve())),
  );
  try {
    const metadata = await new Promise<Kafka.Metadata>((resolve, reject) =>
      producer.getMetadata({ topic, timeout: 10_000 }, (error, data) => (error ? reject(error) : resolve(data))),
    );
    return metadata.topics.find((t) => t.name === topic)!.partitions.length;
  } finally {
    await new Promise<void>((resolve) => producer.disconnect(() => resolve()));
  }
}

/**
 * Everything committed to user_behaviors for `team` so far (the topic is shared by the run: teams keep tests apart).
 * Read up to a fence: a request of 64 behaviours of a fence team, sent after whatever the test sent, so that once a
 * fence record was read on every partition, everything committed before it was read too (a partition is read in
 * order); no waiting for a quiet topic.
 */
async function readToFence(capture: TestCapture): Promise<Kafka.Message[]> {
  const fenceTeam = await capture.createTeam();
  const marker = `fence-${randomUUID()}`;
  const fence = await postRaw(
    `${capture.url}/api/v1/behaviors`,
    json(
      Array.from({ length: 64 }, (_, i) => ({
        user_id: `${marker}-${i}`,
        item_id: 'f',
        action_type: 'view',
        timestamp: t0,
      })),
    ),
    { authorization: `Bearer ${fenceTeam.apiToken}` },
  );
  expect(fence.status).toBe(200);
  const partitions = await partitionCount(topicNames.userBehaviors);
  const fenced = (got: Kafka.Message[]) =>
    new Set(got.filter((m) => headerOf(m, 'tenant_id') === String(fenceTeam.id)).map((m) => m.partition)).size ===
    partitions;
  const messages = await readTopic(stack.kafka!.brokers, topicNames.userBehaviors, { done: fenced, timeoutMs: 30_000 });
  expect(fenced(messages)).toBe(true);
  return messages;
}

/** What `team` has on user_behaviors, read to a fence (`readToFence`). */
async function behaviorsOf(
  capture: TestCapture,
  team: Team,
): Promise<{ message: Kafka.Message; record: BehaviorRecord }[]> {
  return (await readToFence(capture))
    .filter((m) => headerOf(m, 'tenant_id') === String(team.id))
    .map((message) => ({ message, record: JSON.parse(message.value!.toString('utf8')) as BehaviorRecord }));
}

const behaviour = (userId: string, overrides: Record<string, unknown> = {}) => ({
  user_id: userId,
  item_id: `item-${userId}`,
  action_type: 'click',
  scenario_id: 'home_feed',
  timestamp: t0,
  context: { device_type: 'mobile', os: 'Android', location: 'Lyon', ip: '198.51.100.7' },
  extra_data: { position: 2, tags: ['x'] },
  watch_duration: 3,
  completion_rate: 0.5,
  experiment_id: 'exp-7',
  experiment_group: 'control',
  ...overrides,
});

describe('POST /api/v1/behaviors and posthog-js /e/ land on user_behaviors (real Kafka, real Postgres)', () => {
  let capture: TestCapture;

  beforeAll(async () => {
    capture = await startTestCapture({ brokers: stack.kafka!.brokers, databaseUrl: stack.postgres!.url });
  });
  afterAll(() => capture?.stop());

  it('refuses the bad behaviours of a batch alone, by index and code, and commits exactly the good ones', async () => {
    const team = await capture.createTeam();
    const eventId = randomUUID();
    const before = await scrape(capture.url);
    const body = [
      behaviour('alice', { event_id: eventId, view_id: 'view-1', session_id: 'sess-1' }),
      behaviour('bob', { action_type: 'purchase' }),
      behaviour('carol'),
      behaviour('dave', { item_id: undefined }),
      behaviour('erin', { timestamp: 9e15 }),
      behaviour('frank', { action_type: 'order', extra_data: { blob: 'x'.repeat(17 * 1024) } }),
      behaviour('gina', { action_type: 'share', user_id: 'g'.repeat(201) }),
      behaviour('hank', { event_id: 'not-a-uuid' }),
      behaviour('ivy', { action_type: 'add_cart', extra_data: undefined, context: undefined }),
    ];
    const answer = await postRaw(`${capture.url}/api/v1/behaviors`, json(body), {
      'content-type': 'application/json',
      authorization: `Bearer ${team.apiToken}`,
    });
    expect(answer.status).toBe(200);
    expect(answer.body.status).toBe(1);
    expect(answer.body.accepted).toBe(3);
    const rejected = answer.body.rejected as { index: number; code: string; detail: string }[];
    expect(rejected.map(({ index, code }) => ({ index, code }))).toEqual([
      { index: 1, code: 'invalid_action_type' },
      { index: 3, code: 'missing_item_id' },
      { index: 4, code: 'timestamp_out_of_range' },
      { index: 5, code: 'extra_data_too_large' },
      { index: 6, code: 'invalid_user_id' },
      { index: 7, code: 'invalid_event_id' },
    ]);
    for (const r of rejected) expect(typeof r.detail).toBe('string');

    const after = await scrape(capture.url);
    const landed = await behaviorsOf(capture, team);
    expect(landed.map(({ record }) => record.user_id).sort()).toEqual(['alice', 'carol', 'ivy']);
    for (const { message, record } of landed) {
      expect(message.key?.toString()).toBe(record.user_id);
      expect(headerOf(message, 'tenant_id')).toBe(String(team.id));
      expect(headerOf(message, 'event_id')).toBe(record.event_id);
      expect(headerOf(message, 'format')).toBe('behavior/1');
      expect(record.tenant_id).toBe(team.id);
      expect(record.source).toBe('behaviors-api');
    }
    const alice = landed.find(({ record }) => record.user_id === 'alice')!.record;
    expect(alice).toMatchObject({
      event_id: eventId,
      item_id: 'item-alice',
      action_type: 'click',
      scenario_id: 'home_feed',
      timestamp: t0,
      session_id: 'sess-1',
      view_id: 'view-1',
      watch_duration: 3,
      completion_rate: 0.5,
      experiment_id: 'exp-7',
      experiment_group: 'control',
      device_type: 'mobile',
      os: 'Android',
      location: 'Lyon',
      ip: '198.51.100.7',
      properties: { position: '2', tags: '["x"]' },
    });
    const ivy = landed.find(({ record }) => record.user_id === 'ivy')!.record;
    expect(ivy).toMatchObject({ action_type: 'add_cart', properties: {}, device_type: '' });
    expect(ivy.event_id).toMatch(/^[0-9a-f-]{36}$/);

    const delta = (name: string, labels: Record<string, string>) =>
      metricValue(after, name, labels) - metricValue(before, name, labels);
    expect(delta('capture_behaviors_total', { source: 'behaviors-api' })).toBe(3);
    for (const code of ['invalid_action_type', 'missing_item_id', 'timestamp_out_of_range', 'invalid_event_id']) {
      expect(delta('capture_behaviors_rejected_total', { source: 'behaviors-api', code })).toBe(1);
    }
    expect(delta('capture_messages_produced_total', { topic: topicNames.userBehaviors })).toBe(3);
  });

  it('takes the token from the body of a gzip text/plain request, or the query string; a team without recording too', async () => {
    const team = await capture.createTeam({ sessionRecordingEnabled: false });
    const inBody = await postRaw(
      `${capture.url}/api/v1/behaviors`,
      gzipSync(json({ ...behaviour('body-token', { action_type: 'like' }), token: team.apiToken })),
      { 'content-type': 'text/plain' },
    );
    expect(inBody).toEqual({ status: 200, body: { status: 1, accepted: 1, rejected: [] } });
    const inQuery = await postRaw(
      `${capture.url}/api/v1/behaviors?token=${team.apiToken}`,
      json([behaviour('query-token', { action_type: 'impression' })]),
    );
    expect(inQuery.status).toBe(200);
    const landed = await behaviorsOf(capture, team);
    expect(landed.map(({ record }) => `${record.user_id}:${record.action_type}`).sort()).toEqual([
      'body-token:like',
      'query-token:impression',
    ]);
  });

  it('a batch with nothing acceptable fails with the first code and writes nothing', async () => {
    const team = await capture.createTeam();
    const answer = await postRaw(
      `${capture.url}/api/v1/behaviors`,
      json([behaviour('x', { user_id: undefined }), behaviour('y', { action_type: 'nope' })]),
      { authorization: `Bearer ${team.apiToken}` },
    );
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ type: 'validation_error', code: 'missing_user_id' });
    const tooMany = await postRaw(
      `${capture.url}/api/v1/behaviors`,
      json(Array.from({ length: 1001 }, (_, i) => behaviour(`many-${i}`))),
      { authorization: `Bearer ${team.apiToken}` },
    );
    expect(tooMany.status).toBe(413);
    expect(tooMany.body.code).toBe('too_many_events');
    expect(await behaviorsOf(capture, team)).toEqual([]);
  });

  it('an unknown token gets 401 before the body is parsed, and nothing is written', async () => {
    const team = await capture.createTeam();
    const marker = `unknown-${randomUUID()}`;
    const header = await postRaw(`${capture.url}/api/v1/behaviors`, json([behaviour(marker)]), {
      authorization: 'Bearer phc_unknown_token',
    });
    expect(header.status).toBe(401);
    expect(header.body.code).toBe('invalid_token');
    // Not JSON at all: the token is refused first, so the answer is 401, not 400 invalid_json.
    const garbage = await postRaw(`${capture.url}/api/v1/behaviors?token=phc_unknown_token`, Buffer.from('[{"user'));
    expect(garbage.status).toBe(401);
    expect(garbage.body.code).toBe('invalid_token');
    const inBody = await postRaw(
      `${capture.url}/api/v1/behaviors`,
      gzipSync(json([{ ...behaviour(marker), token: 'phc_unknown_token' }])),
    );
    expect(inBody.status).toBe(401);
    expect(inBody.body.code).toBe('invalid_token');
    const none = await postRaw(
      `${capture.url}/e/`,
      json({ batch: [{ event: 'x', properties: { distinct_id: marker } }] }),
    );
    expect(none.status).toBe(401);
    expect(none.body.code).toBe('missing_token');
    const posthog = await postRaw(
      `${capture.url}/e/`,
      gzipSync(json({ api_key: 'phc_unknown_token', batch: [{ event: 'x', properties: { distinct_id: marker } }] })),
    );
    expect(posthog.status).toBe(401);

    // A good request after them: the read below sees it, and none of the refused ones.
    const good = await postRaw(`${capture.url}/api/v1/behaviors`, json([behaviour('after')]), {
      authorization: `Bearer ${team.apiToken}`,
    });
    expect(good.status).toBe(200);
    const messages = await readToFence(capture);
    const mine = messages.filter((m) => headerOf(m, 'tenant_id') === String(team.id));
    expect(mine.map((m) => m.key?.toString())).toEqual(['after']);
    expect(messages.some((m) => m.value!.toString('utf8').includes(marker))).toBe(false);
  });

  describe('posthog-js analytics events', () => {
    const sessionA = '019a0b1c-0000-7000-8000-00000000000a';
    const sessionB = '019a0b1c-0000-7000-8000-00000000000b';
    const event = (token: string, name: string, sessionId: string, props: Record<string, unknown> = {}) => ({
      uuid: randomUUID(),
      event: name,
      properties: {
        $os: 'Linux',
        $device_type: 'Desktop',
        $current_url: 'https://shop.example/p/1',
        token,
        $session_id: sessionId,
        $window_id: '019a0b1c-0000-7000-8000-0000000000ff',
        distinct_id: 'visitor-1',
        $lib: 'web',
        ...props,
      },
      timestamp: new Date(t0 + 1000).toISOString(),
    });

    it('a gzip {api_key, batch} at /e/ lands as BehaviorRecords with their session ids; $snapshot is skipped', async () => {
      const team = await capture.createTeam();
      const first = event(team.apiToken, '$pageview', sessionA, { $pathname: '/p/1' });
      const pageviewId = first.uuid;
      const batch = [
        first,
        event(team.apiToken, '$autocapture', sessionA, { $event_type: 'click', $elements_chain: 'button:text="Buy"' }),
        { event: '$snapshot', properties: { $snapshot_data: [], $session_id: sessionA, token: team.apiToken } },
        event(team.apiToken, 'added to cart', sessionB, { distinct_id: '' }), // refused: no distinct_id
        event(team.apiToken, 'added to cart', sessionB, { sku: 'A-1', price: 9.5 }),
      ];
      const answer = await postRaw(`${capture.url}/e/`, gzipSync(json({ api_key: team.apiToken, batch })), {
        'content-type': 'text/plain',
      });
      expect(answer).toEqual({
        status: 200,
        body: {
          status: 1,
          dropped: 1,
          dropped_by_code: { missing_user_id: 1 },
          dropped_events: [{ item: 3, code: 'missing_user_id' }],
        },
      });
      const landed = await behaviorsOf(capture, team);
      const byName = (name: string) => landed.filter(({ record }) => record.action_type === name);
      expect(landed).toHaveLength(3);
      const [pageview] = byName('$pageview');
      expect(pageview!.record).toMatchObject({
        event_id: pageviewId,
        user_id: 'visitor-1',
        session_id: sessionA,
        current_url: 'https://shop.example/p/1',
        timestamp: t0 + 1000,
        device_type: 'Desktop',
        os: 'Linux',
        source: 'posthog-js',
        properties: { $pathname: '/p/1', $lib: 'web', $window_id: '019a0b1c-0000-7000-8000-0000000000ff' },
      });
      expect(pageview!.message.key?.toString()).toBe('visitor-1');
      expect(headerOf(pageview!.message, 'event_id')).toBe(pageviewId);
      expect(byName('$autocapture')[0]!.record.properties.$elements_chain).toBe('button:text="Buy"');
      const cart = byName('added to cart');
      expect(cart).toHaveLength(1);
      expect(cart[0]!.record).toMatchObject({ session_id: sessionB, properties: { sku: 'A-1', price: '9.5' } });
    });

    it('the base64 data= form (sendBeacon) and an array of events at /i/v0/e/ land too', async () => {
      const team = await capture.createTeam();
      const form = `data=${encodeURIComponent(json([event(team.apiToken, '$pageleave', sessionB)]).toString('base64'))}`;
      const beacon = await postRaw(`${capture.url}/e/?compression=base64`, Buffer.from(form), {
        'content-type': 'application/x-www-form-urlencoded',
      });
      expect(beacon).toEqual({ status: 200, body: { status: 1 } });
      const plain = await postRaw(`${capture.url}/i/v0/e/`, json([event(team.apiToken, '$identify', sessionA)]));
      expect(plain).toEqual({ status: 200, body: { status: 1 } });
      const landed = await behaviorsOf(capture, team);
      expect(landed.map(({ record }) => `${record.action_type}:${record.session_id}`).sort()).toEqual([
        `$identify:${sessionA}`,
        `$pageleave:${sessionB}`,
      ]);
    });
  });
});
