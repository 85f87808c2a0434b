import type { Registry } from 'prom-client';
import type { Config } from '../config/index.ts';
import { PartitionConsumer } from '../consumer/partition-consumer.ts';
import type { Sink } from '../consumer/sink.ts';
import type { ReplayError } from '../errors/index.ts';
import { Router } from '../http/router.ts';
import { type RunningHttpService, startHttpService } from '../http/server.ts';
import { AckedProducer } from '../kafka/acked-producer.ts';
import type { Logger } from '../logging/logger.ts';
import { createMetricsRegistry } from '../metrics/registry.ts';

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

/** A running consuming service, as the commands and `dev` hold it. */
export interface RunningConsumerService<S extends Sink> {
  readonly consumer: PartitionConsumer;
  readonly http: RunningHttpService;
  readonly sink: S;
  readonly registry: Registry;
  /** Resolves with the fatal error that stopped the consumer. */
  readonly failed: Promise<ReplayError>;
  stop(): Promise<void>;
}

/**
 * A batch sink (the summary, behaviour and realtime sinks) with what each needs around it: a metrics registry, an
 * acknowledged producer for its DLQ, the consumer and the health server. `close` releases the sink's own target
 * (a ClickHouse client, a Redis connection): last on stop, and also when starting fails half-way.
 */
export async function startBatchSinkService<S extends Sink>(
  config: Config,
  log: Logger,
  options: {
    /** Names the registry, the clients and the log lines: `behaviors-sink`, ... */
    readonly name: string;
    readonly brokers: string;
    readonly groupId: string;
    readonly topic: string;
    readonly listen: { readonly host: string; readonly port: number };
    /** Runs before the sink is made (migrations): a failure here closes what was opened. */
    readonly prepare?: () => Promise<void>;
    readonly createSink: (deps: { deadLetters: AckedProducer; registry: Registry }) => S;
    readonly close?: () => Promise<void>;
  },
): Promise<RunningConsumerService<S>> {
  const registry = createMetricsRegistry(options.name);
  const deadLetters = new AckedProducer({ brokers: options.brokers, clientId: `${options.name}-dlq` });
  const close = options.close ?? (async () => {});
  let sink: S;
  let started: { consumer: PartitionConsumer; http: RunningHttpService };
  try {
    await options.prepare?.();
    await deadLetters.start();
    sink = options.createSink({ deadLetters, registry });
    started = await startConsumerService(config, log, {
      brokers: options.brokers,
      groupId: options.groupId,
      topic: options.topic,
      clientId: `${options.name}-${process.pid}`,
      sink,
      registry,
      listen: options.listen,
    });
  } catch (error) {
    await deadLetters.close();
    await close();
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
      await close();
    },
  };
}
