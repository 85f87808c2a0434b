import { hostname, userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { deletionView, parseDeletionFilter } from '../api/delete-api.ts';
import { parseSessionId, parseTeamId } from '../api/parameters.ts';
import { clickhouseTargetFromUrl, openClickHouse } from '../clickhouse/client.ts';
import { DeletionStore } from '../deletion/deletion-store.ts';
import { DeletionWorker } from '../deletion/deletion-worker.ts';
import { ReplayError } from '../errors/index.ts';
import { migratePostgres } from '../postgres/migrations.ts';
import { openBlobStore } from '../storage/open-blob-store.ts';
import { TeamStore } from '../teams/team-store.ts';
import { RedisConnection } from '../uba/realtime/redis-connection.ts';
import type { Command } from './command.ts';
import { deleteUsage as usage } from './commands.ts';
import { openDatabase } from './runtime.ts';

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** How long the command waits for its request before leaving it to the API's workers. */
const WAIT_MS = 60 * 60_000;

export const deleteCommand: Command = {
  async run(args, { config, log, signal, stdout }) {
    const { values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        team: { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string' },
        'distinct-id': { type: 'string' },
        'url-contains': { type: 'string' },
      },
    });
    const [what, target] = positionals;
    if (!['session', 'person', 'sessions', 'status'].includes(what ?? '') || values.team === undefined) {
      process.stderr.write(`${usage}\n`);
      return 2;
    }
    const teamId = parseTeamId(values.team);
    const db = await openDatabase(config);
    const clickhouse = openClickHouse(clickhouseTargetFromUrl(config.clickhouseUrl));
    const blobs = openBlobStore(config);
    const redis = new RedisConnection({
      url: config.redisUrl,
      connectTimeoutMs: config.redisConnectTimeoutMs,
      commandTimeoutMs: config.redisCommandTimeoutMs,
      log: log.child('redis'),
    });
    try {
      await migratePostgres(db);
      if ((await new TeamStore(db).byIds([teamId])).length === 0) {
        throw new ReplayError('not_found', `no team ${teamId} in DATABASE_URL`);
      }
      const deletions = new DeletionStore(db);
      if (what === 'status') {
        const id = Number(target);
        const request = Number.isSafeInteger(id) && id > 0 ? await deletions.get(teamId, id) : undefined;
        if (!request) throw new ReplayError('not_found', `no deletion request ${target} of team ${teamId}`);
        stdout(`${JSON.stringify(deletionView(request), null, 2)}\n`);
        return 0;
      }
      const requestedBy = `cli ${userInfo().username}@${hostname()}`;
      const kind = what === 'sessions' ? 'filter' : (what as 'session' | 'person');
      if (kind !== 'filter' && !target) throw new ReplayError('config_invalid', `delete ${what} needs an id`);
      const created = await deletions.create({
        teamId,
        kind,
        target:
          kind === 'session'
            ? parseSessionId(target!)
            : kind === 'person'
              ? target!
              : parseDeletionFilter({
                  ...(values.from ? { date_from: values.from } : {}),
                  ...(values.to ? { date_to: values.to } : {}),
                  ...(values['distinct-id'] ? { distinct_id: values['distinct-id'] } : {}),
                  ...(values['url-contains'] ? { url_contains: values['url-contains'] } : {}),
                }),
        keyId: null,
        requestedBy,
      });
      const worker = new DeletionWorker({
        deletions,
        clickhouse,
        blobs,
        redis,
        log: log.child('deletion'),
        owner: `${hostname()}/${process.pid}`,
        leaseMs: config.apiDeletionLeaseMs,
        signal,
        onProgress: (request, done, total) =>
          process.stderr.write(`delete: request ${request.id}: ${done}/${total} sessions erased\n`),
      });
      stdout(`deletion request ${created.id} (team ${teamId}, ${kind})\n`);
      // Another process (an API) may hold the queue: its worker then runs this request, and this waits for it, up to
      // WAIT_MS; past that the request stays queued for the API's workers.
      const deadline = Date.now() + WAIT_MS;
      for (;;) {
        await worker.drain();
        const now = await deletions.get(teamId, created.id);
        if (now?.status === 'done' || now?.status === 'failed') {
          stdout(
            `${now.status}: ${now.sessionsDone}/${now.sessionsTotal ?? 0} sessions deleted${now.error ? ` (${now.error})` : ''}\n`,
          );
          return now.status === 'done' ? 0 : 1;
        }
        if (signal.aborted || Date.now() > deadline) {
          stdout(
            `${signal.aborted ? 'stopped' : `still ${now?.status ?? 'queued'} after ${WAIT_MS / 60_000} minutes`}; ` +
              `request ${created.id} resumes in the next worker (an API process, or \`replay delete status\` to follow it)\n`,
          );
          return 1;
        }
        await pause(1000);
      }
    } finally {
      await redis.close();
      blobs.close();
      await clickhouse.close();
      await db.close();
    }
  },
};
