import { randomUUID } from 'node:crypto';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runRealtimeSink } from '../../../src/cli/realtime-sink-command.ts';
import { loadConfig } from '../../../src/config/index.ts';
import { ensureTopics } from '../../../src/kafka/admin.ts';
import { topicNames } from '../../../src/kafka/topics.ts';
import { createLogger } from '../../../src/logging/logger.ts';
import type { BehaviorRecord } from '../../../src/uba/behavior-record.ts';
import { sampleBehavior } from '../../support/behaviors.ts';
import { headerOf, produceAll, readTopic } from '../../support/kafka.ts';
import { allCommitted, groupOffsets } from '../../support/kafka-offsets.ts';
import { metricValue, scrape } from '../../support/metrics.ts';

const brokers = inject('stack').kafka!.brokers;
const redisUrl = inject('stack').redis!.url;
const PARTITIONS = 3;
const WEIGHTS = { impression: 0, view: 1, click: 2, order: 10 } as const;
const HALF_LIFE_S = 600;
const RECENT_MAX = 5;
const METRICS_TTL_S = 7200;

const redis = createClient({ url: redisUrl });
beforeAll(async () => {
  await redis.connect();
});
afterAll(async () => {
  await redis.quit();
});

/** Tenants no other test uses: every key of a test carries its own. */
const freshTenant = () => 100_000 + Math.floor(Math.random() * 800_000);

function behavior(overrides: Partial<BehaviorRecord> & Pick<BehaviorRecord, 'tenant_id'>): BehaviorRecord {
  const now = Date.now();
  return sampleBehavior({
    user_id: 'u',
    item_id: 'i',
    timestamp: now,
    device_type: 'desktop',
    os: 'linux',
    ip: '127.0.0.1',
    captured_at: now + 1000,
    ...overrides,
  });
}

const asRecord = (topic: string, b: BehaviorRecord) => ({
  topic,
  key: b.user_id,
  value: Buffer.from(JSON.stringify(b)),
});

/**
 * A mixed stream: two tenants, two scenarios, eight users, every action over the last five minutes, posthog-js events
 * without items, a behaviour from three hours ago (its minute has expired), and one from a client clock a day ahead.
 */
function stream(tenants: readonly number[], count: number): BehaviorRecord[] {
  const now = Date.now();
  const actions = ['impression', 'view', 'click', 'order', 'click', 'view', 'impression'];
  const out: BehaviorRecord[] = [];
  for (let i = 0; i < count; i++) {
    out.push(
      behavior({
        tenant_id: tenants[i % tenants.length]!,
        user_id: `user-${i % 8}`,
        item_id: `item-${(i * 7) % 11}`,
        action_type: actions[i % actions.length]!,
        scenario_id: i % 3 === 0 ? 'feed' : 'home',
        timestamp: now - (i % 5) * 60_000 - (i % 13) * 1000 - 0.25,
      }),
    );
  }
  out.push(behavior({ tenant_id: tenants[0]!, action_type: '$pageview', item_id: '', source: 'posthog-js' }));
  out.push(behavior({ tenant_id: tenants[0]!, user_id: 'late', item_id: 'item-old', timestamp: now - 3 * 3600_000 }));
  out.push(behavior({ tenant_id: tenants[0]!, user_id: 'ahead', item_id: 'item-1', timestamp: now + 86_400_000 }));
  return out;
}

interface RealtimeState {
  hot: Record<string, Record<string, number>>;
  metrics: Record<string, Record<string, number>>;
  recent: Record<string, string[]>;
}

/**
 * What Redis must hold after `records` (in the order they were produced), computed here from the definitions in
 * docs/uba.md, not with the sink's code: score = log2(Σ weight · 2^((t − t0)/H)) with t = min(timestamp, captured_at).
 */
