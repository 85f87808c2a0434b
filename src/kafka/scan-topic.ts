import { randomUUID } from 'node:crypto';
import Kafka from 'node-rdkafka';

export interface ScanOptions {
  /** Stop once every assigned partition has reached its end and nothing new came for this long (default 3 s). */
  readonly idleMs?: number;
  /** Stop regardless after this long (default 5 min). */
  readonly timeoutMs?: number;
  /** Stop early when this returns true. */
  readonly done?: () => boolean;
}

/**
 * Reads a whole topic from the beginning as a `read_committed` consumer in a throwaway group (nothing is committed),
 * calling `onMessage` for each message, until the end is reached and quiet. For tools (orphan listing, audits) and
 * tests, not for the data path.
 */
export async function scanTopic(
  brokers: string,
  topic: string,
  onMessage: (message: Kafka.Message) => void,
  options: ScanOptions = {},
): Promise<void> {
  const consumer = new Kafka.KafkaConsumer(
    {
      'metadata.broker.list': brokers,
      'group.id': `scan-${randomUUID()}`,
      'enable.auto.commit': false,
      'isolation.level': 'read_committed',
      'fetch.queue.backoff.ms': 10,
    },
    { 'auto.offset.reset': 'earliest' },
  );
  await new Promise<void>((resolve, reject) =>
    consumer.connect({ timeout: 10_000 }, (error) => (error ? reject(error) : resolve())),
  );
  consumer.setDefaultConsumeTimeout(200);
  consumer.subscribe([topic]);
  const deadline = Date.now() + (options.timeoutMs ?? 300_000);
  const idleMs = options.idleMs ?? 3000;
  let lastArrival = Date.now();
  try {
    while (Date.now() < deadline && !options.done?.()) {
      const batch = await new Promise<Kafka.Message[]>((resolve, reject) =>
        consumer.consume(1000, (error, got) => (error ? reject(error) : resolve(got))),
      );
      for (const message of batch) onMessage(message);
      if (batch.length > 0) lastArrival = Date.now();
      else if (Date.now() - lastArrival > idleMs && atEnd(consumer)) break;
    }
  } finally {
    await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
  }
}

function atEnd(consumer: Kafka.KafkaConsumer): boolean {
  const assigned = consumer.assignments();
  if (assigned.length === 0) return false;
  return consumer.position(assigned).every((p) => {
    try {
      const { highOffset } = consumer.getWatermarkOffsets(p.topic, p.partition);
      return p.offset < 0 ? highOffset <= 0 : p.offset >= highOffset;
    } catch {
      return false;
    }
  });
}
