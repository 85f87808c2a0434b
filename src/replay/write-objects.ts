import { randomBytes } from 'node:crypto';
import { decompressLz4Frames } from '../codec/lz4-frames.ts';
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
}

/** `{prefix}/{retention}/{yyyy}/{mm}/{dd}/{epochMillis}-{random}` (DESIGN §3.3): lifecycle rules expire prefixes. */
export function objectKey(prefix: string, retention: RetentionClass, now: number): string {
  const date = new Date(now).toISOString();
  const [yyyy, mm, dd] = [date.slice(0, 4), date.slice(5, 7), date.slice(8, 10)];
  return `${prefix}/${retention}/${yyyy}/${mm}/${dd}/${now}-${randomBytes(6).toString('hex')}`;
}

/** Copies one session's frames out of the spool, in spool order (= offset order). */
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
 * by a footer index. Blocks are the frames capture produced, concatenated (`lz4-frame`), or recompressed (`zstd`).
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

  const result: WrittenObjects = { objects: [], rows: [], activity: [] };
  for (const [retention, sessions] of byRetention) {
    sessions.sort(
      (a, b) => a.teamId - b.teamId || (a.sessionId < b.sessionId ? -1 : a.sessionId > b.sessionId ? 1 : 0),
    );
    const key = objectKey(options.prefix, retention, now);
    const writer = store.newObject(key);
    const blocks: BlockEntry[] = [];
    let position = 0;
    try {
      for (const session of sessions) {
        const frames = sessionBytes(batch, session);
        const bytes = codec === 'zstd' ? zstdBlock(decompressLz4Frames(frames)) : frames;
        await writer.write(bytes);
        // Activity is keyed by partition too, so a revocation can forget exactly the partition's sessions.
        const partition = `${session.topic}:${session.partition}`;
        const activityKey = `${partition}/${session.key}`;
        const { share, merged, total } = activity.preview(activityKey, session.summary.activeIntervals);
        result.activity.push({ partition, sessionKey: activityKey, merged, total });
        const s = session.summary;
        blocks.push({
          teamId: session.teamId,
          sessionId: session.sessionId,
          distinctId: session.distinctId,
          start: position,
          end: position + bytes.length - 1,
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
          activeMilliseconds: share,
          activeIntervals: s.activeIntervals,
          firstUrl: s.firstUrl,
          firstUrlTimestamp: s.firstUrlTimestamp,
          urls: s.urls,
          kafka: [batch.kafkaRange(session)],
        });
        position += bytes.length;
      }
      await writer.write(
        encodeFooter({ version: OBJECT_FORMAT_VERSION, createdAt: now, retention, writer: options.writer, blocks }),
      );
      const written = await writer.finish();
      result.objects.push({ key, bytes: written.bytes, blocks: blocks.length });
    } catch (error) {
      await writer.abort();
      throw error;
    }
    for (const [i, block] of blocks.entries()) {
      const session = sessions[i]!;
      const url = `${store.urlOf(key)}?range=bytes=${block.start}-${block.end}`;
      result.rows.push({ partition: `${session.topic}:${session.partition}`, row: summaryRow(block, url, retention) });
    }
  }
  return result;
}
