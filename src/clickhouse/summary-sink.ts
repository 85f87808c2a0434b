import { createHash } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import type Kafka from 'node-rdkafka';
import { Counter, Histogram, type Registry } from 'prom-client';
import { backoffDelay, sleep } from '../consumer/backoff.ts';
import { deadLetterRecord } from '../consumer/dead-letter.ts';
import { type ConsumerHandle, type PartitionRef, partitionKey, type Sink } from '../consumer/sink.ts';
import { ReplayError } from '../errors/index.ts';
import type { ProducedRecord } from '../kafka/transactional-producer.ts';
import type { Logger } from '../logging/logger.ts';
import { type SummaryRow, summaryRowProblem } from '../recordings/summary-row.ts';
import { classifyClickHouseError } from './errors.ts';
import { insertedUpTo, insertSummaryRows } from './session-replay-events.ts';

export interface SummarySinkOptions {
  readonly clickhouse: ClickHouseClient;
  /** Where rows ClickHouse refuses, and messages that are not rows, are quarantined (acknowledged before commit). */
  readonly deadLetters: { send(records: readonly ProducedRecord[]): Promise<void> };
  readonly dlqTopic: string;
  /** Insert at most this often (default 1000 ms: ClickHouse likes few, large inserts). */
  readonly insertIntervalMs: number;
  /** Insert early at this many buffered rows; fetching pauses at twice as many. */
  readonly maxBufferedRows: number;
  /** Most table partitions (months) one insert may touch (ClickHouse refuses more than max_partitions_per_insert_block). */
  readonly maxPartitionsPerInsert?: number;
  readonly log: Logger;
  readonly registry: Registry;
}

/** How long the first buffered row waits for the rows that travel with it. */
const GATHER_MS = 100;

type StoredRow = SummaryRow & { _kafka_partition: number; _kafka_offset: number; _kafka_topic: string };

/** A row and the message it came from (for the DLQ, should ClickHouse refuse it). */
interface Entry {
  readonly row: StoredRow;
  readonly message: Kafka.Message;
}

/** What has been read from one partition and is not committed yet. */
interface PartitionWork {
  readonly ref: PartitionRef;
  entries: Entry[];
  /** Messages quarantined on reading (not rows), for the DLQ. */
  readonly deadLetters: ProducedRecord[];
  /** Messages read (rows, skipped and quarantined ones): what the work weighs against the buffer budget. */
  messages: number;
  /** The last offset read: committing `lastOffset + 1` acknowledges every message of this work. */
  lastOffset: number;
}

/** One insert statement: fixed rows and a deduplication token made from their source offsets. */
interface InsertUnit {
  readonly entries: readonly Entry[];
  readonly token: string;
}

/**
 * One batch: the work cut from the buffers, then sealed (rows ClickHouse already holds dropped, cut into inserts with
 * their tokens). A sealed batch is retried exactly as it is, so an attempt that failed after ClickHouse stored it (a
 * lost reply) is deduplicated instead of stored twice; inserts that succeeded are not sent again.
 */
interface Batch {
  parts: PartitionWork[];
  sealed?: { readonly pending: InsertUnit[]; readonly deadLetters: ProducedRecord[]; deadLettersSent: boolean };
}

/**
 * The ClickHouse sink: summary rows from `clickhouse_session_replay_events` (read_committed) into
 * `session_replay_events`, in batches, then the offsets. Idempotent twice over: every insert carries a deduplication
 * token made from its rows' source offsets, and after a crash between insert and commit the sink skips offsets the
 * table already holds (each row records its topic, partition and offset).
 *
 * The error contract (DESIGN §3.5.1): a message that is not a valid row is quarantined when read. An insert ClickHouse
 * refuses for its content (`clickhouse_rejected`) is bisected at once, with no backoff, down to the rows it refuses:
 * those go to the DLQ with ClickHouse's error, the rest is inserted, so one team's bad row delays other teams by one
 * retry at most. Any other failure is transient: the batch is kept and retried with jittered backoff, `healthy()` turns
 * false, new messages buffer up to twice `maxBufferedRows`, then fetching pauses. Nothing is committed past what
 * ClickHouse holds (or the DLQ acknowledged), and no message read is ever dropped.
 */
export class SummarySink implements Sink {
  private readonly options: SummarySinkOptions;
  /** Work read since the last cut, per partition. */
  private readonly buffers = new Map<string, PartitionWork>();
  /** The batch being inserted (and retried while ClickHouse fails). */
  private batch: Batch | undefined;
  /** The insert or commit running now, and the partitions it covers (a revocation waits for it). */
  private inFlight: { readonly keys: ReadonlySet<string>; readonly done: Promise<unknown> } | undefined;
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

