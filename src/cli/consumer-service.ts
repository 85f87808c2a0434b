import type { Registry } from 'prom-client';
import type { Config } from '../config/index.ts';
import { PartitionConsumer } from '../consumer/partition-consumer.ts';
import type { Sink } from '../consumer/sink.ts';
import { Router } from '../http/router.ts';
import { type RunningHttpService, startHttpService } from '../http/server.ts';
import type { Logger } from '../logging/logger.ts';

/**
 * A sink on the consumer framework plus its health/metrics server: what every consuming command runs. Group
 * membership settings (session timeout, static membership) come from the shared Kafka configuration.
 */
export async function startConsumerService(
  config: Config,
  log: Logger,
  options: {
    readonly brokers: string;
    readonly groupId: string;
    readonly topic: string;
    readonly clientId: string;
    readonly sink: Sink;
    readonly registry: Registry;
    readonly listen: { readonly host: string; readonly port: number };
  },
): Promise<{ consumer: PartitionConsumer; http: RunningHttpService }> {
  const consumer = new PartitionConsumer({
    brokers: options.brokers,
    groupId: options.groupId,
    topics: [options.topic],
    clientId: options.clientId,
    sink: options.sink,
    sessionTimeoutMs: config.kafkaSessionTimeoutMs,
    ...(config.kafkaGroupInstanceId ? { groupInstanceId: config.kafkaGroupInstanceId } : {}),
    log: log.child('consumer'),
    registry: options.registry,
  });
  await consumer.start();
  const http = await startHttpService(
    { router: new Router(), registry: options.registry, log, ready: () => consumer.ready() },
    options.listen,
  );
  return { consumer, http };
}
