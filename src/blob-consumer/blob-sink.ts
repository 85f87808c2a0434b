import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import type Kafka from 'node-rdkafka';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { decompressLz4Frames, scanLz4Frames } from '../codec/lz4-frames.ts';
import { backoffDelay, sleep } from '../consumer/backoff.ts';
import { deadLetterRecord, quarantinedSessionRecord } from '../consumer/dead-letter.ts';
import { RecentKeys } from '../consumer/recent-keys.ts';
import { type ConsumerHandle, type PartitionRef, partitionKey, type Sink } from '../consumer/sink.ts';
import { asReplayError, ReplayError } from '../errors/index.ts';
import type { ProducedRecord, TransactionalProducer } from '../kafka/transactional-producer.ts';
import type { Logger } from '../logging/logger.ts';
import type { BlockCodec } from '../recordings/blob-object.ts';
import {
  type DecodedRecordingMessage,
  decodeRecordingMessage,
  hasMessageMagic,
  type RecordingMessageHeader,
  type RetentionClass,
} from '../recordings/message-codec.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { frameLegacyMessage } from './legacy-message.ts';
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
  /** A flush still uploading or committing after this long turns `/readyz` not ready (default 60 s). */
  readonly flushDeadlineMs?: number;
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
 * uploads; fetching pauses when the next batch is full before the flush is done, and when the spool disk runs low.
 *
 * Every message is checked when it is taken (envelope, header bounds, payload frames), so what the spool holds can
 * always be written; a message that fails a check is poison and goes to the DLQ in the same transaction as its
 * offset. A full disk (ENOSPC, or free space below half of `minFreeDiskBytes`) is `disk_full`: the message is not
 * taken, and the framework offers it again after a backoff, once a flush has freed the spool.
 */
export class BlobSink implements Sink {
  private readonly options: BlobSinkOptions;
  private readonly activity = new SessionActivity();
  private readonly recentRequests = new RecentKeys();
  private readonly metrics: ReturnType<typeof createBlobSinkMetrics>;
  /** Revocations per partition: data consumed before a revocation is never committed by this consumer. */
  private readonly epochs = new Map<string, number>();
  private consumer!: ConsumerHandle;
  private batch!: SessionBatch;
  private flushing: Promise<void> | undefined;
  private flushingBatch: SessionBatch | undefined;
  private flushStartedAt = 0;
  private downstreamFailing = false;
  private failed = false;
  private freeDisk = Number.POSITIVE_INFINITY;
  private lastDiskCheck = 0;
  /** Bytes an append needed when it met ENOSPC: intake waits until twice that much is free again. */
  private diskFullNeed = 0;

  constructor(options: BlobSinkOptions) {
    this.options = options;
    this.metrics = createBlobSinkMetrics(options.registry);
    this.metrics.minFreeDisk.set(options.minFreeDiskBytes);
  }

  async start(handle: ConsumerHandle): Promise<void> {
    this.consumer = handle;
    mkdirSync(this.options.spoolDir, { recursive: true });
    const stale = clearSpool(this.options.spoolDir);
    if (stale > 0) this.options.log.info('removed spool files of an earlier process', { files: stale });
    this.batch = this.newBatch();
  }

  take(message: Kafka.Message): void {
    const value = message.value;
    if (!value || value.length === 0) throw new ReplayError('message_truncated', 'empty message');
    const { header, payload, payloadCrc32 }: DecodedRecordingMessage = hasMessageMagic(value)
      ? decodeRecordingMessage(value)
      : frameLegacyMessage(value, {
          retention: this.options.legacyRetention,
          capturedAt: message.timestamp ?? Date.now(),
        });
    const partition = `${message.topic}:${message.partition}`;
    // A copy is the same request part with the same bytes: capture names a request by its content, and the payload
    // CRC keeps another producer that reuses ids from losing data. Legacy and version-1 messages have no such key.
    const requestKey =
      payloadCrc32 === undefined
        ? undefined
        : `${header.teamId}/${header.sessionId}/${header.requestId}/${header.part}/${payloadCrc32}`;
    if (requestKey !== undefined && this.recentRequests.has(partition, requestKey)) {
      // A client's retry of a request already taken: its offset moves on, its events are not stored twice.
      this.batch.consumed(message.topic, message.partition, message.offset, this.epochOf(message));
      this.metrics.duplicateRequests.inc();
      return;
    }
    const spooled = this.spooledBytes(header, payload);
    this.checkDisk();
    if (this.diskLow()) {
      throw new ReplayError('disk_full', `spool disk has ${this.freeDisk} bytes free; waiting for a flush`);
    }
    const batch = this.batch;
    try {
      batch.add(message.topic, message.partition, message.offset, header, spooled);
    } catch (error) {
      const known = asReplayError(error);
      if (known.code === 'disk_full') {
        this.diskFullNeed = spooled.length;
        this.lastDiskCheck = 0;
      }
      throw known;
    }
    // Recorded only once the message is in the spool: an offset never moves past data the batch does not hold.
    batch.consumed(message.topic, message.partition, message.offset, this.epochOf(message));
    if (requestKey !== undefined) this.recentRequests.record(partition, requestKey);
    this.metrics.rawBytes.inc(header.rawBytes);
  }

