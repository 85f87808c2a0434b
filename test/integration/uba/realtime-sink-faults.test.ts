import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { describe, expect, inject, it } from 'vitest';
import { runRealtimeSink } from '../../../src/cli/realtime-sink-command.ts';
import { loadConfig } from '../../../src/config/index.ts';
import { ReplayError } from '../../../src/errors/index.ts';
import { freePort } from '../../../src/harness/ports.ts';
import { startLocalRedis } from '../../../src/harness/redis.ts';
import { ensureTopics } from '../../../src/kafka/admin.ts';
import { createLogger } from '../../../src/logging/logger.ts';
import type { BehaviorRecord } from '../../../src/uba/behavior-record.ts';
import type { RealtimeRedis } from '../../../src/uba/realtime/realtime-sink.ts';
import { sampleBehavior } from '../../support/behaviors.ts';
import { produceAll } from '../../support/kafka.ts';
import { eventually, groupOffsets } from '../../support/kafka-offsets.ts';
import { metricValue } from '../../support/metrics.ts';
import { killBetweenWriteAndCommit, spawnReplay } from '../../support/replay-process.ts';

const stack = inject('stack');
const brokers = stack.kafka!.brokers;
const PARTITIONS = 3;
const HALF_LIFE_S = 600;
const RECENT_MAX = 5;
const WEIGHTS: Record<string, number> = { impression: 0, view: 1, click: 2, order: 10 };
const WEIGHTS_ENV = Object.entries(WEIGHTS)
  .map(([a, w]) => `${a}=${w}`)
  .join(',');

type Redis = ReturnType<typeof createClient>;

const freshTenant = () => 100_000 + Math.floor(Math.random() * 800_000);

/** `count` behaviours of one tenant: eight users, three scenarios, every action, spread over five minutes. */
function stream(tenant: number, count: number, tag: string): BehaviorRecord[] {
  const now = Date.now();
  const actions = ['impression', 'view', 'click', 'order', 'click', 'view'];
  return Array.from({ length: count }, (_, i) =>
    sampleBehavior({
      tenant_id: tenant,
      user_id: `user-${i % 8}`,
      item_id: `${tag}-item-${(i * 5) % 9}`,
      action_type: actions[i % actions.length]!,
      scenario_id: `s${i % 3}`,
      timestamp: now - (i % 5) * 60_000 - (i % 7) * 1000,
      captured_at: now + 1000,
    }),
  );
}

const asRecords = (topic: string, list: readonly BehaviorRecord[]) =>
  list.map((b) => ({ topic, key: b.user_id, value: Buffer.from(JSON.stringify(b)) }));

interface RealtimeState {
  hot: Record<string, Record<string, number>>;
  metrics: Record<string, Record<string, number>>;
  recent: Record<string, string[]>;
}

