import { randomUUID } from 'node:crypto';
import type Kafka from 'node-rdkafka';
import { Registry } from 'prom-client';
import { describe, expect, inject, it } from 'vitest';
import { PartitionConsumer } from '../../../src/consumer/partition-consumer.ts';
import type { ConsumerHandle, Sink } from '../../../src/consumer/sink.ts';
import { ReplayError } from '../../../src/errors/index.ts';
import { ensureTopics } from '../../../src/kafka/admin.ts';
import { createLogger } from '../../../src/logging/logger.ts';
import { produceAll } from '../../support/kafka.ts';
import { metricValue } from '../../support/metrics.ts';

const brokers = inject('stack').kafka!.brokers;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A sink whose messages say how to fail: `poison` always throws a poison code, `bug` always throws a plain Error (an
 * unclassified failure), `flaky` throws the transient `disk_full` until `healed`. Everything taken is committed.
 */
class ScriptedSink implements Sink {
  healed = false;
  readonly taken: string[] = [];
  readonly quarantined: { value: string; code: string }[] = [];
  readonly attempts = new Map<string, number>();
  private readonly next = new Map<string, { topic: string; partition: number; offset: number }>();
  private consumer!: ConsumerHandle;

  async start(handle: ConsumerHandle): Promise<void> {
    this.consumer = handle;
  }

  take(message: Kafka.Message): void {
    const value = message.value!.toString();
    this.attempts.set(value, (this.attempts.get(value) ?? 0) + 1);
    if (value.startsWith('poison')) throw new ReplayError('message_header_invalid', 'scripted poison');
    if (value.startsWith('bug')) throw new TypeError('cannot read properties of undefined');
    if (value.startsWith('flaky') && !this.healed) throw new ReplayError('disk_full', 'scripted full disk');
    this.taken.push(value);
    this.advance(message);
  }

  quarantine(message: Kafka.Message, error: ReplayError): void {
    this.quarantined.push({ value: message.value!.toString(), code: error.code });
    this.advance(message);
  }

  private advance(message: Kafka.Message): void {
    this.next.set(`${message.partition}`, {
      topic: message.topic,
      partition: message.partition,
      offset: message.offset + 1,
    });
  }

  async tick(): Promise<void> {
    if (this.next.size === 0) return;
    const offsets = [...this.next.values()];
    this.next.clear();
    void this.consumer.commit(offsets).catch(() => {});
  }

  backpressure(): boolean {
    return false;
  }

  revoked(): void {}

  async settle(): Promise<void> {}

  async drain(): Promise<void> {}

  healthy(): boolean {
    return true;
  }
}

describe('the consumer framework applies the error contract for every sink (real broker)', () => {
  it('quarantines poison at once, an unclassified failure after 5 tries, and retries a transient one only on its partition until it passes', async () => {
    const topic = `contract-${randomUUID()}`;
    await ensureTopics(brokers, [{ name: topic, partitions: 2, config: {} }]);
    // Partition 0: good, poison, good, bug, good. Partition 1: good, flaky, then more good ones.
    const on = (partition: number, values: string[]) =>
      values.map((value) => ({ topic, key: value, value: Buffer.from(value), partition }));
    await produceAll(brokers, [
      ...on(0, ['good-0a', 'poison-0', 'good-0b', 'bug-0', 'good-0c']),
      ...on(1, ['good-1a', 'flaky-1', 'good-1b', 'good-1c']),
    ]);
    const sink = new ScriptedSink();
    const registry = new Registry();
    const consumer = new PartitionConsumer({
      brokers,
      groupId: `contract-${randomUUID()}`,
      topics: [topic],
      clientId: 'contract',
      sink,
      log: createLogger((process.env.TEST_LOG_LEVEL as 'info') ?? 'error', 'contract'),
      registry,
      unreadyAfterMs: 1500,
    });
    await consumer.start();
    try {
      // Partition 0 goes all the way through while partition 1 is stuck on its transient failure.
      for (let i = 0; i < 100 && !sink.taken.includes('good-0c'); i++) await pause(100);
      expect(sink.taken.filter((v) => v.startsWith('good-0'))).toEqual(['good-0a', 'good-0b', 'good-0c']);
      expect(sink.quarantined).toEqual([
        { value: 'poison-0', code: 'message_header_invalid' },
        { value: 'bug-0', code: 'unhandled_error' },
      ]);
      expect(sink.attempts.get('poison-0')).toBe(1);
      expect(sink.attempts.get('bug-0')).toBe(5);
      expect(sink.taken).toContain('good-1a');
      expect(sink.taken).not.toContain('good-1b'); // nothing after the failing message is taken before it
      // Failing for longer than unreadyAfterMs: not ready (a dependency down is reported, not hidden).
      for (let i = 0; i < 40 && consumer.ready(); i++) await pause(100);
      expect(consumer.ready()).toBe(false);
      expect(sink.attempts.get('flaky-1')).toBeGreaterThan(1);

      sink.healed = true;
      for (let i = 0; i < 100 && !sink.taken.includes('good-1c'); i++) await pause(100);
      expect(sink.taken.filter((v) => v.includes('-1'))).toEqual(['good-1a', 'flaky-1', 'good-1b', 'good-1c']);
      expect(consumer.ready()).toBe(true);
      const metrics = await registry.metrics();
      expect(metricValue(metrics, 'consumer_quarantined_total', { reason: 'unhandled_error' })).toBe(1);
      expect(metricValue(metrics, 'consumer_retries_total', { code: 'disk_full' })).toBeGreaterThan(0);
    } finally {
      await consumer.stop();
    }
  });
});
