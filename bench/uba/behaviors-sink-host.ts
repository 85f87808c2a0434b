/**
 * `replay behaviors-sink` as bench/uba/throughput.ts runs it: the same `runBehaviorsSink` on the same environment
 * configuration, plus one loopback HTTP endpoint that runs the bench's read queries on the sink's own chDB session.
 * chDB locks its directory to one process, so while the sink runs nothing outside it can ask `SELECT count()`.
 *
 *   BENCH_QUERY_PORT=<port> CLICKHOUSE_URL=chdb://<dir> ... node bench/uba/behaviors-sink-host.ts
 *
 * GET /count?tenant=<id>    → {"rows": n}                     (polled only near the end: it costs the sink CPU)
 * GET /summary?tenant=<id>  → rows, distinct event ids, watches, active parts (once, after the measurement)
 */
import { createServer } from 'node:http';
import { runBehaviorsSink } from '../../src/cli/behaviors-sink-command.ts';
import { clickhouseTargetFromUrl, openClickHouse } from '../../src/clickhouse/client.ts';
import { migrateClickHouse } from '../../src/clickhouse/migrations.ts';
import { loadConfig } from '../../src/config/index.ts';
import { LOOPBACK } from '../../src/harness/ports.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { answerJson } from '../shared/json-endpoint.ts';

const config = loadConfig();
const log = createLogger(config.logLevel, 'behaviors-sink');
const clickhouse = openClickHouse(clickhouseTargetFromUrl(config.clickhouseUrl));
// runBehaviorsSink migrates only the client it opens itself; this one is ours, so migrate as the command would.
await migrateClickHouse(clickhouse);
const running = await runBehaviorsSink(config, log, { clickhouse });

async function one<T>(query: string, tenant?: number): Promise<T> {
  const rows = await (await clickhouse.query({ query, query_params: { tenant }, format: 'JSONEachRow' })).json<T>();
  return rows[0]!;
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://host');
  const tenant = Number(url.searchParams.get('tenant'));
  const answer = async () => {
    if (url.pathname === '/count') {
      return one<{ rows: number }>(
        'SELECT count() AS rows FROM user_behaviors WHERE tenant_id = {tenant:Int64}',
        tenant,
      );
    }
    if (url.pathname === '/summary') {
      const behaviors = await one<{ rows: number; ids: number }>(
        'SELECT count() AS rows, uniqExact(event_id) AS ids FROM user_behaviors WHERE tenant_id = {tenant:Int64}',
        tenant,
      );
      const watches = await one<{ rows: number; live: number }>(
        'SELECT count() AS rows, toInt64(sum(sign)) AS live FROM user_watches WHERE tenant_id = {tenant:Int64}',
        tenant,
      );
      const parts = await one<{ parts: number }>(
        "SELECT count() AS parts FROM system.parts WHERE active AND table = 'user_behaviors'",
      );
      return { behaviors, watches, parts: parts.parts };
    }
    return undefined;
  };
  answerJson(res, answer);
});
await new Promise<void>((resolve) => server.listen(Number(process.env.BENCH_QUERY_PORT), LOOPBACK, resolve));

// As `replay behaviors-sink`: SIGTERM/SIGINT stop cleanly; a fatal consumer error exits non-zero.
let stopping = false;
const stop = async (code: number) => {
  if (stopping) return;
  stopping = true;
  server.close();
  await running.stop();
  await clickhouse.close();
  process.exit(code);
};
process.once('SIGTERM', () => void stop(0));
process.once('SIGINT', () => void stop(0));
void running.failed.then((error) => {
  log.error('behaviour sink failed', { code: error.code, error: error.message });
  void stop(1);
});
