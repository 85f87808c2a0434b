/**
 * The callback API of node-rdkafka, also offered by @confluentinc/kafka-javascript (its non-KafkaJS entry point is a
 * node-rdkafka fork): one adapter, two modules. Producer: delivery reports on, every report awaited. Consumer:
 * non-flowing `consume(n)` batches, as the blob consumer will use it.
 */
import type Kafka from 'node-rdkafka';
import {
  type Check,
  type ClientUnderTest,
  type ConsumeResult,
  callback,
  errorText,
  type FeatureChecks,
  type FeatureTopics,
  nextOffsets,
  type Offsets,
  type ProduceResult,
  type RdKafkaModule,
  sleep,
  withTimeout,
} from './lib.ts';
import type { Corpus } from './payload.ts';

/**
 * librdkafka stops fetching a partition once its local queue holds queued.max.messages.kbytes (64 MiB) and then waits
 * fetch.queue.backoff.ms (default 1000) before fetching again: with fast consumers that is a ~1 s stall per refill.
 * The blob consumer will set it low; so does the bench, for all three librdkafka-based clients.
 */
export const FETCH_TUNING = { 'fetch.queue.backoff.ms': 10 } as const;

const QUEUE_FULL = -184; // RD_KAFKA_RESP_ERR__QUEUE_FULL
const ASSIGN = -175; // RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS

