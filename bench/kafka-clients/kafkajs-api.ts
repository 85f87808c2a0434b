/**
 * The KafkaJS promise API, in two flavours: kafkajs itself (pure JavaScript, LZ4 through the kafkajs-lz4 codec) and
 * @confluentinc/kafka-javascript's KafkaJS-compatible layer over librdkafka (configs inside a `kafkaJS` block, acks
 * and compression per producer). Producer: chunks of ~1 MiB sent with up to 8 sends outstanding. Consumer: eachBatch.
 *
 * The modules are loaded by a computed name and typed by the minimal interfaces below, so the root typecheck passes
 * whether or not the bench package is installed.
 */
import { createRequire } from 'node:module';
import {
  type Check,
  type ClientUnderTest,
  type ConsumeResult,
  errorText,
  type FeatureChecks,
  type FeatureTopics,
  nextOffsets,
  type Offsets,
  type ProduceResult,
  withTimeout,
} from './lib.ts';
import type { Corpus } from './payload.ts';
import { FETCH_TUNING } from './rdkafka-api.ts';

interface KjsMessage {
  readonly key?: Buffer | string | null;
  readonly value: Buffer | string | null;
  readonly headers?: Record<string, string>;
}
interface KjsRecord {
  readonly topic: string;
  readonly messages: KjsMessage[];
  readonly acks?: number;
  readonly compression?: number | string;
}
interface KjsTopicOffsets {
  readonly topic: string;
  readonly partitions: { readonly partition: number; readonly offset: string }[];
}
interface KjsTransaction {
  send(record: KjsRecord): Promise<unknown>;
  sendOffsets(args: { consumerGroupId?: string; consumer?: KjsConsumer; topics: KjsTopicOffsets[] }): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}
interface KjsProducer {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  send(record: KjsRecord): Promise<unknown>;
  transaction(): Promise<KjsTransaction>;
}
interface KjsBatch {
  readonly topic: string;
  readonly partition: number;
  readonly messages: { readonly offset: string; readonly value: Buffer | null }[];
}
interface KjsConsumer {
  /** kafkajs instrumentation events (the Confluent layer throws "not implemented" here). */
  readonly events: Readonly<Record<string, string>>;
  on(event: string, listener: () => void): void;
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  subscribe(subscription: { topic?: string; topics?: string[]; fromBeginning?: boolean }): Promise<void>;
  run(config: { autoCommit?: boolean; eachBatch: (payload: { batch: KjsBatch }) => Promise<void> }): Promise<void>;
  pause(topics: { topic: string }[]): void;
  rebalanceProtocol?(): string;
}
interface KjsKafka {
  producer(config: object): KjsProducer;
  consumer(config: object): KjsConsumer;
}
interface KjsModule {
  readonly Kafka: new (config: object) => KjsKafka;
  readonly CompressionTypes: Readonly<Record<string, number | string>>;
  readonly CompressionCodecs?: Record<string, unknown>;
  readonly logLevel: Readonly<Record<string, number>>;
  readonly PartitionAssigners: Readonly<Record<string, unknown>>;
}

export type Flavor = 'kafkajs' | 'confluent';

const requireHere = createRequire(import.meta.url);

/**
 * Loads a (CommonJS) package, or a file of one, from the bench's own node_modules. require() of a computed name keeps
 * tsc from resolving it, so the root typecheck passes whether or not the bench package is installed.
 */
export async function loadBenchPackage(specifier: string): Promise<unknown> {
  return requireHere(specifier) as unknown;
}

