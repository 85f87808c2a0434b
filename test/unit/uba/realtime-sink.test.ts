import type Kafka from 'node-rdkafka';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { ConsumerHandle, PartitionRef } from '../../../src/consumer/sink.ts';
import { ReplayError } from '../../../src/errors/index.ts';
import type { ProducedRecord } from '../../../src/kafka/transactional-producer.ts';
import { createLogger } from '../../../src/logging/logger.ts';
import type { BehaviorRecord } from '../../../src/uba/behavior-record.ts';
import { type RealtimeRedis, RealtimeSink } from '../../../src/uba/realtime/realtime-sink.ts';
import { sampleBehavior } from '../../support/behaviors.ts';

const NOW = Date.now();

function behavior(i: number, overrides: Partial<BehaviorRecord> = {}): BehaviorRecord {
  return sampleBehavior({
    event_id: `0b7e1f4e-8d6c-4c5e-9a51-${String(i).padStart(12, '0')}`,
    user_id: `u${i % 3}`,
    item_id: `item-${i % 4}`,
    timestamp: NOW,
    ...overrides,
  });
}

const message = (partition: number, offset: number, value: Buffer | BehaviorRecord): Kafka.Message => {
  const bytes = Buffer.isBuffer(value) ? value : Buffer.from(JSON.stringify(value));
  return { topic: 't', partition, offset, value: bytes, size: bytes.length, key: 'k', timestamp: NOW };
};

type Call = { keys: string[]; arguments: string[] };

/** A Redis that answers each script with `answer(call)`: a reply, or a thrown error. */
class FakeRedis implements RealtimeRedis {
  readonly calls: Call[] = [];
  answer: (call: Call) => unknown | Promise<unknown> = (call) => ['ok', messagesIn(call), 0, 0, -1];
  pings = 0;
  failPing = false;
  async evalScript(_script: string, _sha: string, args: Call): Promise<unknown> {
    this.calls.push(args);
    return this.answer(args);
  }
  async ping(): Promise<void> {
    this.pings++;
    if (this.failPing) throw new ReplayError('redis_unavailable', 'down');
  }
}

/** How many messages a script call carries (walks ARGV as the script does). */
function messagesIn(call: Call): number {
  const k = Number(call.arguments[6]);
  let p = 7 + 2 * k;
  let n = 0;
  while (p < call.arguments.length) {
    n++;
    p += 2 + 3 * Number(call.arguments[p + 1]);
  }
  return n;
}

