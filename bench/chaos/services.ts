import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/index.ts';
import { type LocalRedis, startLocalRedis } from '../../src/harness/redis.ts';
import { type StackInfo, startLocalStack } from '../../src/harness/stack.ts';
import { mountSpoolDisk, type SpoolDisk } from './spool-disk.ts';

/**
 * The real services a chaos run drives. The faults that stop a service itself are there only when the run owns it:
 * the bench starts its own; the integration test shares the suite's stack with other tests and gets none of them.
 */
export interface ChaosServices {
  readonly brokers: string;
  readonly postgresUrl: string;
  readonly minio: {
    readonly endpoint: string;
    readonly region: string;
    readonly accessKeyId: string;
    readonly secretAccessKey: string;
  };
  readonly redisUrl: string;
  /** Where the blob consumers spool, one directory each below it. */
  readonly spoolDir: string;
  /** Stops the broker (kill -9 when `hard`) and starts it again on its data. */
  readonly restartBroker?: (hard: boolean) => Promise<void>;
  /** Stops Redis and starts it again on the same port with its data (an append-only file). */
  readonly redisOutage?: { stop(): Promise<void>; start(): Promise<void> };
  /** A spool filesystem of its own, whose free space a scenario can take away. */
  readonly spoolDisk?: SpoolDisk;
}

/** The services of a running stack (the integration suite's), without the faults that would stop them. */
export function sharedServices(stack: StackInfo, spoolDir: string): ChaosServices {
  return {
    brokers: stack.kafka!.brokers,
    postgresUrl: stack.postgres!.url,
    minio: stack.minio!,
    redisUrl: stack.redis!.url,
    spoolDir,
  };
}

/**
 * Starts Kafka, MinIO, PostgreSQL and a persistent Redis on loopback under `dir`, and a small tmpfs for the spool
 * when this process may mount one (root); `stop` ends them all.
 */
export async function startOwnServices(
  dir: string,
  progress: (message: string) => void,
): Promise<ChaosServices & { stop(): Promise<void> }> {
  const config = loadConfig();
  const stack = await startLocalStack(config, { dir, redis: false, onProgress: progress });
  const redisDir = join(dir, 'redis');
  let redis: LocalRedis;
  try {
    redis = await startLocalRedis(config, { dir: redisDir, persistent: true });
  } catch (error) {
    await stack.stop();
    throw error;
  }
  const spoolDisk = await mountSpoolDisk(join(dir, 'spool-disk')).catch((error: Error) => {
    progress(`no spool filesystem of its own (${error.message}): the disk scenario is left out`);
    return undefined;
  });
  const spoolDir = spoolDisk?.dir ?? join(dir, 'spool');
  await mkdir(spoolDir, { recursive: true });
  return {
    ...sharedServices({ ...stack.info, redis: { url: redis.url, port: redis.port, version: redis.version } }, spoolDir),
    restartBroker: (hard) => stack.kafka!.restart({ hard }),
    redisOutage: {
      stop: () => redis.stop(),
      async start() {
        redis = await startLocalRedis(config, { dir: redisDir, persistent: true, port: redis.port });
      },
    },
    ...(spoolDisk ? { spoolDisk } : {}),
    async stop() {
      await Promise.all([stack.stop(), redis.stop()]);
      spoolDisk?.unmount();
    },
  };
}
