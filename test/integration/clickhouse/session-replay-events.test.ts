import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRecordingMessages } from '../../../src/capture/build-messages.ts';
import { openClickHouse } from '../../../src/clickhouse/client.ts';
import { migrateClickHouse } from '../../../src/clickhouse/migrations.ts';
import { insertSummaryRows } from '../../../src/clickhouse/session-replay-events.ts';
import { decodeRecordingMessage } from '../../../src/recordings/message-codec.ts';
import { clickhouseTime, type SummaryRow } from '../../../src/recordings/summary-row.ts';
import { SessionActivity } from '../../../src/replay/session-activity.ts';
import { SessionBatch } from '../../../src/replay/session-batch.ts';
import { writeObjects } from '../../../src/replay/write-objects.ts';
import { FsBlobStore } from '../../../src/storage/fs-blob-store.ts';
import { expectedSummary, syntheticSession } from '../../support/expected-summary.ts';

const team = {
  id: 42,
  name: 't',
  apiToken: 'x',
  sessionRecordingEnabled: true,
  retention: '90d' as const,
  consoleLogCaptureEnabled: true,
};
const base = Date.UTC(2026, 10, 18, 9, 0, 0);

/** Summary rows as the live path makes them: sessions spread over three flushes, activity carried across blocks. */
async function liveRows(dir: string) {
  const sessions = Array.from({ length: 12 }, (_, i) => ({
    id: `session-${i}`,
    events: syntheticSession(300 + i, base + i * 3_600_000, 90),
  }));
  const store = new FsBlobStore(join(dir, 'blobs'));
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

describe('session_replay_events on the ClickHouse engine (chDB)', () => {
  let dir: string;
  let clickhouse: ClickHouseClient;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'replay-ch-'));
    clickhouse = openClickHouse({ kind: 'chdb', path: join(dir, 'db') });
  });
  afterAll(async () => {
    await clickhouse.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('migrates idempotently, also when run twice at once', async () => {
    const [first, second] = await Promise.all([migrateClickHouse(clickhouse), migrateClickHouse(clickhouse)]);
    expect([...first, ...second]).toContain('0001_session_replay_events.sql');
    const schema = async () =>
      await (
        await clickhouse.query({
          query:
            "SELECT name, create_table_query FROM system.tables WHERE database = currentDatabase() AND name LIKE 'session_replay%' ORDER BY name",
          format: 'JSONEachRow',
        })
      ).json();
    const before = await schema();
    expect(await migrateClickHouse(clickhouse)).toEqual([]);
    expect(await schema()).toEqual(before);
    expect(before).toHaveLength(2);
  });

  it('merges rows inserted in many parts into values equal to those computed from the events', async () => {
    const { sessions, rows } = await liveRows(dir);
    // Every block row its own insert, in shuffled order: many parts for the engine to merge.
    const shuffled = [...rows].sort((a, b) => (a.block_url < b.block_url ? 1 : -1));
    for (const [i, row] of shuffled.entries()) await insertSummaryRows(clickhouse, [row], `part-${i}`);
    await clickhouse.command({ query: 'OPTIMIZE TABLE session_replay_events FINAL' });

    const merged = await (
      await clickhouse.query({
        query: `SELECT session_id, count() OVER (PARTITION BY session_id) AS stored_rows, min_first_timestamp, max_last_timestamp,
                  block_first_timestamps, block_last_timestamps, block_urls, finalizeAggregation(first_url) AS first_url, all_urls,
                  click_count, keypress_count, mouse_activity_count, active_milliseconds, console_log_count,
                  console_warn_count, console_error_count, event_count, message_count, size, retention_period_days,
                  finalizeAggregation(snapshot_source) AS snapshot_source
                FROM session_replay_events WHERE team_id = 42 ORDER BY session_id`,
        format: 'JSONEachRow',
      })
    ).json<Record<string, unknown>>();
    expect(merged).toHaveLength(sessions.length);
    for (const session of sessions) {
      const row = merged.find((r) => r.session_id === session.id)!;
      const expected = expectedSummary(session.events);
      expect(row).toMatchObject({
        stored_rows: 1,
        min_first_timestamp: clickhouseTime(expected.firstTimestamp),
        max_last_timestamp: clickhouseTime(expected.lastTimestamp),
        first_url: expected.firstUrl,
        click_count: expected.clickCount,
        keypress_count: expected.keypressCount,
        mouse_activity_count: expected.mouseActivityCount,
        active_milliseconds: expected.activeMilliseconds,
        console_log_count: expected.consoleLogCount,
        console_warn_count: expected.consoleWarnCount,
        console_error_count: expected.consoleErrorCount,
        event_count: expected.eventCount,
        message_count: 3,
        retention_period_days: 90,
        snapshot_source: 'web',
      });
      expect(new Set(row.all_urls as string[])).toEqual(new Set(expected.urls));
      // Block arrays stay aligned: entry i of each describes the same block.
      const mine = rows.filter((r) => r.session_id === session.id);
      const blocks = (row.block_urls as string[]).map((url, i) => [
        url,
        (row.block_first_timestamps as string[])[i],
        (row.block_last_timestamps as string[])[i],
      ]);
      expect(blocks.sort()).toEqual(mine.map((r) => [r.block_url, r.first_timestamp, r.last_timestamp]).sort());
    }

    // A retried insert with the same deduplication token stores nothing new.
    await insertSummaryRows(clickhouse, [shuffled[0]!], 'part-0');
    const [{ events }] = (await (
      await clickhouse.query({
        query: 'SELECT sum(event_count) AS events FROM session_replay_events WHERE team_id = 42',
        format: 'JSONEachRow',
      })
    ).json<{ events: number }>()) as [{ events: number }];
    expect(events).toBe(sessions.reduce((n, s) => n + s.events.length, 0));
    const view = await (
      await clickhouse.query({
        query:
          'SELECT session_id, event_count FROM session_replay_events_merged WHERE team_id = 42 ORDER BY session_id',
        format: 'JSONEachRow',
      })
    ).json<{ session_id: string; event_count: number }>();
    expect(view.map((r) => r.event_count)).toEqual(merged.map((r) => r.event_count));
  });
});
