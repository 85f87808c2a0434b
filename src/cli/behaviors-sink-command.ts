import type { ClickHouseClient } from '@clickhouse/client';
import { clickhouseTargetFromUrl, openClickHouse } from '../clickhouse/client.ts';
import { migrateClickHouse } from '../clickhouse/migrations.ts';
import type { Config } from '../config/index.ts';
import { AckedProducer } from '../kafka/acked-producer.ts';
import { topicNames } from '../kafka/topics.ts';
import type { Logger } from '../logging/logger.ts';
import { createMetricsRegistry } from '../metrics/registry.ts';
import { BehaviorsSink } from '../uba/behaviors-sink.ts';
import type { Command } from './command.ts';
import { startConsumerService } from './consumer-service.ts';
import { serveUntilStopped } from './runtime.ts';

/** Builds and starts the behaviour sink (framework + behaviour sink + health server). */
export async function runBehaviorsSink(
  config: Config,
  log: Logger,
  overrides: { brokers?: string; clickhouse?: ClickHouseClient } = {},
) {
  const clickhouse = overrides.clickhouse ?? openClickHouse(clickhouseTargetFromUrl(config.clickhouseUrl));
  const closeClickHouse = async () => {
    if (!overrides.clickhouse) await clickhouse.close();
  };
  const registry = createMetricsRegistry('behaviors-sink');
  const brokers = overrides.brokers ?? config.kafkaBrokers;
  const deadLetters = new AckedProducer({ brokers, clientId: 'behaviors-sink-dlq' });
  let started: Awaited<ReturnType<typeof startConsumerService>>;
  try {
    if (!overrides.clickhouse) await migrateClickHouse(clickhouse);
    await deadLetters.start();
    const sink = new BehaviorsSink({
      clickhouse,
      deadLetters,
      dlqTopic: topicNames.userBehaviorsClickhouseDlq,
      flushIntervalMs: config.behaviorsInsertIntervalMs,
      maxBufferedMessages: config.behaviorsMaxRows,
      log: log.child('behaviors'),
      registry,
    });
    started = await startConsumerService(config, log, {
      brokers,
      groupId: config.behaviorsGroupId,
      topic: config.behaviorsTopic,
      clientId: `behaviors-sink-${process.pid}`,
      sink,
      registry,
      listen: { host: config.behaviorsHost, port: config.behaviorsPort },
    });
  } catch (error) {
    await deadLetters.close();
    await closeClickHouse();
    throw error;
  }
  const { consumer, http } = started;
  return {
    consumer,
    http,
    registry,
    failed: consumer.failed,
    async stop() {
      await consumer.stop();
      await deadLetters.close();
      await http.close();
      await closeClickHouse();
    },
  };
}

export const behaviorsSinkCommand: Command = {
  async run(_args, { config, log, signal }) {
    const running = await runBehaviorsSink(config, log);
    await serveUntilStopped(signal, running.failed, () => {
      log.info('shutting down');
      return running.stop();
    });
    return 0;
  },
};
