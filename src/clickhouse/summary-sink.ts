import { createHash } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import type Kafka from 'node-rdkafka';
import { Counter, Histogram, type Registry } from 'prom-client';
import { type Batch, BatchingSink, type BatchingSinkOptions, type PartitionWork } from '../consumer/batching-sink.ts';
import { ResumePoints } from '../consumer/resume-points.ts';
import { partitionKey } from '../consumer/sink.ts';
import { ReplayError } from '../errors/index.ts';
import { type SummaryRow, summaryRowProblem } from '../recordings/summary-row.ts';
import { insertBisecting } from './bisecting-inserts.ts';
import { classifyClickHouseError } from './errors.ts';
import { insertedUpTo, insertSummaryRows } from './session-replay-events.ts';

export interface SummarySinkOptions extends Omit<BatchingSinkOptions, 'target'> {
  readonly clickhouse: ClickHouseClient;
  /** Most table partitions (months) one insert may touch (ClickHouse refuses more than max_partitions_per_insert_block). */
  readonly maxPartitionsPerInsert?: number;
  readonly registry: Registry;
}

type StoredRow = SummaryRow & { _kafka_partition: number; _kafka_offset: number; _kafka_topic: string };

/** A row and the message it came from (for the DLQ, should ClickHouse refuse it). */
interface Entry {
  readonly row: StoredRow;
  readonly message: Kafka.Message;
}

/** One insert statement: fixed rows and a deduplication token made from their source offsets. */
interface InsertUnit {
  readonly entries: readonly Entry[];
  readonly token: string;
}

/**
 * What a batch inserts, fixed once (rows ClickHouse already holds dropped, cut into inserts with their tokens) and
 * retried as it is, so an attempt that failed after ClickHouse stored it (a lost reply) is deduplicated instead of
 * stored twice; inserts that succeeded are not sent again.
 */
interface SealedBatch {
  readonly pending: InsertUnit[];
}

/**
 * The ClickHouse sink: summary rows from `clickhouse_session_replay_events` (read_committed) into
 * `session_replay_events`, in batches (the framework's BatchingSink: at most one insert per `flushIntervalMs`, the
 * first row of a quiet spell waiting only for the rest of its blob flush), then the offsets. Idempotent twice over:
 * every insert carries a deduplication token made from its rows' source offsets, and after a crash between insert and
 * commit the sink skips offsets the table already holds (each row records its topic, partition and offset).
 *
 * The error contract (DESIGN §3.5.1): a message that is not a valid row is quarantined when read. An insert ClickHouse
 * refuses for its content (`clickhouse_rejected`) is bisected at once, with no backoff, down to the rows it refuses:
 * those go to the DLQ with ClickHouse's error, the rest is inserted, so one team's bad row delays other teams by one
 * retry at most. Any other failure is transient: the batch is kept and retried with jittered backoff, `healthy()` turns
 * false, new messages buffer up to twice `maxBufferedMessages`, then fetching pauses. Nothing is committed past what
 * ClickHouse holds (or the DLQ acknowledged), and no message read is ever dropped.
 */
export class SummarySink extends BatchingSink<Entry, SealedBatch> {
  private readonly options: SummarySinkOptions;
  /** How far the table got per partition (its `_kafka_*` columns): what a restart skips. */
  private readonly stored: ResumePoints;
  private readonly metrics: ReturnType<typeof createSinkMetrics>;

  constructor(options: SummarySinkOptions) {
    super({ ...options, target: 'ClickHouse' });
    this.options = options;
    this.stored = new ResumePoints(async (ref) => {
      try {
        return await insertedUpTo(this.options.clickhouse, ref.topic, ref.partition);
      } catch (error) {
        throw classifyClickHouseError(error);
      }
    });
    this.metrics = createSinkMetrics(options.registry);
  }

  /** Never talks to ClickHouse, so it cannot fail and drop what the consumer already read. */
  protected decode(message: Kafka.Message): Entry | undefined {
    if (this.stored.holds(message)) {
      this.metrics.skipped.inc();
      return undefined;
    }
    let row: unknown;
    try {
      row = JSON.parse(message.value?.toString('utf8') ?? '');
    } catch {
      throw new ReplayError('summary_row_invalid', 'the message is not JSON');
    }
    const problem = summaryRowProblem(row);
    if (problem) throw new ReplayError('summary_row_invalid', problem);
    return {
      row: {
        ...(row as SummaryRow),
        _kafka_partition: message.partition,
        _kafka_offset: message.offset,
        _kafka_topic: message.topic,
      },
      message,
    };
  }

  protected countDeadLetter(code: string): void {
    this.metrics.deadLetters.inc({ reason: code });
  }

  protected override countFailure(): void {
    this.metrics.insertErrors.inc();
  }

  protected override forget(keys: readonly string[]): void {
    this.stored.forget(keys);
  }

  /**
   * Sends the sealed inserts in order. One that ClickHouse refuses for its content is split in two at once and each
   * half tried in its place; a single row it refuses is quarantined with ClickHouse's error. A transient failure stops
   * here (throws), leaving the inserts not yet done for the retry.
   */
  protected async write(batch: Batch<Entry, SealedBatch>): Promise<void> {
    batch.plan ??= await this.seal(batch.parts);
    await insertBisecting(batch.plan.pending, {
      insert: async (unit) => {
        const started = performance.now();
        await insertSummaryRows(
          this.options.clickhouse,
          unit.entries.map((e) => e.row),
          unit.token,
        );
        this.metrics.insertSeconds.observe((performance.now() - started) / 1000);
        this.metrics.rows.inc(unit.entries.length);
        this.metrics.inserts.inc();
      },
      unit: insertUnit,
      refuse: ({ message }, error) => {
        batch.parts.find((p) => p.key === partitionKey(message))?.deadLetters.push(this.deadLetter(message, error));
        this.batching.log.warn('row refused by ClickHouse; quarantined', {
          partition: message.partition,
          offset: message.offset,
          error: error.message,
        });
      },
      bisected: () => this.metrics.bisections.inc(),
    });
    for (const part of batch.parts) {
      part.written = true;
      // Only while owned: a revoked partition's next owner looks ClickHouse up for itself.
      if (this.current(part)) this.stored.advance(part.ref, part.lastOffset);
    }
  }

  /**
   * Fixes what the batch inserts: looks up, for partitions seen for the first time since their assignment, how far
   * ClickHouse already got (a previous owner may have inserted without committing), drops those rows and rows the
   * batch holds twice (a re-sent flush), and cuts the rest into inserts that each touch at most
   * `maxPartitionsPerInsert` months.
   */
  private async seal(parts: readonly PartitionWork<Entry>[]): Promise<SealedBatch> {
    const seen = new Set<string>();
    const byMonth = new Map<string, Entry[]>();
    for (const part of parts) {
      const stored = await this.stored.of(part.ref, this.current(part));
      for (const entry of part.entries) {
        const identity = `${entry.row.team_id}:${entry.row.session_id}:${entry.row.source_offsets}`;
        if (entry.row._kafka_offset <= stored || seen.has(identity)) {
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
    return { pending };
  }
}

/** An insert of these rows, with a token from their source offsets: the same rows always carry the same token. */
function insertUnit(entries: readonly Entry[]): InsertUnit {
  const identities = entries.map((e) => `${e.row.team_id}:${e.row.session_id}:${e.row.source_offsets}`).sort();
  const token = createHash('sha256').update(identities.join('\n')).digest('base64url');
  return { entries, token };
}

/** This component's metrics (docs/metrics.md is generated from these factories). */
export function createSinkMetrics(registry: Registry) {
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
