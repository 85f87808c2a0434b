import type Kafka from 'node-rdkafka';
import type { ReplayError } from '../errors/index.ts';

export interface PartitionRef {
  readonly topic: string;
  readonly partition: number;
}

export const partitionKey = (p: PartitionRef): string => `${p.topic}:${p.partition}`;

/** What the framework lends a sink: ownership checks, the two ways to make offsets durable, and a way out. */
export interface ConsumerHandle {
  /** True while this consumer owns the partition (between its assignment and its revocation). */
  owns(partition: PartitionRef): boolean;
  /** The live node-rdkafka consumer, for `sendOffsetsToTransaction` (exactly-once sinks). */
  readonly kafkaConsumer: Kafka.KafkaConsumer;
  /**
   * Commits `offset` (the next offset to read) for owned partitions; partitions no longer owned are skipped, never
   * committed. For sinks whose writes are idempotent (commit after the write). Non-blocking: the promise settles with
   * the outcome, which librdkafka delivers through the consumer's next polls, so a sink must not await it on the
   * loop's own path (`tick`); it would wait for a poll that cannot happen until it returns.
   */
  commit(offsets: readonly (PartitionRef & { readonly offset: number })[]): Promise<void>;
  /** The group's committed offsets (next offset to read; -1 when none) of owned partitions, read from the broker. */
  committed(partitions: readonly PartitionRef[]): Promise<(PartitionRef & { readonly offset: number })[]>;
  /** Rewinds owned partitions to their last committed offsets (after an aborted transaction). */
  rewindToCommitted(partitions: readonly PartitionRef[]): Promise<void>;
  /** A fatal error (fenced producer, ...): the consumer stops and the process exits non-zero with its code. */
  fail(error: ReplayError): void;
}

/**
 * A sink holds the business logic; the framework holds the Kafka plumbing and the error contract (DESIGN §3.5.1).
 * Messages arrive one at a time, in offset order per partition. `take` either takes a message whole or throws a
 * catalogue error and takes nothing of it; the framework then decides by the error's class:
 * - poison: `quarantine(message, error)`, and the stream goes on;
 * - transient: the partition is rewound to this message and paused for a jittered backoff, then it is offered again
 *   (other partitions go on); an unclassified error is retried a few times, then quarantined as `unhandled_error`;
 * - fatal: the consumer stops and the process exits with the code.
 * A sink decides when its work is durable and commits through the handle (or in its own transaction); a quarantined
 * message's DLQ record must become durable no later than its offset's commit.
 */
export interface Sink {
  /** Called once before the first message. */
  start(handle: ConsumerHandle): Promise<void>;
  /** Takes one message (synchronously: buffers, spools), or throws a catalogue error having taken nothing of it. */
  take(message: Kafka.Message): void;
  /** Keeps a poison message for the DLQ, to be committed with the sink's next commit of its partition. */
  quarantine(message: Kafka.Message, error: ReplayError): void;
  /** Called on every loop turn (at least every `pollTimeoutMs`): time-based flushes happen here. */
  tick(): Promise<void>;
  /** True while the sink cannot take more (budget reached, downstream failing, disk low): fetching pauses. */
  backpressure(): boolean;
  /**
   * Partitions taken away (revoked, or lost): forget their uncommitted work. Runs inside the rebalance callback,
   * after `settle`; the partitions' next owner starts from their last committed offsets.
   */
  revoked(partitions: readonly PartitionRef[]): void;
  /**
   * Resolves once no write or transaction already sent for these partitions is in flight (bounded by the caller):
   * a revocation waits for it, so the next owner never reads offsets an in-flight commit is about to move.
   */
  settle(partitions: readonly PartitionRef[]): Promise<void>;
  /** Graceful shutdown: make everything consumed durable and commit it. */
  drain(): Promise<void>;
  /** Readiness detail for `/readyz`: true while the sink's downstream works. */
  healthy(): boolean;
}
