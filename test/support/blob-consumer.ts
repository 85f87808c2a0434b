import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { inject } from 'vitest';
import { buildRecordingMessages } from '../../src/capture/build-messages.ts';
import { runBlobConsumer } from '../../src/cli/blob-consumer-command.ts';
import { loadConfig } from '../../src/config/index.ts';
import { topicNames } from '../../src/kafka/topics.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { type BlockCodec, decodeBlock } from '../../src/recordings/blob-object.ts';
import type { RetentionClass } from '../../src/recordings/message-codec.ts';
import type { SummaryRow } from '../../src/recordings/summary-row.ts';
import type { BlobStore } from '../../src/storage/blob-store.ts';
import { S3BlobStore } from '../../src/storage/s3-blob-store.ts';
import type { Team } from '../../src/teams/team-store.ts';
import { readTopic } from './kafka.ts';

/** A bucket of its own on the shared MinIO. */
export async function freshBucketStore(): Promise<S3BlobStore> {
  const minio = inject('stack').minio!;
  const store = new S3BlobStore({
    bucket: `test-${randomUUID()}`,
    endpoint: minio.endpoint,
    region: minio.region,
    forcePathStyle: true,
    credentials: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
    partSize: 5 * 1024 * 1024,
  });
  await store.client.send(new CreateBucketCommand({ Bucket: store.bucket }));
  return store;
}

/** The bucket of `direct` reached through `endpoint` (a fault proxy in front of MinIO), one SDK attempt per request. */
export function storeVia(
  direct: S3BlobStore,
  endpoint: string,
  options: Partial<ConstructorParameters<typeof S3BlobStore>[0]> = {},
): S3BlobStore {
  const minio = inject('stack').minio!;
  return new S3BlobStore({
    bucket: direct.bucket,
    endpoint,
    region: minio.region,
    forcePathStyle: true,
    credentials: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
    maxAttempts: 1,
    ...options,
  });
}

export async function startTestBlobConsumer(options: {
  brokers: string;
  topic: string;
  store: BlobStore;
  groupId?: string;
  env?: Record<string, string>;
}) {
  const spool = await mkdtemp(join(tmpdir(), 'replay-spool-'));
  const config = loadConfig({
    HOME: '/nonexistent',
    KAFKA_BROKERS: options.brokers,
    BLOB_TOPIC: options.topic,
    BLOB_GROUP_ID: options.groupId ?? `blob-test-${randomUUID()}`,
    BLOB_TRANSACTIONAL_ID: `blob-test-${randomUUID()}`,
    BLOB_SPOOL_DIR: spool,
    BLOB_FLUSH_INTERVAL_MS: '1000',
    BLOB_MIN_FREE_DISK_BYTES: '0',
    BLOB_CONSUMER_PORT: '0',
    ...options.env,
  });
  return runBlobConsumer(config, createLogger((process.env.TEST_LOG_LEVEL as 'info') ?? 'warn', 'blob-consumer'), {
    brokers: options.brokers,
    store: options.store,
  });
}

export function testTeam(id: number, retention: RetentionClass = '30d'): Team {
  return {
    id,
    name: `team ${id}`,
    apiToken: `phc_${id}`,
    sessionRecordingEnabled: true,
    retention,
    consoleLogCaptureEnabled: true,
  };
}

/** Recordings messages for one session, as capture would produce them from `requests` uploads. */
export function sessionMessages(
  topic: string,
  team: Team,
  sessionId: string,
  events: Record<string, unknown>[],
  requests: number,
) {
  const per = Math.ceil(events.length / requests);
  const records = [];
  for (let i = 0; i < events.length; i += per) {
    const chunk = events.slice(i, i + per);
    for (const m of buildRecordingMessages(
      {
        team,
        sessionId,
        distinctId: `user-${sessionId.slice(0, 6)}`,
        snapshotSource: 'web',
        snapshotLibrary: 'web',
        events: chunk.map((event) => ({ windowId: 'w1', event: event as never })),
      },
      { maxMessageBytes: 20 * 1024 * 1024, requestId: `r${i}`, capturedAt: Date.now() },
    )) {
      records.push({ topic, key: m.key, value: m.value, headers: m.headers });
    }
  }
  return records;
}

/** The events of a row's block, read back from the store by its byte range. */
export async function blockEvents(store: BlobStore, row: SummaryRow, codec: BlockCodec = 'lz4-frame') {
  const [base, range] = row.block_url.split('?range=bytes=');
  const [start, end] = range!.split('-').map(Number);
  const bytes = await store.getRange(store.keyOf(base!)!, start!, end!);
  return decodeBlock(bytes, codec)
    .toString('utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as [string, Record<string, unknown>]);
}

/**
 * Committed rows of one team from the summary topic. A message read twice (two reads of the topic) counts once, keyed
 * by its partition and offset; a row committed twice (two messages) counts twice, so exactly-once checks see it.
 */
export function teamRows(
  messages: { value: Buffer | null; partition: number; offset: number }[],
  teamId: number,
): SummaryRow[] {
  const rows = new Map<string, SummaryRow>();
  for (const m of messages) {
    const row = JSON.parse(m.value!.toString()) as SummaryRow;
    if (row.team_id === teamId) rows.set(`${m.partition}:${m.offset}`, row);
  }
  return [...rows.values()];
}

/**
 * Exactly-once, checked from the outside: the committed rows hold every event once (no gaps, no message covered by
 * two rows), and each session's blocks, read back from the store in offset order, are exactly its events.
 */
export async function expectExactlyOnce(
  store: BlobStore,
  rows: readonly SummaryRow[],
  sessions: readonly { sessionId: string; events: Record<string, unknown>[] }[],
  expect: (value: unknown, message?: string) => { toBe(v: unknown): void; toEqual(v: unknown): void },
): Promise<void> {
  expect(rows.reduce((n, r) => n + r.event_count, 0)).toBe(sessions.reduce((n, s) => n + s.events.length, 0));
  const ranges = rows.map((r) => {
    const [a, b] = r.source_offsets.split(':')[2]!.split('-').map(Number);
    return { session: r.session_id, a: a!, b: b! };
  });
  for (const x of ranges) {
    for (const y of ranges) {
      if (x !== y && x.session === y.session) expect(x.b < y.a || y.b < x.a, JSON.stringify([x, y])).toBe(true);
    }
  }
  for (const session of sessions) {
    const mine = rows
      .filter((r) => r.session_id === session.sessionId)
      .sort((a, b) => a.source_offsets.localeCompare(b.source_offsets, 'en', { numeric: true }));
    const events = (await Promise.all(mine.map((r) => blockEvents(store, r)))).flat().map(([, e]) => e);
    expect(events, session.sessionId).toEqual(session.events);
  }
}

/** Reads committed summary rows until a team's rows hold `events` events, then once more after a pause for stragglers. */
export async function waitForTeamRows(brokers: string, teamId: number, events: number): Promise<SummaryRow[]> {
  const first = await readTopic(brokers, topicNames.replaySummaries, {
    done: (got) => teamRows(got, teamId).reduce((n, r) => n + r.event_count, 0) >= events,
    timeoutMs: 120_000,
  });
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const again = await readTopic(brokers, topicNames.replaySummaries, { idleMs: 1500 });
  return teamRows([...first, ...again], teamId);
}