  /** Buffers one message. Never talks to ClickHouse, so it cannot fail and drop what the consumer already read. */
  take(message: Kafka.Message): void {
    const key = `${message.topic}:${message.partition}`;
    const stored = this.stored.get(key);
    let entry: Entry | undefined;
    if (stored === undefined || message.offset > stored) {
      let row: unknown;
      try {
        row = JSON.parse(message.value?.toString('utf8') ?? '');
      } catch {
        throw new ReplayError('summary_row_invalid', 'the message is not JSON');
      }
      const problem = summaryRowProblem(row);
      if (problem) throw new ReplayError('summary_row_invalid', problem);
      entry = {
        row: {
          ...(row as SummaryRow),
          _kafka_partition: message.partition,
          _kafka_offset: message.offset,
          _kafka_topic: message.topic,
        },
        message,
      };
    } else {
      this.metrics.skipped.inc();
    }
    const work = this.read(message);
    if (entry) work.entries.push(entry);
  }

  quarantine(message: Kafka.Message, error: ReplayError): void {
    this.read(message).deadLetters.push(deadLetterRecord(this.options.dlqTopic, message, error));
    this.metrics.deadLetters.inc({ reason: error.code });
  }

  /** Counts a message as read into its partition's buffer. */
  private read(message: Kafka.Message): PartitionWork {
    const key = `${message.topic}:${message.partition}`;
    let work = this.buffers.get(key);
    if (!work) {
      work = {
        ref: { topic: message.topic, partition: message.partition },
        entries: [],
        deadLetters: [],
        messages: 0,
        lastOffset: -1,
      };
      this.buffers.set(key, work);
    }
    if (this.oldest === 0) this.oldest = Date.now();
    work.messages++;
    work.lastOffset = message.offset;
    this.held++;
    return work;
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

  async settle(partitions: readonly PartitionRef[]): Promise<void> {
    const running = this.inFlight;
    if (running && partitions.some((p) => running.keys.has(partitionKey(p)))) await running.done;
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
    // The batch changes, so its inserts would too: if an earlier attempt did reach ClickHouse, only a fresh lookup of
    // what it holds keeps the remaining rows from being stored twice.
    batch.parts = kept;
    batch.sealed = undefined;
    for (const part of kept) this.stored.delete(partitionKey(part.ref));
  }

  /** Inserts what is held before the consumer leaves: a few attempts with backoff, then the rest is read again. */
  async drain(): Promise<void> {
    for (let failed = 0; (this.batch || this.buffers.size > 0) && failed < 5; ) {
      if (await this.flush()) continue;
      failed++;
      await sleep(backoffDelay(failed, 100, 2000));
    }
  }

  /** Inserts the pending batch (or cuts one from the buffers) and commits it. False when it must be retried. */
  private async flush(): Promise<boolean> {
    if (!this.batch) {
      this.lastCutAt = Date.now();
      this.batch = { parts: [...this.buffers.values()] };
      this.buffers.clear();
      this.oldest = 0;
    }
    const batch = this.batch;
    const done = this.attempt(batch);
    this.inFlight = { keys: new Set(batch.parts.map((p) => partitionKey(p.ref))), done };
    try {
      return await done;
    } finally {
      this.inFlight = undefined;
    }
  }

  private async attempt(batch: Batch): Promise<boolean> {
    try {
      batch.sealed ??= await this.seal(batch);
      if (!batch.sealed) return false; // partitions moved during the lookup: look again on the next turn
      await this.insertAll(batch.sealed);
      if (batch.sealed.deadLetters.length > 0 && !batch.sealed.deadLettersSent) {
        await this.options.deadLetters.send(batch.sealed.deadLetters);
        batch.sealed.deadLettersSent = true;
      }
    } catch (error) {
      if (this.batch !== batch) return false; // every partition of it was revoked meanwhile: nothing to retry
      this.failures++;
      this.metrics.insertErrors.inc();
      const delay = backoffDelay(this.failures);
      this.retryAt = Date.now() + delay;
      this.options.log.warn('ClickHouse insert failed; keeping the batch and retrying', {
        rows: batch.parts.reduce((n, part) => n + part.entries.length, 0),
        attempt: this.failures,
        code: (error as ReplayError).code,
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
    // Reached only once ClickHouse holds every row of the batch (the crash test breaks on this line). Not awaited:
    // the outcome comes with the loop's next polls. A failure is harmless: the next commit covers these offsets, and
    // a restart skips what ClickHouse holds.
    void this.consumer
      .commit(batch.parts.map((part) => ({ ...part.ref, offset: part.lastOffset + 1 })))
      .catch((error) => this.options.log.warn('offset commit failed', { error: String(error) }));
    return true;
  }

  /**
   * Sends the sealed inserts in order. One that ClickHouse refuses for its content is split in two at once and each
   * half tried in its place; a single row it refuses is quarantined with ClickHouse's error. A transient failure stops
   * here (throws), leaving the inserts not yet done for the retry.
   */
  private async insertAll(sealed: NonNullable<Batch['sealed']>): Promise<void> {
    const pending = sealed.pending;
    while (pending.length > 0) {
      const unit = pending[0]!;
      const started = performance.now();
      try {
        await insertSummaryRows(
          this.options.clickhouse,
          unit.entries.map((e) => e.row),
          unit.token,
        );
        this.metrics.insertSeconds.observe((performance.now() - started) / 1000);
        this.metrics.rows.inc(unit.entries.length);
        this.metrics.inserts.inc();
        pending.shift();
      } catch (error) {
        const known = classifyClickHouseError(error);
        if (known.code !== 'clickhouse_rejected') throw known;
        pending.shift();
        if (unit.entries.length > 1) {
          const half = Math.ceil(unit.entries.length / 2);
          pending.unshift(insertUnit(unit.entries.slice(0, half)), insertUnit(unit.entries.slice(half)));
          this.metrics.bisections.inc();
          continue;
        }
        const { message } = unit.entries[0]!;
        sealed.deadLetters.push(deadLetterRecord(this.options.dlqTopic, message, known));
        this.metrics.deadLetters.inc({ reason: known.code });
        this.options.log.warn('row refused by ClickHouse; quarantined', {
          partition: message.partition,
          offset: message.offset,
          error: known.message,
        });
      }
    }
  }

  /**
   * Fixes what the batch inserts: looks up, for partitions seen for the first time since their assignment, how far
   * ClickHouse already got (a previous owner may have inserted without committing), drops those rows and rows the
   * batch holds twice (a re-sent flush), and cuts the rest into inserts that each touch at most
   * `maxPartitionsPerInsert` months.
   */
  private async seal(batch: Batch): Promise<Batch['sealed']> {
    const generation = this.generation;
    const found = new Map<string, number>();
    for (const part of batch.parts) {
      const key = partitionKey(part.ref);
      if (!this.stored.has(key)) {
        try {
          found.set(key, await insertedUpTo(this.options.clickhouse, part.ref.topic, part.ref.partition));
        } catch (error) {
          throw classifyClickHouseError(error);
        }
      }
    }
    if (generation !== this.generation) return undefined;
    for (const [key, offset] of found) this.stored.set(key, offset);
    const seen = new Set<string>();
    const byMonth = new Map<string, Entry[]>();
    for (const part of batch.parts) {
      const stored = this.stored.get(partitionKey(part.ref)) ?? -1;
      const kept = part.entries.filter((e) => e.row._kafka_offset > stored);
      this.metrics.skipped.inc(part.entries.length - kept.length);
      part.entries = kept;
      for (const entry of kept) {
        const identity = `${entry.row.team_id}:${entry.row.session_id}:${entry.row.source_offsets}`;
        if (seen.has(identity)) {
          this.metrics.skipped.inc();
          continue;
        }
        seen.add(identity);
        const month = entry.row.first_timestamp.slice(0, 7);
        const group = byMonth.get(month);
        if (group) group.push(entry);
        else byMonth.set(month, [entry]);
      }
    }
    const months = [...byMonth.keys()].sort();
    const perInsert = this.options.maxPartitionsPerInsert ?? 50;
    const pending: InsertUnit[] = [];
    for (let i = 0; i < months.length; i += perInsert) {
      pending.push(insertUnit(months.slice(i, i + perInsert).flatMap((month) => byMonth.get(month)!)));
    }
    return { pending, deadLetters: batch.parts.flatMap((part) => part.deadLetters), deadLettersSent: false };
  }
}

/** An insert of these rows, with a token from their source offsets: the same rows always carry the same token. */
function insertUnit(entries: readonly Entry[]): InsertUnit {
  const identities = entries.map((e) => `${e.row.team_id}:${e.row.session_id}:${e.row.source_offsets}`).sort();
  const token = createHash('sha256').update(identities.join('\n')).digest('base64url');
  return { entries, token };
}

function createSinkMetrics(registry: Registry) {
  const registers = [registry];
  return {
    rows: new Counter({ name: 'clickhouse_rows_inserted_total', help: 'Summary rows inserted.', registers }),
    inserts: new Counter({ name: 'clickhouse_inserts_total', help: 'Insert statements that succeeded.', registers }),
    insertErrors: new Counter({
      name: 'clickhouse_insert_errors_total',
      help: 'Failed insert attempts for a transient reason (each retried with backoff).',
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
      help: 'Rows skipped because ClickHouse already holds them (replayed after a crash, or a flush sent twice).',
      registers,
    }),
    bisections: new Counter({
      name: 'clickhouse_insert_bisections_total',
      help: 'Inserts ClickHouse refused for their content, split in two to find the rows it refuses.',
      registers,
    }),
    deadLetters: new Counter({
      name: 'clickhouse_dead_letters_total',
      help: 'Messages quarantined to the DLQ, by code (summary_row_invalid, clickhouse_rejected).',
      labelNames: ['reason'],
      registers,
    }),
  };
}
