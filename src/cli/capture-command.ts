import { startCaptureService } from '../capture/capture-service.ts';
import { TeamCache } from '../capture/team-cache.ts';
import type { Config } from '../config/index.ts';
import { TransactionalProducer } from '../kafka/transactional-producer.ts';
import type { Logger } from '../logging/logger.ts';
import type { SqlDatabase } from '../postgres/database.ts';
import { TeamStore } from '../teams/team-store.ts';
import type { Command } from './command.ts';
import { openDatabase, untilAborted } from './runtime.ts';

/** Builds a running capture service from configuration; `dev` mode reuses this with its own database and brokers. */
export async function runCapture(config: Config, log: Logger, db: SqlDatabase, brokers = config.kafkaBrokers) {
  const teams = new TeamStore(db);
  const cache = new TeamCache((token) => teams.byToken(token), {
    ttlMs: config.captureTeamCacheSeconds * 1000,
    negativeTtlMs: config.captureNegativeCacheSeconds * 1000,
  });
  const producer = new TransactionalProducer({
    brokers,
    transactionalId: config.captureTransactionalId,
    clientId: 'capture',
    log: log.child('producer'),
    commitTimeoutMs: config.captureCommitTimeoutMs,
  });
  await producer.start();
  const service = await startCaptureService({
    host: config.captureHost,
    port: config.capturePort,
    log,
    teamByToken: (token) => cache.get(token),
    send: (records) => producer.send(records),
    producerReady: () => producer.ready,
    maxBodyBytes: config.captureMaxBodyBytes,
    bodyLimits: {
      maxDecompressedBytes: config.captureMaxDecompressedBytes,
      maxCompressionRatio: config.captureMaxCompressionRatio,
      ratioFloorBytes: 1024 * 1024,
    },
    maxMessageBytes: config.kafkaMaxMessageBytes,
    teamRequestsPerSecond: config.captureTeamRequestsPerSecond,
    sessionBytesPerSecond: config.captureSessionBytesPerSecond,
    sessionBurstBytes: config.captureSessionBurstBytes,
    overflowStickyMs: config.captureOverflowStickySeconds * 1000,
  });
  return {
    service,
    /** Stops accepting requests, lets in-flight ones finish their transaction, then disconnects. */
    async stop() {
      await service.close();
      await producer.close();
    },
  };
}

export const captureCommand: Command = {
  name: 'capture',
  summary: 'Run the capture HTTP service (posthog-js recording uploads → Kafka).',
  usage: `replay capture

Serves POST /s/ (posthog-js session recording uploads), the remote config and recorder posthog-js loads,
/healthz, /readyz and /metrics on CAPTURE_HOST:CAPTURE_PORT. Tokens resolve through DATABASE_URL; messages go to
KAFKA_BROKERS. SIGTERM/SIGINT: stop accepting, finish in-flight requests, exit.`,
  async run(_args, { config, log, signal }) {
    const db = await openDatabase(config);
    try {
      const capture = await runCapture(config, log, db);
      await untilAborted(signal);
      log.info('shutting down');
      await capture.stop();
    } finally {
      await db.close();
    }
    return 0;
  },
};
