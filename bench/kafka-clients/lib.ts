/**
 * Shared shapes and helpers of the Kafka client bench. Loads no client: each client runs in its own process (two
 * librdkafka builds in one process would share one librdkafka.so.1 through the dynamic linker).
 */
import type Kafka from 'node-rdkafka';
import type { Corpus } from './payload.ts';

export interface ProduceResult {
  readonly messages: number;
  readonly bytes: number;
  /** First send to the last delivery report / acknowledgement. */
  readonly seconds: number;
  /** CPU time of the client process (all its threads) over the same span. */
  cpuSeconds?: number;
  readonly complete: boolean;
  readonly error?: string;
}

export interface ConsumeResult {
  readonly messages: number;
  readonly bytes: number;
  /** First partition assignment to the last message: the read rate, without the group join. */
  readonly seconds: number;
  /** subscribe() to the first assignment (group join). */
  readonly joinSeconds: number;
  /** subscribe() to the first message. */
  readonly firstMessageSeconds: number;
  cpuSeconds?: number;
  readonly complete: boolean;
  readonly error?: string;
}

/** `ok` null = not applicable / not run. */
export interface Check {
  readonly ok: boolean | null;
  readonly detail: string;
}

export interface FeatureChecks {
  readonly cooperativeSticky: Check;
  /** Completed by the parent, which checks the group's committed offsets against `sentOffsets`. */
  transactions: Check;
  readonly readCommitted: Check;
  readonly zstd: Check;
  /** The offsets passed to sendOffsetsToTransaction in the committed transaction. */
  readonly sentOffsets?: Offsets;
}

export interface FeatureTopics {
  /** An existing topic with data: the consume side of the consume-transform-produce transaction. */
  readonly source: string;
  /** One partition, empty: the transaction writes an aborted then a committed batch here. */
  readonly out: string;
  readonly zstd: string;
  readonly group: string;
}

export interface ClientUnderTest {
  readonly id: string;
  readonly label: string;
  readonly version: string;
  /** librdkafka version for the librdkafka-based clients. */
  readonly engine: string;
  produce(topic: string, corpus: Corpus, count: number, deadline: number): Promise<ProduceResult>;
  consume(topic: string, group: string, expected: number, deadline: number): Promise<ConsumeResult>;
  features(topics: FeatureTopics, deadline: number): Promise<FeatureChecks>;
}

export type RdKafkaModule = typeof Kafka;

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function errorText(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'object' && error !== null && 'message' in error) return String(error.message);
  return String(error);
}

/** Rejects when `ms` passes first; the timer never keeps the process alive. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${Math.round(ms)} ms`)), Math.max(0, ms));
    timer.unref();
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs a callback-style librdkafka call as a promise. */
export function callback<T = void>(call: (done: (error: unknown, value?: unknown) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    call((error, value) => (error ? reject(error) : resolve(value as T)));
  });
}

export interface Offsets {
  readonly topic: string;
  readonly partitions: { readonly partition: number; readonly offset: number }[];
}

export function since(start: number, cpu: NodeJS.CpuUsage): { seconds: number; cpuSeconds: number } {
  const used = process.cpuUsage(cpu);
  return { seconds: (performance.now() - start) / 1000, cpuSeconds: (used.user + used.system) / 1e6 };
}

/** Next offsets (last seen + 1) per partition from a list of consumed messages. */
export function nextOffsets(topic: string, seen: readonly { partition: number; offset: number }[]): Offsets {
  const next = new Map<number, number>();
  for (const { partition, offset } of seen) next.set(partition, Math.max(next.get(partition) ?? 0, offset + 1));
  return { topic, partitions: [...next].map(([partition, offset]) => ({ partition, offset })) };
}
