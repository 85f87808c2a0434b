import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { openClickHouse } from '../clickhouse/client.ts';
import { startLocalKafka } from '../harness/kafka.ts';
import { ensureTopics } from '../kafka/admin.ts';
import { pipelineTopics } from '../kafka/topics.ts';
import { openPostgres } from '../postgres/database.ts';
import type { Command } from './command.ts';
import { untilAborted } from './runtime.ts';

export const devCommand: Command = {
  name: 'dev',
  summary: 'Run everything in one process on the embedded defaults (local Kafka, filesystem blobs, chDB, PGlite).',
  usage: `replay dev

Starts a local single-node Kafka broker and opens the embedded stores under REPLAY_DATA_DIR (default .data), then
prints where everything listens. Data persists between runs. Ctrl-C stops everything cleanly.`,
  async run(_args, { config, log, signal, stdout }) {
    const dataDir = resolve(config.dataDir);
    await mkdir(join(dataDir, 'blobs'), { recursive: true });
    log.info('starting local Kafka broker', { dir: join(dataDir, 'kafka') });
    const kafka = await startLocalKafka(config, { dir: join(dataDir, 'kafka') });
    const stops: (() => Promise<void>)[] = [() => kafka.stop()];
    try {
      await ensureTopics(kafka.brokers, pipelineTopics(4));
      const clickhouse = openClickHouse({ kind: 'chdb', path: join(dataDir, 'clickhouse') });
      stops.unshift(() => clickhouse.close());
      const [row] = await (await clickhouse.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' })).json<{
        v: string;
      }>();
      const postgres = await openPostgres({ kind: 'pglite', dataDir: join(dataDir, 'pglite') });
      stops.unshift(() => postgres.close());

      stdout(
        [
          'replay dev is running (Ctrl-C to stop)',
          `  kafka       ${kafka.brokers}  (Apache Kafka ${kafka.version}, data ${join(dataDir, 'kafka')})`,
          `  blobs       ${join(dataDir, 'blobs')}  (filesystem blob store)`,
          `  clickhouse  ${join(dataDir, 'clickhouse')}  (chDB, ClickHouse ${row?.v})`,
          `  postgres    ${join(dataDir, 'pglite')}  (PGlite)`,
          '',
        ].join('\n'),
      );
      await untilAborted(signal);
      log.info('stopping');
    } finally {
      for (const stop of stops) await stop();
    }
    return 0;
  },
};
