import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import type Kafka from 'node-rdkafka';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { backoffDelay, sleep } from '../consumer/backoff.ts';
import { deadLetterRecord } from '../consumer/dead-letter.ts';
import { type ConsumerHandle, type PartitionRef, partitionKey, type Sink } from '../consumer/sink.ts';
import type { ProducedRecord, TransactionalProducer } from '../kafka/transactional-producer.ts';
import type { Logger } from '../logging/logger.ts';
import type { BlockCodec } from '../recordings/blob-object.ts';
import {
  decodeRecordingMessage,
  hasMessageMagic,
  MessageDecodeError,
  type RetentionClass,
} from '../recordings/message-codec.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { frameLegacyMessage, LegacyMessageError } from './legacy-message.ts';
import { SessionActivity } from './session-activity.ts';
import { SessionBatch } from './session-batch.ts';
import { type WrittenObjects, writeObjects } from './write-objects.ts';

export interface BlobSinkOptions {
  readonly store: BlobStore;
  /** Transactional producer: summary rows, DLQ records and consumer offsets commit together. */
  readonly producer: TransactionalProducer;
  readonly summaryTopic: string;
  readonly dlqTopic: string;
  /** Local directory for spool files (wiped at start: a spool never outlives its process). */
  readonly spoolDir: string;
  readonly objectPrefix: string;
  readonly codec: BlockCodec;
  /** Flush when the oldest message of the batch is this old (default 10 s). */
  readonly flushIntervalMs: number;
  /** Flush when the batch holds this many raw bytes (default 100 MB). */
  readonly flushMaxRawBytes: number;
  /** Flush early below this much free disk in the spool directory; pause fetching below half of it. */
  readonly minFreeDiskBytes: number;
  /** Retention class for envelope-less (parse path) messages, which carry none. */
  readonly legacyRetention: RetentionClass;
  /** Written into object footers: who made the object. */
  readonly writer: string;
  /** Crash tests only: a pause between writing objects and committing them (0 = none). */
  readonly faultDelayBeforeCommitMs?: number;
  readonly log: Logger;
  readonly registry: Registry;
}

/**
 * The replay blob sink: spools each session's frames, flushes one object per retention class, then commits the
 * summary rows together with the consumer offsets in one Kafka transaction. Consuming continues while a flush
 * uploads; fetching pauses when the next batch is full before the flush is done.
 */
export class BlobSink implements Sink {
  private readonly options: BlobSinkOptions;
  private readonly activity = new SessionActivity();
  private readonly metrics: ReturnType<typeof createBlobSinkMetrics>;
  /** Revocations per partition: data consumed before a revocation is never committed by this consumer. */
  private readonly epochs = new Map<string, number>();
  private consumer!: ConsumerHandle;
  private batch!: SessionBatch;
  private flushing: Promise<void> | undefined;
  private downstreamFailing = false;
  private freeDisk = Number.POSITIVE_INFINITY;
  private lastDiskCheck = 0;

  constructor(options: BlobSinkOptions) {
    this.options = options;
    this.metrics = createBlobSinkMetrics(options.registry);
  }

  async start(handle: ConsumerHandle): Promise<void> {
    this.consumer = handle;
    mkdirSync(this.options.spoolDir, { recursive: true });
    const stale = clearSpool(this.options.spoolDir);
    if (stale > 0) this.options.log.info('removed spool files of an earlier process', { files: stale });
    this.batch = this.newBatch();
  }

  async handle(messages: readonly Kafka.Message[]): Promise<void> {
    const batch = this.batch;
    for (const message of messages) {
      const epoch = this.epochs.get(`${message.topic}:${message.partition}`) ?? 0;
      batch.consumed(message.topic, message.partition, message.offset, epoch);
      const value = message.value;
      try {
        if (!value || value.length === 0) throw new MessageDecodeError('message_truncated', 'empty message');
        const { header, payload } = hasMessageMagic(value)
          ? decodeRecordingMessage(value)
          : frameLegacyMessage(value, {
              retention: this.options.legacyRetention,
              capturedAt: message.timestamp ?? Date.now(),
            });
        batch.add(message.topic, message.partition, message.offset, header, payload);
        this.metrics.rawBytes.inc(header.rawBytes);
      } catch (error) {
        if (!(error instanceof MessageDecodeError || error instanceof LegacyMessageError)) throw error;
        batch.deadLetter(
          message.topic,
          message.partition,
          deadLetterRecord(this.options.dlqTopic, message, error.code, error.message),
        );
        this.metrics.deadLetters.inc({ reason: error.code });
      }
    }
  }

