import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { topicNames } from '../../src/kafka/topics.ts';
import { decodeRecordingMessage } from '../../src/recordings/message-codec.ts';
import type { SummaryRow } from '../../src/recordings/summary-row.ts';
import type { S3BlobStore } from '../../src/storage/s3-blob-store.ts';
import { freshBucketStore, startTestBlobConsumer, teamRows } from '../support/blob-consumer.ts';
import { postRaw, sampleRrwebEvents, snapshotBody, startTestCapture, type TestCapture } from '../support/capture.ts';
import { readTopic } from '../support/kafka.ts';

const stack = inject('stack');
const brokers = stack.kafka!.brokers;
const json = (value: unknown) => Buffer.from(JSON.stringify(value));

describe("a team's retention change applies to its new recordings (real Kafka, Postgres, MinIO)", () => {
  let capture: TestCapture;
  let store: S3BlobStore;
  let consumer: Awaited<ReturnType<typeof startTestBlobConsumer>>;

  beforeAll(async () => {
    // Capture trusts a cached team for CAPTURE_TEAM_CACHE_SECONDS: one second here, 60 by default.
    capture = await startTestCapture({
      brokers,
      databaseUrl: stack.postgres!.url,
      env: { CAPTURE_TEAM_CACHE_SECONDS: '1' },
    });
    store = await freshBucketStore();
    consumer = await startTestBlobConsumer({ brokers, topic: topicNames.recordings, store });
  });
  afterAll(async () => {
    await consumer?.stop();
    await capture?.stop();
    store?.close();
  });

  it('keeps 30d on the blocks recorded before, and puts the new ones under 90d once the cache expires', async () => {
    const team = await capture.createTeam({ retention: '30d' });
    const sessionId = randomUUID();
    const start = Date.now() - 60_000;
    const before = sampleRrwebEvents(start);
    const after = sampleRrwebEvents(start + 30_000).slice(2); // the same session, later events
    const upload = async (events: Record<string, unknown>[]) =>
      expect((await postRaw(`${capture.url}/s/`, json(snapshotBody(team.apiToken, sessionId, events)))).status).toBe(
        200,
      );

    // The team's committed summary rows, once they hold `events` events.
    const rowsHolding = async (events: number) =>
      teamRows(
        await readTopic(brokers, topicNames.replaySummaries, {
          done: (got) => teamRows(got, team.id).reduce((n, r) => n + r.event_count, 0) >= events,
          timeoutMs: 60_000,
        }),
        team.id,
      );

    await upload(before);
    const early = await rowsHolding(before.length);
    await capture.teams.update(team.id, { retention: '90d' });
    await new Promise((resolve) => setTimeout(resolve, 1500)); // past the team cache's TTL
    await upload(after);
    const rows = await rowsHolding(before.length + after.length);

    const blockKey = (row: SummaryRow) => store.keyOf(row.block_url.split('?')[0]!)!;
    const earlyUrls = new Set(early.map((r) => r.block_url));
    const [old, fresh] = [
      rows.filter((r) => earlyUrls.has(r.block_url)),
      rows.filter((r) => !earlyUrls.has(r.block_url)),
    ];
    expect(old.reduce((n, r) => n + r.event_count, 0)).toBe(before.length);
    expect(fresh.reduce((n, r) => n + r.event_count, 0)).toBe(after.length);
    for (const row of old) {
      expect(row.retention_period_days).toBe(30);
      expect(blockKey(row)).toMatch(/^session_recordings\/30d\/\d{4}\/\d{2}\/\d{2}\//);
    }
    for (const row of fresh) {
      expect(row.retention_period_days).toBe(90);
      expect(blockKey(row)).toMatch(/^session_recordings\/90d\/\d{4}\/\d{2}\/\d{2}\//);
    }
    // Each object is where its key says, and the older one stays where it was.
    for (const row of rows) expect(await store.size(blockKey(row))).toBeGreaterThan(0);

    // Capture stamped the class on each message: 30d before the change, 90d after.
    const messages = await readTopic(brokers, topicNames.recordings, {
      done: (got) => got.filter((m) => m.key?.toString() === sessionId).length >= 2,
    });
    const classes = messages
      .filter((m) => m.key?.toString() === sessionId)
      .map((m) => decodeRecordingMessage(m.value!).header.retention);
    expect(classes).toEqual(['30d', '90d']);
  });
});
