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

interface PartitionBuffer {
  readonly ref: PartitionRef;
  rows: (SummaryRow & { _kafka_partition: number; _kafka_offset: number })[];
  firstOffset: number;
  lastOffset: number;
}

/**
 * The ClickHouse sink: summary rows from `clickhouse_session_replay_events` (read_committed) into
 * `session_replay_events`, in batches, then the offsets. Idempotent twice over: a retried batch carries a
 * deduplication token made from its partition/offset ranges, and after a crash between insert and commit the sink
 * skips offsets the table already holds (each row records its partition and offset).
 */
export class SummarySink implements Sink {
  private readonly options: SummarySinkOptions;
  private readonly buffers = new Map<string, PartitionBuffer>();
  /** Per owned partition: the highest offset already in ClickHouse when the partition was (re)assigned. */
  private readonly stored = new Map<string, number>();
  private consumer!: ConsumerHandle;
  private buffered = 0;
  private oldest = 0;
  private failures = 0;
  private retryAt = 0;
  private readonly metrics: ReturnType<typeof createSinkMetrics>;

  constructor(options: SummarySinkOptions) {
    this.options = options;
    this.metrics = createSinkMetrics(options.registry);
  }

  async start(handle: ConsumerHandle): Promise<void> {
    this.consumer = handle;
  }

  async handle(messages: readonly Kafka.Message[]): Promise<void> {
    for (const message of messages) {
      const key = `${message.topic}:${message.partition}`;
      let stored = this.stored.get(key);
      if (stored === undefined) {
        stored = await insertedUpTo(this.options.clickhouse, message.partition);
        this.stored.set(key, stored);
      }
      if (message.offset <= stored) {
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
      let buffer = this.buffers.get(key);
      if (!buffer) {
        buffer = {
          ref: { topic: message.topic, partition: message.partition },
          rows: [],
          firstOffset: message.offset,
          lastOffset: message.offset,
        };
        this.buffers.set(key, buffer);
      }
      buffer.rows.push({ ...row, _kafka_partition: message.partition, _kafka_offset: message.offset });
      buffer.lastOffset = message.offset;
      if (this.buffered === 0) this.oldest = Date.now();
      this.buffered++;
    }
  }

  async tick(): Promise<void> {
    if (this.buffered === 0 || Date.now() < this.retryAt) return;
    const due =
      Date.now() - this.oldest >= this.options.insertIntervalMs || this.buffered >= this.options.maxBufferedRows;
    if (!due) return;
    await this.insert();
  }

  backpressure(): boolean {
    return this.buffered >= this.options.maxBufferedRows * 2;
  }

  healthy(): boolean {
    return this.failures === 0;
  }

  revoked(partitions: readonly PartitionRef[]): void {
    for (const ref of partitions) {
      const key = partitionKey(ref);
      this.buffered -= this.buffers.get(key)?.rows.length ?? 0;
      this.buffers.delete(key);
      this.stored.delete(key);
    }
  }

  async drain(): Promise<void> {
    for (let attempt = 0; this.buffered > 0 && attempt < 5; attempt++) {
      this.retryAt = 0;
      await this.insert();
    }
  }

  private async insert(): Promise<void> {
    const batches = [...this.buffers.values()].filter((b) => b.rows.length > 0);
    const rows = batches.flatMap((b) => b.rows);
    const token = batches
      .map((b) => `${b.ref.topic}:${b.ref.partition}:${b.firstOffset}-${b.lastOffset}`)
      .sort()
      .join(',');
    const started = performance.now();
    try {
      await insertSummaryRows(this.options.clickhouse, rows, token);
    } catch (error) {
      this.failures++;
      this.metrics.insertErrors.inc();
      const delay = backoffDelay(this.failures);
      this.retryAt = Date.now() + delay;
      this.options.log.warn('insert failed; retrying', {
        rows: rows.length,
        retryInMs: Math.round(delay),
        error: String(error),
      });
      return;
    }
    this.failures = 0;
    this.metrics.insertSeconds.observe((performance.now() - started) / 1000);
    this.metrics.rows.inc(rows.length);
    this.metrics.inserts.inc();
    for (const b of batches) {
      this.stored.set(partitionKey(b.ref), b.lastOffset);
      this.buffers.delete(partitionKey(b.ref));
    }
    this.buffered -= rows.length;
    await this.consumer.commit(batches.map((b) => ({ ...b.ref, offset: b.lastOffset + 1 })));
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
