import Kafka from 'node-rdkafka';
import { ReplayError } from '../errors/index.ts';
import { MAX_MESSAGE_BYTES } from './topics.ts';
import type { ProducedRecord } from './transactional-producer.ts';

/**
 * A plain idempotent producer whose `send` resolves once every record is acknowledged by all in-sync replicas, or
 * rejects with `kafka_unavailable` (bounded by `timeoutMs`). For writes that must be durable before an offset commit
 * but need no transaction, such as DLQ records of a sink that commits offsets itself (at least once in the DLQ).
 */
export class AckedProducer {
  private readonly producer: Kafka.Producer;
  private readonly pending = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
  private nextId = 0;
  private readonly timeoutMs: number;

  constructor(options: { readonly brokers: string; readonly clientId: string; readonly timeoutMs?: number }) {
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.producer = new Kafka.Producer(
      {
        'metadata.broker.list': options.brokers,
        'client.id': options.clientId,
        'enable.idempotence': true,
        dr_cb: true,
        'message.max.bytes': MAX_MESSAGE_BYTES + 64 * 1024,
        'linger.ms': 5,
        'socket.keepalive.enable': true,
      },
      { 'request.required.acks': -1, 'message.timeout.ms': this.timeoutMs },
    );
    this.producer.on('delivery-report', (error, report) => {
      const id = report.opaque as number;
      const waiter = this.pending.get(id);
      if (!waiter) return;
      this.pending.delete(id);
      if (error) waiter.reject(new Error(error.message));
      else waiter.resolve();
    });
    this.producer.setPollInterval(10);
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) =>
      this.producer.connect({ timeout: this.timeoutMs }, (error) =>
        error ? reject(new ReplayError('kafka_unavailable', `could not connect: ${error.message}`)) : resolve(),
      ),
    );
  }

  async send(records: readonly ProducedRecord[]): Promise<void> {
    const deliveries = records.map(
      (record) =>
        new Promise<void>((resolve, reject) => {
          const id = this.nextId++;
          this.pending.set(id, { resolve, reject });
          const headers = record.headers ? Object.entries(record.headers).map(([k, v]) => ({ [k]: v })) : undefined;
          try {
            this.producer.produce(record.topic, null, record.value, record.key, Date.now(), id, headers);
          } catch (error) {
            this.pending.delete(id);
            reject(error as Error);
          }
        }),
    );
    try {
      await Promise.all(deliveries);
    } catch (error) {
      throw new ReplayError('kafka_unavailable', `a record was not acknowledged: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.producer.flush(this.timeoutMs, () => resolve()));
    await new Promise<void>((resolve) => this.producer.disconnect(this.timeoutMs, () => resolve()));
  }
}
