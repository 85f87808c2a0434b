import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ApiKeyStore } from '../api/api-keys.ts';
import { openClickHouse } from '../clickhouse/client.ts';
import { migrateClickHouse } from '../clickhouse/migrations.ts';
import { demoPageHtml, serveHtml } from '../dev/demo-page.ts';
import { startLocalKafka } from '../harness/kafka.ts';
import { startLocalRedis } from '../harness/redis.ts';
import { ensureTopics } from '../kafka/admin.ts';
import { pipelineTopics, topicNames } from '../kafka/topics.ts';
import { openPostgres } from '../postgres/database.ts';
import { migratePostgres } from '../postgres/migrations.ts';
import { FsBlobStore } from '../storage/fs-blob-store.ts';
import { startRetentionSweeper } from '../storage/fs-retention-sweeper.ts';
import { TeamStore } from '../teams/team-store.ts';
import { runApi } from './api-command.ts';
import { runBehaviorsSink } from './behaviors-sink-command.ts';
import { runBlobConsumer } from './blob-consumer-command.ts';
import { runCapture } from './capture-command.ts';
import type { Command } from './command.ts';
import { runRealtimeSink } from './realtime-sink-command.ts';
import { untilAborted } from './runtime.ts';
import { runSink } from './sink-command.ts';

/** The token of the team `dev` seeds; stable so a page set up once keeps recording across runs. */
export const DEV_TOKEN = 'phc_dev_demo_token';

