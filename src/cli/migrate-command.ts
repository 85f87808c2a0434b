import { clickhouseTargetFromUrl, openClickHouse } from '../clickhouse/client.ts';
import { migrateClickHouse } from '../clickhouse/migrations.ts';
import type { Config } from '../config/index.ts';
import { ReplayError } from '../errors/index.ts';
import { ensureTopics } from '../kafka/admin.ts';
import { pipelineTopics } from '../kafka/topics.ts';
import { migratePostgres } from '../postgres/migrations.ts';
import { openS3BlobStore } from '../storage/open-blob-store.ts';
import { applyRetentionLifecycle } from '../storage/s3-lifecycle.ts';
import type { Command } from './command.ts';
import { openDatabase } from './runtime.ts';

export const migrateCommand: Command = {
  async run(_args, { config, stdout }) {
    const db = await openDatabase(config);
    try {
      const applied = await migratePostgres(db);
      stdout(applied.length === 0 ? 'postgres: up to date\n' : `postgres: applied ${applied.join(', ')}\n`);
    } finally {
      await db.close();
    }
    const clickhouse = openClickHouse(clickhouseTargetFromUrl(config.clickhouseUrl));
    try {
      const applied = await migrateClickHouse(clickhouse);
      stdout(applied.length === 0 ? 'clickhouse: up to date\n' : `clickhouse: applied ${applied.join(', ')}\n`);
    } finally {
      await clickhouse.close();
    }
    if (config.kafkaTopicPartitions > 0) {
      const created = await ensureTopics(config.kafkaBrokers, pipelineTopics(config.kafkaTopicPartitions), {
        replicationFactor: config.kafkaTopicReplicationFactor,
      }).catch((error: Error) => {
        throw new ReplayError(
          'kafka_unavailable',
          `could not create the topics on ${config.kafkaBrokers}: ${error.message}`,
          {
            cause: error,
          },
        );
      });
      stdout(created.length === 0 ? 'kafka: topics exist\n' : `kafka: created ${created.join(', ')}\n`);
    }
    await migrateBlobStore(config, stdout);
    return 0;
  },
};

/** The blob store's half of `migrate`: the bucket's lifecycle rules (DESIGN §3.9), printed as the bucket holds them. */
export async function migrateBlobStore(config: Config, stdout: (text: string) => void): Promise<void> {
  if (config.blobStore === 'fs') {
    stdout('blobs: BLOB_STORE=fs, no bucket lifecycle (`replay dev` sweeps expired files)\n');
    return;
  }
  const store = openS3BlobStore(config);
  try {
    const rules = await applyRetentionLifecycle(store, config.blobPrefix);
    stdout(`s3: replaced the lifecycle configuration of bucket ${store.bucket}; it holds ${rules.length} rules:\n`);
    for (const rule of rules) {
      const abort = rule.AbortIncompleteMultipartUpload?.DaysAfterInitiation;
      stdout(
        `  ${rule.ID}: ${rule.Filter?.Prefix ?? '(whole bucket)'} expires after ${rule.Expiration?.Days} days` +
          `${abort === undefined ? '' : `, unfinished multipart uploads aborted after ${abort} day(s)`}\n`,
      );
    }
    if (rules.some((rule) => rule.AbortIncompleteMultipartUpload === undefined)) {
      stdout('s3: the store kept no AbortIncompleteMultipartUpload action (MinIO purges stale uploads itself)\n');
    }
  } finally {
    store.close();
  }
}