function expectedState(records: readonly BehaviorRecord[]): RealtimeState {
  const t0 = Date.UTC(2024, 0, 1);
  const terms: Record<string, Record<string, { w: number; e: number }[]>> = {};
  const metrics: Record<string, Record<string, number>> = {};
  const pushed: Record<string, string[]> = {};
  for (const r of records) {
    const t = Math.min(r.timestamp, r.captured_at);
    const minuteStart = Math.floor(t / 60_000) * 60_000;
    const minute = new Date(minuteStart).toISOString().replace(/\D/g, '').slice(0, 12);
    if (minuteStart / 1000 + METRICS_TTL_S > Date.now() / 1000) {
      const key = `metrics:realtime:${r.tenant_id}:${r.scenario_id}:${minute}`;
      metrics[key] ??= {};
      metrics[key][r.action_type] = (metrics[key][r.action_type] ?? 0) + 1;
    }
    const w = (WEIGHTS as Record<string, number>)[r.action_type] ?? 0;
    if (w > 0 && r.item_id !== '') {
      const hot = `hot:items:${r.tenant_id}:${r.scenario_id}`;
      terms[hot] ??= {};
      terms[hot][r.item_id] ??= [];
      terms[hot][r.item_id]!.push({ w, e: (t - t0) / (HALF_LIFE_S * 1000) });
      const recent = `user:recent:${r.tenant_id}:${r.user_id}`;
      pushed[recent] ??= [];
      pushed[recent].push(r.item_id);
    }
  }
  const hot: RealtimeState['hot'] = {};
  for (const [key, members] of Object.entries(terms)) {
    hot[key] = {};
    for (const [member, list] of Object.entries(members)) {
      const m = Math.max(...list.map((x) => x.e));
      hot[key][member] = m + Math.log2(list.reduce((s, x) => s + x.w * 2 ** (x.e - m), 0));
    }
  }
  const recent: RealtimeState['recent'] = {};
  for (const [key, items] of Object.entries(pushed)) recent[key] = [...items].reverse().slice(0, RECENT_MAX);
  return { hot, metrics, recent };
}

/** Everything Redis holds for these tenants, with a check that every key has an expiry. */
async function redisState(tenants: readonly number[]): Promise<RealtimeState> {
  const state: RealtimeState = { hot: {}, metrics: {}, recent: {} };
  for (const tenant of tenants) {
    for (const key of await redis.keys(`hot:items:${tenant}:*`)) {
      state.hot[key] = Object.fromEntries(
        (await redis.zRangeWithScores(key, 0, -1)).map(({ value, score }) => [value, score]),
      );
      expect(await redis.ttl(key), key).toBeGreaterThan(0);
    }
    for (const key of await redis.keys(`metrics:realtime:${tenant}:*`)) {
      const hash = await redis.hGetAll(key);
      state.metrics[key] = Object.fromEntries(Object.entries(hash).map(([f, v]) => [f, Number(v)]));
      expect(await redis.ttl(key), key).toBeGreaterThan(0);
    }
    for (const key of await redis.keys(`user:recent:${tenant}:*`)) {
      state.recent[key] = await redis.lRange(key, 0, -1);
      expect(await redis.ttl(key), key).toBeGreaterThan(0);
    }
  }
  return state;
}

function expectState(got: RealtimeState, want: RealtimeState): void {
  expect(got.metrics).toEqual(want.metrics);
  expect(got.recent).toEqual(want.recent);
  expect(Object.keys(got.hot).sort()).toEqual(Object.keys(want.hot).sort());
  for (const [key, members] of Object.entries(want.hot)) {
    expect(Object.keys(got.hot[key]!).sort(), key).toEqual(Object.keys(members).sort());
    // Doubles summed in another order: equal to ~1e-10 of scores around 1.5e5 (a doubled weight would be +1).
    for (const [member, score] of Object.entries(members)) expect(got.hot[key]![member]).toBeCloseTo(score, 6);
  }
}

