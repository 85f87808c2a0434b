import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { SessionActivity } from '../../src/blob-consumer/session-activity.ts';
import { SessionBatch } from '../../src/blob-consumer/session-batch.ts';
import { writeObjects } from '../../src/blob-consumer/write-objects.ts';
import { buildRecordingMessages } from '../../src/capture/build-messages.ts';
import { decodeRecordingMessage } from '../../src/recordings/message-codec.ts';
import type { SummaryRow } from '../../src/recordings/summary-row.ts';
import type { BlobStore } from '../../src/storage/blob-store.ts';
import { FsBlobStore } from '../../src/storage/fs-blob-store.ts';
import type { Team } from '../../src/teams/team-store.ts';
import { syntheticSession } from './expected-summary.ts';

const DAY_MS = 86_400_000;

/**
 * Midnight UTC `days` days before today. Fixtures start from it rather than from a fixed date: the API answers
 * recording_expired for, and the table's TTL (0014) deletes, a session whose start plus its retention is past.
 */
export function utcMidnightDaysAgo(days: number): number {
  return (Math.floor(Date.now() / DAY_MS) - days) * DAY_MS;
}

/** When `liveRows` sessions start: 09:00 UTC ten days ago (session i at 09:00 + i hours, all on that day). */
export const liveRowsStart = utcMidnightDaysAgo(10) + 9 * 3_600_000;

/**
 * Writes objects as the live path does: one flush (one object per retention class) per entry of `flushes`, each
 * holding the given sessions' events, with activity carried across blocks. Returns the summary rows.
 */
export async function writeFlushes(options: {
  readonly dir: string;
  readonly team: Team;
  readonly store: BlobStore;
  readonly flushes: readonly (readonly {
    readonly sessionId: string;
    readonly events: readonly unknown[];
    /** Default `u`. */
    readonly distinctId?: string;
  }[])[];
  /** The flush time of flush `i` (object keys and footers). */
  readonly now: (flush: number) => number;
}): Promise<SummaryRow[]> {
  const activity = new SessionActivity();
  const rows: SummaryRow[] = [];
  let offset = 0;
  for (const [flush, sessions] of options.flushes.entries()) {
    const batch = new SessionBatch(options.dir, `flush-${randomUUID()}`);
    for (const { sessionId, events, distinctId = 'u' } of sessions) {
      for (const m of buildRecordingMessages(
        {
          team: options.team,
          sessionId,
          distinctId,
          snapshotSource: 'web',
          snapshotLibrary: 'web',
          events: events.map((event) => ({ windowId: 'w', event: event as never })),
        },
        { maxMessageBytes: 1 << 20, requestId: 'r', capturedAt: options.now(flush) },
      )) {
        const { header, payload } = decodeRecordingMessage(m.value);
        batch.add('t', 0, offset, header, payload);
        batch.consumed('t', 0, offset++, 0);
      }
    }
    const written = await writeObjects({
      batch,
      store: options.store,
      prefix: 'rec',
      codec: 'lz4-frame',
      writer: 'w',
      activity,
      now: options.now(flush),
    });
    for (const a of written.activity) activity.commit(a.sessionKey, a.merged, a.total);
    rows.push(...written.rows.map((r) => r.row));
    batch.spool.discard();
  }
  return rows;
}

/**
 * Summary rows as the live path makes them: 12 sessions spread over three flushes (one object each), activity carried
 * across blocks. Objects go to `store` (default: a filesystem store under `dir`).
 */
export async function liveRows(dir: string, teamId: number, store: BlobStore = new FsBlobStore(join(dir, 'blobs'))) {
  const team: Team = {
    id: teamId,
    name: 't',
    apiToken: 'x',
    sessionRecordingEnabled: true,
    retention: '90d',
    consoleLogCaptureEnabled: true,
  };
  const sessions = Array.from({ length: 12 }, (_, i) => ({
    id: `session-${i}`,
    events: syntheticSession(300 + i, liveRowsStart + i * 3_600_000, 90),
  }));
  const flushes = [0, 1, 2].map((flush) =>
    sessions.map((s) => ({ sessionId: s.id, events: s.events.slice(flush * 31, (flush + 1) * 31) })),
  );
  const rows = await writeFlushes({ dir, team, store, flushes, now: () => liveRowsStart });
  return { sessions, rows };
}
