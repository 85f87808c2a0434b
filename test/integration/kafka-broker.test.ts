import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Kafka from 'node-rdkafka';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ensureTopics } from '../../src/kafka/admin.ts';

const stack = inject('stack');
const brokers = stack.kafka!.brokers;

function connect<T extends Kafka.Producer | Kafka.KafkaConsumer>(client: T): Promise<T> {
  return new Promise((resolve, reject) => {
    client.connect({ timeout: 10_000 }, (error) => (error ? reject(error) : resolve(client)));
  });
}

/** Attributes of the first record batch in a partition's first log segment: the low 3 bits are the codec. */
function firstBatchCodec(topic: string, partition: number): number {
  const dir = join(stack.dir, 'kafka', 'data', `${topic}-${partition}`);
  const segment = readdirSync(dir).find((name) => name.endsWith('.log'))!;
  const bytes = readFileSync(join(dir, segment));
  // baseOffset(8) batchLength(4) partitionLeaderEpoch(4) magic(1) crc(4) attributes(2)
  return bytes.readInt16BE(21) & 0x7;
}

describe('Kafka broker (real, KRaft single node)', () => {
  const topic = `smoke-${randomUUID()}`;
  let producer: Kafka.Producer;

  beforeAll(async () => {
    await ensureTopics(brokers, [{ name: topic, partitions: 1, config: {} }]);
    producer = await connect(
      new Kafka.Producer({
        'metadata.broker.list': brokers,
        'compression.codec': 'lz4',
        'enable.idempotence': true,
        dr_cb: true,
        'linger.ms': 5,
      }),
    );
    producer.setPollInterval(20);
  });

  afterAll(() => {
    producer?.disconnect();
  });

  it('round-trips LZ4-compressed messages with keys and headers, in order', async () => {
    const sent = Array.from({ length: 200 }, (_, i) => ({
      key: `session-${i % 7}`,
      value: JSON.stringify({ i, text: 'x'.repeat(i * 13) }),
    }));
    const delivered = new Promise<void>((resolve, reject) => {
      let pending = sent.length;
      producer.on('delivery-report', (error) => {
        if (error) reject(error);
        else if (--pending === 0) resolve();
      });
    });
    for (const message of sent) {
      producer.produce(topic, 0, Buffer.from(message.value), message.key, Date.now(), undefined, [
        { session_id: message.key },
      ]);
    }
    await delivered;

    const consumer = await connect(
      new Kafka.KafkaConsumer(
        { 'metadata.broker.list': brokers, 'group.id': `smoke-${randomUUID()}`, 'enable.auto.commit': false },
        { 'auto.offset.reset': 'earliest' },
      ),
    );
    const received: Kafka.Message[] = [];
    consumer.subscribe([topic]);
    const deadline = Date.now() + 30_000;
    while (received.length < sent.length && Date.now() < deadline) {
      const batch = await new Promise<Kafka.Message[]>((resolve, reject) =>
        consumer.consume(100, (error, messages) => (error ? reject(error) : resolve(messages))),
      );
      received.push(...batch);
    }
    consumer.disconnect();

    expect(received.map((m) => m.value?.toString())).toEqual(sent.map((m) => m.value));
    expect(received.map((m) => m.key?.toString())).toEqual(sent.map((m) => m.key));
    expect(received.map((m) => m.headers?.[0]?.session_id?.toString())).toEqual(sent.map((m) => m.key));
    expect(firstBatchCodec(topic, 0)).toBe(3); // 3 = LZ4 in the record batch attributes
  });
});
