import { join } from 'node:path';
import { buildRecordingMessages } from '../../src/capture/build-messages.ts';
import { decodeRecordingMessage } from '../../src/recordings/message-codec.ts';
import type { SummaryRow } from '../../src/recordings/summary-row.ts';
import { SessionActivity } from '../../src/replay/session-activity.ts';
import { SessionBatch } from '../../src/replay/session-batch.ts';
import { writeObjects } from '../../src/replay/write-objects.ts';
import type { BlobStore } from '../../src/storage/blob-store.ts';
import { FsBlobStore } from '../../src/storage/fs-blob-store.ts';
import { syntheticSession } from './expected-summary.ts';

const base = Date.UTC(2026, 10, 18, 9, 0, 0);

/**
 * Summary rows as the live path makes them: sessions spread over three flushes (one object each), activity carried
 * across blocks. Objects go to `store` (default: a filesystem store under `dir`).
 */
export async function liveRows(dir: string, teamId: number, store: BlobStore = new FsBlobStore(join(dir, 'blobs'))) {
  const team = {
    id: teamId,
    name: 't',
    apiToken: 'x',
    sessionRecordingEnabled: true,
    retention: '90d' as const,
    consoleLogCaptureEnabled: true,
  };
  const sessions = Array.from({ length: 12 }, (_, i) => ({
    id: `session-${i}`,
    events: syntheticSession(300 + i, base + i * 3_600_000, 90),
  }));
  const activity = new SessionActivity();
  const rows: SummaryRow[] = [];
  let offset = 0;
  for (let flush = 0; flush < 3; flush++) {
    const batch = new SessionBatch(dir, `b${flush}`);
    for (const s of sessions) {
      const chunk = s.events.slice(flush * 31, (flush + 1) * 31);
      for (const m of buildRecordingMessages(
        {
          team,
          sessionId: s.id,
          distinctId: 'u',
          snapshotSource: 'web',
          snapshotLibrary: 'web',
          events: chunk.map((event) => ({ windowId: 'w', event: event as never })),
        },
        { maxMessageBytes: 1 << 20, requestId: 'r', capturedAt: base },
      )) {
        const { header, payload } = decodeRecordingMessage(m.value);
        batch.consumed('t', 0, offset, 0);
        batch.add('t', 0, offset++, header, payload);
      }
    }
    const written = await writeObjects({
      batch,
      store,
      prefix: 'rec',
      codec: 'lz4-frame',
      writer: 'w',
      activity,
      now: base,
    });
    for (const a of written.activity) activity.commit(a.sessionKey, a.merged, a.total);
    rows.push(...written.rows.map((r) => r.row));
    batch.spool.discard();
  }
  return { sessions, rows };
}
