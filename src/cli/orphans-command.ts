import { parseArgs } from 'node:util';
import { findOrphans } from '../blob-consumer/orphans.ts';
import { topicNames } from '../kafka/topics.ts';
import { openBlobStore } from '../storage/open-blob-store.ts';
import type { Command } from './command.ts';

export const orphansCommand: Command = {
  async run(args, { config, stdout }) {
    const { values } = parseArgs({
      args: [...args],
      options: {
        'min-age-minutes': { type: 'string', default: '60' },
        'max-age-hours': { type: 'string', default: '48' },
        delete: { type: 'boolean', default: false },
      },
    });
    const store = openBlobStore(config);
    const scan = await findOrphans({
      store,
      prefix: config.blobPrefix,
      brokers: config.kafkaBrokers,
      summaryTopic: topicNames.replaySummaries,
      minAgeMs: Number(values['min-age-minutes']) * 60_000,
      maxAgeMs: Number(values['max-age-hours']) * 3_600_000,
    });
    for (const key of scan.orphans) {
      if (values.delete) await store.delete(key);
      stdout(`${values.delete ? 'deleted' : 'orphan'}  ${store.urlOf(key)}\n`);
    }
    stdout(
      `${scan.orphans.length} orphan(s) among ${scan.examined} object(s); ${scan.referenced} referenced by committed rows; ${scan.tooOld} too old to judge\n`,
    );
    return 0;
  },
};
