/**
 * The read half of the pipeline as one process a chaos run can kill -9: the ClickHouse (summary) sink, the behaviour
 * sink and the replay/analytics API, all on one chDB directory. chDB locks its directory to one process, so these
 * three share it (as `replay dev` runs them) and the chaos run reaches the tables through a loopback control port:
 *
 *   CHAOS_CONTROL_PORT=<port> CHAOS_CHDB_DIR=<dir> KAFKA_BROKERS=... S3_...=... node bench/chaos/read-side.ts
 *
 * POST /clickhouse/down    DETACH the tables the sinks insert into (every insert and read of them fails)
 * POST /clickhouse/up      ATTACH them again
 * GET  /behaviours?tenant  {"copies": {event_id: rows}, "rollup": events counted by uba_hourly_metrics}
 *
 * Every other setting comes from the environment, as for the `replay` commands.
 */
import { createServer } from 'node:http';
import { loadConfig } from '../../src/config/index.ts';
import { LOOPBACK } from '../../src/harness/ports.ts';
import { openBlobStore } from '../../src/storage/open-blob-store.ts';
import { startSinkAndApi, startTestBehaviorsSink } from '../../test/support/pipeline.ts';
import { answerJson } from '../shared/json-endpoint.ts';

/** The tables whose loss is "ClickHouse down" for the sinks: the summary rows and the behaviours. */
const SINK_TABLES = ['session_replay_events', 'user_behaviors'];

const env = Object.fromEntries(
  Object.entries(process.env).filter((entry): entry is [string, string] => entry[1] !== undefined),
);
const config = loadConfig(env);
const store = openBlobStore(config);
const read = await startSinkAndApi({
  brokers: config.kafkaBrokers,
  postgresUrl: config.databaseUrl,
  store,
  dir: env.CHAOS_CHDB_DIR!,
  env,
});
const behaviours = await startTestBehaviorsSink({
  brokers: config.kafkaBrokers,
  groupId: config.behaviorsGroupId,
  clickhouse: read.clickhouse,
  env,
});

async function behaviourCopies(tenant: number) {
  const query = async <Row>(sql: string) =>
    (await read.clickhouse.query({ query: sql, query_params: { tenant }, format: 'JSONEachRow' })).json<Row>();
  const rows = await query<{ event_id: string; copies: number }>(
    'SELECT event_id, count() AS copies FROM user_behaviors WHERE tenant_id = {tenant:Int64} GROUP BY event_id',
  );
  const [rollup] = await query<{ events: number }>(
    'SELECT countMerge(events) AS events FROM uba_hourly_metrics WHERE tenant_id = {tenant:Int64}',
  );
  return { copies: Object.fromEntries(rows.map((r) => [r.event_id, r.copies])), rollup: rollup?.events ?? 0 };
}

const control = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://control');
  const route = `${req.method} ${url.pathname}`;
  const answer = async (): Promise<unknown> => {
    if (route === 'POST /clickhouse/down' || route === 'POST /clickhouse/up') {
      const verb = route.endsWith('down') ? 'DETACH TABLE IF EXISTS' : 'ATTACH TABLE IF NOT EXISTS';
      for (const table of SINK_TABLES) await read.clickhouse.command({ query: `${verb} ${table}` });
      return { ok: true };
    }
    if (route === 'GET /behaviours') return behaviourCopies(Number(url.searchParams.get('tenant')));
    return undefined;
  };
  answerJson(res, answer, 503);
});
await new Promise<void>((resolve) => control.listen(Number(env.CHAOS_CONTROL_PORT), LOOPBACK, resolve));

// As a `replay` service command: SIGTERM/SIGINT stop cleanly.
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  control.close();
  await behaviours.stop();
  await read.stop();
  store.close();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
