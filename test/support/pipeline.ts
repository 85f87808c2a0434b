import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { runApi } from '../../src/cli/api-command.ts';
import { runBehaviorsSink } from '../../src/cli/behaviors-sink-command.ts';
import { runSink } from '../../src/cli/sink-command.ts';
import { openClickHouse } from '../../src/clickhouse/client.ts';
import { migrateClickHouse } from '../../src/clickhouse/migrations.ts';
import { loadConfig } from '../../src/config/index.ts';
import { topicNames } from '../../src/kafka/topics.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { openPostgres, type SqlDatabase } from '../../src/postgres/database.ts';
import type { BlobStore } from '../../src/storage/blob-store.ts';
import { freshBucketStore, startTestBlobConsumer } from './blob-consumer.ts';
import { startTestCapture, type TestCapture } from './capture.ts';

/**
 * The read half of the pipeline in this process: the ClickHouse sink (its own group) into a chDB under `dir`, and the
 * replay API on the real Postgres and `store`, as production runs them.
 */
export async function startSinkAndApi(options: {
  readonly brokers: string;
  readonly postgresUrl: string;
  readonly store: BlobStore;
  readonly dir: string;
  readonly env?: Record<string, string>;
}): Promise<{
  clickhouse: ClickHouseClient;
  db: SqlDatabase;
  apiUrl: string;
  sinkUrl: string;
  stop(): Promise<void>;
}> {
  const clickhouse = openClickHouse({ kind: 'chdb', path: join(options.dir, 'db') });
  await migrateClickHouse(clickhouse);
  const config = loadConfig({
    HOME: '/nonexistent',
    SINK_GROUP_ID: `sink-${randomUUID()}`,
    SINK_PORT: '0',
    SINK_INSERT_INTERVAL_MS: '300',
    API_PORT: '0',
    ...options.env,
  });
  const log = (name: string) => createLogger((process.env.TEST_LOG_LEVEL as 'info') ?? 'warn', name);
  const sink = await runSink(config, log('sink'), { brokers: options.brokers, clickhouse });
  const db = await openPostgres({ kind: 'postgres', url: options.postgresUrl });
  const api = await runApi(config, log('api'), { db, clickhouse, store: options.store });
  return {
    clickhouse,
    db,
    apiUrl: api.service.url,
    sinkUrl: sink.http.url,
    async stop() {
      await api.stop();
      await sink.stop();
      await clickhouse.close();
      await db.close();
    },
  };
}

/** A ClickHouse sink in this process on `topic` in `groupId`, into `clickhouse`, with test timings (and `env` on top). */
export function startTestSink(options: {
  readonly brokers: string;
  readonly topic: string;
  readonly groupId: string;
  readonly clickhouse: ClickHouseClient;
  readonly env?: Record<string, string>;
}) {
  return runSink(
    loadConfig({
      HOME: '/nonexistent',
      SINK_TOPIC: options.topic,
      SINK_GROUP_ID: options.groupId,
      SINK_PORT: '0',
      SINK_INSERT_INTERVAL_MS: '200',
      ...options.env,
    }),
    createLogger((process.env.TEST_LOG_LEVEL as 'info') ?? 'error', 'sink'),
    { brokers: options.brokers, clickhouse: options.clickhouse },
  );
}

/**
 * A behaviour sink in this process on `topic` (default user_behaviors) in `groupId`, into `clickhouse` (already
 * migrated), with test timings (and `env` on top).
 */
export function startTestBehaviorsSink(options: {
  readonly brokers: string;
  readonly groupId: string;
  readonly clickhouse: ClickHouseClient;
  readonly topic?: string;
  readonly env?: Record<string, string>;
}) {
  return runBehaviorsSink(
    loadConfig({
      HOME: '/nonexistent',
      BEHAVIORS_TOPIC: options.topic ?? topicNames.userBehaviors,
      BEHAVIORS_GROUP_ID: options.groupId,
      BEHAVIORS_PORT: '0',
      BEHAVIORS_INSERT_INTERVAL_MS: '200',
      ...options.env,
    }),
    createLogger((process.env.TEST_LOG_LEVEL as 'info') ?? 'error', 'behaviors-sink'),
    { brokers: options.brokers, clickhouse: options.clickhouse },
  );
}

/**
 * The whole recordings pipeline in this process, on the stack's Kafka and Postgres and a fresh MinIO bucket: capture,
 * a blob consumer on the recordings topic, the summary sink and the API (chDB under `dir`; `env` on top of their
 * test settings). `stop` stops them in reverse order.
 */
export async function startRecordingPipeline(options: {
  readonly brokers: string;
  readonly postgresUrl: string;
  readonly dir: string;
  readonly env?: Record<string, string>;
}) {
  const { brokers, postgresUrl } = options;
  const capture: TestCapture = await startTestCapture({ brokers, databaseUrl: postgresUrl });
  const store = await freshBucketStore();
  const consumer = await startTestBlobConsumer({ brokers, topic: topicNames.recordings, store });
  const read = await startSinkAndApi({ brokers, postgresUrl, store, dir: options.dir, env: options.env ?? {} });
  return {
    ...read,
    capture,
    store,
    async stop() {
      await read.stop();
      await consumer.stop();
      await capture.stop();
    },
  };
}
