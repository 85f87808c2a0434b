import { parseArgs } from 'node:util';
import { reindex } from '../blob-consumer/reindex.ts';
import { clickhouseTargetFromUrl, openClickHouse } from '../clickhouse/client.ts';
import { migrateClickHouse } from '../clickhouse/migrations.ts';
import { DeletionStore } from '../deletion/deletion-store.ts';
import { ReplayError } from '../errors/index.ts';
import { migratePostgres } from '../postgres/migrations.ts';
import { openBlobStore } from '../storage/open-blob-store.ts';
import type { Command } from './command.ts';
import { openDatabase } from './runtime.ts';

export const reindexCommand: Command = {
  async run(args, { config, stdout }) {
    const { values } = parseArgs({ args: [...args], options: { from: { type: 'string' }, to: { type: 'string' } } });
    const fromMs = Date.parse(values.from ?? '');
    const toMs = Date.parse(values.to ?? '');
    if (!Number.isFinite(fromMs) || !Number.isFinite(toMs) || fromMs >= toMs) {
      throw new ReplayError('config_invalid', 'reindex needs --from and --to as ISO dates, with --from before --to');
    }
    const clickhouse = openClickHouse(clickhouseTargetFromUrl(config.clickhouseUrl));
    const store = openBlobStore(config);
    const db = await openDatabase(config);
    try {
      await migrateClickHouse(clickhouse);
      await migratePostgres(db);
      const deletions = new DeletionStore(db);
      const done = await reindex({
        store,
        prefix: config.blobPrefix,
        clickhouse,
        fromMs,
        toMs,
        deleted: (teamId, ids) => deletions.deletedAmong(teamId, ids),
        onProgress: (message) => process.stderr.write(`reindex: ${message}\n`),
      });
      stdout(`reindexed ${done.rows} rows from ${done.objects} objects\n`);
    } finally {
      await db.close();
      await clickhouse.close();
      store.close();
    }
    return 0;
  },
};
