import { clickhouseTargetFromUrl, openClickHouse } from '../clickhouse/client.ts';
import { migrateClickHouse } from '../clickhouse/migrations.ts';
import { ensureTopics } from '../kafka/admin.ts';
import { pipelineTopics } from '../kafka/topics.ts';
import { migratePostgres } from '../postgres/migrations.ts';
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
      });
      stdout(created.length === 0 ? 'kafka: topics exist\n' : `kafka: created ${created.join(', ')}\n`);
    }
    return 0;
  },
};
