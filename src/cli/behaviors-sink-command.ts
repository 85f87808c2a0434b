import type { ClickHouseClient } from '@clickhouse/client';
import { clickhouseTargetFromUrl, openClickHouse } from '../clickhouse/client.ts';
import { migrateClickHouse } from '../clickhouse/migrations.ts';
import type { Config } from '../config/index.ts';
import { topicNames } from '../kafka/topics.ts';
import type { Logger } from '../logging/logger.ts';
import { BehaviorsSink } from '../uba/behaviors-sink.ts';
import { startBatchSinkService } from './consumer-service.ts';
import { serviceCommand } from './runtime.ts';

/** Builds and starts the behaviour sink (framework + behaviour sink + health server). */
export function runBehaviorsSink(
  config: Config,
  log: Logger,
  overrides: { brokers?: string; clickhouse?: ClickHouseClient } = {},
) {
  const clickhouse = overrides.clickhouse ?? openClickHouse(clickhouseTargetFromUrl(config.clickhouseUrl));
  return startBatchSinkService(config, log, {
    name: 'behaviors-sink',
    brokers: overrides.brokers ?? config.kafkaBrokers,
    groupId: config.behaviorsGroupId,
    topic: config.behaviorsTopic,
    listen: { host: config.behaviorsHost, port: config.behaviorsPort },
    prepare: async () => {
      if (!overrides.clickhouse) await migrateClickHouse(clickhouse);
    },
    createSink: ({ deadLetters, registry }) =>
      new BehaviorsSink({
        clickhouse,
        deadLetters,
        dlqTopic: topicNames.userBehaviorsClickhouseDlq,
        flushIntervalMs: config.behaviorsInsertIntervalMs,
        maxBufferedMessages: config.behaviorsMaxRows,
        log: log.child('behaviors'),
        registry,
      }),
    close: async () => {
      if (!overrides.clickhouse) await clickhouse.close();
    },
  });
}

export const behaviorsSinkCommand = serviceCommand(runBehaviorsSink);