  quarantine(message: Kafka.Message, error: ReplayError): void {
    this.batch.deadLetter(message.topic, message.partition, deadLetterRecord(this.options.dlqTopic, message, error));
    this.batch.consumed(message.topic, message.partition, message.offset, this.epochOf(message));
    this.metrics.deadLetters.inc({ reason: error.code });
  }

  async settle(partitions: readonly PartitionRef[]): Promise<void> {
    const batch = this.flushingBatch;
    if (batch && partitions.some((p) => batch.partitions.has(partitionKey(p)))) await this.flushing;
  }

  private epochOf(message: Kafka.Message): number {
    return this.epochs.get(`${message.topic}:${message.partition}`) ?? 0;
  }

  /**
   * What the spool keeps of a message: its LZ4 frames as they came (checked frame by frame, not decoded: the fast
   * path), or for the zstd codec the JSONL they decode to (decoded once here, so damage is caught per message).
   */
  private spooledBytes(header: RecordingMessageHeader, payload: Buffer): Buffer {
    if (this.options.codec !== 'zstd') {
      scanLz4Frames(payload);
      return payload;
    }
    const jsonl = decompressLz4Frames(payload);
    if (jsonl.length !== header.rawBytes) {
      throw new ReplayError(
        'payload_corrupt',
        `payload holds ${jsonl.length} bytes, its header says ${header.rawBytes}`,
      );
    }
    return jsonl;
  }

  private diskLow(): boolean {
    if (this.diskFullNeed > 0) return true;
    return this.options.minFreeDiskBytes > 0 && this.freeDisk < this.options.minFreeDiskBytes / 2;
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
        : this.freeDisk < this.options.minFreeDiskBytes || this.diskFullNeed > 0
          ? 'disk'
          : age >= this.options.flushIntervalMs
            ? 'age'
            : undefined;
    if (reason) this.startFlush(reason);
  }

  backpressure(): boolean {
    const full = this.batch.rawBytes >= this.options.flushMaxRawBytes;
    return (full && this.flushing !== undefined) || this.diskLow();
  }

  /** Downstream works, and no flush has been running past its deadline (a hung upload is reported, not hidden). */
  healthy(): boolean {
    const overdue =
      this.flushing !== undefined && Date.now() - this.flushStartedAt > (this.options.flushDeadlineMs ?? 60_000);
    return !this.downstreamFailing && !overdue && !this.failed;
  }

  revoked(partitions: readonly PartitionRef[]): void {
    const keys = new Set(partitions.map(partitionKey));
    for (const key of keys) this.epochs.set(key, (this.epochs.get(key) ?? 0) + 1);
    this.batch.dropPartitions(keys);
    this.activity.forget((key) => keys.has(key.slice(0, key.indexOf('/'))));
    this.recentRequests.forget((partition) => keys.has(partition));
  }

