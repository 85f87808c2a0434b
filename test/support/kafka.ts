import Kafka from 'node-rdkafka';
import { scanTopic } from '../../src/kafka/scan-topic.ts';

/**
 * Reads a topic from the beginning as a `read_committed` consumer (what the pipeline's consumers see) until
 * `done(messages)` is true, or the end is reached and quiet for `idleMs`; bounded by `timeoutMs`.
 */
export async function readTopic(
  brokers: string,
  topic: string,
  options: { done?: (messages: Kafka.Message[]) => boolean; idleMs?: number; timeoutMs?: number } = {},
): Promise<Kafka.Message[]> {
  const messages: Kafka.Message[] = [];
  const done = options.done;
  await scanTopic(brokers, topic, (message) => messages.push(message), {
    idleMs: done ? (options.timeoutMs ?? 30_000) : (options.idleMs ?? 3000),
    timeoutMs: options.timeoutMs ?? 30_000,
    ...(done ? { done: () => done(messages) } : {}),
  });
  return messages;
}

export function headerOf(message: Kafka.Message, name: string): string | undefined {
  for (const header of message.headers ?? []) {
    if (name in header) return header[name]?.toString();
  }
  return undefined;
}

/** Produces records (non-transactionally, acks=all) and waits for every delivery report. */
export async function produceAll(
  brokers: string,
  records: readonly {
    topic: string;
    key: string;
    value: Buffer;
    headers?: Record<string, string>;
    partition?: number;
  }[],
): Promise<void> {
  const producer = new Kafka.Producer({
    'metadata.broker.list': brokers,
    dr_cb: true,
    'enable.idempotence': true,
    'message.max.bytes': 21 * 1024 * 1024,
    'linger.ms': 5,
  });
  await new Promise<void>((resolve, reject) =>
    producer.connect({ timeout: 10_000 }, (error) => (error ? reject(error) : resolve())),
  );
  producer.setPollInterval(10);
  try {
    await new Promise<void>((resolve, reject) => {
      let pending = records.length;
      if (pending === 0) resolve();
      producer.on('delivery-report', (error) => {
        if (error) reject(error);
        else if (--pending === 0) resolve();
      });
      for (const r of records) {
        const headers = r.headers ? Object.entries(r.headers).map(([k, v]) => ({ [k]: v })) : undefined;
        producer.produce(r.topic, r.partition ?? null, r.value, r.key, Date.now(), undefined, headers);
      }
    });
  } finally {
    await new Promise<void>((resolve) => producer.disconnect(() => resolve()));
  }
}
