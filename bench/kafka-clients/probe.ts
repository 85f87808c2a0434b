/**
 * Neutral checks, done with node-rdkafka in the bench's parent process for every client: the sum of a topic's high
 * watermarks (exactly N means no duplicate from retries), a group's committed offsets, and a topic's bytes on disk.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import Kafka from 'node-rdkafka';
import { callback, type Offsets } from './lib.ts';

async function withConsumer<T>(
  brokers: string,
  group: string,
  use: (c: Kafka.KafkaConsumer) => Promise<T>,
): Promise<T> {
  const consumer = new Kafka.KafkaConsumer({ 'metadata.broker.list': brokers, 'group.id': group }, {});
  await callback((done) => consumer.connect({ timeout: 10_000 }, done));
  try {
    return await use(consumer);
  } finally {
    await callback((done) => consumer.disconnect(done));
  }
}

export function highWatermarkSum(brokers: string, topic: string, partitions: number): Promise<number> {
  return withConsumer(brokers, 'bench-probe', async (consumer) => {
    let sum = 0;
    for (let partition = 0; partition < partitions; partition++) {
      const offsets = await callback<Kafka.WatermarkOffsets>((done) =>
        consumer.queryWatermarkOffsets(topic, partition, 10_000, done),
      );
      sum += offsets.highOffset;
    }
    return sum;
  });
}

export function committedOffsets(brokers: string, group: string, wanted: Offsets): Promise<Offsets> {
  return withConsumer(brokers, group, async (consumer) => {
    const toppars = wanted.partitions.map(({ partition }) => ({ topic: wanted.topic, partition }));
    const got = await callback<Kafka.TopicPartitionOffset[]>((done) => consumer.committed(toppars, 10_000, done));
    return { topic: wanted.topic, partitions: got.map(({ partition, offset }) => ({ partition, offset })) };
  });
}

export function sameOffsets(a: Offsets, b: Offsets): boolean {
  const key = (o: Offsets) =>
    o.partitions
      .map(({ partition, offset }) => `${partition}:${offset}`)
      .sort()
      .join(',');
  return a.partitions.length > 0 && key(a) === key(b);
}

/** Bytes of a topic's log segments on the broker's disk (what the batch codec left). */
export async function topicDiskBytes(logDir: string, topic: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(logDir)) {
    if (!entry.startsWith(`${topic}-`) || !/^\d+$/.test(entry.slice(topic.length + 1))) continue;
    for (const file of await readdir(join(logDir, entry))) {
      if (file.endsWith('.log')) total += (await stat(join(logDir, entry, file))).size;
    }
  }
  return total;
}
