import type { ClickHouseClient } from '@clickhouse/client';
import { clickhouseTargetFromUrl, openClickHouse } from '../clickhouse/client.ts';
import { migrateClickHouse } from '../clickhouse/migrations.ts';
import { SummarySink } from '../clickhouse/summary-sink.ts';
import type { Config } from '../config/index.ts';
import { topicNames } from '../kafka/topics.ts';
import type { Logger } from '../logging/logger.ts';
import { startBatchSinkService } from './consumer-service.ts';
import { serviceCommand } from './runtime.ts';

/** Builds and starts the ClickHouse sink (framework + summary sink + health server). */
export function runSink(
  config: Config,
  log: Logger,
  overrides: { brokers?: string; clickhouse?: ClickHouseClient } = {},
) {
  const clickhouse = overrides.clickhouse ?? openClickHouse(clickhouseTargetFromUrl(config.clickhouseUrl));
  return startBatchSinkService(config, log, {
    name: 'clickhouse-sink',
    brokers: overrides.brokers ?? config.kafkaBrokers,
    groupId: config.sinkGroupId,
    topic: config.sinkTopic,
    listen: { host: config.sinkHost, port: config.sinkPort },
    prepare: async () => {
      if (!overrides.clickhouse) await migrateClickHouse(clickhouse);
    },
    createSink: ({ deadLetters, registry }) =>
      new SummarySink({
        clickhouse,
        deadLetters,
        dlqTopic: topicNames.replaySummariesDlq,
        flushIntervalMs: config.sinkInsertIntervalMs,
        maxBufferedMessages: config.sinkMaxRows,
        log: log.child('sink'),
        registry,
      }),
    close: async () => {
      if (!overrides.clickhouse) await clickhouse.close();
    },
  });
}

export const sinkCommand = serviceCommand(runSink);
