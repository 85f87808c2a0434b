import Kafka from 'node-rdkafka';
import { ReplayError } from '../errors/index.ts';
import type { Logger } from '../logging/logger.ts';
import { MAX_MESSAGE_BYTES } from './topics.ts';

export interface ProducedRecord {
  readonly topic: string;
  readonly key: string;
  readonly value: Buffer;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface TransactionalProducerOptions {
  readonly brokers: string;
  /** Unique per running process: a second producer with the same id fences the first. */
  readonly transactionalId: string;
  readonly clientId: string;
  readonly log: Logger;
  /** Longest a `send` waits for its transaction to commit before failing with kafka_unavailable (default 10 s). */
  readonly commitTimeoutMs?: number;
  /** Bytes put in one transaction at most; more waits for the next (default 64 MiB). */
  readonly maxTransactionBytes?: number;
  /** Called after every transaction with its outcome (metrics). */
  readonly onTransaction?: (outcome: { ok: boolean; records: number; bytes: number; durationMs: number }) => void;
  /**
   * Called once when another process took over the transactional id (`producer_fenced`): this producer is dead for
   * good and the process must exit. Rebuilding it would fence the other process in turn, and so on forever.
   */
  readonly onFenced?: (error: ReplayError) => void;
}

/** Consumer offsets to commit inside a transaction (the next offset to read, per partition). */
export interface ConsumerOffsets {
  readonly offsets: readonly Kafka.TopicPartitionOffset[];
  readonly consumer: Kafka.KafkaConsumer;
}

interface Pending {
  readonly records: readonly ProducedRecord[];
  readonly bytes: number;
  readonly resolve: () => void;
  readonly reject: (error: ReplayError) => void;
}

function call(fn: (cb: (error: Kafka.LibrdKafkaError | null | undefined) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => fn((error) => (error ? reject(error) : resolve())));
}

const FENCED_CODES: ReadonlySet<number> = new Set([
  Kafka.CODES.ERRORS.ERR__FENCED,
  Kafka.CODES.ERRORS.ERR_PRODUCER_FENCED,
  Kafka.CODES.ERRORS.ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
  Kafka.CODES.ERRORS.ERR_INVALID_PRODUCER_EPOCH,
]);

function isFenced(error: unknown): boolean {
  const e = error as Kafka.LibrdKafkaError | undefined;
  return e !== undefined && (FENCED_CODES.has(e.code) || /fenced/i.test(e.message ?? ''));
}

/** How often, and how long at most, a commit whose outcome is unknown is retried before the producer is rebuilt. */
const COMMIT_RETRIES = 5;

/**
 * All-or-nothing sends through Kafka transactions with group commit: every `send` waiting while a transaction is
 * in flight joins the next one, so a request's messages are either all visible to `read_committed` consumers or
 * none is, and the cost of a commit is shared by every request in it. When Kafka is unreachable `send` fails fast
 * with `kafka_unavailable` (retriable) and the producer rebuilds itself in the background.
 */
export class TransactionalProducer {
  private producer: Kafka.Producer | undefined;
  private readonly queue: Pending[] = [];
  private committing = false;
  /** Transactions run one at a time, in call order. */
  private chain: Promise<void> = Promise.resolve();
  private recovering: Promise<void> | undefined;
  private closed = false;
  private readonly commitTimeoutMs: number;
  private readonly maxTransactionBytes: number;
  private readonly options: TransactionalProducerOptions;

  constructor(options: TransactionalProducerOptions) {
    this.options = options;
    this.commitTimeoutMs = options.commitTimeoutMs ?? 10_000;
    this.maxTransactionBytes = options.maxTransactionBytes ?? 64 * 1024 * 1024;
  }

  /** True while sends can succeed: connected, transactions initialised, not recovering from a failure. */
  get ready(): boolean {
    return this.producer !== undefined && this.recovering === undefined && !this.closed;
  }

  /** Connects and initialises transactions; rejects if Kafka cannot be reached within the commit timeout. */
  async start(): Promise<void> {
    this.producer = await this.createProducer();
  }

  send(records: readonly ProducedRecord[]): Promise<void> {
    if (!this.ready) {
      return Promise.reject(new ReplayError('kafka_unavailable', 'Kafka is unavailable; retry later'));
    }
    if (records.length === 0) return Promise.resolve();
    const bytes = records.reduce((sum, r) => sum + r.value.length, 0);
    return new Promise((resolve, reject) => {
      this.queue.push({ records, bytes, resolve, reject });
      this.pump();
    });
  }

