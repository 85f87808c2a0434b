import type { ClickHouseClient } from '@clickhouse/client';
import type Kafka from 'node-rdkafka';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { insertBisecting } from '../clickhouse/bisecting-inserts.ts';
import { classifyClickHouseError } from '../clickhouse/errors.ts';
import { type Batch, BatchingSink, type BatchingSinkOptions, type PartitionWork } from '../consumer/batching-sink.ts';
import { ResumePoints } from '../consumer/resume-points.ts';
import { partitionKey } from '../consumer/sink.ts';
import type { ReplayError } from '../errors/index.ts';
import { readBehaviorRecord } from './behavior-record-check.ts';
import {
  type BehaviorInsertPlan,
  behaviorsInsertedUpTo,
  behaviorsToken,
  type PositionedBehavior,
  planBehaviorInsert,
  runBehaviorInsertStep,
  storedEventIds,
} from './behavior-rows.ts';

export interface BehaviorsSinkOptions extends Omit<BatchingSinkOptions, 'target'> {
  readonly clickhouse: ClickHouseClient;
  /** Most table partitions (months) one insert may touch (default 50, under ClickHouse's max_partitions_per_insert_block). */
  readonly maxMonthsPerInsert?: number;
  readonly registry: Registry;
}

interface Entry {
  readonly behavior: PositionedBehavior;
  readonly message: Kafka.Message;
}

/**
 * Behaviours inserted together: their plan (inserts and tokens) is fixed at the first attempt and retried as it is;
 * `done` counts the plan's inserts that succeeded, so a retry resumes after them.
 */
interface InsertUnit {
  readonly entries: readonly Entry[];
  plan?: BehaviorInsertPlan;
  done: number;
}

/** What a batch inserts, fixed once: units still to insert, in order. */
interface SealedBatch {
  readonly pending: InsertUnit[];
}

/**
 * The behaviour sink (DESIGN §3.8): behaviours from `user_behaviors` into ClickHouse — `user_behaviors`, whose
 * materialized views fill the timeline index, the roll-ups, the audiences and the event-id index in the same insert,
 * and `user_watches` — exactly once, on the framework's BatchingSink (one batch per `flushIntervalMs`: one insert per
 * table per batch).
 *
 * Exactly once, three ways: (1) every insert carries a deduplication token made from its messages' topic positions,
 * and a failed batch is retried with the very same inserts; (2) after a crash between an insert and its commit, the
 * sink looks up, once per partition and assignment, the highest offset `user_behaviors` holds and skips what is at or
 * below it; (3) a behaviour whose `event_id` the table already holds (a request its client sent twice: new messages,
 * same ids) is left out, and so is the second of two in one batch.
 *
 * The error contract (DESIGN §3.5.1): a message that is not a BehaviorRecord within its bounds is poison
 * (`behavior_record_invalid`), quarantined to the DLQ by the framework. An insert ClickHouse refuses for its content
 * (`clickhouse_rejected`) is bisected at once down to the behaviours it refuses, which go to the DLQ with ClickHouse's
 * error; the rest is inserted. Anything else is transient: the batch is kept and retried with backoff, `healthy()` is
 * false and fetching pauses once twice `maxBufferedMessages` are held. Offsets are committed only after the inserts.
 */
export class BehaviorsSink extends BatchingSink<Entry, SealedBatch> {
  private readonly options: BehaviorsSinkOptions;
  /** How far the table got per partition (its `_kafka_*` columns): what a restart skips. */
  private readonly stored: ResumePoints;
  private readonly metrics: ReturnType<typeof createBehaviorsMetrics>;

  constructor(options: BehaviorsSinkOptions) {
    super({ ...options, target: 'ClickHouse' });
    this.options = options;
    this.stored = new ResumePoints(async (ref) => {
      try {
        return await behaviorsInsertedUpTo(this.options.clickhouse, ref.topic, ref.partition);
      } catch (error) {
        throw classifyClickHouseError(error);
      }
    });
    this.metrics = createBehaviorsMetrics(options.registry, () => this.held());
  }

