import { BlobSink } from '../blob-consumer/blob-sink.ts';
import type { Config } from '../config/index.ts';
import { topicNames } from '../kafka/topics.ts';
import { TransactionalProducer } from '../kafka/transactional-producer.ts';
import type { Logger } from '../logging/logger.ts';
import { createMetricsRegistry } from '../metrics/registry.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { openBlobStore } from '../storage/open-blob-store.ts';
import { startConsumerService } from './consumer-service.ts';
import { serviceCommand } from './runtime.ts';

/** Builds and starts a blob consumer (framework + blob sink + health server) from configuration. */
export async function runBlobConsumer(
  config: Config,
  log: Logger,
  overrides: { brokers?: string; store?: BlobStore } = {},
) {
  const brokers = overrides.brokers ?? config.kafkaBrokers;
  const store = overrides.store ?? openBlobStore(config);
  const registry = createMetricsRegistry('blob-consumer');
  const producer = new TransactionalProducer({
    brokers,
    transactionalId: config.blobTransactionalId,
    clientId: 'blob-consumer',
    log: log.child('producer'),
    commitTimeoutMs: config.blobCommitTimeoutMs,
  });
  await producer.start();
  const sink = new BlobSink({
    store,
    producer,
    summaryTopic: topicNames.replaySummaries,
    dlqTopic: topicNames.recordingsDlq,
    spoolDir: config.blobSpoolDir,
    objectPrefix: config.blobPrefix,
    codec: config.blobCodec,
    flushIntervalMs: config.blobFlushIntervalMs,
    flushMaxRawBytes: config.blobFlushMaxBytes,
    minFreeDiskBytes: config.blobMinFreeDiskBytes,
    flushDeadlineMs: config.blobFlushDeadlineMs,
    legacyRetention: config.blobLegacyRetention,
    writer: `${config.blobGroupId}/${config.blobTransactionalId}`,
    faultDelayBeforeCommitMs: config.blobFaultDelayBeforeCommitMs,
    log: log.child('sink'),
    registry,
  });
  const { consumer, http } = await startConsumerService(config, log, {
    brokers,
    groupId: config.blobGroupId,
    topic: config.blobTopic,
    clientId: config.blobTransactionalId,
    sink,
    registry,
    listen: { host: config.blobConsumerHost, port: config.blobConsumerPort },
  });
  log.info('blob consumer running', { store: store.description, health: http.url });
  return {
    consumer,
    http,
    /** Resolves with the fatal error (a fenced producer) that stopped the consumer. */
    failed: consumer.failed,
    async stop() {
      await consumer.stop();
      await producer.close();
      await http.close();
      if (!overrides.store) store.close();
    },
  };
}

export const blobConsumerCommand = serviceCommand(runBlobConsumer);
