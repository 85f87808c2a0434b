import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ApiKeyStore } from '../../../src/api/api-keys.ts';
import { buildRecordingMessages } from '../../../src/capture/build-messages.ts';
import { compressLz4Frame } from '../../../src/codec/lz4-frames.ts';
import { topicNames } from '../../../src/kafka/topics.ts';
import type { SqlDatabase } from '../../../src/postgres/database.ts';
import { encodeRecordingMessage } from '../../../src/recordings/message-codec.ts';
import type { Team } from '../../../src/teams/team-store.ts';
import { freshBucketStore, startTestBlobConsumer } from '../../support/blob-consumer.ts';
import { postRaw, sampleRrwebEvents, snapshotBody, startTestCapture, type TestCapture } from '../../support/capture.ts';
import { headerOf, produceAll, readTopic } from '../../support/kafka.ts';
import { startSinkAndApi } from '../../support/pipeline.ts';
import { sampleHeader } from '../../support/recordings.ts';

const stack = inject('stack');
const brokers = stack.kafka!.brokers;
const FLUSH_INTERVAL_MS = 1000;
const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * DESIGN §3.5.1 end to end, on the real services (capture, Kafka, blob consumer with the zstd codec, MinIO, sink,
 * chDB, API): every kind of poison, through capture and straight onto the topics, sent by one team while another
 * team records. The good team's sessions stay playable within the flush interval + 5 s, the poison lands in the DLQs
 * with its catalogue code, and every service stays ready.
 */