export const devCommand: Command = {
  async run(_args, { config, log, signal, stdout }) {
    const dataDir = resolve(config.dataDir);
    await mkdir(join(dataDir, 'blobs'), { recursive: true });
    const stops: (() => Promise<void>)[] = [];
    try {
      log.info('starting local Kafka broker', { dir: join(dataDir, 'kafka') });
      const kafka = await startLocalKafka(config, { dir: join(dataDir, 'kafka') });
      stops.unshift(() => kafka.stop());
      await ensureTopics(kafka.brokers, pipelineTopics(4));
      // REDIS_URL names production's Redis; dev runs its own, scratch like a test's: realtime state is short-lived,
      // and the realtime sink's exactly-once does not need Redis to survive a restart.
      log.info('starting local Redis', { dir: join(dataDir, 'redis') });
      const redis = await startLocalRedis(config, { dir: join(dataDir, 'redis') });
      stops.unshift(() => redis.stop());

      const postgres = await openPostgres({ kind: 'pglite', dataDir: join(dataDir, 'pglite') });
      stops.unshift(() => postgres.close());
      await migratePostgres(postgres);
      const teams = new TeamStore(postgres);
      const team =
        (await teams.byToken(DEV_TOKEN)) ??
        (await teams.create({
          name: 'Demo',
          apiToken: DEV_TOKEN,
          sessionRecordingEnabled: true,
          retention: '30d',
          consoleLogCaptureEnabled: true,
        }));

      const clickhouse = openClickHouse({ kind: 'chdb', path: join(dataDir, 'clickhouse') });
      stops.unshift(() => clickhouse.close());
      await migrateClickHouse(clickhouse);
      const [row] = await (await clickhouse.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' })).json<{
        v: string;
      }>();

      const capture = await runCapture(config, log.child('capture'), postgres, kafka.brokers);
      stops.unshift(() => capture.stop());
      const blobs = new FsBlobStore(join(dataDir, 'blobs'));
      // A filesystem store has no lifecycle rules: expired objects are deleted here (DESIGN §3.9).
      const sweeper = startRetentionSweeper({
        root: join(dataDir, 'blobs'),
        prefix: config.blobPrefix,
        intervalMs: config.blobFsSweepIntervalMs,
        maxObjects: config.blobFsSweepMaxObjects,
        log: log.child('retention'),
      });
      stops.unshift(() => sweeper.stop());
      const blobConsumer = await runBlobConsumer(
        { ...config, blobSpoolDir: join(dataDir, 'spool'), blobConsumerPort: 0 },
        log.child('blob-consumer'),
        { brokers: kafka.brokers, store: blobs },
      );
      stops.unshift(() => blobConsumer.stop());
      // Capture routes hot sessions to the overflow topic (DESIGN §2): a second blob consumer reads it, in its own
      // group with its own transactional id and spool, into the same blob store, as an overflow deployment would.
      const overflowConsumer = await runBlobConsumer(
        {
          ...config,
          blobTopic: topicNames.recordingsOverflow,
          blobGroupId: `${config.blobGroupId}-overflow`,
          blobTransactionalId: `${config.blobTransactionalId}-overflow`,
          blobSpoolDir: join(dataDir, 'spool-overflow'),
          blobConsumerPort: 0,
        },
        log.child('blob-consumer-overflow'),
        { brokers: kafka.brokers, store: blobs },
      );
      stops.unshift(() => overflowConsumer.stop());
      const sink = await runSink({ ...config, sinkPort: 0 }, log.child('sink'), {
        brokers: kafka.brokers,
        clickhouse,
      });
      stops.unshift(() => sink.stop());
      // UBA (DESIGN §3.8): behaviours from capture's /api/v1/behaviors and posthog-js's /e/ into chDB and Redis.
      const behaviorsSink = await runBehaviorsSink({ ...config, behaviorsPort: 0 }, log.child('behaviors-sink'), {
        brokers: kafka.brokers,
        clickhouse,
      });
      stops.unshift(() => behaviorsSink.stop());
      const realtimeSink = await runRealtimeSink(
        { ...config, redisUrl: redis.url, realtimePort: 0 },
        log.child('realtime-sink'),
        { brokers: kafka.brokers },
      );
      stops.unshift(() => realtimeSink.stop());
      const apiKey = await devApiKey(new ApiKeyStore(postgres), team.id, join(dataDir, 'dev-api-key'));
      const api = await runApi(config, log.child('api'), {
        db: postgres,
        clickhouse,
        store: blobs,
        redisUrl: redis.url,
      });
      stops.unshift(() => api.stop());
      const captureUrl = config.capturePublicUrl || capture.service.url;
      const demo = await serveHtml(demoPageHtml({ captureUrl, token: team.apiToken }), config.devDemoPort);
      stops.unshift(() => new Promise<void>((done) => demo.server.close(() => done())));
      const behaviorsUrl = `${captureUrl}/api/v1/behaviors`;

      stdout(
        [
          'replay dev is running (Ctrl-C to stop)',
          `  demo page   ${demo.url}  (posthog-js records it and sends its events to capture; it also POSTs behaviours)`,
          `  player      ${api.service.url}/player#key=${apiKey}  (sessions appear a few seconds after a flush)`,
          `  replay API  ${api.service.url}/api/projects/${team.id}/session_recordings  (Authorization: Bearer ${apiKey})`,
          `  analytics   ${api.service.url}/analytics#key=${apiKey}&team=${team.id}  (dashboard; API under /api/projects/${team.id}/analytics/, docs/analytics.md)`,
          `  capture     ${capture.service.url}  (POST /s/, /metrics, /readyz; team "${team.name}", token ${team.apiToken})`,
          `  behaviours  ${behaviorsUrl}  (POST a JSON behaviour or array; Authorization: Bearer ${team.apiToken})`,
          `              ${curlExample(behaviorsUrl, team.apiToken)}`,
          `  kafka       ${kafka.brokers}  (Apache Kafka ${kafka.version}, data ${join(dataDir, 'kafka')})`,
          `  blobs       ${join(dataDir, 'blobs')}  (filesystem blob store; blob consumer health ${blobConsumer.http.url})`,
          `  overflow    ${topicNames.recordingsOverflow}  (blob consumer group ${config.blobGroupId}-overflow, health ${overflowConsumer.http.url})`,
          `  sink        ${sink.http.url}  (summary rows → chDB)`,
          `  uba sink    ${behaviorsSink.http.url}  (behaviours → chDB user_behaviors and roll-ups; /readyz, /metrics)`,
          `  realtime    ${realtimeSink.http.url}  (behaviours → Redis hot items, minute metrics, recent items)`,
          `  redis       ${redis.url}  (redis-server ${redis.version}, not persisted; files ${join(dataDir, 'redis')})`,
          `  clickhouse  ${join(dataDir, 'clickhouse')}  (chDB, ClickHouse ${row?.v})`,
          `  postgres    ${join(dataDir, 'pglite')}  (PGlite)`,
          '',
        ].join('\n'),
      );
      // Any part failing fatally (a fenced producer) stops the whole of dev with its code, as each would alone.
      const failed = Promise.race([
        capture.failed,
        blobConsumer.failed,
        overflowConsumer.failed,
        sink.failed,
        behaviorsSink.failed,
        realtimeSink.failed,
      ]);
      const outcome = await Promise.race([untilAborted(signal).then(() => undefined), failed]);
      log.info('stopping');
      if (outcome) throw outcome;
    } finally {
      for (const stop of stops) await stop();
    }
    return 0;
  },
};

/** A one-line shell command that posts one behaviour (a click, timestamped now) to `url`. */
function curlExample(url: string, token: string): string {
  const body = '{"user_id":"u-1","item_id":"video-42","action_type":"click","scenario_id":"home_feed","timestamp":';
  return `curl -sS ${url} -H 'authorization: Bearer ${token}' -H 'content-type: application/json' -d '${body}'"$(date +%s%3N)"'}'`;
}

/**
 * The API key `dev` prints: kept in the data directory (it is a local development secret) so the player link stays
 * the same between runs; a new one is made when the file is missing or its key was revoked.
 */
async function devApiKey(keys: ApiKeyStore, teamId: number, file: string): Promise<string> {
  const saved = await readFile(file, 'utf8').then(
    (text) => text.trim(),
    () => '',
  );
  if (saved && (await keys.authenticate(saved))?.teamIds.includes(teamId)) return saved;
  const { key } = await keys.create('dev', [teamId]);
  await writeFile(file, `${key}\n`, { mode: 0o600 });
  return key;
}