/** The state the behaviours (in produce order) define (docs/uba.md), computed without the sink's code. */
function expectedState(records: readonly BehaviorRecord[]): RealtimeState {
  const t0 = Date.UTC(2024, 0, 1);
  const terms: Record<string, Record<string, { w: number; e: number }[]>> = {};
  const metrics: RealtimeState['metrics'] = {};
  const pushed: Record<string, string[]> = {};
  for (const r of records) {
    const t = Math.min(r.timestamp, r.captured_at);
    const minute = new Date(Math.floor(t / 60_000) * 60_000).toISOString().replace(/\D/g, '').slice(0, 12);
    const mkey = `metrics:realtime:${r.tenant_id}:${r.scenario_id}:${minute}`;
    metrics[mkey] ??= {};
    metrics[mkey][r.action_type] = (metrics[mkey][r.action_type] ?? 0) + 1;
    const w = WEIGHTS[r.action_type] ?? 0;
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

async function redisState(redis: Redis, tenant: number): Promise<RealtimeState> {
  const state: RealtimeState = { hot: {}, metrics: {}, recent: {} };
  for (const key of await redis.keys(`hot:items:${tenant}:*`)) {
    state.hot[key] = Object.fromEntries(
      (await redis.zRangeWithScores(key, 0, -1)).map(({ value, score }) => [value, score]),
    );
  }
  for (const key of await redis.keys(`metrics:realtime:${tenant}:*`)) {
    state.metrics[key] = Object.fromEntries(Object.entries(await redis.hGetAll(key)).map(([f, v]) => [f, Number(v)]));
  }
  for (const key of await redis.keys(`user:recent:${tenant}:*`)) state.recent[key] = await redis.lRange(key, 0, -1);
  return state;
}

function expectState(got: RealtimeState, want: RealtimeState): void {
  expect(got.metrics).toEqual(want.metrics);
  expect(got.recent).toEqual(want.recent);
  expect(Object.keys(got.hot).sort()).toEqual(Object.keys(want.hot).sort());
  for (const [key, members] of Object.entries(want.hot)) {
    expect(Object.keys(got.hot[key]!).sort(), key).toEqual(Object.keys(members).sort());
    for (const [member, score] of Object.entries(members)) expect(got.hot[key]![member]).toBeCloseTo(score, 6);
  }
}

/** Sum of the minute counts: a doubled or a missing behaviour changes it. */
const countOf = (state: RealtimeState) =>
  Object.values(state.metrics).reduce((n, fields) => n + Object.values(fields).reduce((a, b) => a + b, 0), 0);

const readyz = async (url: string) => (await fetch(`${url}/readyz`)).status;
const sum = (values: readonly number[]) => values.reduce((n, v) => n + Math.max(0, v), 0);

describe('realtime sink under faults (real Kafka, real Redis, real processes)', () => {
  it('killed with SIGKILL between the script and the Kafka commit, then restarted: no count doubled, none missing', async () => {
    const redisUrl = stack.redis!.url;
    const redis: Redis = createClient({ url: redisUrl });
    await redis.connect();
    const topic = `behaviors-rt-kill-${randomUUID()}`;
    const groupId = `realtime-kill-${randomUUID()}`;
    await ensureTopics(brokers, [{ name: topic, partitions: PARTITIONS, config: {} }]);
    const tenant = freshTenant();
    const first = stream(tenant, 60, 'a');
    const second = stream(tenant, 60, 'b');
    const last = stream(tenant, 60, 'c');
    const port = await freePort();
    const env = {
      HOME: '/nonexistent',
      LOG_LEVEL: 'info',
      KAFKA_BROKERS: brokers,
      REALTIME_TOPIC: topic,
      REALTIME_GROUP_ID: groupId,
      // Static membership: the restarted sink takes the partitions of the killed one at once.
      KAFKA_GROUP_INSTANCE_ID: `realtime-kill-member-${randomUUID()}`,
      REDIS_URL: redisUrl,
      REALTIME_FLUSH_INTERVAL_MS: '300',
      REALTIME_ACTION_WEIGHTS: WEIGHTS_ENV,
      REALTIME_HALF_LIFE_S: String(HALF_LIFE_S),
      REALTIME_RECENT_MAX: String(RECENT_MAX),
      REALTIME_HOST: '127.0.0.1',
      REALTIME_PORT: String(port),
    };
    const offsets = () => groupOffsets(brokers, groupId, topic, PARTITIONS);
    const applied = async () => {
      const got: number[] = [];
      for (let p = 0; p < PARTITIONS; p++) {
        got.push(Number((await redis.get(`realtime:offset:${groupId}:${topic}:${p}`)) ?? -1) + 1);
      }
      return got;
    };
    try {
      // Round 1 is applied and committed; the sink is killed after round 2's scripts, before its commit: the broker
      // holds round 1's offsets, Redis more.
      const { committed: committedAtKill } = await killBetweenWriteAndCommit({
        command: 'realtime-sink',
        env,
        brokers,
        groupId,
        topic,
        partitions: PARTITIONS,
        produceFirst: () => produceAll(brokers, asRecords(topic, first)),
        produceSecond: () => produceAll(brokers, asRecords(topic, second)),
      });
      expect(sum(committedAtKill)).toBe(first.length);
      const appliedAtKill = await applied();
      expect(sum(appliedAtKill)).toBeGreaterThan(first.length);
      for (let p = 0; p < PARTITIONS; p++) expect(appliedAtKill[p]).toBeGreaterThanOrEqual(committedAtKill[p]!);

      // A new process reads the uncommitted behaviours again, skips those the killed one applied, applies the rest
      // and the round produced while no sink ran.
      await produceAll(brokers, asRecords(topic, last));
      const restarted = spawnReplay('realtime-sink', env);
      try {
        await eventually(
          async () => {
            const o = await offsets();
            return o.committed.every((c, p) => c === o.end[p]);
          },
          'the restarted sink to commit everything',
          60_000,
        );
        const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        const replayed = sum(appliedAtKill) - sum(committedAtKill);
        expect(replayed).toBeGreaterThan(0);
        expect(metricValue(metrics, 'realtime_messages_skipped_total')).toBe(replayed);
        expect(metricValue(metrics, 'realtime_messages_applied_total')).toBe(
          first.length + second.length + last.length - sum(appliedAtKill),
        );
        restarted.child.kill('SIGTERM');
        expect((await restarted.exited).code).toBe(0);
      } finally {
        await restarted.killNow();
      }
      const all = [...first, ...second, ...last];
      const got = await redisState(redis, tenant);
      expect(countOf(got)).toBe(all.length);
      expectState(got, expectedState(all));
      expect(await applied()).toEqual((await offsets()).end);
    } finally {
      await redis.quit();
    }
  }, 120_000);

  it('Redis hung, then killed and restarted on its port mid-stream: /readyz 503 meanwhile, nothing lost or doubled', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'replay-realtime-redis-'));
    let server = await startLocalRedis(loadConfig(), { dir, persistent: true });
    const redis: Redis = createClient({ url: server.url });
    await redis.connect();
    const topic = `behaviors-rt-outage-${randomUUID()}`;
    const groupId = `realtime-outage-${randomUUID()}`;
    await ensureTopics(brokers, [{ name: topic, partitions: PARTITIONS, config: {} }]);
    const tenant = freshTenant();
    const rounds = [stream(tenant, 60, 'a'), stream(tenant, 150, 'b'), stream(tenant, 150, 'c')];
    const sink = await runRealtimeSink(
      loadConfig({
        HOME: '/nonexistent',
        REALTIME_TOPIC: topic,
        REALTIME_GROUP_ID: groupId,
        REALTIME_PORT: '0',
        REDIS_URL: server.url,
        REDIS_CONNECT_TIMEOUT_MS: '500',
        REDIS_COMMAND_TIMEOUT_MS: '800',
        REALTIME_FLUSH_INTERVAL_MS: '100',
        // Fetching pauses at 40 held behaviours: each outage sees more than that.
        REALTIME_FLUSH_MAX_MESSAGES: '20',
        REALTIME_ACTION_WEIGHTS: WEIGHTS_ENV,
        REALTIME_HALF_LIFE_S: String(HALF_LIFE_S),
        REALTIME_RECENT_MAX: String(RECENT_MAX),
      }),
      createLogger((process.env.TEST_LOG_LEVEL as 'info') ?? 'error', 'realtime-sink'),
      { brokers },
    );
    const url = sink.http.url;
    const offsets = () => groupOffsets(brokers, groupId, topic, PARTITIONS);
    const metrics = async () => (await fetch(`${url}/metrics`)).text();
    /** Produces `list` in chunks over ~1 s, as a live stream does. */
    const trickle = async (list: readonly BehaviorRecord[]) => {
      for (let i = 0; i < list.length; i += 15) {
        await produceAll(brokers, asRecords(topic, list.slice(i, i + 15)));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    /** While Redis is away: not ready, retrying, fetching paused, and no commit moves. */
    const expectHeldBack = async (errorsBefore: number) => {
      await eventually(async () => (await readyz(url)) === 503, '/readyz to report not ready');
      await eventually(
        async () => metricValue(await metrics(), 'realtime_redis_errors_total') >= errorsBefore + 3,
        'the sink to retry the failing script',
      );
      await eventually(async () => metricValue(await metrics(), 'consumer_paused') === 1, 'fetching to pause');
      const held = (await offsets()).committed;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect((await offsets()).committed).toEqual(held);
      expect(sum(held)).toBeLessThan(sum((await offsets()).end));
      expect(await readyz(url)).toBe(503);
    };
    const caughtUp = async (produced: number) => {
      const done = await eventually(
        async () => {
          const o = await offsets();
          return sum(o.end) === produced && o.committed.every((c, p) => c === o.end[p]) ? o : undefined;
        },
        'the sink to catch up and commit everything',
        60_000,
      );
      await eventually(async () => (await readyz(url)) === 200, '/readyz to report ready again');
      return done.committed;
    };
    try {
      await produceAll(brokers, asRecords(topic, rounds[0]!));
      await caughtUp(rounds[0]!.length);
      expectState(await redisState(redis, tenant), expectedState(rounds[0]!));

      // 1. Redis hangs (SIGSTOP): every script times out (REDIS_COMMAND_TIMEOUT_MS) and its connection is dropped;
      // the scripts sent to the frozen server still run once it resumes, and their retries must skip them.
      const streaming = trickle(rounds[1]!);
      await new Promise((resolve) => setTimeout(resolve, 300));
      process.kill(server.process.pid!, 'SIGSTOP');
      try {
        await streaming;
        await expectHeldBack(metricValue(await metrics(), 'realtime_redis_errors_total'));
      } finally {
        process.kill(server.process.pid!, 'SIGCONT');
      }
      const produced = rounds[0]!.length + rounds[1]!.length;
      await caughtUp(produced);
      expectState(await redisState(redis, tenant), expectedState([...rounds[0]!, ...rounds[1]!]));

      // 2. Redis dies (SIGKILL) mid-stream and comes back on its port with its append-only file: a new process,
      // without the script (NOSCRIPT, loaded again by EVAL).
      const loadsBefore = metricValue(await metrics(), 'realtime_script_loads_total');
      const errorsBefore = metricValue(await metrics(), 'realtime_redis_errors_total');
      await redis.quit();
      const streaming2 = trickle(rounds[2]!);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await server.process.kill();
      await streaming2;
      await expectHeldBack(errorsBefore);
      server = await startLocalRedis(loadConfig(), { dir, persistent: true, port: server.port });
      await caughtUp(produced + rounds[2]!.length);
      expect(metricValue(await metrics(), 'realtime_script_loads_total')).toBeGreaterThan(loadsBefore);

      const reconnected: Redis = createClient({ url: server.url });
      await reconnected.connect();
      try {
        const all = rounds.flat();
        const got = await redisState(reconnected, tenant);
        expect(countOf(got)).toBe(all.length);
        expectState(got, expectedState(all));
      } finally {
        await reconnected.quit();
      }
      expect(metricValue(await metrics(), 'realtime_dead_letters_total')).toBe(0);
    } finally {
      await sink.stop();
      if (redis.isOpen) await redis.quit().catch(() => {});
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('a script Redis applied but whose reply was lost is retried and skipped: applied once', async () => {
    const redisUrl = stack.redis!.url;
    const redis: Redis = createClient({ url: redisUrl });
    await redis.connect();
    const topic = `behaviors-rt-lost-${randomUUID()}`;
    const groupId = `realtime-lost-${randomUUID()}`;
    await ensureTopics(brokers, [{ name: topic, partitions: 1, config: {} }]);
    const tenant = freshTenant();
    const list = stream(tenant, 80, 'a');
    let lose = 2;
    // The fault a dropped connection gives after Redis ran the script: it ran for real, the sink got an error.
    const loseReplies = (inner: RealtimeRedis): RealtimeRedis => ({
      ping: () => inner.ping(),
      async evalScript(script, sha, args, onLoad) {
        const reply = await inner.evalScript(script, sha, args, onLoad);
        if (lose > 0) {
          lose--;
          throw new ReplayError('redis_unavailable', 'socket closed unexpectedly (the reply was lost)');
        }
        return reply;
      },
    });
    await produceAll(brokers, asRecords(topic, list));
    const sink = await runRealtimeSink(
      loadConfig({
        HOME: '/nonexistent',
        REALTIME_TOPIC: topic,
        REALTIME_GROUP_ID: groupId,
        REALTIME_PORT: '0',
        REDIS_URL: redisUrl,
        REALTIME_FLUSH_INTERVAL_MS: '100',
        REALTIME_ACTION_WEIGHTS: WEIGHTS_ENV,
        REALTIME_HALF_LIFE_S: String(HALF_LIFE_S),
        REALTIME_RECENT_MAX: String(RECENT_MAX),
      }),
      createLogger((process.env.TEST_LOG_LEVEL as 'info') ?? 'error', 'realtime-sink'),
      { brokers, wrapRedis: loseReplies },
    );
    try {
      await eventually(
        async () => {
          const o = await groupOffsets(brokers, groupId, topic, 1);
          return o.committed[0] === o.end[0];
        },
        'the sink to commit everything',
        60_000,
      );
      const text = await (await fetch(`${sink.http.url}/metrics`)).text();
      expect(lose).toBe(0);
      expect(metricValue(text, 'realtime_redis_errors_total', { code: 'redis_unavailable' })).toBe(2);
      // The behaviours of the lost replies were applied unseen; their retries found them applied and skipped them.
      expect(metricValue(text, 'realtime_messages_skipped_total')).toBeGreaterThan(0);
      expect(
        metricValue(text, 'realtime_messages_applied_total') + metricValue(text, 'realtime_messages_skipped_total'),
      ).toBe(list.length);
      const got = await redisState(redis, tenant);
      expect(countOf(got)).toBe(list.length);
      expectState(got, expectedState(list));
    } finally {
      await sink.stop();
      await redis.quit();
    }
  }, 60_000);
});