export function rdkafkaClient(
  rd: RdKafkaModule,
  meta: { id: string; label: string; version: string },
  brokers: string,
): ClientUnderTest {
  const common = { 'metadata.broker.list': brokers, 'client.id': `bench-${meta.id}` };

  async function connected<T extends Kafka.Producer | Kafka.KafkaConsumer>(client: T): Promise<T> {
    await callback((done) => client.connect({ timeout: 10_000 }, done));
    return client;
  }

  const disconnect = (client: Kafka.Producer | Kafka.KafkaConsumer) =>
    withTimeout(
      callback((done) => client.disconnect(done)),
      10_000,
      'disconnect',
    ).catch(() => undefined);

  /** Produces `count` messages and waits for every delivery report (or the deadline). */
  async function produceAll(
    producer: Kafka.Producer,
    count: number,
    deadline: number,
    next: (i: number) => { value: Buffer; key: string; headers: Kafka.MessageHeader[] },
    topic: string,
  ): Promise<{ delivered: number; error?: string }> {
    let delivered = 0;
    let failed = 0;
    let error: string | undefined;
    const onReport = (err: Kafka.LibrdKafkaError | null) => {
      if (err) {
        failed++;
        error ??= errorText(err);
      } else delivered++;
    };
    producer.on('delivery-report', onReport);
    let i = 0;
    while (i < count && Date.now() < deadline) {
      const { value, key, headers } = next(i);
      try {
        producer.produce(topic, null, value, key, null, null, headers);
        i++;
      } catch (e) {
        if ((e as { code?: number }).code !== QUEUE_FULL) throw e;
        producer.poll();
        await sleep(1);
      }
      if (i % 256 === 0) {
        producer.poll();
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    while (delivered + failed < i && Date.now() < deadline) {
      producer.poll();
      await sleep(2);
    }
    producer.removeListener('delivery-report', onReport);
    return { delivered, ...(error === undefined ? {} : { error }) };
  }

  function headersFor(key: string, team: string): Kafka.MessageHeader[] {
    return [{ team_id: team }, { session_id: key }, { format: '1' }];
  }

  async function consumeUntil(
    consumer: Kafka.KafkaConsumer,
    expected: number,
    deadline: number,
    onMessage: (message: Kafka.Message) => void,
  ): Promise<void> {
    let seen = 0;
    while (seen < expected && Date.now() < deadline) {
      const batch = await callback<Kafka.Message[]>((done) => consumer.consume(1000, done));
      for (const message of batch) onMessage(message);
      seen += batch.length;
    }
  }

  return {
    ...meta,
    engine: `librdkafka ${rd.librdkafkaVersion}`,

    async produce(topic: string, corpus: Corpus, count: number, deadline: number): Promise<ProduceResult> {
      const producer = await connected(
        new rd.Producer(
          { ...common, 'enable.idempotence': true, 'compression.codec': 'lz4', 'linger.ms': 5, dr_cb: true },
          { 'request.required.acks': -1 },
        ),
      );
      try {
        const start = performance.now();
        const result = await produceAll(
          producer,
          count,
          deadline,
          (i) => {
            const { key, value, team } = corpus.message(i);
            return { key, value, headers: headersFor(key, team) };
          },
          topic,
        );
        const seconds = (performance.now() - start) / 1000;
        return {
          messages: result.delivered,
          bytes: result.delivered * corpus.valueBytes,
          seconds,
          complete: result.delivered === count,
          ...(result.error === undefined ? {} : { error: result.error }),
        };
      } finally {
        await disconnect(producer);
      }
    },

    async consume(topic: string, group: string, expected: number, deadline: number): Promise<ConsumeResult> {
      const consumer = await connected(
        new rd.KafkaConsumer(
          { ...common, 'group.id': group, 'enable.auto.commit': false, rebalance_cb: true, ...FETCH_TUNING },
          { 'auto.offset.reset': 'earliest' },
        ),
      );
      try {
        let assigned = 0;
        consumer.on('rebalance', (err) => {
          if (err.code === ASSIGN && assigned === 0) assigned = performance.now();
        });
        consumer.setDefaultConsumeTimeout(100);
        const start = performance.now();
        consumer.subscribe([topic]);
        let messages = 0;
        let bytes = 0;
        let first = 0;
        let last = 0;
        await consumeUntil(consumer, expected, deadline, (message) => {
          if (messages === 0) first = performance.now();
          messages++;
          bytes += message.value?.length ?? 0;
          last = performance.now();
        });
        return {
          messages,
          bytes,
          seconds: (last - assigned) / 1000,
          joinSeconds: (assigned - start) / 1000,
          firstMessageSeconds: (first - start) / 1000,
          complete: messages >= expected,
        };
      } finally {
        await disconnect(consumer);
      }
    },

    async features(topics: FeatureTopics, deadline: number): Promise<FeatureChecks> {
      const msLeft = () => deadline - Date.now();
      const notRun = (why: string): Check => ({ ok: null, detail: why });
      let cooperativeSticky = notRun('not reached');
      let transactions = notRun('not reached');
      let readCommitted = notRun('not reached');
      let zstd = notRun('not reached');
      let sentOffsets: Offsets | undefined;

      // zstd: a producer with the zstd batch codec, ten messages, every delivery report OK.
      try {
        const producer = await connected(new rd.Producer({ ...common, 'compression.codec': 'zstd', dr_cb: true }));
        try {
          const value = Buffer.from('{"zstd":true}'.repeat(100));
          const result = await produceAll(
            producer,
            10,
            Date.now() + 10_000,
            () => ({ value, key: 'k', headers: [] }),
            topics.zstd,
          );
          zstd =
            result.delivered === 10
              ? {
                  ok: true,
                  detail: `10/10 delivered with compression.codec=zstd (features: ${rd.features.includes('zstd')})`,
                }
              : { ok: false, detail: `${result.delivered}/10 delivered: ${result.error ?? 'timeout'}` };
        } finally {
          await disconnect(producer);
        }
      } catch (error) {
        zstd = { ok: false, detail: errorText(error) };
      }

      // Consume-transform-produce: a cooperative-sticky, read_committed group member reads a few source messages; a
      // transactional producer aborts one batch, then writes another with the consumed offsets and commits.
      const consumer = await connected(
        new rd.KafkaConsumer(
          {
            ...common,
            'group.id': topics.group,
            'enable.auto.commit': false,
            'partition.assignment.strategy': 'cooperative-sticky',
            'isolation.level': 'read_committed',
            rebalance_cb: true,
          },
          { 'auto.offset.reset': 'earliest' },
        ),
      );
      const producer = await connected(
        new rd.Producer({ ...common, 'transactional.id': `bench-txn-${meta.id}`, dr_cb: true }),
      );
      try {
        let protocol = '';
        consumer.on('rebalance', (err) => {
          if (err.code === ASSIGN) protocol = consumer.rebalanceProtocol();
        });
        consumer.setDefaultConsumeTimeout(200);
        consumer.subscribe([topics.source]);
        const seen: { partition: number; offset: number }[] = [];
        await consumeUntil(consumer, 1, Math.min(deadline, Date.now() + 20_000), (m) => seen.push(m));
        cooperativeSticky =
          protocol === 'COOPERATIVE'
            ? { ok: true, detail: 'assigned with rebalanceProtocol() = COOPERATIVE (incrementalAssign)' }
            : { ok: false, detail: `rebalanceProtocol() = ${protocol || 'no assignment'}` };
        const offsets = nextOffsets(topics.source, seen);

        await callback((done) => producer.initTransactions(Math.max(1000, msLeft()), done));
        const batch = (tag: string) => (i: number) => ({ value: Buffer.from(`${tag}-${i}`), key: 'k', headers: [] });
        await callback((done) => producer.beginTransaction(done));
        await produceAll(producer, 10, deadline, batch('aborted'), topics.out);
        await callback((done) => producer.abortTransaction(Math.max(1000, msLeft()), done));
        await callback((done) => producer.beginTransaction(done));
        await produceAll(producer, 10, deadline, batch('committed'), topics.out);
        const tpo = offsets.partitions.map(({ partition, offset }) => ({ topic: offsets.topic, partition, offset }));
        await callback((done) => producer.sendOffsetsToTransaction(tpo, consumer, Math.max(1000, msLeft()), done));
        await callback((done) => producer.commitTransaction(Math.max(1000, msLeft()), done));
        transactions = { ok: true, detail: 'aborted one transaction, committed one with sendOffsetsToTransaction' };
        sentOffsets = offsets;
      } catch (error) {
        transactions = { ok: false, detail: errorText(error) };
      } finally {
        await disconnect(producer);
        await disconnect(consumer);
      }

      // read_committed: the aborted batch comes first in the log; the first ten values read must all be committed.
      try {
        const reader = await connected(
          new rd.KafkaConsumer(
            {
              ...common,
              'group.id': `${topics.group}-rc`,
              'enable.auto.commit': false,
              'isolation.level': 'read_committed',
            },
            { 'auto.offset.reset': 'earliest' },
          ),
        );
        try {
          reader.setDefaultConsumeTimeout(200);
          reader.subscribe([topics.out]);
          const values: string[] = [];
          await consumeUntil(reader, 10, Math.min(deadline, Date.now() + 20_000), (m) => values.push(String(m.value)));
          const first = values.slice(0, 10);
          readCommitted =
            first.length === 10 && first.every((v) => v.startsWith('committed'))
              ? { ok: true, detail: 'aborted batch skipped, 10 committed values read' }
              : { ok: false, detail: `read ${JSON.stringify(first)}` };
        } finally {
          await disconnect(reader);
        }
      } catch (error) {
        readCommitted = { ok: false, detail: errorText(error) };
      }
      return { cooperativeSticky, transactions, readCommitted, zstd, ...(sentOffsets ? { sentOffsets } : {}) };
    },
  };
}
