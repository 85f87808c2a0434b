import type { ClickHouseClient } from '@clickhouse/client';
import { clickhouseTargetFromUrl, openClickHouse } from '../clickhouse/client.ts';
import { migrateClickHouse } from '../clickhouse/migrations.ts';
import { SummarySink } from '../clickhouse/summary-sink.ts';
import type { Config } from '../config/index.ts';
import { AckedProducer } from '../kafka/acked-producer.ts';
import { topicNames } from '../kafka/topics.ts';
import type { Logger } from '../logging/logger.ts';
import { createMetricsRegistry } from '../metrics/registry.ts';
import type { Command } from './command.ts';
import { startConsumerService } from './consumer-service.ts';
import { serveUntilStopped } from './runtime.ts';

/** Builds and starts the ClickHouse sink (framework + summary sink + health server). */
export async function runSink(
  config: Config,
  log: Logger,
  overrides: { brokers?: string; clickhouse?: ClickHouseClient } = {},
) {
  const clickhouse = overrides.clickhouse ?? openClickHouse(clickhouseTargetFromUrl(config.clickhouseUrl));
  if (!overrides.clickhouse) await migrateClickHouse(clickhouse);
  const registry = createMetricsRegistry('clickhouse-sink');
  const brokers = overrides.brokers ?? config.kafkaBrokers;
  const deadLetters = new AckedProducer({ brokers, clientId: 'clickhouse-sink-dlq' });
  await deadLetters.start();
  const sink = new SummarySink({
    clickhouse,
    deadLetters,
    dlqTopic: topicNames.replaySummariesDlq,
    flushIntervalMs: config.sinkInsertIntervalMs,
    maxBufferedMessages: config.sinkMaxRows,
    log: log.child('sink'),
    registry,
  });
  const { consumer, http } = await startConsumerService(config, log, {
    brokers,
    groupId: config.sinkGroupId,
    topic: config.sinkTopic,
    clientId: `clickhouse-sink-${process.pid}`,
    sink,
    registry,
    listen: { host: config.sinkHost, port: config.sinkPort },
  });
  return {
    consumer,
    http,
    failed: consumer.failed,
    async stop() {
      await consumer.stop();
      await deadLetters.close();
      await http.close();
      if (!overrides.clickhouse) await clickhouse.close();
    },
  };
}

export const sinkCommand: Command = {
  async run(_args, { config, log, signal }) {
    const running = await runSink(config, log);
    await serveUntilStopped(signal, running.failed, () => {
      log.info('shutting down');
      return running.stop();
    });
    return 0;
  },
};