  /** Never talks to ClickHouse; throws `behavior_record_invalid` (poison) having taken nothing. */
  protected decode(message: Kafka.Message): Entry | undefined {
    if (this.stored.holds(message)) {
      this.metrics.skipped.inc({ reason: 'stored_offset' });
      return undefined;
    }
    const record = readBehaviorRecord(message.value);
    return {
      behavior: { record, topic: message.topic, partition: message.partition, offset: message.offset },
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

  protected async write(batch: Batch<Entry, SealedBatch>): Promise<void> {
    batch.plan ??= await this.seal(batch.parts);
    await insertBisecting(batch.plan.pending, {
      insert: (unit) => this.insert(unit),
      // Each half gets a plan of its own: watch rows of the refused attempt that were stored are found stored.
      unit: insertUnit,
      refuse: (entry, error) => this.refuse(batch.parts, entry, error),
      bisected: () => this.metrics.bisections.inc(),
    });
    for (const part of batch.parts) {
      part.written = true;
      // Only while owned: a revoked partition's next owner looks ClickHouse up for itself.
      if (this.current(part)) this.stored.advance(part.ref, part.lastOffset);
    }
  }

  /** Runs a unit's inserts not yet done (planning it first, once). */
  private async insert(unit: InsertUnit): Promise<void> {
    const { clickhouse } = this.options;
    const behaviors = unit.entries.map((e) => e.behavior);
    unit.plan ??= await planBehaviorInsert(clickhouse, behaviors, behaviorsToken(behaviors), {
      maxMonthsPerInsert: this.options.maxMonthsPerInsert,
    });
    for (; unit.done < unit.plan.steps.length; unit.done++) {
      const step = unit.plan.steps[unit.done]!;
      const started = performance.now();
      await runBehaviorInsertStep(clickhouse, step);
      this.metrics.insertSeconds.observe({ table: step.table }, (performance.now() - started) / 1000);
      this.metrics.inserts.inc({ table: step.table });
      this.metrics.rows.inc({ table: step.table }, step.rows.length);
    }
  }

  private refuse(parts: readonly PartitionWork<Entry>[], entry: Entry, error: ReplayError): void {
    const part = parts.find((p) => p.key === partitionKey(entry.message));
    part?.deadLetters.push(this.deadLetter(entry.message, error));
    this.batching.log.warn('behaviour refused by ClickHouse; quarantined', {
      partition: entry.message.partition,
      offset: entry.message.offset,
      error: error.message,
    });
  }

  /**
   * Fixes what a batch inserts: looks up how far ClickHouse got for partitions seen for the first time since their
   * assignment (a previous owner may have inserted without committing) and drops those behaviours, then drops
   * behaviours whose event id is stored already or came earlier in the batch.
   */
  private async seal(parts: readonly PartitionWork<Entry>[]): Promise<SealedBatch> {
    const { clickhouse } = this.options;
    const kept: Entry[] = [];
    for (const part of parts) {
      const stored = await this.stored.of(part.ref, this.current(part));
      for (const entry of part.entries) {
        if (entry.behavior.offset > stored) kept.push(entry);
        else this.metrics.skipped.inc({ reason: 'stored_offset' });
      }
    }
    let known: Set<string>;
    try {
      known = await storedEventIds(
        clickhouse,
        kept.map((e) => e.behavior.record),
      );
    } catch (error) {
      throw classifyClickHouseError(error);
    }
    const fresh: Entry[] = [];
    for (const entry of kept) {
      const id = `${entry.behavior.record.tenant_id}:${entry.behavior.record.event_id}`;
      if (known.has(id)) {
        this.metrics.skipped.inc({ reason: 'duplicate_event_id' });
        continue;
      }
      known.add(id);
      fresh.push(entry);
    }
    return { pending: fresh.length > 0 ? [insertUnit(fresh)] : [] };
  }
}

const insertUnit = (entries: readonly Entry[]): InsertUnit => ({ entries, done: 0 });

/** This component's metrics (docs/metrics.md is generated from these factories). */
export function createBehaviorsMetrics(registry: Registry, held: () => number) {
  const registers = [registry];
  return {
    rows: new Counter({
      name: 'behaviors_rows_inserted_total',
      help: 'Rows inserted, by table (user_behaviors; user_watches: states and their cancellations).',
      labelNames: ['table'],
      registers,
    }),
    inserts: new Counter({
      name: 'behaviors_inserts_total',
      help: 'Insert statements that succeeded, by table.',
      labelNames: ['table'],
      registers,
    }),
    insertErrors: new Counter({
      name: 'behaviors_insert_errors_total',
      help: 'Failed batch attempts for a transient reason (each retried with backoff).',
      registers,
    }),
    insertSeconds: new Histogram({
      name: 'behaviors_insert_duration_seconds',
      help: 'Insert latency, by table.',
      labelNames: ['table'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    skipped: new Counter({
      name: 'behaviors_skipped_total',
      help: 'Behaviours not inserted because ClickHouse holds them: stored_offset (read again after a crash), duplicate_event_id (sent twice).',
      labelNames: ['reason'],
      registers,
    }),
    bisections: new Counter({
      name: 'behaviors_insert_bisections_total',
      help: 'Inserts ClickHouse refused for their content, split in two to find the behaviours it refuses.',
      registers,
    }),
    deadLetters: new Counter({
      name: 'behaviors_dead_letters_total',
      help: 'Messages quarantined to the DLQ, by code (behavior_record_invalid, clickhouse_rejected, unhandled_error).',
      labelNames: ['reason'],
      registers,
    }),
    held: new Gauge({
      name: 'behaviors_held_messages',
      help: 'Messages read and not yet inserted (buffered, or in the batch being inserted).',
      registers,
      collect() {
        this.set(held());
      },
    }),
  };
}
