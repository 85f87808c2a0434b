import type { ClickHouseClient } from '@clickhouse/client';
import { clickhouseTargetFromUrl, openClickHouse } from '../clickhouse/client.ts';
import { migrateClickHouse } from '../clickhouse/migrations.ts';
import { SummarySink } from '../clickhouse/summary-sink.ts';
import type { Config } from '../config/index.ts';
import type { Logger } from '../logging/logger.ts';
import { createMetricsRegistry } from '../metrics/registry.ts';
import type { Command } from './command.ts';
import { startConsumerService } from './consumer-service.ts';
import { untilAborted } from './runtime.ts';

/** Builds and starts the ClickHouse sink (framework + summary sink + health server). */
export async function runSink(
  config: Config,
  log: Logger,
  overrides: { brokers?: string; clickhouse?: ClickHouseClient } = {},
) {
  const clickhouse = overrides.clickhouse ?? openClickHouse(clickhouseTargetFromUrl(config.clickhouseUrl));
  if (!overrides.clickhouse) await migrateClickHouse(clickhouse);
  const registry = createMetricsRegistry('clickhouse-sink');
  const sink = new SummarySink({
    clickhouse,
    insertIntervalMs: config.sinkInsertIntervalMs,
    maxBufferedRows: config.sinkMaxRows,
    log: log.child('sink'),
    registry,
  });
  const { consumer, http } = await startConsumerService(config, log, {
    brokers: overrides.brokers ?? config.kafkaBrokers,
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
    async stop() {
      await consumer.stop();
      await http.close();
      if (!overrides.clickhouse) await clickhouse.close();
    },
  };
}

export const sinkCommand: Command = {
  name: 'sink',
  summary: 'Run the ClickHouse sink (summary rows → session_replay_events, batched, idempotent).',
  usage: `replay sink

Reads SINK_TOPIC (read_committed) in group SINK_GROUP_ID and inserts the summary rows into session_replay_events on
CLICKHOUSE_URL at most every SINK_INSERT_INTERVAL_MS, committing offsets after each insert. Applies the ClickHouse
migrations first. Health and metrics on SINK_HOST:SINK_PORT.`,
  async run(_args, { config, log, signal }) {
    const running = await runSink(config, log);
    await untilAborted(signal);
    log.info('shutting down');
    await running.stop();
    return 0;
  },
};
