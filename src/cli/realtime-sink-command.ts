import type { Config } from '../config/index.ts';
import { AckedProducer } from '../kafka/acked-producer.ts';
import { topicNames } from '../kafka/topics.ts';
import type { Logger } from '../logging/logger.ts';
import { createMetricsRegistry } from '../metrics/registry.ts';
import { type RealtimeRedis, RealtimeSink } from '../uba/realtime/realtime-sink.ts';
import { RedisConnection } from '../uba/realtime/redis-connection.ts';
import type { Command } from './command.ts';
import { startConsumerService } from './consumer-service.ts';
import { serveUntilStopped } from './runtime.ts';

/** Builds and starts the realtime sink (framework + realtime sink + health server). */
export async function runRealtimeSink(
  config: Config,
  log: Logger,
  overrides: { brokers?: string; wrapRedis?: (redis: RealtimeRedis) => RealtimeRedis } = {},
) {
  const registry = createMetricsRegistry('realtime-sink');
  const brokers = overrides.brokers ?? config.kafkaBrokers;
  const connection = new RedisConnection({
    url: config.redisUrl,
    connectTimeoutMs: config.redisConnectTimeoutMs,
    commandTimeoutMs: config.redisCommandTimeoutMs,
    log: log.child('redis'),
  });
  const deadLetters = new AckedProducer({ brokers, clientId: 'realtime-sink-dlq' });
  await deadLetters.start();
  const sink = new RealtimeSink({
    redis: overrides.wrapRedis ? overrides.wrapRedis(connection) : connection,
    deadLetters,
    dlqTopic: topicNames.userBehaviorsDlq,
    offsetGroup: config.realtimeOffsetGroup || config.realtimeGroupId,
    rules: { weights: config.realtimeActionWeights, halfLifeS: config.realtimeHalfLifeS },
    limits: {
      offsetTtlS: config.realtimeOffsetTtlS,
      hotMaxItems: config.realtimeHotMaxItems,
      hotTtlS: config.realtimeHotTtlS,
      metricsTtlS: config.realtimeMetricsTtlS,
      recentMax: config.realtimeRecentMax,
      recentTtlS: config.realtimeRecentTtlS,
    },
    flushIntervalMs: config.realtimeFlushIntervalMs,
    maxBufferedMessages: config.realtimeFlushMaxMessages,
    log: log.child('realtime'),
    registry,
  });
  let started: Awaited<ReturnType<typeof startConsumerService>>;
  try {
    started = await startConsumerService(config, log, {
      brokers,
      groupId: config.realtimeGroupId,
      topic: config.realtimeTopic,
      clientId: `realtime-sink-${process.pid}`,
      sink,
      registry,
      listen: { host: config.realtimeHost, port: config.realtimePort },
    });
  } catch (error) {
    await deadLetters.close();
    await connection.close();
    throw error;
  }
  const { consumer, http } = started;
  return {
    consumer,
    http,
    sink,
    registry,
    failed: consumer.failed,
    async stop() {
      await consumer.stop();
      await deadLetters.close();
      await http.close();
      await connection.close();
    },
  };
}

export const realtimeSinkCommand: Command = {
  async run(_args, { config, log, signal }) {
    const running = await runRealtimeSink(config, log);
    await serveUntilStopped(signal, running.failed, () => {
      log.info('shutting down');
      return running.stop();
    });
    return 0;
  },
};
