import type { Config } from '../config/index.ts';
import { topicNames } from '../kafka/topics.ts';
import { TransactionalProducer } from '../kafka/transactional-producer.ts';
import type { Logger } from '../logging/logger.ts';
import { createMetricsRegistry } from '../metrics/registry.ts';
import { BlobSink } from '../replay/blob-sink.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { openBlobStore } from '../storage/open-blob-store.ts';
import type { Command } from './command.ts';
import { startConsumerService } from './consumer-service.ts';
import { untilAborted } from './runtime.ts';

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
    commitTimeoutMs: 30_000,
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
    async stop() {
      await consumer.stop();
      await producer.close();
      await http.close();
      if (!overrides.store) store.close();
    },
  };
}

export const blobConsumerCommand: Command = {
  name: 'blob-consumer',
  summary: 'Run the blob consumer (recordings topic → spool → one object per flush → summary rows, exactly once).',
  usage: `replay blob-consumer

Consumes BLOB_TOPIC in group BLOB_GROUP_ID, spools each session's frames in BLOB_SPOOL_DIR, and every
BLOB_FLUSH_INTERVAL_MS (or BLOB_FLUSH_MAX_BYTES) writes one object per retention class to the blob store
(BLOB_STORE=fs|s3), then commits the summary rows to clickhouse_session_replay_events together with the consumer
offsets in one Kafka transaction. Health and metrics on BLOB_CONSUMER_HOST:BLOB_CONSUMER_PORT.
SIGTERM/SIGINT: stop fetching, flush, commit, leave the group.`,
  async run(_args, { config, log, signal }) {
    const running = await runBlobConsumer(config, log);
    await untilAborted(signal);
    log.info('shutting down');
    await running.stop();
    return 0;
  },
};
