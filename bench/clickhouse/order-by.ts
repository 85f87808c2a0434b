/**
 * ORDER BY bench for `session_replay_events`: copies of the table, built from the migrations' own text
 * (schema/clickhouse/*.sql, each copy in its own database), that differ only in their sorting key and skip index,
 * filled with the same summary rows, then timed on the two API reads:
 *
 *   list    a team's sessions that started on one day, newest first, 50 a page: the GROUP BY of the view
 *           session_replay_events_merged, with a guard on min_first_timestamp (± the 24 h a session lasts at most)
 *           that the index can use, and the exact day range on start_time in HAVING;
 *   fetch   one session by team and id through session_replay_events_merged, with no time bound (the API may not
 *           know the day of a session it fetches by id);
 *   fetch+  the same with the time bound a UUIDv7 id carries (its first 48 bits are the start in ms; posthog-js makes
 *           session ids that way). Only with --ids uuidv7.
 *
 * Each read runs for a large, a mid-sized and a small team (Zipf sizes), before merges (every block its own row, in
 * a few time-ordered parts, merges stopped) and after OPTIMIZE FINAL. Reported: rows and bytes read (the `statistics`
 * of FORMAT JSON: chDB has no system.query_log, and its query summary carries result rows, not rows read), median
 * latency, parts, stored rows and bytes, skip-index bytes. Every table must give the same answers.
 *
 * Scale: the tables use index_granularity 256 instead of 8192, so that ~1.7 M rows make as many granules per team and
 * day as ~32 times more rows would in production; what a sorting key saves is granules not read. Latency at this
 * size is mostly chDB's fixed cost per query (~10 ms); rows read is the figure that grows with the data.
 *
 *   node bench/clickhouse/order-by.ts [--sessions 100000] [--teams 1000] [--days 30] [--ids uuidv7|uuidv4]
 *
 * About two minutes at the defaults. Writes bench/results/clickhouse-order-by-<time>.json.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openClickHouse } from '../../src/clickhouse/client.ts';
import { clickhouseSchemaDir } from '../../src/clickhouse/migrations.ts';
import { clickhouseTime, type SummaryRow } from '../../src/recordings/summary-row.ts';
import { benchArgs } from '../shared/args.ts';
import { prng } from '../shared/prng.ts';

const usage = `Usage: node bench/clickhouse/order-by.ts [options]

  --sessions N         sessions to generate (default 100000; ~16 block rows each)
  --teams N            teams, sizes Zipf-distributed (default 1000)
  --days N             days the sessions start in (default 30)
  --samples N          sessions/days sampled per team size and read (default 5)
  --repeat N           timed runs per sample, after one warm-up run (default 3)
  --parts N            time-ordered inserts (parts) the rows arrive in before merges (default 8)
  --granularity N      index_granularity of the tables (default 256: as many granules as 32x the rows at 8192)
  --ids uuidv7|uuidv4  session ids as posthog-js makes them (time-ordered UUIDv7, default) or random UUIDv4
  --help               this text
`;
const args = benchArgs(usage, {
  sessions: { type: 'string', default: '100000' },
  teams: { type: 'string', default: '1000' },
  days: { type: 'string', default: '30' },
  samples: { type: 'string', default: '5' },
  repeat: { type: 'string', default: '3' },
  parts: { type: 'string', default: '8' },
  granularity: { type: 'string', default: '256' },
  ids: { type: 'string', default: 'uuidv7' },
});
const positive = (name: Parameters<typeof args.number>[0]) => Math.floor(args.number(name));
const sessionCount = positive('sessions');
const teamCount = positive('teams');
const days = positive('days');
const samples = positive('samples');
const repeat = positive('repeat');
const partCount = positive('parts');
const granularity = positive('granularity');
const ids = args.ids;
if (ids !== 'uuidv7' && ids !== 'uuidv4') {
  process.stderr.write(`--ids must be uuidv7 or uuidv4\n${usage}`);
  process.exit(2);
}

const started = performance.now();
const log = (message: string) =>
  process.stderr.write(
    `[bench:order-by ${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${message}\n`,
  );

const DAY = 86_400_000;
/** posthog-js starts a new session id after 24 h, so no row of a session is more than a day after its start. */
const MAX_SESSION_MS = DAY;
const FLUSH_MS = 10_000; // BLOB_FLUSH_INTERVAL_MS: a session yields at most one block per flush
const epoch = Date.UTC(2026, 9, 26); // the range crosses a month boundary at the defaults: two partitions

