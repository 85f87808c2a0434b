import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reindex } from '../../../src/blob-consumer/reindex.ts';
import { SessionActivity } from '../../../src/blob-consumer/session-activity.ts';
import { SessionBatch } from '../../../src/blob-consumer/session-batch.ts';
import { writeObjects } from '../../../src/blob-consumer/write-objects.ts';
import { buildRecordingMessages } from '../../../src/capture/build-messages.ts';
import { openClickHouse } from '../../../src/clickhouse/client.ts';
import { migrateClickHouse } from '../../../src/clickhouse/migrations.ts';
import { insertedUpTo, insertSummaryRows } from '../../../src/clickhouse/session-replay-events.ts';
import { decodeRecordingMessage } from '../../../src/recordings/message-codec.ts';
import { clickhouseTime } from '../../../src/recordings/summary-row.ts';
import { FsBlobStore } from '../../../src/storage/fs-blob-store.ts';
import { expectedSummary, syntheticSession } from '../../support/expected-summary.ts';
import { liveRows, liveRowsStart } from '../../support/summary-rows.ts';

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
    const { sessions, rows } = await liveRows(dir, 42);
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

  it('reindex on an empty table rebuilds, from object footers alone, the same merged rows as the live path', async () => {
    const mergedView = async () =>
      (
        await clickhouse.query({
          query:
            'SELECT * EXCEPT (distinct_id) FROM session_replay_events_merged WHERE team_id = 42 ORDER BY session_id',
          format: 'JSONEachRow',
        })
      ).json<Record<string, unknown>>();
    const sortBlocks = (rows: Record<string, unknown>[]) =>
      rows.map((r) => ({
        ...r,
        block_urls: [...(r.block_urls as string[])].sort(),
        block_first_timestamps: [...(r.block_first_timestamps as string[])].sort(),
        block_last_timestamps: [...(r.block_last_timestamps as string[])].sort(),
        // groupUniqArrayArray keeps no order: compare as sets.
        all_urls: [...(r.all_urls as string[])].sort(),
      }));
    const live = sortBlocks(await mergedView());
    expect(live.length).toBeGreaterThan(0);

    // An orphan: an older object holding messages that a committed object holds too (a flush that never committed).
    const orphanBatch = new SessionBatch(dir, 'orphan');
    const first = syntheticSession(300, liveRowsStart, 90).slice(0, 31); // session-0's first block
    for (const m of buildRecordingMessages(
      {
        team: {
          id: 42,
          name: 't',
          apiToken: 'x',
          sessionRecordingEnabled: true,
          retention: '90d',
          consoleLogCaptureEnabled: true,
        },
        sessionId: 'session-0',
        distinctId: 'u',
        snapshotSource: 'web',
        snapshotLibrary: 'web',
        events: first.map((event) => ({ windowId: 'w', event: event as never })),
      },
      { maxMessageBytes: 1 << 20, requestId: 'r', capturedAt: 1 },
    )) {
      const { header, payload } = decodeRecordingMessage(m.value);
      orphanBatch.consumed('t', 0, 0, 0);
      orphanBatch.add('t', 0, 0, header, payload);
    }
    const store = new FsBlobStore(join(dir, 'blobs'));
    const base = liveRowsStart; // the live rows' flush time
    await writeObjects({
      batch: orphanBatch,
      store,
      prefix: 'rec',
      codec: 'lz4-frame',
      writer: 'w',
      activity: new SessionActivity(),
      now: base - 60_000,
    });
    orphanBatch.spool.discard();

    await clickhouse.command({ query: 'TRUNCATE TABLE session_replay_events' });
    expect(await mergedView()).toEqual([]);
    const done = await reindex({ store, prefix: 'rec', clickhouse, fromMs: base - 3_600_000, toMs: base + 1 });
    expect(done.objects).toBe(4);
    expect(sortBlocks(await mergedView())).toEqual(live);
  });

  it('knows how far the sink got in each topic partition from the kafka_topic_position projection, not a table scan', async () => {
    const { rows } = await liveRows(dir, 909);
    // Each position gets a session of its own: rows of one session merge, and their `any` partition with them.
    let next = 0;
    const at = (topic: string, partition: number, offsets: number[]) =>
      offsets.map((offset) => ({
        ...rows[next++]!,
        _kafka_topic: topic,
        _kafka_partition: partition,
        _kafka_offset: offset,
      }));
    await insertSummaryRows(clickhouse, at('summaries-a', 40, [0]));
    await insertSummaryRows(clickhouse, at('summaries-a', 41, [5, 9]));
    await insertSummaryRows(clickhouse, at('summaries-a', 41, [7]));
    await insertSummaryRows(clickhouse, at('summaries-b', 41, [50]));
    expect(await insertedUpTo(clickhouse, 'summaries-a', 40)).toBe(0); // offset 0 is stored, not "nothing"
    expect(await insertedUpTo(clickhouse, 'summaries-a', 41)).toBe(9); // summaries-b's partition 41 is not this one
    expect(await insertedUpTo(clickhouse, 'summaries-b', 41)).toBe(50);
    expect(await insertedUpTo(clickhouse, 'summaries-a', 42)).toBe(-1);
    await clickhouse.command({ query: 'OPTIMIZE TABLE session_replay_events FINAL' });
    expect(await insertedUpTo(clickhouse, 'summaries-a', 41)).toBe(9);
    const plan = await (
      await clickhouse.query({
        query: `EXPLAIN SELECT max(_kafka_offset) AS offset, count() AS rows FROM session_replay_events
                  WHERE _kafka_topic = 'summaries-a' AND _kafka_partition = 41`,
        format: 'TabSeparated',
      })
    ).text();
    expect(plan).toContain('kafka_topic_position');
  });
});