export async function kafkajsClient(flavor: Flavor, brokers: string): Promise<ClientUnderTest> {
  let mod: KjsModule;
  let version: string;
  let engine: string;
  if (flavor === 'kafkajs') {
    mod = (await loadBenchPackage('kafkajs')) as KjsModule;
    const LZ4Codec = (await loadBenchPackage('kafkajs-lz4')) as new () => { codec: unknown };
    mod.CompressionCodecs![mod.CompressionTypes.LZ4!] = new LZ4Codec().codec;
    version = ((await loadBenchPackage('kafkajs/package.json')) as { version: string }).version;
    engine = `pure JS, LZ4 via kafkajs-lz4 ${((await loadBenchPackage('kafkajs-lz4/package.json')) as { version: string }).version}`;
  } else {
    const root = (await loadBenchPackage('@confluentinc/kafka-javascript')) as {
      KafkaJS: KjsModule;
      librdkafkaVersion: string;
    };
    mod = root.KafkaJS;
    version = ((await loadBenchPackage('@confluentinc/kafka-javascript/package.json')) as { version: string }).version;
    engine = `librdkafka ${root.librdkafkaVersion}`;
  }
  const isKafkajs = flavor === 'kafkajs';
  const LZ4 = mod.CompressionTypes.LZ4!;
  const clientId = `bench-${flavor}-kjs`;
  const kafka = isKafkajs
    ? new mod.Kafka({ clientId, brokers: [brokers], logLevel: mod.logLevel.ERROR })
    : new mod.Kafka({ kafkaJS: { clientId, brokers: [brokers], logLevel: mod.logLevel.ERROR } });

  const producerConfig = ({
    compression,
    ...options
  }: {
    idempotent?: boolean;
    transactionalId?: string;
    compression?: number | string;
  }) =>
    isKafkajs
      ? {
          ...options,
          allowAutoTopicCreation: false,
          ...(options.transactionalId ? { maxInFlightRequests: 1, idempotent: true } : {}),
        }
      : {
          kafkaJS: { ...options, acks: -1, ...(compression === undefined ? {} : { compression }) },
          'linger.ms': 5,
          'allow.auto.create.topics': false,
        };
  // kafkajs takes acks and codec per send(); the Confluent layer rejects them there (they are producer configs).
  const record = (topic: string, messages: KjsMessage[], compression?: number | string): KjsRecord =>
    isKafkajs
      ? { topic, messages, acks: -1, ...(compression === undefined ? {} : { compression }) }
      : { topic, messages };

  const consumerConfig = (groupId: string, extra: { cooperative?: boolean; onAssign?: () => void } = {}) =>
    isKafkajs
      ? { groupId, allowAutoTopicCreation: false, readUncommitted: false }
      : {
          ...FETCH_TUNING,
          // A rebalance_cb that returns nothing only observes: the Confluent layer still does the assignment.
          ...(extra.onAssign
            ? { rebalance_cb: (err: { code: number }) => err.code === -175 && extra.onAssign?.() }
            : {}),
          kafkaJS: {
            groupId,
            fromBeginning: true,
            autoCommit: false,
            readUncommitted: false,
            ...(extra.cooperative ? { partitionAssigners: [mod.PartitionAssigners.cooperativeSticky] } : {}),
          },
        };
  const subscription = (topic: string) => (isKafkajs ? { topic, fromBeginning: true } : { topics: [topic] });

  /** Runs a consumer until `enough()` says so or the deadline passes; resolves after the handler has seen that. */
  async function runUntil(
    consumer: KjsConsumer,
    topic: string,
    deadline: number,
    onBatch: (batch: KjsBatch) => boolean,
  ): Promise<boolean> {
    let finish: (enough: boolean) => void = () => undefined;
    const finished = new Promise<boolean>((resolve) => {
      finish = resolve;
    });
    await consumer.subscribe(subscription(topic));
    await consumer.run({
      ...(isKafkajs ? { autoCommit: false } : {}),
      eachBatch: async ({ batch }) => {
        if (onBatch(batch)) finish(true);
      },
    });
    return withTimeout(finished, deadline - Date.now(), `consume ${topic}`).catch(() => false);
  }

  const quietly = (promise: Promise<unknown>) => withTimeout(promise, 15_000, 'disconnect').catch(() => undefined);

  return {
    id: isKafkajs ? 'kafkajs' : 'confluent-kafkajs',
    label: isKafkajs ? 'kafkajs' : '@confluentinc/kafka-javascript (KafkaJS API)',
    version,
    engine,

    async produce(topic: string, corpus: Corpus, count: number, deadline: number): Promise<ProduceResult> {
      const producer = kafka.producer(producerConfig({ idempotent: true, compression: LZ4 }));
      await producer.connect();
      try {
        const chunk = Math.max(1, Math.floor((1 << 20) / corpus.valueBytes));
        const inflight = new Set<Promise<void>>();
        let delivered = 0;
        let error: string | undefined;
        const start = performance.now();
        for (let i = 0; i < count && Date.now() < deadline && error === undefined; i += chunk) {
          const messages: KjsMessage[] = [];
          for (let j = i; j < Math.min(count, i + chunk); j++) {
            const { key, value, team } = corpus.message(j);
            messages.push({ key, value, headers: { team_id: team, session_id: key, format: '1' } });
          }
          const sent: Promise<void> = producer.send(record(topic, messages, LZ4)).then(
            () => {
              delivered += messages.length;
              inflight.delete(sent);
            },
            (e: unknown) => {
              error ??= errorText(e);
              inflight.delete(sent);
            },
          );
          inflight.add(sent);
          if (inflight.size >= 8) await Promise.race(inflight);
        }
        await withTimeout(Promise.all(inflight), deadline - Date.now(), 'produce').catch((e: unknown) => {
          error ??= errorText(e);
        });
        const seconds = (performance.now() - start) / 1000;
        return {
          messages: delivered,
          bytes: delivered * corpus.valueBytes,
          seconds,
          complete: delivered === count,
          ...(error === undefined ? {} : { error }),
        };
      } finally {
        await quietly(producer.disconnect());
      }
    },

    async consume(topic: string, group: string, expected: number, deadline: number): Promise<ConsumeResult> {
      let assigned = 0;
      const onAssign = () => {
        if (assigned === 0) assigned = performance.now();
      };
      const consumer = kafka.consumer(consumerConfig(group, { onAssign }));
      if (isKafkajs) consumer.on(consumer.events.GROUP_JOIN!, onAssign);
      await consumer.connect();
      try {
        let messages = 0;
        let bytes = 0;
        let first = 0;
        let last = 0;
        const start = performance.now();
        await runUntil(consumer, topic, deadline, (batch) => {
          if (messages === 0 && batch.messages.length > 0) first = performance.now();
          for (const message of batch.messages) bytes += message.value?.length ?? 0;
          messages += batch.messages.length;
          last = performance.now();
          return messages >= expected;
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
        await quietly(consumer.disconnect());
      }
    },

    async features(topics: FeatureTopics, deadline: number): Promise<FeatureChecks> {
      const notRun = (why: string): Check => ({ ok: null, detail: why });
      let cooperativeSticky = notRun('not reached');
      let transactions = notRun('not reached');
      let readCommitted = notRun('not reached');
      let zstd = notRun('not reached');
      let sentOffsets: Offsets | undefined;

      // zstd: ten messages through a producer with the zstd batch codec.
      try {
        const producer = kafka.producer(producerConfig({ compression: mod.CompressionTypes.ZSTD! }));
        await producer.connect();
        try {
          const messages = Array.from({ length: 10 }, () => ({ key: 'k', value: '{"zstd":true}'.repeat(100) }));
          await withTimeout(
            producer.send(record(topics.zstd, messages, mod.CompressionTypes.ZSTD!)),
            10_000,
            'zstd send',
          );
          zstd = { ok: true, detail: '10 messages acknowledged with the zstd batch codec' };
        } finally {
          await quietly(producer.disconnect());
        }
      } catch (error) {
        zstd = { ok: false, detail: errorText(error) };
      }

      // Cooperative-sticky: kafkajs has no cooperative assignor (eager protocol only).
      const cooperative = !isKafkajs;
      if (isKafkajs) {
        cooperativeSticky = {
          ok: false,
          detail: `PartitionAssigners = [${Object.keys(mod.PartitionAssigners).join(', ')}]: eager rebalancing only`,
        };
      }

      // Consume-transform-produce with a transactional producer: abort one batch, commit the next with the offsets.
      const consumer = kafka.consumer(consumerConfig(topics.group, { cooperative }));
      const producer = kafka.producer(producerConfig({ transactionalId: `bench-txn-${flavor}-kjs` }));
      try {
        await consumer.connect();
        await producer.connect();
        const seen: { partition: number; offset: number }[] = [];
        const got = await runUntil(consumer, topics.source, Math.min(deadline, Date.now() + 20_000), (batch) => {
          if (seen.length === 0) {
            for (const m of batch.messages) seen.push({ partition: batch.partition, offset: Number(m.offset) });
            consumer.pause([{ topic: topics.source }]);
          }
          return seen.length > 0;
        });
        if (!got) throw new Error('the source consumer read nothing');
        if (cooperative) {
          const protocol = consumer.rebalanceProtocol?.() ?? 'unknown';
          cooperativeSticky =
            protocol === 'COOPERATIVE'
              ? { ok: true, detail: 'PartitionAssigners.cooperativeSticky: rebalanceProtocol() = COOPERATIVE' }
              : { ok: false, detail: `rebalanceProtocol() = ${protocol}` };
        }
        const offsets: Offsets = nextOffsets(topics.source, seen);
        const topicOffsets: KjsTopicOffsets[] = [
          {
            topic: offsets.topic,
            partitions: offsets.partitions.map(({ partition, offset }) => ({ partition, offset: String(offset) })),
          },
        ];
        const batch = (tag: string) => Array.from({ length: 10 }, (_, i) => ({ key: 'k', value: `${tag}-${i}` }));
        const aborted = await producer.transaction();
        await aborted.send(record(topics.out, batch('aborted')));
        await aborted.abort();
        const txn = await producer.transaction();
        await txn.send(record(topics.out, batch('committed')));
        await txn.sendOffsets(
          isKafkajs ? { consumerGroupId: topics.group, topics: topicOffsets } : { consumer, topics: topicOffsets },
        );
        await txn.commit();
        transactions = { ok: true, detail: 'aborted one transaction, committed one with sendOffsets' };
        sentOffsets = offsets;
      } catch (error) {
        transactions = { ok: false, detail: errorText(error) };
      } finally {
        await quietly(producer.disconnect());
        await quietly(consumer.disconnect());
      }

      // read_committed (the default isolation of both flavours): the first ten values read must all be committed.
      try {
        const reader = kafka.consumer(consumerConfig(`${topics.group}-rc`));
        await reader.connect();
        try {
          const values: string[] = [];
          await runUntil(reader, topics.out, Math.min(deadline, Date.now() + 20_000), (b) => {
            for (const m of b.messages) values.push(String(m.value));
            return values.length >= 10;
          });
          const first = values.slice(0, 10);
          readCommitted =
            first.length === 10 && first.every((v) => v.startsWith('committed'))
              ? { ok: true, detail: 'aborted batch skipped, 10 committed values read' }
              : { ok: false, detail: `read ${JSON.stringify(first)}` };
        } finally {
          await quietly(reader.disconnect());
        }
      } catch (error) {
        readCommitted = { ok: false, detail: errorText(error) };
      }
      return { cooperativeSticky, transactions, readCommitted, zstd, ...(sentOffsets ? { sentOffsets } : {}) };
    },
  };
}
