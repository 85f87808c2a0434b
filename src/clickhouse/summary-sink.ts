import type { ClickHouseClient } from '@clickhouse/client';
import type Kafka from 'node-rdkafka';
import { Counter, Histogram, type Registry } from 'prom-client';
import { backoffDelay } from '../consumer/backoff.ts';
import { type ConsumerHandle, type PartitionRef, partitionKey, type Sink } from '../consumer/sink.ts';
import type { Logger } from '../logging/logger.ts';
import type { SummaryRow } from '../recordings/summary-row.ts';
import { insertedUpTo, insertSummaryRows } from './session-replay-events.ts';

export interface SummarySinkOptions {
  readonly clickhouse: ClickHouseClient;
  /** Insert at most this often (default 1000 ms: ClickHouse likes few, large inserts). */
  readonly insertIntervalMs: number;
  /** Insert early at this many buffered rows; fetching pauses at twice as many. */
  readonly maxBufferedRows: number;
  readonly log: Logger;
  readonly registry: Registry;
}

/** How long the first buffered row waits for the rows that travel with it. */
const GATHER_MS = 100;

type StoredRow = SummaryRow & { _kafka_partition: number; _kafka_offset: number };

/** What has been read from one partition and is not committed yet. */
interface PartitionWork {
  readonly ref: PartitionRef;
  rows: StoredRow[];
  /** Messages read (rows, skipped and invalid ones): what the work weighs against the buffer budget. */
  messages: number;
  /** The last offset read: committing `lastOffset + 1` acknowledges every message of this work. */
  lastOffset: number;
}

/**
 * One insert: the work cut from the buffers, then sealed (rows ClickHouse already holds dropped, the deduplication
 * token fixed). A sealed batch is retried exactly as it is, same rows and same token, until ClickHouse takes it, so
 * an attempt that failed after ClickHouse stored it (a lost reply) is deduplicated instead of stored twice.
 */
interface Batch {
  parts: PartitionWork[];
  sealed?: { readonly rows: readonly StoredRow[]; readonly token: string };
}

/**
 * The ClickHouse sink: summary rows from `clickhouse_session_replay_events` (read_committed) into
 * `session_replay_events`, in batches, then the offsets. Idempotent twice over: a retried batch carries a
 * deduplication token made from its partition/offset ranges, and after a crash between insert and commit the sink
 * skips offsets the table already holds (each row records its partition and offset).
 *
 * ClickHouse failing (inserts or the lookup of what it holds): the batch is kept and retried with jittered backoff,
 * `healthy()` turns false, new messages keep buffering until twice `maxBufferedRows`, then fetching pauses. Nothing is
 * committed past what ClickHouse holds, and no message read is ever dropped.
 */
export class SummarySink implements Sink {
  private readonly options: SummarySinkOptions;
  /** Work read since the last cut, per partition. */
  private readonly buffers = new Map<string, PartitionWork>();
  /** The batch being inserted (and retried while ClickHouse fails). */
  private batch: Batch | undefined;
  /**
   * Per owned partition: the highest offset ClickHouse holds, looked up once per assignment (before the first insert
   * of that partition), then advanced by each insert. Messages at or below it are skipped.
   */
  private readonly stored = new Map<string, number>();
  private consumer!: ConsumerHandle;
  /** Messages held (buffers plus the batch). */
  private held = 0;
  /** When the oldest message of the buffers arrived. */
  private oldest = 0;
  /** When the last batch was cut from the buffers. */
  private lastCutAt = 0;
  private failures = 0;
  private retryAt = 0;
  /** Bumped by every revocation: a lookup that straddles one may describe partitions as they were before it. */
  private generation = 0;
  private readonly metrics: ReturnType<typeof createSinkMetrics>;

  constructor(options: SummarySinkOptions) {
    this.options = options;
    this.metrics = createSinkMetrics(options.registry);
  }

  async start(handle: ConsumerHandle): Promise<void> {
    this.consumer = handle;
  }

