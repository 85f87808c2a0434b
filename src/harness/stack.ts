import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/index.ts';
import { ensureTopics } from '../kafka/admin.ts';
import { pipelineTopics } from '../kafka/topics.ts';
import { type LocalKafka, startLocalKafka } from './kafka.ts';
import { type LocalMinio, startLocalMinio } from './minio.ts';
import { type LocalPostgres, startLocalPostgres } from './postgres.ts';
import { type LocalRedis, startLocalRedis } from './redis.ts';

/** Plain data describing where the services listen: what tests receive through vitest's `provide`/`inject`. */
export interface StackInfo {
  readonly dir: string;
  readonly kafka?: {
    readonly brokers: string;
    readonly version: string;
    /** The fault-injection listener (see `LocalKafka.proxied`). */
    readonly proxied: { readonly brokers: string; readonly upstream: string };
  };
  readonly minio?: {
    readonly endpoint: string;
    readonly accessKeyId: string;
    readonly secretAccessKey: string;
    readonly region: string;
    readonly version: string;
  };
  readonly postgres?: { readonly url: string; readonly version: string };
  readonly redis?: { readonly url: string; readonly port: number; readonly version: string };
}

export interface LocalStack {
  readonly info: StackInfo;
  readonly kafka?: LocalKafka;
  readonly minio?: LocalMinio;
  readonly postgres?: LocalPostgres;
  readonly redis?: LocalRedis;
  stop(): Promise<void>;
}

export interface LocalStackOptions {
  /** Parent directory of every service's data and log files. */
  readonly dir: string;
  readonly kafka?: boolean;
  readonly minio?: boolean;
  readonly postgres?: boolean;
  readonly redis?: boolean;
  /** Partitions of each pipeline topic created on the broker. */
  readonly topicPartitions?: number;
  readonly onProgress?: (message: string) => void;
}

/**
 * Starts the requested real services side by side, each on a free loopback port with its files under `dir`. If any
 * fails to start, the others are stopped before the error is rethrown.
 */
export async function startLocalStack(config: Config, options: LocalStackOptions): Promise<LocalStack> {
  const progress = options.onProgress ?? (() => {});
  await mkdir(options.dir, { recursive: true });
  // PostgreSQL runs as its own system user when we are root: it must be able to reach its directory.
  await chmod(options.dir, 0o755);

  const timed = async <T>(name: string, start: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    progress(`starting ${name}`);
    const service = await start();
    progress(`${name} ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return service;
  };
  const results = await Promise.allSettled([
    options.kafka === false
      ? undefined
      : timed('kafka', async () => {
          const kafka = await startLocalKafka(config, { dir: join(options.dir, 'kafka') });
          await ensureTopics(kafka.brokers, pipelineTopics(options.topicPartitions ?? 4)).catch(async (error) => {
            await kafka.stop();
            throw error;
          });
          return kafka;
        }),
    options.minio === false
      ? undefined
      : timed('minio', () => startLocalMinio(config, { dir: join(options.dir, 'minio') })),
    options.postgres === false
      ? undefined
      : timed('postgres', () => startLocalPostgres(config, { dir: join(options.dir, 'postgres') })),
    options.redis === false
      ? undefined
      : timed('redis', () => startLocalRedis(config, { dir: join(options.dir, 'redis') })),
  ]);
  const [kafka, minio, postgres, redis] = results.map((r) => (r.status === 'fulfilled' ? r.value : undefined)) as [
    LocalKafka | undefined,
    LocalMinio | undefined,
    LocalPostgres | undefined,
    LocalRedis | undefined,
  ];
  const stop = async () => {
    await Promise.all([kafka?.stop(), minio?.stop(), postgres?.stop(), redis?.stop()]);
  };
  const failure = results.find((r) => r.status === 'rejected');
  if (failure) {
    await stop();
    throw failure.reason;
  }

  const info: StackInfo = {
    dir: options.dir,
    ...(kafka && { kafka: { brokers: kafka.brokers, version: kafka.version, proxied: kafka.proxied } }),
    ...(minio && {
      minio: {
        endpoint: minio.endpoint,
        accessKeyId: minio.accessKeyId,
        secretAccessKey: minio.secretAccessKey,
        region: minio.region,
        version: minio.version,
      },
    }),
    ...(postgres && { postgres: { url: postgres.url, version: postgres.version } }),
    ...(redis && { redis: { url: redis.url, port: redis.port, version: redis.version } }),
  };
  return { info, kafka, minio, postgres, redis, stop };
}