interface Candidate {
  readonly name: string;
  readonly orderBy: string;
  readonly index?: string;
}
const candidates: readonly Candidate[] = [
  // The seed's order (and 0001's before this bench).
  { name: 'team_day_session', orderBy: '(team_id, toDate(min_first_timestamp), session_id)' },
  { name: 'team_session', orderBy: '(team_id, session_id)' },
  { name: 'team_hour_session', orderBy: '(team_id, toStartOfHour(min_first_timestamp), session_id)' },
  // Date first, as PostHog's own table.
  { name: 'day_team_session', orderBy: '(toDate(min_first_timestamp), team_id, session_id)' },
  {
    name: 'team_day_session+bloom',
    orderBy: '(team_id, toDate(min_first_timestamp), session_id)',
    index: 'INDEX session_id_bloom session_id TYPE bloom_filter(0.01) GRANULARITY 1',
  },
  // 0001 since this bench.
  {
    name: 'team_session+minmax',
    orderBy: '(team_id, session_id)',
    index: 'INDEX min_first_timestamp_minmax min_first_timestamp TYPE minmax GRANULARITY 1',
  },
];
const databaseOf = (c: Candidate) => `bench_${c.name.replace(/\W/g, '_')}`;

// ---------------------------------------------------------------------------------------------------------------
// Data: sessions drawn from the seeded generator; one summary row per block (one block per 10-s flush with activity).

const random = prng(20261126);
const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
/** Standard normal (Box-Muller). */
const gaussian = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
const hex = (digits: number) => Array.from({ length: digits }, () => Math.floor(random() * 16).toString(16)).join('');

/** A UUIDv7 as posthog-js makes session ids (48 bits of start time in ms, then random bits), or a random UUIDv4. */
function sessionId(ms: number): string {
  const t = ids === 'uuidv7' ? ms.toString(16).padStart(12, '0') : hex(12);
  const variant = (8 + Math.floor(random() * 4)).toString(16);
  return `${t.slice(0, 8)}-${t.slice(8)}-${ids === 'uuidv7' ? 7 : 4}${hex(3)}-${variant}${hex(3)}-${hex(12)}`;
}

