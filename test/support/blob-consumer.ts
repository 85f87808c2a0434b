import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { inject } from 'vitest';
import { buildRecordingMessages } from '../../src/capture/build-messages.ts';
import { runBlobConsumer } from '../../src/cli/blob-consumer-command.ts';
import { loadConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { type BlockCodec, decodeBlock } from '../../src/recordings/blob-object.ts';
import type { RetentionClass } from '../../src/recordings/message-codec.ts';
import type { SummaryRow } from '../../src/recordings/summary-row.ts';
import type { BlobStore } from '../../src/storage/blob-store.ts';
import { S3BlobStore } from '../../src/storage/s3-blob-store.ts';
import type { Team } from '../../src/teams/team-store.ts';

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
  return runBlobConsumer(config, createLogger('warn', 'blob-consumer'), {
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
