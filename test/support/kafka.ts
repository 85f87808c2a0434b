import { randomUUID } from 'node:crypto';
import Kafka from 'node-rdkafka';

/**
 * Reads a topic from the beginning as a `read_committed` consumer (what the pipeline's consumers see) until
 * `done(messages)` is true or nothing new arrives for `idleMs`; bounded by `timeoutMs`.
 */
export async function readTopic(
  brokers: string,
  topic: string,
  options: { done?: (messages: Kafka.Message[]) => boolean; idleMs?: number; timeoutMs?: number } = {},
): Promise<Kafka.Message[]> {
  const consumer = new Kafka.KafkaConsumer(
    {
      'metadata.broker.list': brokers,
      'group.id': `test-reader-${randomUUID()}`,
      'enable.auto.commit': false,
      'isolation.level': 'read_committed',
    },
    { 'auto.offset.reset': 'earliest' },
  );
  await new Promise<void>((resolve, reject) =>
    consumer.connect({ timeout: 10_000 }, (error) => (error ? reject(error) : resolve())),
  );
  consumer.subscribe([topic]);
  const messages: Kafka.Message[] = [];
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  const idleMs = options.idleMs ?? 3000;
  let lastArrival = Date.now();
  try {
    while (Date.now() < deadline) {
      const batch = await new Promise<Kafka.Message[]>((resolve, reject) =>
        consumer.consume(500, (error, got) => (error ? reject(error) : resolve(got))),
      );
      if (batch.length > 0) {
        messages.push(...batch);
        lastArrival = Date.now();
      }
      if (options.done?.(messages)) break;
      if (!options.done && Date.now() - lastArrival > idleMs) break;
    }
  } finally {
    await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
  }
  return messages;
}

export function headerOf(message: Kafka.Message, name: string): string | undefined {
  for (const header of message.headers ?? []) {
    if (name in header) return header[name]?.toString();
  }
  return undefined;
}