// Team sizes: Zipf (s = 1.1) over team ids shuffled, so the largest team is not team 1.
const teamIds = Array.from({ length: teamCount }, (_, i) => i + 1);
for (let i = teamIds.length - 1; i > 0; i--) {
  const j = Math.floor(random() * (i + 1));
  [teamIds[i], teamIds[j]] = [teamIds[j]!, teamIds[i]!];
}
const weights = teamIds.map((_, rank) => (rank + 1) ** -1.1);
const cumulative: number[] = [];
let totalWeight = 0;
for (const w of weights) {
  totalWeight += w;
  cumulative.push(totalWeight);
}
function drawTeam(): number {
  const x = random() * totalWeight;
  let lo = 0;
  let hi = cumulative.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cumulative[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return teamIds[lo]!;
}
/** Diurnal traffic: more sessions in the (UTC) afternoon than at night. */
function drawTimeOfDay(): number {
  for (;;) {
    const t = random() * DAY;
    if (random() < 0.35 + 0.65 * Math.sin((Math.PI * t) / DAY) ** 2) return t;
  }
}

interface Session {
  readonly teamId: number;
  readonly id: string;
  readonly start: number;
}
const sessions: Session[] = [];
const pages = [
  '/',
  '/pricing',
  '/docs',
  '/signup',
  '/login',
  '/dashboard',
  '/settings',
  '/billing',
  '/blog',
  '/search',
];

type BenchRow = SummaryRow & { _kafka_partition: number; _kafka_offset: number };
/** The next offset per summary-topic partition (16 partitions, keyed by team). */
const kafkaOffsets: number[] = Array(16).fill(0);

/** One session's block rows (summary rows as the blob consumer makes them). */
function sessionRows(session: Session, distinctId: string): BenchRow[] {
  // Duration: log-normal, median 2 min, capped below the 24 h a posthog-js session id lives.
  const duration = Math.min(MAX_SESSION_MS - 60_000, Math.max(1000, 120_000 * Math.exp(1.2 * gaussian())));
  const flushes = Math.ceil(duration / FLUSH_MS);
  const activeShare = 0.3 + 0.7 * random();
  const site = `https://app-${session.teamId}.example.com`;
  const partition = session.teamId % 16;
  const rows: BenchRow[] = [];
  let urls = [site + pick(pages)];
  for (let flush = 0; flush < flushes; flush++) {
    if (flush > 0 && random() > activeShare) continue; // nothing recorded in that flush interval
    const first = session.start + flush * FLUSH_MS + (flush === 0 ? 0 : Math.floor(random() * 3000));
    const last = Math.min(session.start + duration, first + 1000 + Math.floor(random() * (FLUSH_MS - 4000)));
    if (random() < 0.15) urls = [site + pick(pages)];
    const events = 5 + Math.floor(random() * 400 * (flush === 0 ? 3 : 1));
    const clicks = Math.floor(random() * 6);
    const object = first + FLUSH_MS - (first % FLUSH_MS);
    const byte = Math.floor(random() * 50_000_000);
    const offset = kafkaOffsets[partition] ?? 0;
    kafkaOffsets[partition] = offset + 1;
    const size = events * (150 + Math.floor(random() * 300)) + (flush === 0 ? 200_000 : 0);
    rows.push({
      team_id: session.teamId,
      session_id: session.id,
      distinct_id: distinctId,
      first_timestamp: clickhouseTime(first),
      last_timestamp: clickhouseTime(last),
      block_url: `s3://replay/rec/90d/${clickhouseTime(object).slice(0, 10).replaceAll('-', '/')}/${object}-${hex(8)}?range=bytes=${byte}-${byte + Math.floor(size / 4.8)}`,
      first_url: urls[0]!,
      first_url_timestamp: clickhouseTime(first),
      urls,
      click_count: clicks,
      keypress_count: random() < 0.2 ? Math.floor(random() * 40) : 0,
      mouse_activity_count: clicks + Math.floor(random() * 60),
      active_milliseconds: Math.floor((last - first) * random()),
      console_log_count: Math.floor(random() * 3),
      console_warn_count: random() < 0.1 ? 1 : 0,
      console_error_count: random() < 0.05 ? 1 : 0,
      size,
      event_count: events,
      message_count: 1 + Math.floor(random() * 3),
      snapshot_source: random() < 0.05 ? 'mobile' : 'web',
      snapshot_library: 'web',
      retention_period_days: 90,
      source_offsets: '',
      _kafka_partition: partition,
      _kafka_offset: offset,
    });
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------------------------
// Tables: the migrations' own text, in one database per candidate: ORDER BY replaced, 0001's skip indexes dropped
// (each candidate declares its own), index_granularity set.

async function migrationsFor(c: Candidate): Promise<string[]> {
  const database = databaseOf(c);
  const statements: string[] = [`CREATE DATABASE IF NOT EXISTS ${database}`];
  // Every migration `replay migrate` applies, in its order.
  for (const name of (await readdir(clickhouseSchemaDir)).filter((n) => /^\d{4}_[\w-]+\.sql$/.test(n)).sort()) {
    statements.push(...(await readFile(join(clickhouseSchemaDir, name), 'utf8')).split(/;\s*$/m));
  }
  return statements
    .map((s) => s.replace(/--.*$/gm, '').trim())
    .filter(Boolean)
    .map((s) => {
      let out = s.replace(/\bsession_replay_events\b/g, `${database}.session_replay_events`);
      out = out.replace(/\bsession_replay_events_merged\b/g, `${database}.session_replay_events_merged`);
      if (/^CREATE TABLE/i.test(out)) {
        if (!/^ORDER BY .*$/m.test(out) || !/^SETTINGS .*$/m.test(out)) {
          throw new Error('0001 has no ORDER BY or SETTINGS line to replace');
        }
        out = out
          .replace(/,\s*\n\s*INDEX [^\n]*/g, '') // 0001's own skip indexes: a candidate declares its own
          .replace(/^ORDER BY .*$/m, `ORDER BY ${c.orderBy}`)
          .replace(/^SETTINGS .*$/m, (line) => `${line}, index_granularity = ${granularity}`);
      }
      return out;
    });
}

/** The view's select list (0002), so the timed reads build each row exactly as session_replay_events_merged does. */
async function viewSelectList(): Promise<string> {
  const text = await readFile(join(clickhouseSchemaDir, '0002_session_replay_events_merged.sql'), 'utf8');
  const match = /AS\s+SELECT([\s\S]*?)\bFROM session_replay_events\b/.exec(text.replace(/--.*$/gm, ''));
  if (!match) throw new Error('cannot read the select list of 0002');
  return match[1]!.trim();
}

/** The columns and expressions insertSummaryRows (src/clickhouse/session-replay-events.ts) inserts. */
const insertSelect = `SELECT
    team_id, session_id, distinct_id, first_timestamp, last_timestamp,
    [first_timestamp], [last_timestamp], [block_url],
    arrayReduce('argMinState', [first_url], [coalesce(first_url_timestamp, first_timestamp)]),
    urls, click_count, keypress_count, mouse_activity_count, active_milliseconds, console_log_count,
    console_warn_count, console_error_count, size, event_count, message_count,
    arrayReduce('argMinState', [toLowCardinality(snapshot_source)], [first_timestamp]),
    arrayReduce('argMinState', [snapshot_library], [first_timestamp]),
    retention_period_days, 0, first_timestamp, _kafka_partition, _kafka_offset
  FROM bench_rows`; // _inserted_at: the block's time rather than now64(3), so every table gets the same bytes
const insertColumns = `(team_id, session_id, distinct_id, min_first_timestamp, max_last_timestamp, block_first_timestamps,
    block_last_timestamps, block_urls, first_url, all_urls, click_count, keypress_count, mouse_activity_count,
    active_milliseconds, console_log_count, console_warn_count, console_error_count, size, event_count, message_count,
    snapshot_source, snapshot_library, retention_period_days, is_deleted, _inserted_at, _kafka_partition, _kafka_offset)`;

// ---------------------------------------------------------------------------------------------------------------

const dir = await mkdtemp(join(tmpdir(), 'replay-bench-order-by-'));
const clickhouse = openClickHouse({ kind: 'chdb', path: join(dir, 'db') });
const run = (query: string, settings: Record<string, string | number> = {}) =>
  clickhouse.command({ query, clickhouse_settings: settings });
const select = async <T>(query: string) => (await clickhouse.query({ query, format: 'JSONEachRow' })).json<T>();

try {
  log(`generating ${sessionCount} sessions over ${days} days for ${teamCount} teams`);
  await run(`CREATE TABLE bench_rows (
      team_id Int64, session_id String, distinct_id String,
      first_timestamp DateTime64(3, 'UTC'), last_timestamp DateTime64(3, 'UTC'), block_url String,
      first_url Nullable(String), first_url_timestamp Nullable(DateTime64(3, 'UTC')), urls Array(String),
      click_count Int64, keypress_count Int64, mouse_activity_count Int64, active_milliseconds Int64,
      console_log_count Int64, console_warn_count Int64, console_error_count Int64, size Int64, event_count Int64,
      message_count Int64, snapshot_source String, snapshot_library String, retention_period_days Int64,
      _kafka_partition Int32, _kafka_offset Int64
    ) ENGINE = MergeTree ORDER BY first_timestamp`);
  let chunk: BenchRow[] = [];
  let rowCount = 0;
  const flushChunk = async () => {
    if (chunk.length === 0) return;
    await clickhouse.insert({
      table: 'bench_rows',
      values: chunk,
      format: 'JSONEachRow',
      clickhouse_settings: { input_format_skip_unknown_fields: 1 },
    });
    rowCount += chunk.length;
    chunk = [];
  };
  for (let i = 0; i < sessionCount; i++) {
    const teamId = drawTeam();
    const start = epoch + Math.floor(random() * days) * DAY + Math.floor(drawTimeOfDay());
    const session = { teamId, id: sessionId(start), start };
    sessions.push(session);
    chunk.push(...sessionRows(session, `user-${teamId}-${Math.floor(random() * 5000)}`));
    if (chunk.length >= 100_000) {
      await flushChunk();
      log(`  ${rowCount} block rows (${i + 1} sessions)`);
    }
  }
  await flushChunk();
  log(`${rowCount} block rows for ${sessions.length} sessions`);

  const teamSessions = new Map<number, Session[]>();
  for (const s of sessions) {
    const list = teamSessions.get(s.teamId);
    if (list) list.push(s);
    else teamSessions.set(s.teamId, [s]);
  }
  const bySize = [...teamSessions.entries()].sort((a, b) => b[1].length - a[1].length || a[0] - b[0]);
  const tiers = {
    large: bySize[0]!,
    medium: bySize[Math.floor(bySize.length / 20)]!,
    small: bySize[Math.floor(bySize.length / 2)]!,
  };
  for (const [tier, [teamId, list]] of Object.entries(tiers)) {
    log(`  ${tier} team ${teamId}: ${list.length} sessions (${((100 * list.length) / sessions.length).toFixed(1)} %)`);
  }

  const selectList = await viewSelectList();
  for (const c of candidates) {
    log(`building ${c.name}: ORDER BY ${c.orderBy}${c.index ? ` + ${c.index.split(' ')[1]}` : ''}`);
    const database = databaseOf(c);
    for (const statement of await migrationsFor(c)) await run(statement);
    if (c.index) await run(`ALTER TABLE ${database}.session_replay_events ADD ${c.index}`);
    await run(`SYSTEM STOP MERGES ${database}.session_replay_events`);
    // Before merges: every block its own row (the sink's inserts hold one flush each, so nothing folds at insert:
    // optimize_on_insert = 0 here), in a few time-ordered parts spanning days each, as background merges leave them
    // when they have concatenated parts but not yet folded a session's rows that arrived in different parts.
    const step = Math.ceil(((days + 1) * DAY) / partCount);
    for (let t = epoch; t < epoch + (days + 1) * DAY; t += step) {
      await run(
        `INSERT INTO ${database}.session_replay_events ${insertColumns} ${insertSelect}
          WHERE first_timestamp >= fromUnixTimestamp64Milli(${t}, 'UTC')
            AND first_timestamp < fromUnixTimestamp64Milli(${t + step}, 'UTC')`,
        { optimize_on_insert: 0 },
      );
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Reads.

  const sampler = prng(7);
  const sampleOf = <T>(items: readonly T[]) =>
    Array.from({ length: samples }, () => items[Math.floor(sampler() * items.length)]!);
  const dayStart = (ms: number) => ms - (ms % DAY);
  const ts = (ms: number) => `fromUnixTimestamp64Milli(${ms}, 'UTC')`;
  /** The start (ms) a UUIDv7 session id carries. */
  const uuidv7Start = (id: string) => Number.parseInt(id.replaceAll('-', '').slice(0, 12), 16);

  type Kind = 'list' | 'fetch' | 'fetch+';
  const reads: { kind: Kind; tier: string; team: number; sql: (database: string) => string }[] = [];
  for (const [tier, [team, list]] of Object.entries(tiers)) {
    for (const s of sampleOf(list)) {
      const from = dayStart(s.start);
      const to = from + DAY;
      reads.push({
        kind: 'list',
        tier,
        team,
        // A session's rows all lie within MAX_SESSION_MS after its start: the guard lets the index skip the rest,
        // HAVING keeps the sessions that started in the range (a row of an earlier session must still be read to
        // know that session started before `from`).
        sql: (database) => `SELECT ${selectList}
          FROM ${database}.session_replay_events
          WHERE team_id = ${team}
            AND min_first_timestamp >= ${ts(from - MAX_SESSION_MS)} AND min_first_timestamp < ${ts(to + MAX_SESSION_MS)}
          GROUP BY team_id, session_id
          HAVING max(is_deleted) = 0 AND start_time >= ${ts(from)} AND start_time < ${ts(to)}
          ORDER BY start_time DESC, session_id LIMIT 50`,
      });
    }
    for (const s of sampleOf(list)) {
      reads.push({
        kind: 'fetch',
        tier,
        team,
        sql: (database) =>
          `SELECT * FROM ${database}.session_replay_events_merged WHERE team_id = ${team} AND session_id = '${s.id}'`,
      });
    }
    // The start a UUIDv7 id carries bounds the rows of its session; a UUIDv4 carries nothing.
    for (const s of ids === 'uuidv7' ? sampleOf(list) : []) {
      const start = uuidv7Start(s.id);
      reads.push({
        kind: 'fetch+',
        tier,
        team,
        sql: (database) => `SELECT ${selectList}
          FROM ${database}.session_replay_events
          WHERE team_id = ${team} AND session_id = '${s.id}'
            AND min_first_timestamp >= ${ts(start)} AND min_first_timestamp < ${ts(start + MAX_SESSION_MS)}
          GROUP BY team_id, session_id
          HAVING max(is_deleted) = 0`,
      });
    }
  }

  interface Stats {
    elapsed: number;
    rows_read: number;
    bytes_read: number;
  }
  /** Rows sorted and arrays sorted: the answer, independent of the physical order of rows and parts. */
  const canonical = (rows: Record<string, unknown>[]) =>
    JSON.stringify(
      rows.map((row) =>
        Object.fromEntries(Object.entries(row).map(([k, v]) => [k, Array.isArray(v) ? [...v].sort() : v] as const)),
      ),
    );
  const median = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  };

  type Figure = { ms: number; serverMs: number; rowsRead: number; bytesRead: number };
  const figures: Record<string, Record<string, Record<string, Figure>>> = {}; // state → candidate → kind/tier
  const storage: Record<
    string,
    Record<string, { parts: number; rows: number; bytes: number; indexBytes: number }>
  > = {};

  for (const state of ['before merges', 'after OPTIMIZE FINAL'] as const) {
    if (state === 'after OPTIMIZE FINAL') {
      for (const c of candidates) {
        log(`OPTIMIZE FINAL ${c.name}`);
        await run(`SYSTEM START MERGES ${databaseOf(c)}.session_replay_events`);
        await run(`OPTIMIZE TABLE ${databaseOf(c)}.session_replay_events FINAL`);
      }
    }
    storage[state] = {};
    for (const c of candidates) {
      const [parts] = await select<{ parts: number; rows: number; bytes: number }>(
        `SELECT count() AS parts, sum(rows) AS rows, sum(bytes_on_disk) AS bytes FROM system.parts
          WHERE database = '${databaseOf(c)}' AND table = 'session_replay_events' AND active`,
      );
      const [index] = await select<{ bytes: number }>(
        `SELECT sum(data_compressed_bytes) AS bytes FROM system.data_skipping_indices
          WHERE database = '${databaseOf(c)}' AND table = 'session_replay_events' AND creation = 'Explicit'`,
      );
      storage[state][c.name] = { ...parts!, indexBytes: index?.bytes ?? 0 };
      if (state === 'before merges' && parts!.rows !== rowCount) {
        throw new Error(`${c.name} holds ${parts!.rows} rows, not the ${rowCount} generated`);
      }
    }
    log(`${state}: timing ${reads.length} reads × ${candidates.length} tables × ${repeat + 1} runs`);
    const samplesBy = new Map<string, { ms: number[]; server: number[]; rows: number[]; bytes: number[] }>();
    for (const [i, read] of reads.entries()) {
      let answer: string | undefined;
      for (const c of candidates) {
        const key = `${c.name}|${read.kind}|${read.tier}`;
        const acc = samplesBy.get(key) ?? { ms: [], server: [], rows: [], bytes: [] };
        samplesBy.set(key, acc);
        for (let r = 0; r <= repeat; r++) {
          const t0 = performance.now();
          const result = await (
            await clickhouse.query({
              query: read.sql(databaseOf(c)),
              format: 'JSON',
              // Repeating a read would otherwise skip the granules the first run found empty: the API rarely asks
              // the same thing twice, and the figures are about what the sorting key lets the engine skip.
              clickhouse_settings: { use_query_condition_cache: 0 },
            })
          ).json<Record<string, unknown>>();
          const ms = performance.now() - t0;
          const statistics = (result as unknown as { statistics: Stats }).statistics;
          if (r === 0) {
            // Warm-up run: also the correctness check (every table gives the same answer).
            const got = canonical(result.data);
            if (answer === undefined) answer = got;
            else if (got !== answer) throw new Error(`${c.name} answers ${read.kind} #${i} differently`);
            if (result.data.length === 0) throw new Error(`${read.kind} #${i} found nothing`);
            continue;
          }
          acc.ms.push(ms);
          acc.server.push(statistics.elapsed * 1000);
          acc.rows.push(statistics.rows_read);
          acc.bytes.push(statistics.bytes_read);
        }
      }
      if ((i + 1) % 5 === 0) log(`  ${i + 1}/${reads.length} reads`);
    }
    figures[state] = {};
    for (const c of candidates) {
      const byRead: Record<string, Figure> = {};
      figures[state][c.name] = byRead;
      for (const kind of ['list', 'fetch', 'fetch+']) {
        for (const tier of Object.keys(tiers)) {
          const acc = samplesBy.get(`${c.name}|${kind}|${tier}`);
          if (!acc) continue;
          byRead[`${kind} ${tier}`] = {
            ms: Number(median(acc.ms).toFixed(2)),
            serverMs: Number(median(acc.server).toFixed(2)),
            rowsRead: median(acc.rows),
            bytesRead: median(acc.bytes),
          };
        }
      }
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Report.

  const human = (n: number) =>
    n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : String(Math.round(n));
  const columns = Object.keys(figures['before merges']![candidates[0]!.name]!);
  for (const state of Object.keys(figures)) {
    console.log(`\n${state}: rows read (median ms, in process)\n`);
    console.log(`| table | parts | rows | MB | skip index KB | ${columns.join(' | ')} |`);
    console.log(`|---|${'---:|'.repeat(4 + columns.length)}`);
    for (const c of candidates) {
      const s = storage[state]![c.name]!;
      const cells = columns.map((k) => {
        const f = figures[state]![c.name]![k]!;
        return `${human(f.rowsRead)} (${f.ms.toFixed(0)})`;
      });
      console.log(
        `| ${c.name} | ${s.parts} | ${human(s.rows)} | ${(s.bytes / 1e6).toFixed(1)} | ${(s.indexBytes / 1e3).toFixed(1)} | ${cells.join(' | ')} |`,
      );
    }
  }
  const result = {
    date: new Date().toISOString(),
    machine: '2 cores shared with other work; chDB in process',
    engine: (await select<{ v: string }>('SELECT version() AS v'))[0]!.v,
    sessions: sessions.length,
    ids,
    blockRows: rowCount,
    teams: teamCount,
    days,
    samples,
    repeat,
    parts: partCount,
    granularity,
    tiers: Object.fromEntries(
      Object.entries(tiers).map(([tier, [team, list]]) => [tier, { team, sessions: list.length }]),
    ),
    candidates,
    storage,
    figures,
  };
  await mkdir('bench/results', { recursive: true });
  const file = `bench/results/clickhouse-order-by-${Date.now()}.json`;
  await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
  log(`wrote ${file}`);
} finally {
  await clickhouse.close();
  await rm(dir, { recursive: true, force: true });
}
