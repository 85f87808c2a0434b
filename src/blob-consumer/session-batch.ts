import type { ProducedRecord } from '../kafka/transactional-producer.ts';
import type { KafkaRange } from '../recordings/blob-object.ts';
import type { RecordingMessageHeader, RetentionClass } from '../recordings/message-codec.ts';
import { type EventsSummary, mergeSummary } from '../recordings/summary.ts';
import { Spool } from './spool.ts';

/** Everything known about one session in a batch: metadata in memory, bytes in the spool. */
export interface SessionBuffer {
  readonly key: string;
  readonly teamId: number;
  readonly sessionId: string;
  readonly distinctId: string;
  readonly retention: RetentionClass;
  readonly snapshotSource: 'web' | 'mobile';
  readonly snapshotLibrary: string;
  readonly topic: string;
  readonly partition: number;
  readonly firstOffset: number;
  lastOffset: number;
  readonly windowIds: string[];
  readonly summary: EventsSummary;
  rawBytes: number;
  messageCount: number;
  /** Spool extents of this session's frames, flattened: [offset, length, offset, length, ...]. */
  readonly extents: number[];
}

export const sessionKey = (teamId: number, sessionId: string) => `${teamId}:${sessionId}`;
const partitionKeyOf = (topic: string, partition: number) => `${topic}:${partition}`;

/**
 * The sessions consumed since the last flush. Payload frames are appended to one spool file as messages arrive;
 * memory holds per-session metadata and extents only. `partitionEpoch` is the revocation count of each partition when
 * its data entered this batch: a flush commits a partition only if it has not been revoked since.
 */
export class SessionBatch {
  readonly id: string;
  /** When the first message entered the batch: the flush interval bounds this age, so no message waits longer. */
  firstConsumedAt: number | undefined;
  readonly sessions = new Map<string, SessionBuffer>();
  /** Next offset to read per partition, and the partition's revocation epoch when first seen in this batch. */
  readonly partitions = new Map<string, { topic: string; partition: number; nextOffset: number; epoch: number }>();
  readonly deadLetters: { partition: string; record: ProducedRecord }[] = [];
  readonly spool: Spool;
  rawBytes = 0;
  messageCount = 0;

  constructor(spoolDir: string, id: string) {
    this.id = id;
    this.spool = new Spool(spoolDir, `${id}.spool`);
  }

  /** Marks a message as consumed (for offsets), whatever became of it. */
  consumed(topic: string, partition: number, offset: number, epoch: number): void {
    this.firstConsumedAt ??= Date.now();
    const key = partitionKeyOf(topic, partition);
    const known = this.partitions.get(key);
    if (known) known.nextOffset = Math.max(known.nextOffset, offset + 1);
    else this.partitions.set(key, { topic, partition, nextOffset: offset + 1, epoch });
  }

  add(topic: string, partition: number, offset: number, header: RecordingMessageHeader, payload: Buffer): void {
    const at = this.spool.append(payload);
    const key = sessionKey(header.teamId, header.sessionId);
    let session = this.sessions.get(key);
    if (!session) {
      session = {
        key,
        teamId: header.teamId,
        sessionId: header.sessionId,
        distinctId: header.distinctId,
        retention: header.retention,
        snapshotSource: header.snapshotSource,
        snapshotLibrary: header.snapshotLibrary,
        topic,
        partition,
        firstOffset: offset,
        lastOffset: offset,
        // The decoded header is this batch's own object: it becomes the session's running summary (no copy),
        // which keeps memory per open session small.
        windowIds: header.windowIds,
        summary: header as EventsSummary,
        rawBytes: header.rawBytes,
        messageCount: 1,
        extents: [at, payload.length],
      };
      this.sessions.set(key, session);
    } else {
      mergeSummary(session.summary, header);
      for (const id of header.windowIds) if (!session.windowIds.includes(id)) session.windowIds.push(id);
      session.lastOffset = offset;
      session.rawBytes += header.rawBytes;
      session.messageCount++;
      const extents = session.extents;
      // Frames of one session often land back to back: extend the last extent instead of adding one.
      if (extents[extents.length - 2]! + extents[extents.length - 1]! === at)
        extents[extents.length - 1]! += payload.length;
      else extents.push(at, payload.length);
    }
    this.rawBytes += header.rawBytes;
    this.messageCount++;
  }

  deadLetter(topic: string, partition: number, record: ProducedRecord): void {
    this.deadLetters.push({ partition: partitionKeyOf(topic, partition), record });
  }

  /** Forgets everything from these partitions (revoked: their next owner reads them again). */
  dropPartitions(keys: ReadonlySet<string>): void {
    for (const [key, session] of this.sessions) {
      if (keys.has(partitionKeyOf(session.topic, session.partition))) {
        this.sessions.delete(key);
        this.rawBytes -= session.rawBytes;
      }
    }
    for (const key of keys) this.partitions.delete(key);
    for (let i = this.deadLetters.length - 1; i >= 0; i--) {
      if (keys.has(this.deadLetters[i]!.partition)) this.deadLetters.splice(i, 1);
    }
  }

  kafkaRange(session: SessionBuffer): KafkaRange {
    return {
      topic: session.topic,
      partition: session.partition,
      firstOffset: session.firstOffset,
      lastOffset: session.lastOffset,
    };
  }

  get empty(): boolean {
    return this.partitions.size === 0;
  }
}
