import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { ApiKeyStore } from '../../src/api/api-keys.ts';
import { freePort, LOOPBACK } from '../../src/harness/ports.ts';
import { startS3FaultProxy } from '../../src/harness/s3-fault-proxy.ts';
import { openPostgres } from '../../src/postgres/database.ts';
import { migratePostgres } from '../../src/postgres/migrations.ts';
import { S3BlobStore } from '../../src/storage/s3-blob-store.ts';
import { type Team, TeamStore } from '../../src/teams/team-store.ts';
import { createTestTeam } from '../../test/support/teams.ts';
import { RoleProcess } from './role-process.ts';
import type { ChaosServices } from './services.ts';

export interface PipelineOptions {
  /** Logs of the role processes and the read side's chDB go here. */
  readonly dir: string;
  readonly flushIntervalMs: number;
}

/**
 * S3_REQUEST_TIMEOUT_MS of the roles: how long a hung S3 holds one request (the default, 30 s, would make every
 * S3 hang scenario last half a minute past its end).
 */
export const S3_REQUEST_TIMEOUT_MS = 5000;

/** The roles a scenario may kill -9; the summary sink, behaviour sink and API are one process (`readSide`). */
export interface PipelineRoles {
  readonly capture: RoleProcess;
  readonly blobConsumer: RoleProcess;
  readonly readSide: RoleProcess;
  readonly realtimeSink: RoleProcess;
}

export type S3FaultProxy = Awaited<ReturnType<typeof startS3FaultProxy>>;