describe("one team's bad data never stops another team", () => {
  let dir: string;
  let capture: TestCapture;
  let db: SqlDatabase;
  let clickhouse: ClickHouseClient;
  let apiUrl: string;
  let readyUrls: string[];
  const stops: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'replay-poison-'));
    capture = await startTestCapture({ brokers, databaseUrl: stack.postgres!.url });
    stops.push(() => capture.stop());
    const store = await freshBucketStore();
    const consumer = await startTestBlobConsumer({
      brokers,
      topic: topicNames.recordings,
      store,
      env: { BLOB_CODEC: 'zstd', BLOB_FLUSH_INTERVAL_MS: String(FLUSH_INTERVAL_MS) },
    });
    stops.push(() => consumer.stop());
    const read = await startSinkAndApi({ brokers, postgresUrl: stack.postgres!.url, store, dir });
    stops.push(() => read.stop());
    ({ clickhouse, db, apiUrl } = read);
    readyUrls = [`${consumer.http.url}/readyz`, `${read.sinkUrl}/readyz`, `${capture.url}/readyz`];
  });
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function playable(team: Team, key: string, sessionId: string, events: number): Promise<boolean> {
    const base = `${apiUrl}/api/projects/${team.id}/session_recordings/${sessionId}/snapshots`;
    const headers = { authorization: `Bearer ${key}` };
    const list = await fetch(base, { headers });
    if (!list.ok) return false;
    const { blocks } = (await list.json()) as { blocks: unknown[] };
    if (blocks.length === 0) return false;
    const lines = (await (await fetch(`${base}?blocks=0-${blocks.length - 1}`, { headers })).text())
      .split('\n')
      .filter(Boolean);
    return lines.length === events && lines.every((line) => !line.startsWith('{"missing_block"'));
  }

  it('quarantines every kind of poison with its code while the good team stays playable and every service ready', async () => {
    const good = await capture.createTeam();
    const bad = await capture.createTeam();
    const { key } = await new ApiKeyStore(db).create('poison', [good.id, bad.id]);
    const notReady: string[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        for (const url of readyUrls) if ((await fetch(url)).status !== 200) notReady.push(url);
        await pause(200);
      }
    })();
    // ClickHouse itself refuses the rows of one more team, as it would refuse any row for its content.
    const refused = await capture.createTeam();
    await clickhouse.command({
      query: `ALTER TABLE session_replay_events ADD CONSTRAINT IF NOT EXISTS poison_test CHECK team_id != ${refused.id}`,
    });

    // 1. Through capture: a batch mixing bad events with good ones answers 200; only the bad ones are dropped.
    // An hour ago, on a whole second: well inside the teams' 30 days (past them, the API answers 410).
    const t = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;
    const mixedSession = randomUUID();
    const fractional = sampleRrwebEvents(t).map((e, i) => ({ ...e, timestamp: t + i * 250.375 }));
    const mixed = await postRaw(
      `${capture.url}/s/`,
      json(
        snapshotBody(bad.apiToken, mixedSession, [
          ...fractional,
          { type: 3, timestamp: 9e15, data: { source: 1 } },
          { type: 3, timestamp: 0, data: { source: 1 } },
          { type: 3, timestamp: -5, data: { source: 1 } },
          { type: 3, timestamp: '1764500000000', data: { source: 1 } },
          { timestamp: t + 10 },
        ]),
      ),
    );
    expect(mixed.status).toBe(200);
    expect(mixed.body).toMatchObject({
      status: 1,
      dropped: 5,
      dropped_by_code: { timestamp_out_of_range: 1, invalid_timestamp: 3, invalid_event: 1 },
    });
    const longDistinct = await postRaw(
      `${capture.url}/s/`,
      json(snapshotBody(bad.apiToken, randomUUID(), sampleRrwebEvents(t), { distinct_id: 'd'.repeat(201) })),
    );
    expect(longDistinct).toMatchObject({ status: 400, body: { code: 'distinct_id_too_long' } });

    // 2. Straight onto the recordings topic, as an older producer or another client might write them.
    const forged = (name: string, overrides: Record<string, unknown>) => ({
      topic: topicNames.recordings,
      key: `poison-${name}-${randomUUID()}`,
      value: encodeRecordingMessage(
        sampleHeader({ teamId: bad.id, sessionId: randomUUID(), ...overrides } as never),
        compressLz4Frame(Buffer.from(`["w1",${JSON.stringify({ type: 3, timestamp: t, data: { source: 1 } })}]\n`)),
      ),
    });
    const huge = forged('huge-timestamp', { firstTimestamp: 9e15, lastTimestamp: 9e15 });
    const negative = forged('negative-timestamp', { firstTimestamp: -1 });
    const text = forged('string-timestamp', { lastTimestamp: 'soon' });
    const longId = forged('long-distinct-id', { distinctId: 'x'.repeat(5000) });
    const windows = forged('many-windows', { windowIds: Array.from({ length: 500 }, (_, i) => `w${i}`) });
    const [message] = buildRecordingMessages(
      {
        team: bad,
        sessionId: randomUUID(),
        distinctId: 'u',
        snapshotSource: 'web',
        snapshotLibrary: 'web',
        events: sampleRrwebEvents(t).map((event) => ({ windowId: 'w', event: event as never })),
      },
      { maxMessageBytes: 1 << 20, requestId: 'r', capturedAt: t },
    );
    const damaged = Buffer.from(message!.value);
    damaged[damaged.length - 12]! ^= 0x5a; // inside the LZ4 data, after the envelope header
    const lz4 = { topic: topicNames.recordings, key: `poison-damaged-lz4-${randomUUID()}`, value: damaged };
    const legacy = {
      topic: topicNames.recordings,
      key: `poison-legacy-${randomUUID()}`,
      value: json({
        team_id: bad.id,
        distinct_id: 'u',
        data: JSON.stringify({
          event: '$snapshot',
          properties: { $session_id: randomUUID(), $snapshot_data: [{ type: 3, timestamp: 1e300 }] },
        }),
      }),
    };
    const poison = [huge, negative, text, longId, windows, lz4, legacy];
    await produceAll(brokers, poison);

    // 3. Sessions spanning more months than one ClickHouse insert may hold (120 months in one flush), and a team
    //    whose rows ClickHouse refuses.
    //    Months to come: sessions past their retention would be deleted by the table's TTL (0014) as soon as stored.
    const months = Array.from({ length: 120 }, (_, i) => ({
      sessionId: randomUUID(),
      start: Date.UTC(2040 + Math.floor(i / 12), i % 12, 15),
    }));
    const monthly = await Promise.all(
      months.map((m) =>
        postRaw(`${capture.url}/s/`, json(snapshotBody(bad.apiToken, m.sessionId, sampleRrwebEvents(m.start)))),
      ),
    );
    expect(monthly.every((r) => r.status === 200)).toBe(true);
    const refusedSession = randomUUID();
    expect(
      (await postRaw(`${capture.url}/s/`, json(snapshotBody(refused.apiToken, refusedSession, sampleRrwebEvents(t)))))
        .status,
    ).toBe(200);

    // 4. The good team records meanwhile; each session must be playable within the flush interval + 5 s.
    const goodSessions = Array.from({ length: 6 }, () => randomUUID());
    const latencies: number[] = [];
    await Promise.all(
      goodSessions.map(async (sessionId, i) => {
        await pause(i * 150);
        const events = sampleRrwebEvents(t + i * 10_000);
        const answer = await postRaw(`${capture.url}/s/`, json(snapshotBody(good.apiToken, sessionId, events)));
        expect(answer).toMatchObject({ status: 200, body: { status: 1 } });
        const accepted = Date.now();
        while (!(await playable(good, key, sessionId, events.length))) {
          if (Date.now() - accepted > 30_000) throw new Error(`good session ${sessionId} never became playable`);
          await pause(100);
        }
        latencies.push(Date.now() - accepted);
      }),
    );
    expect(Math.max(...latencies)).toBeLessThanOrEqual(FLUSH_INTERVAL_MS + 5000);

    // The bad team's own good events are kept: fractional timestamps are valid, end to end.
    await expect.poll(() => playable(bad, key, mixedSession, fractional.length), { timeout: 15_000 }).toBe(true);
    const summary = (await (
      await fetch(`${apiUrl}/api/projects/${bad.id}/session_recordings/${mixedSession}`, {
        headers: { authorization: `Bearer ${key}` },
      })
    ).json()) as Record<string, number>;
    // Active events at t+500.75, t+751.125 and t+1001.5 ms: 500.75 ms, stored as whole milliseconds.
    expect(summary).toMatchObject({ click_count: 1, keypress_count: 1, console_error_count: 1, active_ms: 501 });

    // Every month's session is stored, in inserts small enough for ClickHouse.
    await expect
      .poll(
        async () => {
          const [row] = await (
            await clickhouse.query({
              query: `SELECT uniqExact(session_id) AS n FROM session_replay_events
                        WHERE team_id = {team:Int64} AND session_id IN {ids:Array(String)}`,
              query_params: { team: bad.id, ids: months.map((m) => m.sessionId) },
              format: 'JSONEachRow',
            })
          ).json<{ n: number }>();
          return Number(row?.n);
        },
        { timeout: 20_000 },
      )
      .toBe(months.length);

    // The poison is in the DLQs with its code and where it came from.
    const dlq = await readTopic(brokers, topicNames.recordingsDlq, {
      done: (got) => poison.every((p) => got.some((m) => m.key?.toString() === p.key)),
      timeoutMs: 30_000,
    });
    const reasonOf = (k: string) => headerOf(dlq.find((m) => m.key?.toString() === k)!, 'dlq_reason');
    expect(reasonOf(huge.key)).toBe('message_header_invalid');
    expect(reasonOf(negative.key)).toBe('message_header_invalid');
    expect(reasonOf(text.key)).toBe('message_header_invalid');
    expect(reasonOf(longId.key)).toBe('message_header_invalid');
    expect(reasonOf(windows.key)).toBe('message_header_invalid');
    expect(reasonOf(lz4.key)).toBe('payload_corrupt');
    expect(reasonOf(legacy.key)).toBe('legacy_message_invalid');
    for (const p of poison) {
      const entry = dlq.find((m) => m.key?.toString() === p.key)!;
      expect(headerOf(entry, 'dlq_source_topic')).toBe(topicNames.recordings);
      expect(headerOf(entry, 'dlq_source_offset')).toMatch(/^\d+$/);
    }
    const refusedDlq = await readTopic(brokers, topicNames.replaySummariesDlq, {
      done: (got) => got.some((m) => m.value?.toString().includes(refusedSession)),
      timeoutMs: 30_000,
    });
    const refusedEntry = refusedDlq.find((m) => m.value?.toString().includes(refusedSession))!;
    expect(headerOf(refusedEntry, 'dlq_reason')).toBe('clickhouse_rejected');
    expect(headerOf(refusedEntry, 'dlq_detail')).toContain('VIOLATED_CONSTRAINT');

    watching = false;
    await watcher;
    expect(notReady, 'services reported not ready during the poison').toEqual([]);
  });
});