  /**
   * Finishes queued sends and any transaction in flight, bounded (twice the commit timeout: a commit may be retried),
   * then disconnects. What is still queued at the deadline is rejected with `kafka_unavailable`.
   */
  async close(): Promise<void> {
    const deadline = Date.now() + 2 * this.commitTimeoutMs;
    while ((this.queue.length > 0 || this.committing) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    this.closed = true;
    for (const pending of this.queue.splice(0)) {
      pending.reject(new ReplayError('kafka_unavailable', 'the producer is closing; retry later'));
    }
    await Promise.race([
      this.chain.then(() => this.recovering),
      new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now()))),
    ]);
    await this.disconnect(this.producer);
    this.producer = undefined;
  }

  /**
   * One transaction on its own: the records, plus consumer offsets when given (consume-transform-produce: the
   * offsets commit if and only if the records do). Waits for any transaction in flight. Rejects with
   * `kafka_unavailable` when the transaction did not commit; nothing of it is then visible.
   */
  transaction(records: readonly ProducedRecord[], offsets?: ConsumerOffsets): Promise<void> {
    if (!this.ready) {
      return Promise.reject(new ReplayError('kafka_unavailable', 'Kafka is unavailable; retry later'));
    }
    return this.exclusive(() => this.transact(records, offsets));
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.chain.then(work);
    this.chain = run.then(
      () => {},
      () => {},
    );
    return run;
  }

  private pump(): void {
    if (this.committing || this.queue.length === 0) return;
    this.committing = true;
    void this.exclusive(() => this.commitNext()).finally(() => {
      this.committing = false;
      this.pump();
    });
  }

  /** Group commit: everything queued (up to the byte cap) goes into one transaction. */
  private async commitNext(): Promise<void> {
    const batch: Pending[] = [];
    let bytes = 0;
    while (this.queue.length > 0 && (batch.length === 0 || bytes + this.queue[0]!.bytes <= this.maxTransactionBytes)) {
      const next = this.queue.shift()!;
      batch.push(next);
      bytes += next.bytes;
    }
    try {
      await this.transact(batch.flatMap((pending) => pending.records));
      for (const pending of batch) pending.resolve();
    } catch (error) {
      for (const pending of batch) pending.reject(error as ReplayError);
      // Requests queued behind a failed transaction would meet the same broken producer.
      for (const pending of this.queue.splice(0)) pending.reject(error as ReplayError);
    }
  }

  /**
   * One transaction. Its failures are classified (DESIGN §3.5): fenced → `producer_fenced` (fatal, no rebuild);
   * failed before the commit, or aborted → `kafka_unavailable` (nothing of it is visible); the commit itself timed out
   * or lost its reply → retried while librdkafka says it is retriable (a retried commit is how librdkafka resolves an
   * unknown outcome), and if still unresolved the producer is rebuilt (its successor's `initTransactions` completes or
   * aborts the old transaction) and `kafka_commit_unknown` tells the caller to read back what became of it before
   * sending anything again.
   */
  private async transact(records: readonly ProducedRecord[], offsets?: ConsumerOffsets): Promise<void> {
    const producer = this.producer;
    if (!producer) throw new ReplayError('kafka_unavailable', 'Kafka is unavailable; retry later');
    const started = Date.now();
    const bytes = records.reduce((sum, r) => sum + r.value.length, 0);
    const report = (ok: boolean) =>
      this.options.onTransaction?.({ ok, records: records.length, bytes, durationMs: Date.now() - started });
    try {
      await call((cb) => producer.beginTransaction(cb));
      for (const record of records) await this.produce(producer, record);
      if (offsets && offsets.offsets.length > 0) {
        await call((cb) =>
          producer.sendOffsetsToTransaction([...offsets.offsets], offsets.consumer, this.commitTimeoutMs, cb),
        );
      }
    } catch (error) {
      report(false);
      throw await this.failed(producer, error, 'before its commit');
    }
    for (let attempt = 1; ; attempt++) {
      try {
        await call((cb) => producer.commitTransaction(this.commitTimeoutMs, cb));
        report(true);
        return;
      } catch (error) {
        const e = error as Kafka.LibrdKafkaError;
        if (!isFenced(error) && e.isRetriable && attempt < COMMIT_RETRIES) {
          this.options.log.warn('transaction commit outcome unknown; retrying the commit', {
            attempt,
            error: e.message,
          });
          await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt));
          continue;
        }
        report(false);
        if (isFenced(error) || e.isTxnRequiresAbort) throw await this.failed(producer, error, 'at its commit');
        this.options.log.warn('transaction commit unresolved; rebuilding the producer to settle it', {
          error: e.message,
        });
        this.recover(producer);
        throw new ReplayError('kafka_commit_unknown', 'the transaction commit did not answer; read back its outcome', {
          cause: error,
        });
      }
    }
  }

  /**
   * The error for a transaction that did not commit: a fenced producer is reported and never rebuilt; an abortable
   * one is aborted (and stays usable); anything else rebuilds the producer.
   */
  private async failed(producer: Kafka.Producer, error: unknown, when: string): Promise<ReplayError> {
    const e = error as Kafka.LibrdKafkaError;
    if (isFenced(error)) {
      const fenced = new ReplayError(
        'producer_fenced',
        `transactional id "${this.options.transactionalId}" was taken over by another process; this one stops`,
        { cause: error },
      );
      this.closed = true;
      this.producer = undefined;
      this.options.onFenced?.(fenced);
      return fenced;
    }
    if (e.isTxnRequiresAbort) {
      try {
        await call((cb) => producer.abortTransaction(this.commitTimeoutMs, cb));
        this.options.log.warn(`transaction failed ${when} and was aborted`, { error: e.message });
        return new ReplayError('kafka_unavailable', 'Kafka did not commit the transaction; retry later', {
          cause: error,
        });
      } catch (abortError) {
        this.options.log.warn('abort failed; rebuilding the producer', { error: String(abortError) });
      }
    } else {
      this.options.log.warn(`transaction failed ${when}; rebuilding the producer`, { error: e?.message });
    }
    this.recover(producer);
    return new ReplayError('kafka_unavailable', 'Kafka did not commit the transaction; retry later', { cause: error });
  }

  private async produce(producer: Kafka.Producer, record: ProducedRecord): Promise<void> {
    const headers = record.headers ? Object.entries(record.headers).map(([k, v]) => ({ [k]: v })) : undefined;
    for (;;) {
      try {
        producer.produce(record.topic, null, record.value, record.key, Date.now(), undefined, headers);
        return;
      } catch (error) {
        // The local queue is full: let librdkafka send, then try again.
        if ((error as Kafka.LibrdKafkaError).code !== Kafka.CODES.ERRORS.ERR__QUEUE_FULL) throw error;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
  }

  /**
   * A failed transaction leaves the producer in a state that is cheaper to replace than to diagnose: the new one,
   * with the same transactional id, fences the old and aborts whatever it left open.
   */
  private recover(broken: Kafka.Producer): void {
    if (this.recovering) return;
    this.producer = undefined;
    this.recovering = (async () => {
      await this.disconnect(broken);
      let delay = 250;
      while (!this.closed) {
        try {
          this.producer = await this.createProducer();
          this.options.log.info('producer ready again');
          return;
        } catch (error) {
          this.options.log.warn('producer not ready yet', { error: (error as Error).message, retryInMs: delay });
          await new Promise((resolve) => setTimeout(resolve, delay * (0.5 + Math.random())));
          delay = Math.min(delay * 2, 10_000);
        }
      }
    })().finally(() => {
      this.recovering = undefined;
    });
  }

  private async createProducer(): Promise<Kafka.Producer> {
    if (this.closed) throw new ReplayError('kafka_unavailable', 'the producer is closed');
    const producer = new Kafka.Producer(
      {
        'metadata.broker.list': this.options.brokers,
        'client.id': this.options.clientId,
        'transactional.id': this.options.transactionalId,
        'enable.idempotence': true,
        // Payloads are LZ4 frames already; compressing them again costs CPU for nothing.
        'compression.codec': 'none',
        'message.max.bytes': MAX_MESSAGE_BYTES + 64 * 1024,
        'linger.ms': 2,
        'transaction.timeout.ms': Math.max(60_000, this.commitTimeoutMs * 3),
        'socket.keepalive.enable': true,
      },
      { 'request.required.acks': -1, 'message.timeout.ms': this.commitTimeoutMs },
    );
    producer.setPollInterval(10);
    try {
      await call((cb) => producer.connect({ timeout: this.commitTimeoutMs }, (error) => cb(error ?? undefined)));
      await call((cb) => producer.initTransactions(this.commitTimeoutMs, cb));
      return producer;
    } catch (error) {
      await this.disconnect(producer);
      throw error;
    }
  }

  private async disconnect(producer: Kafka.Producer | undefined): Promise<void> {
    if (!producer?.isConnected()) return;
    await new Promise<void>((resolve) => producer.disconnect(5000, () => resolve()));
  }
}