function startSink(topic: string, groupId: string, env: Record<string, string> = {}) {
  return runRealtimeSink(
    loadConfig({
      HOME: '/nonexistent',
      REALTIME_TOPIC: topic,
      REALTIME_GROUP_ID: groupId,
      REALTIME_PORT: '0',
      REDIS_URL: redisUrl,
      REALTIME_FLUSH_INTERVAL_MS: '100',
      REALTIME_FLUSH_MAX_MESSAGES: '50',
      REALTIME_ACTION_WEIGHTS: Object.entries(WEIGHTS)
        .map(([a, w]) => `${a}=${w}`)
        .join(','),
      REALTIME_HALF_LIFE_S: String(HALF_LIFE_S),
      REALTIME_RECENT_MAX: String(RECENT_MAX),
      REALTIME_METRICS_TTL_S: String(METRICS_TTL_S),
      ...env,
    }),
    createLogger((process.env.TEST_LOG_LEVEL as 'info') ?? 'error', 'realtime-sink'),
    { brokers },
  );
}

const untilCommitted = (groupId: string, topic: string) => allCommitted(brokers, groupId, topic, PARTITIONS);

describe('realtime sink (real Kafka, real Redis)', () => {
  it('writes exactly the hot-item scores, minute counts and recent items computed from the behaviours', async () => {
    const topic = `behaviors-rt-${randomUUID()}`;
    const groupId = `realtime-${randomUUID()}`;
    await ensureTopics(brokers, [{ name: topic, partitions: PARTITIONS, config: {} }]);
    const tenants = [freshTenant(), freshTenant()];
    const records = stream(tenants, 300);
    // Half before the sink starts (one large first batch), half while it runs (small batches).
    await produceAll(
      brokers,
      records.slice(0, 150).map((b) => asRecord(topic, b)),
    );
    const sink = await startSink(topic, groupId);
    try {
      await produceAll(
        brokers,
        records.slice(150).map((b) => asRecord(topic, b)),
      );
      await untilCommitted(groupId, topic);
      const metrics = await scrape(sink.http.url);
      expect(metricValue(metrics, 'realtime_messages_applied_total')).toBe(records.length);
      expect(metricValue(metrics, 'realtime_messages_skipped_total')).toBe(0);
      expect(metricValue(metrics, 'realtime_scripts_total')).toBeGreaterThanOrEqual(PARTITIONS);
      expect(metricValue(metrics, 'realtime_dead_letters_total')).toBe(0);
    } finally {
      await sink.stop();
    }
    const want = expectedState(records);
    // The stream covers what it means to: both tenants, capped lists, an expired minute left out, a clamped clock.
    expect(Object.keys(want.hot)).toHaveLength(4);
    expect(Object.values(want.recent).some((items) => items.length === RECENT_MAX)).toBe(true);
    expect(Object.keys(want.metrics).length).toBeGreaterThanOrEqual(10);
    expectState(await redisState(tenants), want);
    // The applied-offset keys: one per partition, at the last offset, with an expiry.
    for (let p = 0; p < PARTITIONS; p++) {
      const key = `realtime:offset:${groupId}:${topic}:${p}`;
      const end = (await groupOffsets(brokers, groupId, topic, PARTITIONS)).end[p]!;
      expect(Number(await redis.get(key))).toBe(end - 1);
      expect(await redis.ttl(key)).toBeGreaterThan(0);
    }
  });

  it('changes nothing when the behaviours are read again with the same applied-offset keys (exactly once on replay)', async () => {
    const topic = `behaviors-rt-replay-${randomUUID()}`;
    const first = `realtime-${randomUUID()}`;
    await ensureTopics(brokers, [{ name: topic, partitions: PARTITIONS, config: {} }]);
    const tenants = [freshTenant()];
    const records = stream(tenants, 120);
    await produceAll(
      brokers,
      records.map((b) => asRecord(topic, b)),
    );
    const one = await startSink(topic, first);
    await untilCommitted(first, topic).finally(() => one.stop());
    const after = await redisState(tenants);
    expectState(after, expectedState(records));

    // A second consumer group reads the topic from offset 0, with the first one's applied-offset keys.
    const second = `realtime-${randomUUID()}`;
    const two = await startSink(topic, second, { REALTIME_OFFSET_GROUP: first });
    try {
      await untilCommitted(second, topic);
      const metrics = await scrape(two.http.url);
      expect(metricValue(metrics, 'realtime_messages_skipped_total')).toBe(records.length);
      expect(metricValue(metrics, 'realtime_messages_applied_total')).toBe(0);
      expect(metricValue(metrics, 'realtime_updates_applied_total')).toBe(0);
    } finally {
      await two.stop();
    }
    expect(await redisState(tenants)).toEqual(after);

    // The same replay without those keys (a group with offset keys of its own) applies everything a second time:
    // what the keys prevent. Every minute count doubles.
    const third = `realtime-${randomUUID()}`;
    const three = await startSink(topic, third);
    await untilCommitted(third, topic).finally(() => three.stop());
    const doubled = await redisState(tenants);
    for (const [key, fields] of Object.entries(after.metrics)) {
      for (const [field, count] of Object.entries(fields)) expect(doubled.metrics[key]![field]).toBe(2 * count);
    }
  });

  it('quarantines poison to user_behaviors_dlq with its code, and applies the rest of the stream', async () => {
    const topic = `behaviors-rt-poison-${randomUUID()}`;
    const groupId = `realtime-${randomUUID()}`;
    await ensureTopics(brokers, [{ name: topic, partitions: PARTITIONS, config: {} }]);
    const tenant = freshTenant();
    const good = stream([tenant], 60);
    // A key of another type where the sink would push a user's recent items: Redis refuses that behaviour alone.
    const blocked = behavior({ tenant_id: tenant, user_id: 'blocked', item_id: 'item-x' });
    await redis.set(`user:recent:${tenant}:blocked`, 'not a list', { EX: 600 });
    const raw = (key: string, value: string) => ({ topic, key, value: Buffer.from(value) });
    const poison = [
      raw('not-json', '{"tenant_id": 1,'),
      raw('array', JSON.stringify([good[0]])),
      raw('year-2400', JSON.stringify({ ...good[1]!, timestamp: Date.UTC(2400, 0, 1) })),
      raw('no-user', JSON.stringify({ ...good[2]!, user_id: '' })),
    ];
    await produceAll(brokers, [
      ...good.slice(0, 30).map((b) => asRecord(topic, b)),
      ...poison,
      asRecord(topic, blocked),
      ...good.slice(30).map((b) => asRecord(topic, b)),
    ]);
    const sink = await startSink(topic, groupId);
    try {
      await untilCommitted(groupId, topic);
      const metrics = await scrape(sink.http.url);
      expect(metricValue(metrics, 'realtime_dead_letters_total', { reason: 'behavior_record_invalid' })).toBe(4);
      expect(metricValue(metrics, 'realtime_dead_letters_total', { reason: 'redis_rejected' })).toBe(1);
      expect(metricValue(metrics, 'consumer_quarantined_total', { reason: 'behavior_record_invalid' })).toBe(4);
      expect(metricValue(metrics, 'realtime_messages_applied_total')).toBe(good.length);
    } finally {
      await sink.stop();
    }
    const dlq = await readTopic(brokers, topicNames.userBehaviorsDlq, {
      done: (got) => got.filter((m) => headerOf(m, 'dlq_source_topic') === topic).length >= 5,
    });
    const mine = dlq.filter((m) => headerOf(m, 'dlq_source_topic') === topic);
    expect(mine.map((m) => [m.key?.toString(), headerOf(m, 'dlq_reason'), headerOf(m, 'dlq_class')]).sort()).toEqual([
      ['array', 'behavior_record_invalid', 'poison'],
      ['blocked', 'redis_rejected', 'poison'],
      ['no-user', 'behavior_record_invalid', 'poison'],
      ['not-json', 'behavior_record_invalid', 'poison'],
      ['year-2400', 'behavior_record_invalid', 'poison'],
    ]);
    expect(mine.find((m) => m.key?.toString() === 'not-json')!.value!.toString()).toBe('{"tenant_id": 1,');
    for (const m of mine) expect(Number(headerOf(m, 'dlq_source_offset'))).toBeGreaterThanOrEqual(0);
    // Nothing of the refused behaviour was written (not even its minute count), and the blocking key is untouched.
    await redis.del(`user:recent:${tenant}:blocked`);
    expectState(await redisState([tenant]), expectedState(good));
  });
});
