import { randomBytes } from 'node:crypto';
import { asReplayError, type ReplayError } from '../errors/index.ts';
import type { ActiveInterval } from '../recordings/activity.ts';
import {
  type BlockCodec,
  type BlockEntry,
  encodeFooter,
  OBJECT_FORMAT_VERSION,
  zstdBlock,
} from '../recordings/blob-object.ts';
import type { RetentionClass } from '../recordings/message-codec.ts';
import { type SummaryRow, summaryRow } from '../recordings/summary-row.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import type { SessionActivity } from './session-activity.ts';
import type { SessionBatch, SessionBuffer } from './session-batch.ts';

export interface WrittenObjects {
  readonly objects: { readonly key: string; readonly bytes: number; readonly blocks: number }[];
  /** One summary row per block, with the partition it came from (rows of revoked partitions are dropped later). */
  readonly rows: { readonly partition: string; readonly row: SummaryRow }[];
  /** Activity state to record once the rows are committed. */
  readonly activity: {
    readonly partition: string;
    readonly sessionKey: string;
    readonly merged: ActiveInterval[];
    readonly total: number;
  }[];
  /** Sessions whose block or row could not be built (poison): left out of the objects, for the DLQ. */
  readonly quarantined: { readonly session: SessionBuffer; readonly stored: Buffer; readonly error: ReplayError }[];
}

/** `{prefix}/{retention}/{yyyy}/{mm}/{dd}/{epochMillis}-{random}` (DESIGN §3.3): lifecycle rules expire prefixes. */
export function objectKey(prefix: string, retention: RetentionClass, now: number): string {
  const date = new Date(now).toISOString();
  const [yyyy, mm, dd] = [date.slice(0, 4), date.slice(5, 7), date.slice(8, 10)];
  return `${prefix}/${retention}/${yyyy}/${mm}/${dd}/${now}-${randomBytes(6).toString('hex')}`;
}

/** Copies one session's spooled bytes out of the spool, in spool order (= offset order). */
function sessionBytes(batch: SessionBatch, session: SessionBuffer): Buffer {
  let total = 0;
  for (let i = 1; i < session.extents.length; i += 2) total += session.extents[i]!;
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (let i = 0; i < session.extents.length; i += 2) {
    batch.spool.readInto(session.extents[i]!, session.extents[i + 1]!, out, at);
    at += session.extents[i + 1]!;
  }
  return out;
}

/**
 * The flush's storage half: one object per retention class holding every session of the batch as a block, closed
 * by a footer index. Blocks are the frames capture produced, concatenated (`lz4-frame`), or the JSONL the spool holds
 * compressed with zstd (`zstd`). Each session's block and summary row are built and checked before its bytes go out,
 * so a session that cannot be encoded (poison) is left out and reported in `quarantined`, and the rest is written.
 */
export async function writeObjects(options: {
  readonly batch: SessionBatch;
  readonly store: BlobStore;
  readonly prefix: string;
  readonly codec: BlockCodec;
  readonly writer: string;
  readonly activity: SessionActivity;
  readonly now?: number;
}): Promise<WrittenObjects> {
  const { batch, store, codec, activity } = options;
  const now = options.now ?? Date.now();
  const byRetention = new Map<RetentionClass, SessionBuffer[]>();
  for (const session of batch.sessions.values()) {
    const group = byRetention.get(session.retention);
    if (group) group.push(session);
    else byRetention.set(session.retention, [session]);
  }

  const result: WrittenObjects = { objects: [], rows: [], activity: [], quarantined: [] };
  for (const [retention, sessions] of byRetention) {
    sessions.sort(
      (a, b) => a.teamId - b.teamId || (a.sessionId < b.sessionId ? -1 : a.sessionId > b.sessionId ? 1 : 0),
    );
    const key = objectKey(options.prefix, retention, now);
    const writer = store.newObject(key);
    const blocks: BlockEntry[] = [];
    const written: SessionBuffer[] = [];
    let position = 0;
    try {
      for (const session of sessions) {
        const stored = sessionBytes(batch, session);
        const partition = `${session.topic}:${session.partition}`;
        // Activity is keyed by partition too, so a revocation can forget exactly the partition's sessions.
        const activityKey = `${partition}/${session.key}`;
        let bytes: Buffer;
        let block: BlockEntry;
        let preview: ReturnType<SessionActivity['preview']>;
        try {
          bytes = codec === 'zstd' ? zstdBlock(stored) : stored;
          preview = activity.preview(activityKey, session.summary.activeIntervals);
          block = blockEntry(session, batch, codec, position, bytes.length, preview.share);
          summaryRow(block, 'check://', retention); // throws summary_row_invalid before anything is written
        } catch (error) {
          const known = asReplayError(error);
          if (known.errorClass !== 'poison') throw known;
          result.quarantined.push({ session, stored, error: known });
          continue;
        }
        await writer.write(bytes);
        result.activity.push({ partition, sessionKey: activityKey, merged: preview.merged, total: preview.total });
        blocks.push(block);
        written.push(session);
        position += bytes.length;
      }
      if (blocks.length === 0) {
        await writer.abort(); // every session of this class was quarantined: no object
        continue;
      }
      await writer.write(
        encodeFooter({ version: OBJECT_FORMAT_VERSION, createdAt: now, retention, writer: options.writer, blocks }),
      );
      const finished = await writer.finish();
      result.objects.push({ key, bytes: finished.bytes, blocks: blocks.length });
    } catch (error) {
      await writer.abort();
      throw error;
    }
    for (const [i, block] of blocks.entries()) {
      const session = written[i]!;
      const url = `${store.urlOf(key)}?range=bytes=${block.start}-${block.end}`;
      result.rows.push({ partition: `${session.topic}:${session.partition}`, row: summaryRow(block, url, retention) });
    }
  }
  return result;
}

function blockEntry(
  session: SessionBuffer,
  batch: SessionBatch,
  codec: BlockCodec,
  start: number,
  length: number,
  activeMilliseconds: number,
): BlockEntry {
  const s = session.summary;
  return {
    teamId: session.teamId,
    sessionId: session.sessionId,
    distinctId: session.distinctId,
    start,
    end: start + length - 1,
    codec,
    snapshotSource: session.snapshotSource,
    snapshotLibrary: session.snapshotLibrary,
    windowIds: session.windowIds,
    firstTimestamp: s.firstTimestamp,
    lastTimestamp: s.lastTimestamp,
    eventCount: s.eventCount,
    messageCount: session.messageCount,
    rawBytes: session.rawBytes,
    clickCount: s.clickCount,
    keypressCount: s.keypressCount,
    mouseActivityCount: s.mouseActivityCount,
    consoleLogCount: s.consoleLogCount,
    consoleWarnCount: s.consoleWarnCount,
    consoleErrorCount: s.consoleErrorCount,
    activeMilliseconds,
    activeIntervals: s.activeIntervals,
    firstUrl: s.firstUrl,
    firstUrlTimestamp: s.firstUrlTimestamp,
    urls: s.urls,
    kafka: [batch.kafkaRange(session)],
  };
}
