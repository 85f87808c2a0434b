import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  GetBucketLifecycleConfigurationCommand,
  HeadBucketCommand,
  type LifecycleRule,
  PutBucketLifecycleConfigurationCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { migrateBlobStore, migrateCommand } from '../../src/cli/migrate-command.ts';
import { loadConfig } from '../../src/config/index.ts';
import { isReplayError } from '../../src/errors/index.ts';
import { createLogger } from '../../src/logging/logger.ts';
import type { S3BlobStore } from '../../src/storage/s3-blob-store.ts';
import { retentionLifecycleRules } from '../../src/storage/s3-lifecycle.ts';
import { freshBucketStore } from '../support/blob-consumer.ts';

const minio = inject('stack').minio!;

/** A rule as compared here: the fields the pipeline sets, in one order. */
function normalised(rule: LifecycleRule) {
  return {
    id: rule.ID,
    status: rule.Status,
    prefix: rule.Filter?.Prefix,
    expirationDays: rule.Expiration?.Days,
    abortAfterDays: rule.AbortIncompleteMultipartUpload?.DaysAfterInitiation,
  };
}

describe('replay migrate: the bucket lifecycle rules of the retention classes (real MinIO)', () => {
  let dir: string;
  let store: S3BlobStore;
  const s3Env = (bucket: string) => ({
    HOME: '/nonexistent',
    BLOB_STORE: 's3',
    BLOB_PREFIX: 'recordings/live',
    S3_ENDPOINT: minio.endpoint,
    S3_REGION: minio.region,
    S3_FORCE_PATH_STYLE: 'true',
    S3_BUCKET: bucket,
    S3_ACCESS_KEY_ID: minio.accessKeyId,
    S3_SECRET_ACCESS_KEY: minio.secretAccessKey,
  });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'retention-lifecycle-'));
    store = await freshBucketStore();
  });
  afterAll(async () => {
    store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const lifecycle = async () =>
    ((await store.client.send(new GetBucketLifecycleConfigurationCommand({ Bucket: store.bucket }))).Rules ?? []).map(
      normalised,
    );

  it('replaces the lifecycle configuration with one rule per class, and a second run leaves the same rules', async () => {
    // A rule someone added by hand: migrate owns the whole configuration, so it goes.
    await store.client.send(
      new PutBucketLifecycleConfigurationCommand({
        Bucket: store.bucket,
        LifecycleConfiguration: {
          Rules: [{ ID: 'by-hand', Status: 'Enabled', Filter: { Prefix: 'tmp/' }, Expiration: { Days: 3 } }],
        },
      }),
    );
    const config = loadConfig({
      ...s3Env(store.bucket),
      DATABASE_URL: `pglite://${join(dir, 'pglite')}`,
      CLICKHOUSE_URL: `chdb://${join(dir, 'clickhouse')}`,
      KAFKA_TOPIC_PARTITIONS: '0',
    });
    const run = async () => {
      let out = '';
      const code = await migrateCommand.run([], {
        config,
        log: createLogger('warn', 'migrate'),
        signal: new AbortController().signal,
        stdout: (text) => {
          out += text;
        },
      });
      return { code, out };
    };

    const first = await run();
    expect(first.code).toBe(0);
    const expected = [
      { id: 'expire-30d', prefix: 'recordings/live/30d/', expirationDays: 30 },
      { id: 'expire-90d', prefix: 'recordings/live/90d/', expirationDays: 90 },
      { id: 'expire-1y', prefix: 'recordings/live/1y/', expirationDays: 365 },
      { id: 'expire-5y', prefix: 'recordings/live/5y/', expirationDays: 1825 },
    ].map((rule) => ({ ...rule, status: 'Enabled', abortAfterDays: 1 }));
    // What migrate sends is exactly these rules.
    expect(retentionLifecycleRules('recordings/live').map(normalised)).toEqual(expected);
    // What MinIO keeps: the same rules without the abort action, which MinIO accepts and drops (it purges stale
    // multipart uploads itself); AWS keeps it.
    const stored = await lifecycle();
    expect(stored).toEqual(expected.map((rule) => ({ ...rule, abortAfterDays: undefined })));
    expect(first.out).toContain(
      `s3: replaced the lifecycle configuration of bucket ${store.bucket}; it holds 4 rules:`,
    );
    expect(first.out).toContain('  expire-1y: recordings/live/1y/ expires after 365 days\n');
    expect(first.out).toContain('the store kept no AbortIncompleteMultipartUpload action');
    expect(first.out).toMatch(/^postgres: applied .*\nclickhouse: applied .*0014_session_replay_events_ttl\.sql/m);

    const second = await run();
    expect(second.code).toBe(0);
    expect(second.out).toContain('postgres: up to date\nclickhouse: up to date\n');
    expect(await lifecycle()).toEqual(stored);
    expect(second.out.slice(second.out.indexOf('s3:'))).toBe(first.out.slice(first.out.indexOf('s3:')));
  });

  it('fails with bucket_missing for a bucket that does not exist, and does not create it', async () => {
    const missing = `missing-${randomUUID()}`;
    const config = loadConfig(s3Env(missing));
    const error = await migrateBlobStore(config, () => {}).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isReplayError(error, 'bucket_missing')).toBe(true);
    expect((error as Error).message).toContain(missing);
    const head = await store.client.send(new HeadBucketCommand({ Bucket: missing })).then(
      () => 200,
      (e: { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode,
    );
    expect(head).toBe(404);
  });

  it('says there is nothing to apply with BLOB_STORE=fs', async () => {
    let out = '';
    await migrateBlobStore(loadConfig({ HOME: '/nonexistent', BLOB_STORE: 'fs' }), (text) => {
      out += text;
    });
    expect(out).toBe('blobs: BLOB_STORE=fs, no bucket lifecycle (`replay dev` sweeps expired files)\n');
  });
});