  async drain(): Promise<void> {
    await this.flushing;
    if (!this.batch.empty && !this.failed) {
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
    // After ENOSPC, intake resumes once the append that failed fits twice over (so one message does not flap it).
    if (this.diskFullNeed > 0 && this.freeDisk > 2 * this.diskFullNeed) this.diskFullNeed = 0;
  }

  private startFlush(reason: string): void {
    const batch = this.batch;
    this.batch = this.newBatch();
    this.metrics.flushing.set(1);
    this.flushingBatch = batch;
    this.flushStartedAt = Date.now();
    this.flushing = this.flush(batch, reason).finally(() => {
      this.flushing = undefined;
      this.flushingBatch = undefined;
      this.metrics.flushing.set(0);
      this.lastDiskCheck = 0; // the spool was just freed
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

  /**
   * Upload (retried until it succeeds), then commit rows + DLQ records + offsets (retried until it succeeds or nothing
   * is left). A commit whose outcome is unknown is resolved before anything is sent again: once the producer is ready
   * again, the group's committed offsets say whether the transaction made it.
   */
  private async flush(batch: SessionBatch, reason: string): Promise<void> {
    const started = performance.now();
    const log = this.options.log;
    let written: WrittenObjects | undefined;
    for (let attempt = 0; !written && !this.failed; attempt++) {
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
        const known = asReplayError(error);
        if (known.errorClass === 'fatal') return this.fatal(known);
        this.downstreamFailing = true;
        this.metrics.uploadErrors.inc();
        const delay = backoffDelay(attempt);
        log.warn('object upload failed; retrying', {
          attempt,
          code: known.code,
          retryInMs: Math.round(delay),
          error: known.message,
        });
        await sleep(delay);
      }
    }

    if (written) {
      for (const { session, stored, error } of written.quarantined) {
        const partition = `${session.topic}:${session.partition}`;
        batch.deadLetter(
          session.topic,
          session.partition,
          quarantinedSessionRecord(this.options.dlqTopic, batch.kafkaRange(session), session, stored, error),
        );
        this.metrics.deadLetters.inc({ reason: error.code });
        log.warn('session quarantined at flush', { partition, session: session.sessionId, code: error.code });
      }
      log.debug('objects written; committing', { objects: written.objects.map((o) => o.key).join(',') });
      if (this.options.faultDelayBeforeCommitMs) await sleep(this.options.faultDelayBeforeCommitMs);
    }
    let verify = false;
    for (let attempt = 0; written && !this.failed; attempt++) {
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
        if (verify) {
          if (!this.options.producer.ready) throw new ReplayError('kafka_unavailable', 'producer still recovering');
          verify = false;
          if (await this.alreadyCommitted(offsets)) {
            this.metrics.commitsResolved.inc({ outcome: 'committed' });
            log.info('flush outcome resolved: its transaction had committed', { partitions: offsets.length });
          } else {
            this.metrics.commitsResolved.inc({ outcome: 'not_committed' });
            log.info('flush outcome resolved: its transaction had not committed; sending it again');
            await this.options.producer.transaction(records, { offsets, consumer: this.consumer.kafkaConsumer });
          }
        } else {
          await this.options.producer.transaction(records, { offsets, consumer: this.consumer.kafkaConsumer });
        }
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
        const known = asReplayError(error);
        if (known.errorClass === 'fatal') return this.fatal(known);
        if (known.code === 'kafka_commit_unknown') verify = true;
        this.downstreamFailing = true;
        this.metrics.commitErrors.inc();
        const delay = backoffDelay(attempt);
        log.warn('summary commit failed; the objects stay, retrying the transaction', {
          attempt,
          code: known.code,
          retryInMs: Math.round(delay),
          error: String((error as Error).cause ?? error),
        });
        await sleep(delay);
      }
    }
    batch.spool.discard();
  }

  /** True when the group's committed offsets already cover `offsets` (the transaction that carried them committed). */
  private async alreadyCommitted(offsets: readonly (PartitionRef & { offset: number })[]): Promise<boolean> {
    const committed = await this.consumer.committed(offsets);
    const at = new Map(committed.map((c) => [partitionKey(c), c.offset]));
    return offsets.every((o) => (at.get(partitionKey(o)) ?? -1) >= o.offset);
  }

  /** Fenced (another instance took over): nothing more is written; the consumer stops and the process exits. */
  private fatal(error: ReplayError): void {
    this.failed = true;
    this.consumer.fail(error);
  }
}

/** This component's metrics (docs/metrics.md is generated from these factories). */
export function createBlobSinkMetrics(registry: Registry) {
  const registers = [registry];
  return {
    rawBytes: new Counter({
      name: 'blob_raw_bytes_total',
      help: 'Uncompressed rrweb JSONL bytes consumed.',
      registers,
    }),
    duplicateRequests: new Counter({
      name: 'blob_duplicate_requests_total',
      help: 'Messages dropped as a copy of a capture request already taken (a client resending an unanswered request).',
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
    minFreeDisk: new Gauge({
      name: 'blob_spool_min_free_disk_bytes',
      help: 'The free-disk watermark (BLOB_MIN_FREE_DISK_BYTES): below it a flush starts early, below half of it fetching pauses.',
      registers,
    }),
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
    commitsResolved: new Counter({
      name: 'blob_commit_outcomes_resolved_total',
      help: 'Transactions whose commit outcome was unknown, resolved from the group offsets before anything was re-sent.',
      labelNames: ['outcome'],
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
