import { parseArgs } from 'node:util';
import { clickhouseTargetFromUrl, openClickHouse } from '../clickhouse/client.ts';
import { migrateClickHouse } from '../clickhouse/migrations.ts';
import { ReplayError } from '../errors/index.ts';
import { reindex } from '../replay/reindex.ts';
import { openBlobStore } from '../storage/open-blob-store.ts';
import type { Command } from './command.ts';

export const reindexCommand: Command = {
  name: 'reindex',
  summary: 'Rebuild session_replay_events rows for a time range from the object footers in the blob store alone.',
  usage: `replay reindex --from 2026-11-01 --to 2026-11-22

Reads every object under BLOB_PREFIX written in [--from, --to) (ISO dates or times, UTC), rebuilds one summary row
per block from its footer, and inserts them into CLICKHOUSE_URL. Blocks of objects whose flush never committed are
skipped when a newer object holds the same messages. Each object's rows carry a deduplication token, so running the
same range twice stores them once; clear the range first when rebuilding a table that still holds rows.`,
  async run(args, { config, stdout }) {
    const { values } = parseArgs({ args: [...args], options: { from: { type: 'string' }, to: { type: 'string' } } });
    const fromMs = Date.parse(values.from ?? '');
    const toMs = Date.parse(values.to ?? '');
    if (!Number.isFinite(fromMs) || !Number.isFinite(toMs) || fromMs >= toMs) {
      throw new ReplayError('config_invalid', 'reindex needs --from and --to as ISO dates, with --from before --to');
    }
    const clickhouse = openClickHouse(clickhouseTargetFromUrl(config.clickhouseUrl));
    const store = openBlobStore(config);
    try {
      await migrateClickHouse(clickhouse);
      const done = await reindex({
        store,
        prefix: config.blobPrefix,
        clickhouse,
        fromMs,
        toMs,
        onProgress: (message) => process.stderr.write(`reindex: ${message}\n`),
      });
      stdout(`reindexed ${done.rows} rows from ${done.objects} objects\n`);
    } finally {
      await clickhouse.close();
      store.close();
    }
    return 0;
  },
};
