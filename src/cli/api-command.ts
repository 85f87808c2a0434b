import { hostname } from 'node:os';
import type { ClickHouseClient } from '@clickhouse/client';
import { addAnalyticsRoutes } from '../api/analytics-api.ts';
import { addAnalyticsPageRoutes } from '../api/analytics-page.ts';
import { AnalyticsQueries } from '../api/analytics-queries.ts';
import { ApiKeyStore } from '../api/api-keys.ts';
import { addDeleteApiRoutes } from '../api/delete-api.ts';
import { addPlayerRoutes } from '../api/player/player-page.ts';
import { addReplayApiRoutes } from '../api/replay-api.ts';
import { SessionCatalog } from '../api/session-catalog.ts';
import { clickhouseTargetFromUrl, openClickHouse } from '../clickhouse/client.ts';
import type { Config } from '../config/index.ts';
import { DeletionStore } from '../deletion/deletion-store.ts';
import { DeletionWorker } from '../deletion/deletion-worker.ts';
import { DependencyProbe } from '../http/dependency-probe.ts';
import { Router } from '../http/router.ts';
import { startHttpService } from '../http/server.ts';
import type { Logger } from '../logging/logger.ts';
import { createMetricsRegistry } from '../metrics/registry.ts';
import type { SqlDatabase } from '../postgres/database.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { openBlobStore } from '../storage/open-blob-store.ts';
import { TeamStore } from '../teams/team-store.ts';
import { sessionBehaviors } from '../uba/behavior-queries.ts';
import { RedisConnection } from '../uba/realtime/redis-connection.ts';
import type { Command } from './command.ts';
import { openDatabase, untilAborted } from './runtime.ts';

/**
 * Builds and starts the replay API, the analytics API, the player and the analytics page on the given stores; `dev`
 * mode passes its embedded ones. `redisUrl` overrides REDIS_URL for the analytics realtime route (dev and tests pass
 * the Redis they started); `now` is the clock of date defaults and of the realtime minute (tests pin it).
 */
export async function runApi(
  config: Config,
  log: Logger,
  parts: {
    readonly db: SqlDatabase;
    readonly clickhouse: ClickHouseClient;
    readonly store: BlobStore;
    readonly redisUrl?: string;
    readonly now?: () => number;
  },
) {
  const router = new Router();
  const registry = createMetricsRegistry('replay-api');
  const keys = new ApiKeyStore(parts.db);
  // Redis is optional to the API: only the realtime route reads it, and it answers from ClickHouse without it, so
  // /readyz does not probe it. A connection may take longer than one answer may wait (REDIS_CONNECT_TIMEOUT_MS against
  // API_REALTIME_REDIS_TIMEOUT_MS): it goes on in the background for the next request, and is started below.
  const redis = new RedisConnection({
    url: parts.redisUrl ?? config.redisUrl,
    connectTimeoutMs: config.redisConnectTimeoutMs,
    commandTimeoutMs: config.apiRealtimeRedisTimeoutMs,
    log: log.child('redis'),
  });
  const deletions = new DeletionStore(parts.db);
  addReplayApiRoutes(router, {
    keys,
    deletedAmong: (teamId, ids) => deletions.deletedAmong(teamId, ids),
    sessionBehaviors: (teamId, sessionId, range, limit) =>
      sessionBehaviors(parts.clickhouse, teamId, sessionId, range, limit),
    teams: new TeamStore(parts.db),
    sessions: new SessionCatalog(parts.clickhouse),
    store: parts.store,
    maxBlocksPerRequest: config.apiMaxBlocksPerRequest,
    maxConcurrentDecodes: config.apiMaxConcurrentDecodes,
    decodeWaitMs: config.apiDecodeWaitMs,
    maxBlockBytes: config.apiMaxBlockBytes,
    registry,
    log,
    ...(parts.now ? { now: parts.now } : {}),
  });
  addAnalyticsRoutes(router, {
    keys,
    queries: new AnalyticsQueries(parts.clickhouse, { maxExecutionS: config.apiAnalyticsMaxExecutionS }),
    clickhouse: parts.clickhouse,
    maxExecutionS: config.apiAnalyticsMaxExecutionS,
    redis,
    redisTimeoutMs: config.apiRealtimeRedisTimeoutMs,
    realtime: {
      weights: config.realtimeActionWeights,
      halfLifeS: config.realtimeHalfLifeS,
      hotTtlS: config.realtimeHotTtlS,
    },
    registry,
    log,
    ...(parts.now ? { now: parts.now } : {}),
  });
  // Every API process runs a deletion worker; requests are claimed one at a time, so they never collide.
  const worker = new DeletionWorker({
    deletions,
    clickhouse: parts.clickhouse,
    blobs: parts.store,
    redis,
    log: log.child('deletion'),
    owner: `${hostname()}/${process.pid}`,
    leaseMs: config.apiDeletionLeaseMs,
  });
  addDeleteApiRoutes(router, { keys, deletions, worker });
  // A recording is playable once the blob consumer has flushed it and the sink has inserted its summary row.
  addPlayerRoutes(router, { playableWithinMs: config.blobFlushIntervalMs + config.sinkInsertIntervalMs });
  addAnalyticsPageRoutes(router);
  const readiness = new DependencyProbe(
    {
      postgres: () => parts.db.query('SELECT 1').then(() => undefined),
      clickhouse: () => parts.clickhouse.ping().then((r) => (r.success ? undefined : Promise.reject(r.error))),
    },
    log,
  );
  try {
    await readiness.check();
    const service = await startHttpService(
      { router, registry, log, ready: () => readiness.ready },
      { host: config.apiHost, port: config.apiPort },
    );
    worker.start();
    // Connects now rather than on the first realtime request, which would otherwise wait for the handshake.
    redis.ping().catch((error: Error) =>
      log.warn('Redis does not answer: the realtime route answers from ClickHouse until it does', {
        error: error.message,
      }),
    );
    return {
      service,
      async stop() {
        readiness.stop();
        await service.close();
        await worker.stop();
        await redis.close();
      },
    };
  } catch (error) {
    readiness.stop();
    await redis.close();
    throw error;
  }
}

export const apiCommand: Command = {
  async run(_args, { config, log, signal }) {
    const db = await openDatabase(config);
    const clickhouse = openClickHouse(clickhouseTargetFromUrl(config.clickhouseUrl));
    const store = openBlobStore(config);
    try {
      const api = await runApi(config, log, { db, clickhouse, store });
      log.info('replay API listening', {
        url: api.service.url,
        player: `${api.service.url}/player`,
        analytics: `${api.service.url}/analytics`,
      });
      await untilAborted(signal);
      log.info('shutting down');
      await api.stop();
    } finally {
      store.close();
      await clickhouse.close();
      await db.close();
    }
    return 0;
  },
};