function harness(options: { maxBufferedMessages?: number } = {}) {
  const redis = new FakeRedis();
  const events: string[] = [];
  const owned = new Set(['t:0', 't:1']);
  const commits: (PartitionRef & { offset: number })[][] = [];
  const dlq: ProducedRecord[] = [];
  let dlqFails = 0;
  const handle: ConsumerHandle = {
    owns: (p) => owned.has(`${p.topic}:${p.partition}`),
    kafkaConsumer: undefined as unknown as Kafka.KafkaConsumer,
    commit: async (offsets) => {
      events.push('commit');
      commits.push(offsets.map((o) => ({ ...o })));
    },
    committed: async () => [],
    rewindToCommitted: async () => {},
    fail: (error) => events.push(`fail:${error.code}`),
  };
  const registry = new Registry();
  const sink = new RealtimeSink({
    redis,
    deadLetters: {
      send: async (records) => {
        if (dlqFails > 0) {
          dlqFails--;
          throw new ReplayError('kafka_unavailable', 'dlq down');
        }
        events.push('dlq');
        dlq.push(...records);
      },
    },
    dlqTopic: 'dlq',
    offsetGroup: 'g',
    rules: { weights: { click: 2 }, halfLifeS: 3600 },
    limits: { offsetTtlS: 100, hotMaxItems: 10, hotTtlS: 100, metricsTtlS: 100, recentMax: 5, recentTtlS: 100 },
    flushIntervalMs: 0,
    maxBufferedMessages: options.maxBufferedMessages ?? 1000,
    log: createLogger('error'),
    registry,
  });
  void sink.start(handle);
  /** Ticks until `done()` (bounded). */
  const until = async (done: () => boolean, what: string) => {
    const deadline = Date.now() + 10_000;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sink.tick();
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  return {
    sink,
    redis,
    events,
    owned,
    commits,
    dlq,
    registry,
    until,
    failDlq: (n: number) => {
      dlqFails = n;
    },
  };
}

describe('RealtimeSink (fake Redis and consumer handle)', () => {
  it('runs one script per partition, then commits each partition past its last message', async () => {
    const h = harness();
    for (let i = 0; i < 5; i++) h.sink.take(message(i % 2, 100 + i, behavior(i)));
    await h.until(() => h.commits.length === 1, 'a commit');
    expect(h.redis.calls.map((c) => c.keys[0]).sort()).toEqual(['realtime:offset:g:t:0', 'realtime:offset:g:t:1']);
    expect(h.redis.calls.map(messagesIn).sort()).toEqual([2, 3]);
    expect(h.commits[0]!.sort((a, b) => a.partition - b.partition)).toEqual([
      { topic: 't', partition: 0, offset: 105 },
      { topic: 't', partition: 1, offset: 104 },
    ]);
    expect(h.sink.healthy()).toBe(true);
  });

  it('keeps a batch Redis failed, is unhealthy, pauses fetching once full, and applies everything once Redis is back', async () => {
    const h = harness({ maxBufferedMessages: 3 });
    let down = true;
    h.redis.answer = (call) => {
      if (down) throw new ReplayError('redis_unavailable', 'connection refused');
      return ['ok', messagesIn(call), 0, 0, -1];
    };
    for (let i = 0; i < 3; i++) h.sink.take(message(0, i, behavior(i)));
    await h.until(() => h.redis.calls.length >= 2, 'two failed attempts');
    expect(h.sink.healthy()).toBe(false);
    expect(h.commits).toEqual([]);
    expect(h.sink.backpressure()).toBe(false);
    for (let i = 3; i < 6; i++) h.sink.take(message(0, i, behavior(i)));
    expect(h.sink.backpressure()).toBe(true);
    // Every retry sends the same batch (the first three messages), nothing more.
    expect(new Set(h.redis.calls.map((c) => JSON.stringify(c))).size).toBe(1);
    down = false;
    await h.until(() => h.commits.length === 2, 'both batches committed');
    expect(h.sink.healthy()).toBe(true);
    expect(h.sink.backpressure()).toBe(false);
    expect(h.commits.map((c) => c[0]!.offset)).toEqual([3, 6]);
  });

  it('sends the DLQ records before the commit, retrying the DLQ alone when it fails', async () => {
    const h = harness();
    h.sink.take(message(0, 0, behavior(0)));
    h.sink.quarantine(message(0, 1, Buffer.from('nope')), new ReplayError('behavior_record_invalid', 'not JSON'));
    h.sink.take(message(0, 2, behavior(2)));
    h.failDlq(1);
    await h.until(() => h.commits.length === 1, 'a commit');
    expect(h.events).toEqual(['dlq', 'commit']);
    expect(h.redis.calls).toHaveLength(1); // the script was not run again for the DLQ's retry
    expect(h.dlq.map((r) => r.headers?.dlq_reason)).toEqual(['behavior_record_invalid']);
    expect(h.commits[0]).toEqual([{ topic: 't', partition: 0, offset: 3 }]);
  });

  it('quarantines as redis_rejected the messages whose key Redis holds with another type, and applies the rest', async () => {
    const h = harness();
    h.redis.answer = (call) => {
      const i = call.keys.indexOf('user:recent:7:u1');
      return i > 0 ? ['conflict', i] : ['ok', messagesIn(call), 0, 0, -1];
    };
    for (let i = 0; i < 6; i++) h.sink.take(message(0, i, behavior(i)));
    await h.until(() => h.commits.length === 1, 'a commit');
    expect(h.redis.calls).toHaveLength(2);
    expect(messagesIn(h.redis.calls[1]!)).toBe(4); // users u0 and u2 only
    expect(h.dlq.map((r) => [r.headers?.dlq_source_offset, r.headers?.dlq_reason])).toEqual([
      ['1', 'redis_rejected'],
      ['4', 'redis_rejected'],
    ]);
    expect(h.commits[0]).toEqual([{ topic: 't', partition: 0, offset: 6 }]);
  });

  it('lets a revocation wait for the script in flight, and never commits a revoked partition', async () => {
    const h = harness();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    h.redis.answer = async (call) => {
      await gate;
      return ['ok', messagesIn(call), 0, 0, -1];
    };
    h.sink.take(message(0, 0, behavior(0)));
    h.sink.take(message(1, 0, behavior(1)));
    await h.sink.tick();
    expect(h.redis.calls).toHaveLength(2);
    let settled = false;
    h.owned.delete('t:1');
    const settling = h.sink.settle([{ topic: 't', partition: 1 }]).then(() => {
      settled = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(settled).toBe(false);
    release();
    await settling;
    h.sink.revoked([{ topic: 't', partition: 1 }]);
    await h.until(() => h.commits.length === 1, 'a commit');
    expect(h.commits[0]).toEqual([{ topic: 't', partition: 0, offset: 1 }]);
  });

  it('drops the revoked part of a failing batch and retries only the rest', async () => {
    const h = harness();
    let down = true;
    h.redis.answer = (call) => {
      if (down) throw new ReplayError('redis_unavailable', 'timeout');
      return ['ok', messagesIn(call), 0, 0, -1];
    };
    h.sink.take(message(0, 0, behavior(0)));
    h.sink.take(message(1, 0, behavior(1)));
    await h.until(() => h.redis.calls.length >= 2, 'a failed attempt');
    await h.until(() => !h.sink.healthy(), 'unhealthy');
    h.owned.delete('t:1');
    await h.sink.settle([{ topic: 't', partition: 1 }]);
    h.sink.revoked([{ topic: 't', partition: 1 }]);
    down = false;
    const before = h.redis.calls.length;
    await h.until(() => h.commits.length === 1, 'a commit');
    expect(h.redis.calls.slice(before).map((c) => c.keys[0])).toEqual(['realtime:offset:g:t:0']);
    expect(h.commits[0]).toEqual([{ topic: 't', partition: 0, offset: 1 }]);
  });

  it('reports Redis gone while idle (pings), and a fatal refusal of credentials stops the consumer', {
    timeout: 20_000,
  }, async () => {
    const h = harness();
    h.redis.failPing = true;
    // The first tick is idle since construction for less than the ping interval: wait it out.
    await h.until(() => h.redis.pings > 0 && !h.sink.healthy(), 'a failed ping');
    h.redis.failPing = false;
    await h.until(() => h.sink.healthy(), 'a good ping');
    h.redis.answer = () => {
      throw new ReplayError('config_invalid', 'WRONGPASS');
    };
    h.sink.take(message(0, 0, behavior(0)));
    await h.until(() => h.events.includes('fail:config_invalid'), 'the consumer to be failed');
    expect(h.commits).toEqual([]);
  });

  it('drains: applies what is buffered and waits for the commit', async () => {
    const h = harness();
    h.sink.take(message(0, 0, behavior(0)));
    h.sink.take(message(0, 1, behavior(1)));
    await h.sink.drain();
    expect(h.commits).toEqual([[{ topic: 't', partition: 0, offset: 2 }]]);
  });
});
