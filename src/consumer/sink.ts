import type Kafka from 'node-rdkafka';

export interface PartitionRef {
  readonly topic: string;
  readonly partition: number;
}

export const partitionKey = (p: PartitionRef): string => `${p.topic}:${p.partition}`;

/** What the framework lends a sink: ownership checks and the two ways to make offsets durable. */
export interface ConsumerHandle {
  /** True while this consumer owns the partition (between its assignment and its revocation). */
  owns(partition: PartitionRef): boolean;
  /** The live node-rdkafka consumer, for `sendOffsetsToTransaction` (exactly-once sinks). */
  readonly kafkaConsumer: Kafka.KafkaConsumer;
  /**
   * Commits `offset` (the next offset to read) for owned partitions; partitions no longer owned are skipped, never
   * committed. For sinks whose writes are idempotent (commit after the write).
   */
  commit(offsets: readonly (PartitionRef & { readonly offset: number })[]): Promise<void>;
  /** Rewinds owned partitions to their last committed offsets (after an aborted transaction). */
  rewindToCommitted(partitions: readonly PartitionRef[]): Promise<void>;
}

/**
 * A sink holds the business logic; the framework holds the Kafka plumbing. Messages arrive in offset order per
 * partition. A sink decides when its work is durable and commits through the handle (or in its own transaction).
 */
export interface Sink {
  /** Called once before the first message. */
  start(handle: ConsumerHandle): Promise<void>;
  /** A batch of messages from any owned partitions, in order within each partition. */
  handle(messages: readonly Kafka.Message[]): Promise<void>;
  /** Called on every loop turn (at least every `pollTimeoutMs`): time-based flushes happen here. */
  tick(): Promise<void>;
  /** True while the sink cannot take more (budget reached, downstream failing): the framework pauses fetching. */
  backpressure(): boolean;
  /**
   * Partitions taken away (revoked, or lost): forget their uncommitted work now. Runs inside the rebalance callback;
   * the partitions' next owner starts from their last committed offsets.
   */
  revoked(partitions: readonly PartitionRef[]): void;
  /** Graceful shutdown: make everything consumed durable and commit it. */
  drain(): Promise<void>;
  /** Readiness detail for `/readyz`: true while the sink's downstream works. */
  healthy(): boolean;
}