  async tick(): Promise<void> {
    this.checkDisk();
    this.metrics.spoolBytes.set(this.batch.spool.bytes);
    this.metrics.batchSessions.set(this.batch.sessions.size);
    if (this.flushing || this.batch.empty) return;
    const age = Date.now() - (this.batch.firstConsumedAt ?? Date.now());
    const reason =
      this.batch.rawBytes >= this.options.flushMaxRawBytes
        ? 'size'
        : this.freeDisk < this.options.minFreeDiskBytes
          ? 'disk'
          : age >= this.options.flushIntervalMs
            ? 'age'
            : undefined;
    if (reason) this.startFlush(reason);
  }

  backpressure(): boolean {
    const full = this.batch.rawBytes >= this.options.flushMaxRawBytes;
    return (full && this.flushing !== undefined) || this.freeDisk < this.options.minFreeDiskBytes / 2;
  }

  healthy(): boolean {
    return !this.downstreamFailing;
  }

  revoked(partitions: readonly PartitionRef[]): void {
    const keys = new Set(partitions.map(partitionKey));
    for (const key of keys) this.epochs.set(key, (this.epochs.get(key) ?? 0) + 1);
    this.batch.dropPartitions(keys);
    this.activity.forget((key) => keys.has(key.slice(0, key.indexOf('/'))));
  }

  async drain(): Promise<void> {
    await this.flushing;
    if (!this.batch.empty) {
      this.startFlush('shutdown');
      await this.flushing;
    }
    this.batch.spool.discard();
  }

  private newBatch(): SessionBatch {
    return new SessionBatch(this.options.spoolDir, `${Date.now()}-${randomUUID().slice(0, 8)}`);
  }

  private checkDisk(): void {
    if (Date.now() - this.lastDiskCheck < 1000) return;
    this.lastDiskCheck = Date.now();
    const stats = statfsSync(this.options.spoolDir);
    this.freeDisk = stats.bavail * stats.bsize;
    this.metrics.freeDisk.set(this.freeDisk);
  }

  private startFlush(reason: string): void {
    const batch = this.batch;
    this.batch = this.newBatch();
    this.metrics.flushing.set(1);
    this.flushing = this.flush(batch, reason).finally(() => {
      this.flushing = undefined;
      this.metrics.flushing.set(0);
    });
  }

  /** Partitions of a batch this consumer may still commit: owned, and not revoked since their data was read. */
  private committable(batch: SessionBatch): Set<string> {
    return new Set(
      [...batch.partitions.entries()]
        .filter(([key, p]) => (this.epochs.get(key) ?? 0) === p.epoch && this.consumer.owns(p))
        .map(([key]) => key),
    );
  }

