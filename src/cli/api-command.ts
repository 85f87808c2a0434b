import type { ClickHouseClient } from '@clickhouse/client';
import { ApiKeyStore } from '../api/api-keys.ts';
import { addPlayerRoutes } from '../api/player-page.ts';
import { addReplayApiRoutes } from '../api/replay-api.ts';
import { SessionCatalog } from '../api/session-catalog.ts';
import { clickhouseTargetFromUrl, openClickHouse } from '../clickhouse/client.ts';
import type { Config } from '../config/index.ts';
import { DependencyProbe } from '../http/dependency-probe.ts';
import { Router } from '../http/router.ts';
import { startHttpService } from '../http/server.ts';
import type { Logger } from '../logging/logger.ts';
import { createMetricsRegistry } from '../metrics/registry.ts';
import type { SqlDatabase } from '../postgres/database.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { openBlobStore } from '../storage/open-blob-store.ts';
import { TeamStore } from '../teams/team-store.ts';
import type { Command } from './command.ts';
import { openDatabase, untilAborted } from './runtime.ts';

/** Builds and starts the replay API and player page on the given stores; `dev` mode passes its embedded ones. */
export async function runApi(
  config: Config,
  log: Logger,
  parts: { readonly db: SqlDatabase; readonly clickhouse: ClickHouseClient; readonly store: BlobStore },
) {
  const router = new Router();
  const registry = createMetricsRegistry('replay-api');
  addReplayApiRoutes(router, {
    keys: new ApiKeyStore(parts.db),
    teams: new TeamStore(parts.db),
    sessions: new SessionCatalog(parts.clickhouse),
    store: parts.store,
    maxBlocksPerRequest: config.apiMaxBlocksPerRequest,
    maxConcurrentDecodes: config.apiMaxConcurrentDecodes,
    decodeWaitMs: config.apiDecodeWaitMs,
    maxBlockBytes: config.apiMaxBlockBytes,
    registry,
    log,
  });
  addPlayerRoutes(router);
  const readiness = new DependencyProbe(
    {
      postgres: () => parts.db.query('SELECT 1').then(() => undefined),
      clickhouse: () => parts.clickhouse.ping().then((r) => (r.success ? undefined : Promise.reject(r.error))),
    },
    log,
  );
  await readiness.check();
  const service = await startHttpService(
    { router, registry, log, ready: () => readiness.ready },
    { host: config.apiHost, port: config.apiPort },
  );
  return {
    service,
    async stop() {
      readiness.stop();
      await service.close();
    },
  };
}

export const apiCommand: Command = {
  async run(_args, { config, log, signal }) {
    const db = await openDatabase(config);
    const clickhouse = openClickHouse(clickhouseTargetFromUrl(config.clickhouseUrl));
    const store = openBlobStore(config);
    try {
      const api = await runApi(config, log, { db, clickhouse, store });
      log.info('replay API listening', { url: api.service.url, player: `${api.service.url}/player` });
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
