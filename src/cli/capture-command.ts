import { defaultBodyLimits } from '../capture/body-encoding.ts';
import { startCaptureService } from '../capture/capture-service.ts';
import { TeamCache } from '../capture/team-cache.ts';
import type { Config } from '../config/index.ts';
import type { ReplayError } from '../errors/index.ts';
import { TransactionalProducer } from '../kafka/transactional-producer.ts';
import type { Logger } from '../logging/logger.ts';
import type { SqlDatabase } from '../postgres/database.ts';
import { TeamStore } from '../teams/team-store.ts';
import type { Command } from './command.ts';
import { openDatabase, serveUntilStopped } from './runtime.ts';

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
    onFenced: (error) => fenced(error),
  });
  let fenced: (error: ReplayError) => void = () => {};
  /** Resolves when another capture instance took over this one's transactional id: this one must exit. */
  const failed = new Promise<ReplayError>((resolve) => {
    fenced = resolve;
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
      ...defaultBodyLimits,
      maxDecompressedBytes: config.captureMaxDecompressedBytes,
      maxCompressionRatio: config.captureMaxCompressionRatio,
    },
    maxMessageBytes: config.kafkaMaxMessageBytes,
    teamRequestsPerSecond: config.captureTeamRequestsPerSecond,
    sessionBytesPerSecond: config.captureSessionBytesPerSecond,
    sessionBurstBytes: config.captureSessionBurstBytes,
    overflowStickyMs: config.captureOverflowStickySeconds * 1000,
    maxInflightBytes: config.captureMaxInflightBytes,
    httpLimits: {
      maxConnections: config.captureMaxConnections,
      headersTimeoutMs: config.captureHeadersTimeoutMs,
      requestTimeoutMs: config.captureRequestTimeoutMs,
      keepAliveTimeoutMs: config.captureKeepAliveTimeoutMs,
    },
    corsOrigins: config.captureCorsOrigins,
  });
  return {
    service,
    failed,
    /** Stops accepting requests, lets in-flight ones finish their transaction, then disconnects. */
    async stop() {
      await service.close();
      await producer.close();
    },
  };
}

export const captureCommand: Command = {
  async run(_args, { config, log, signal }) {
    const db = await openDatabase(config);
    try {
      const capture = await runCapture(config, log, db);
      await serveUntilStopped(signal, capture.failed, () => {
        log.info('shutting down');
        return capture.stop();
      });
    } finally {
      await db.close();
    }
    return 0;
  },
};