  /** Upload (retried until it succeeds), then commit rows + offsets (retried until it succeeds or nothing is left). */
  private async flush(batch: SessionBatch, reason: string): Promise<void> {
    const started = performance.now();
    const log = this.options.log;
    let written: WrittenObjects | undefined;
    for (let attempt = 0; !written; attempt++) {
      if (this.committable(batch).size === 0) break;
      try {
        const uploadStarted = performance.now();
        written = await writeObjects({
          batch,
          store: this.options.store,
          prefix: this.options.objectPrefix,
          codec: this.options.codec,
          writer: this.options.writer,
          activity: this.activity,
        });
        this.metrics.uploadSeconds.observe((performance.now() - uploadStarted) / 1000);
      } catch (error) {
        this.downstreamFailing = true;
        this.metrics.uploadErrors.inc();
        const delay = backoffDelay(attempt);
        log.warn('object upload failed; retrying', { attempt, retryInMs: Math.round(delay), error: String(error) });
        await sleep(delay);
      }
    }

    if (written) {
      log.debug('objects written; committing', { objects: written.objects.map((o) => o.key).join(',') });
      if (this.options.faultDelayBeforeCommitMs) await sleep(this.options.faultDelayBeforeCommitMs);
    }
    for (let attempt = 0; written; attempt++) {
      const committable = this.committable(batch);
      const rows = written.rows.filter((r) => committable.has(r.partition));
      const records: ProducedRecord[] = [
        ...rows.map(({ row }) => ({
          topic: this.options.summaryTopic,
          key: `${row.team_id}:${row.session_id}`,
          value: Buffer.from(JSON.stringify(row)),
        })),
        ...batch.deadLetters.filter((d) => committable.has(d.partition)).map((d) => d.record),
      ];
      const offsets = [...batch.partitions.entries()]
        .filter(([key]) => committable.has(key))
        .map(([, p]) => ({ topic: p.topic, partition: p.partition, offset: p.nextOffset }));
      if (offsets.length === 0) {
        log.info('flush dropped: its partitions were revoked', { objects: written.objects.length });
        break;
      }
      try {
        await this.options.producer.transaction(records, { offsets, consumer: this.consumer.kafkaConsumer });
        for (const a of written.activity) {
          if (committable.has(a.partition)) this.activity.commit(a.sessionKey, a.merged, a.total);
        }
        this.downstreamFailing = false;
        const rawBytes = batch.rawBytes;
        this.metrics.flushes.inc({ reason });
        this.metrics.flushSeconds.observe((performance.now() - started) / 1000);
        this.metrics.flushRawBytes.observe(rawBytes);
        this.metrics.objects.inc(written.objects.length);
        this.metrics.objectBytes.inc(written.objects.reduce((n, o) => n + o.bytes, 0));
        this.metrics.summaryRows.inc(rows.length);
        log.info('flushed', {
          reason,
          sessions: rows.length,
          objects: written.objects.length,
          rawBytes,
          storedBytes: written.objects.reduce((n, o) => n + o.bytes, 0),
          ms: Math.round(performance.now() - started),
        });
        break;
      } catch (error) {
        this.downstreamFailing = true;
        this.metrics.commitErrors.inc();
        const delay = backoffDelay(attempt);
        log.warn('summary commit failed; the objects stay, retrying the transaction', {
          attempt,
          retryInMs: Math.round(delay),
          error: String((error as Error).cause ?? error),
        });
        await sleep(delay);
      }
    }
    batch.spool.discard();
  }
}

function createBlobSinkMetrics(registry: Registry) {
  const registers = [registry];
  return {
    rawBytes: new Counter({
      name: 'blob_raw_bytes_total',
      help: 'Uncompressed rrweb JSONL bytes consumed.',
      registers,
    }),
    deadLetters: new Counter({
      name: 'blob_dead_letters_total',
      help: 'Messages sent to the DLQ, by reason.',
      labelNames: ['reason'],
      registers,
    }),
    spoolBytes: new Gauge({ name: 'blob_spool_bytes', help: 'Bytes in the current batch spool file.', registers }),
    freeDisk: new Gauge({ name: 'blob_spool_free_disk_bytes', help: 'Free disk in the spool directory.', registers }),
    batchSessions: new Gauge({ name: 'blob_batch_sessions', help: 'Sessions in the current batch.', registers }),
    flushing: new Gauge({ name: 'blob_flush_in_progress', help: '1 while a flush uploads or commits.', registers }),
    flushes: new Counter({
      name: 'blob_flushes_total',
      help: 'Committed flushes, by trigger.',
      labelNames: ['reason'],
      registers,
    }),
    flushSeconds: new Histogram({
      name: 'blob_flush_duration_seconds',
      help: 'From the start of a flush to its committed transaction.',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    flushRawBytes: new Histogram({
      name: 'blob_flush_raw_bytes',
      help: 'Raw bytes per flush.',
      buckets: [1e4, 1e5, 1e6, 1e7, 5e7, 1e8, 2e8],
      registers,
    }),
    uploadSeconds: new Histogram({
      name: 'blob_upload_duration_seconds',
      help: 'Time to write all objects of a flush.',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    uploadErrors: new Counter({
      name: 'blob_upload_errors_total',
      help: 'Failed object uploads (each retried).',
      registers,
    }),
    commitErrors: new Counter({
      name: 'blob_commit_errors_total',
      help: 'Failed summary+offset transactions (each retried).',
      registers,
    }),
    objects: new Counter({ name: 'blob_objects_total', help: 'Objects written.', registers }),
    objectBytes: new Counter({ name: 'blob_object_bytes_total', help: 'Bytes of objects written.', registers }),
    summaryRows: new Counter({ name: 'blob_summary_rows_total', help: 'Summary rows committed.', registers }),
  };
}

/** Removes spool files left by an earlier process (their data was never committed, so Kafka replays it). */
export function clearSpool(dir: string): number {
  let removed = 0;
  for (const name of readdirSync(dir, { withFileTypes: true })) {
    if (name.isFile() && name.name.endsWith('.spool')) {
      rmSync(join(dir, name.name));
      removed++;
    }
  }
  return removed;
}
