import type { Config } from '../config/index.ts';
import { topicNames } from '../kafka/topics.ts';
import type { Logger } from '../logging/logger.ts';
import { type RealtimeRedis, RealtimeSink } from '../uba/realtime/realtime-sink.ts';
import { RedisConnection } from '../uba/realtime/redis-connection.ts';
import { startBatchSinkService } from './consumer-service.ts';
import { serviceCommand } from './runtime.ts';

/** Builds and starts the realtime sink (framework + realtime sink + health server). */
export function runRealtimeSink(
  config: Config,
  log: Logger,
  overrides: { brokers?: string; wrapRedis?: (redis: RealtimeRedis) => RealtimeRedis } = {},
) {
  const connection = new RedisConnection({
    url: config.redisUrl,
    connectTimeoutMs: config.redisConnectTimeoutMs,
    commandTimeoutMs: config.redisCommandTimeoutMs,
    log: log.child('redis'),
  });
  return startBatchSinkService(config, log, {
    name: 'realtime-sink',
    brokers: overrides.brokers ?? config.kafkaBrokers,
    groupId: config.realtimeGroupId,
    topic: config.realtimeTopic,
    listen: { host: config.realtimeHost, port: config.realtimePort },
    createSink: ({ deadLetters, registry }) =>
      new RealtimeSink({
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
      }),
    close: () => connection.close(),
  });
}

export const realtimeSinkCommand = serviceCommand(runRealtimeSink);