  /** Buffers the messages. Never talks to ClickHouse, so it cannot fail and drop what the consumer already read. */
  async handle(messages: readonly Kafka.Message[]): Promise<void> {
    for (const message of messages) {
      const key = `${message.topic}:${message.partition}`;
      let work = this.buffers.get(key);
      if (!work) {
        work = { ref: { topic: message.topic, partition: message.partition }, rows: [], messages: 0, lastOffset: -1 };
        this.buffers.set(key, work);
      }
      if (this.oldest === 0) this.oldest = Date.now();
      work.messages++;
      work.lastOffset = message.offset;
      this.held++;
      const stored = this.stored.get(key);
      if (stored !== undefined && message.offset <= stored) {
        this.metrics.skipped.inc();
        continue;
      }
      let row: SummaryRow;
      try {
        row = JSON.parse(message.value?.toString() ?? '') as SummaryRow;
        if (typeof row.team_id !== 'number' || typeof row.session_id !== 'string') throw new Error('not a summary row');
      } catch {
        this.metrics.invalid.inc();
        continue;
      }
      work.rows.push({ ...row, _kafka_partition: message.partition, _kafka_offset: message.offset });
    }
  }

  async tick(): Promise<void> {
    if (this.batch) {
      if (Date.now() >= this.retryAt) await this.flush();
      return;
    }
    if (this.buffers.size === 0) return;
    // At most one insert per interval, but no waiting a whole interval after a quiet spell: rows wait only for the
    // rest of their blob flush (committed in one transaction, so they arrive together).
    const now = Date.now();
    const due =
      this.held >= this.options.maxBufferedRows ||
      (now - this.oldest >= Math.min(GATHER_MS, this.options.insertIntervalMs) &&
        now - this.lastCutAt >= this.options.insertIntervalMs);
    if (due) await this.flush();
  }

  backpressure(): boolean {
    return this.held >= this.options.maxBufferedRows * 2;
  }

  healthy(): boolean {
    return this.failures === 0;
  }

  revoked(partitions: readonly PartitionRef[]): void {
    this.generation++;
    for (const ref of partitions) {
      const key = partitionKey(ref);
      this.held -= this.buffers.get(key)?.messages ?? 0;
      this.buffers.delete(key);
      this.stored.delete(key);
    }
    if (this.buffers.size === 0) this.oldest = 0;
    const batch = this.batch;
    if (!batch) return;
    const gone = new Set(partitions.map(partitionKey));
    const kept = batch.parts.filter((part) => !gone.has(partitionKey(part.ref)));
    if (kept.length === batch.parts.length) return;
    for (const part of batch.parts) if (gone.has(partitionKey(part.ref))) this.held -= part.messages;
    if (kept.length === 0) {
      // Nothing left to retry: the next batch tells whether ClickHouse works again.
      this.batch = undefined;
      this.failures = 0;
      this.retryAt = 0;
      return;
    }
    // The batch changes, so its token would too: if an earlier attempt did reach ClickHouse, only a fresh lookup of
    // what it holds keeps the remaining rows from being stored twice.
    batch.parts = kept;
    batch.sealed = undefined;
    for (const part of kept) this.stored.delete(partitionKey(part.ref));
  }

  async drain(): Promise<void> {
    for (let failed = 0; (this.batch || this.buffers.size > 0) && failed < 5; ) {
      if (!(await this.flush())) failed++;
    }
  }