export interface ChaosPipeline {
  readonly roles: PipelineRoles;
  readonly captureUrl: string;
  readonly apiUrl: string;
  /** The read side's control port (bench/chaos/read-side.ts): ClickHouse down and up, behaviour counts. */
  readonly controlUrl: string;
  /** Every role reaches S3 through this proxy, so S3 can fail or hang for all of them at once. */
  readonly s3: S3FaultProxy;
  /** A team of its own (one per scenario, so each is audited alone) and an API key that reads it. */
  newTeam(): Promise<{ team: Team; key: string }>;
  /** A second blob consumer in the group, with an identity of its own (another pod of the StatefulSet). */
  joinBlobConsumer(): Promise<RoleProcess>;
  /** Waits until every role answers ready. */
  ready(timeoutMs: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The whole pipeline on loopback as separate processes, each with a stable identity: capture, one blob consumer
 * (static group member), the read side (summary sink + behaviour sink + API on one chDB) and the realtime sink, all
 * on `services`, reaching S3 through a fault proxy.
 */
export async function startChaosPipeline(services: ChaosServices, options: PipelineOptions): Promise<ChaosPipeline> {
  const instance = randomUUID().slice(0, 8);
  const logs = join(options.dir, 'logs');
  await mkdir(logs, { recursive: true });
  const db = await openPostgres({ kind: 'postgres', url: services.postgresUrl });
  await migratePostgres(db);
  const s3 = await startS3FaultProxy(services.minio.endpoint);
  const bucket = `chaos-${instance}`;
  const direct = new S3BlobStore({
    bucket,
    endpoint: services.minio.endpoint,
    region: services.minio.region,
    forcePathStyle: true,
    credentials: { accessKeyId: services.minio.accessKeyId, secretAccessKey: services.minio.secretAccessKey },
  });
  await direct.client.send(new CreateBucketCommand({ Bucket: bucket }));
  direct.close();

  const url = (port: number) => `http://${LOOPBACK}:${port}`;
  const kafka = { KAFKA_BROKERS: services.brokers };
  const s3Env = {
    BLOB_STORE: 's3',
    S3_BUCKET: bucket,
    S3_ENDPOINT: s3.endpoint,
    S3_REGION: services.minio.region,
    S3_ACCESS_KEY_ID: services.minio.accessKeyId,
    S3_SECRET_ACCESS_KEY: services.minio.secretAccessKey,
    S3_REQUEST_TIMEOUT_MS: String(S3_REQUEST_TIMEOUT_MS),
  };
  const role = (name: string, script: string[], env: Record<string, string>, healthPorts: number[]) =>
    new RoleProcess({ name, script, env, logFile: join(logs, `${name}.log`), healthUrls: healthPorts.map(url) });

  let consumers = 0;
  const blobConsumer = async (member: string) => {
    const port = await freePort();
    const spoolDir = join(services.spoolDir, member);
    await mkdir(spoolDir, { recursive: true });
    return role(
      `blob-consumer-${member}`,
      ['bin/replay.js', 'blob-consumer'],
      {
        ...kafka,
        ...s3Env,
        BLOB_GROUP_ID: `chaos-blob-${instance}`,
        BLOB_TRANSACTIONAL_ID: `chaos-blob-${instance}-${member}`,
        KAFKA_GROUP_INSTANCE_ID: `chaos-blob-${instance}-${member}`,
        BLOB_SPOOL_DIR: spoolDir,
        BLOB_FLUSH_INTERVAL_MS: String(options.flushIntervalMs),
        BLOB_MIN_FREE_DISK_BYTES: String(services.spoolDisk?.minFreeBytes ?? 0),
        BLOB_CONSUMER_PORT: String(port),
      },
      [port],
    );
  };

  const capturePort = await freePort();
  const [sinkPort, behavioursPort, apiPort, controlPort, realtimePort] = await Promise.all(
    Array.from({ length: 5 }, () => freePort()),
  );
  const roles: PipelineRoles = {
    capture: role(
      'capture',
      ['bin/replay.js', 'capture'],
      {
        ...kafka,
        DATABASE_URL: services.postgresUrl,
        CAPTURE_PORT: String(capturePort),
        CAPTURE_TRANSACTIONAL_ID: `chaos-capture-${instance}`,
      },
      [capturePort],
    ),
    blobConsumer: await blobConsumer(String(consumers++)),
    readSide: role(
      'read-side',
      ['bench/chaos/read-side.ts'],
      {
        ...kafka,
        ...s3Env,
        DATABASE_URL: services.postgresUrl,
        REDIS_URL: services.redisUrl,
        CHAOS_CHDB_DIR: join(options.dir, 'read-side'),
        CHAOS_CONTROL_PORT: String(controlPort),
        SINK_GROUP_ID: `chaos-sink-${instance}`,
        BEHAVIORS_GROUP_ID: `chaos-behaviours-${instance}`,
        KAFKA_GROUP_INSTANCE_ID: `chaos-read-side-${instance}`,
        SINK_INSERT_INTERVAL_MS: '300',
        BEHAVIORS_INSERT_INTERVAL_MS: '300',
        SINK_PORT: String(sinkPort),
        BEHAVIORS_PORT: String(behavioursPort),
        API_PORT: String(apiPort),
      },
      [sinkPort!, behavioursPort!, apiPort!],
    ),
    realtimeSink: role(
      'realtime-sink',
      ['bin/replay.js', 'realtime-sink'],
      {
        ...kafka,
        REDIS_URL: services.redisUrl,
        REALTIME_GROUP_ID: `chaos-realtime-${instance}`,
        KAFKA_GROUP_INSTANCE_ID: `chaos-realtime-${instance}`,
        REALTIME_PORT: String(realtimePort),
      },
      [realtimePort!],
    ),
  };
  const all = () => Object.values(roles) as RoleProcess[];
  const joined: RoleProcess[] = [];
  for (const r of all()) r.start();

  const pipeline: ChaosPipeline = {
    roles,
    captureUrl: url(capturePort),
    apiUrl: url(apiPort!),
    controlUrl: url(controlPort!),
    s3,
    async newTeam() {
      const team = await createTestTeam(new TeamStore(db), { name: `chaos ${instance}` });
      const { key } = await new ApiKeyStore(db).create(`chaos ${team.id}`, [team.id]);
      return { team, key };
    },
    async joinBlobConsumer() {
      const member = await blobConsumer(String(consumers++));
      joined.push(member);
      member.start();
      return member;
    },
    async ready(timeoutMs) {
      await Promise.all(all().map((r) => r.ready(timeoutMs)));
    },
    async stop() {
      await Promise.all([...joined, ...all()].map((r) => r.stop()));
      await s3.close();
      await db.close();
    },
  };
  try {
    await pipeline.ready(120_000);
  } catch (error) {
    await pipeline.stop();
    throw error;
  }
  return pipeline;
}