  /** Inserts the pending batch (or cuts one from the buffers) and commits it. False when ClickHouse failed. */
  private async flush(): Promise<boolean> {
    if (!this.batch) {
      this.lastCutAt = Date.now();
      this.batch = { parts: [...this.buffers.values()] };
      this.buffers.clear();
      this.oldest = 0;
    }
    const batch = this.batch;
    const started = performance.now();
    try {
      batch.sealed ??= await this.seal(batch);
      if (!batch.sealed) return false; // partitions moved during the lookup: look again on the next turn
      const { rows, token } = batch.sealed;
      if (rows.length > 0) {
        await insertSummaryRows(this.options.clickhouse, rows, token);
        this.metrics.insertSeconds.observe((performance.now() - started) / 1000);
        this.metrics.rows.inc(rows.length);
        this.metrics.inserts.inc();
      }
    } catch (error) {
      if (this.batch !== batch) return false; // every partition of it was revoked meanwhile: nothing to retry
      this.failures++;
      this.metrics.insertErrors.inc();
      const delay = backoffDelay(this.failures);
      this.retryAt = Date.now() + delay;
      this.options.log.warn('ClickHouse insert failed; keeping the batch and retrying', {
        rows: batch.parts.reduce((n, part) => n + part.rows.length, 0),
        attempt: this.failures,
        retryInMs: Math.round(delay),
        error: String(error),
      });
      return false;
    }
    if (this.failures > 0)
      this.options.log.info('ClickHouse insert succeeded again', { failedAttempts: this.failures });
    this.failures = 0;
    this.retryAt = 0;
    if (this.batch !== batch) return true; // every partition of it was revoked meanwhile: nothing to commit
    this.batch = undefined;
    for (const part of batch.parts) {
      this.held -= part.messages;
      // Only while owned: a revoked partition's next owner looks ClickHouse up for itself.
      if (this.consumer.owns(part.ref)) this.stored.set(partitionKey(part.ref), part.lastOffset);
    }
    try {
      // Reached only once ClickHouse holds every row of the batch (the crash test breaks on this line).
      await this.consumer.commit(batch.parts.map((part) => ({ ...part.ref, offset: part.lastOffset + 1 })));
    } catch (error) {
      // Harmless: the next commit covers these offsets, and a restart skips what ClickHouse holds.
      this.options.log.warn('offset commit failed', { error: String(error) });
    }
    return true;
  }

  /**
   * Fixes what the batch inserts: looks up, for partitions seen for the first time since their assignment, how far
   * ClickHouse already got (a previous owner may have inserted without committing), drops those rows, and makes the
   * token from the partition/offset ranges left.
   */
  private async seal(batch: Batch): Promise<Batch['sealed']> {
    const generation = this.generation;
    const found = new Map<string, number>();
    for (const part of batch.parts) {
      const key = partitionKey(part.ref);
      if (!this.stored.has(key)) found.set(key, await insertedUpTo(this.options.clickhouse, part.ref.partition));
    }
    if (generation !== this.generation) return undefined;
    for (const [key, offset] of found) this.stored.set(key, offset);
    const ranges: string[] = [];
    for (const part of batch.parts) {
      const stored = this.stored.get(partitionKey(part.ref)) ?? -1;
      const kept = part.rows.filter((row) => row._kafka_offset > stored);
      this.metrics.skipped.inc(part.rows.length - kept.length);
      part.rows = kept;
      if (kept.length > 0)
        ranges.push(`${part.ref.topic}:${part.ref.partition}:${kept[0]!._kafka_offset}-${kept.at(-1)!._kafka_offset}`);
    }
    return { rows: batch.parts.flatMap((part) => part.rows), token: ranges.sort().join(',') };
  }
}

function createSinkMetrics(registry: Registry) {
  const registers = [registry];
  return {
    rows: new Counter({ name: 'clickhouse_rows_inserted_total', help: 'Summary rows inserted.', registers }),
    inserts: new Counter({ name: 'clickhouse_inserts_total', help: 'Insert statements that succeeded.', registers }),
    insertErrors: new Counter({
      name: 'clickhouse_insert_errors_total',
      help: 'Failed inserts (each retried).',
      registers,
    }),
    insertSeconds: new Histogram({
      name: 'clickhouse_insert_duration_seconds',
      help: 'Insert latency.',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    skipped: new Counter({
      name: 'clickhouse_rows_skipped_total',
      help: 'Rows skipped because ClickHouse already holds them (replayed after a crash).',
      registers,
    }),
    invalid: new Counter({
      name: 'clickhouse_rows_invalid_total',
      help: 'Messages that were not summary rows.',
      registers,
    }),
  };
}
