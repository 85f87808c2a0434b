import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Session } from 'chdb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openClickHouse } from '../../src/clickhouse/client.ts';
import { migrateClickHouse } from '../../src/clickhouse/migrations.ts';
import { insertedUpTo, insertSummaryRows } from '../../src/clickhouse/session-replay-events.ts';
import { clickhouseTime, type SummaryRow } from '../../src/recordings/summary-row.ts';
import type { BehaviorRecord } from '../../src/uba/behavior-record.ts';
import { behaviorsInsertedUpTo, insertBehaviors, type PositionedBehavior } from '../../src/uba/behavior-rows.ts';
import { sampleBehavior } from '../support/behaviors.ts';

/**
 * The ClickHouse cluster variant of the schema (schema/clickhouse/alternatives/cluster/, docs/scaling.md) against the
 * single-node migrations it mirrors. No cluster runs here: chDB has no Keeper (a Replicated table it creates stays
 * read-only) and refuses ON CLUSTER. So:
 *
 * - every statement goes through `formatQuery()`, which parses ON CLUSTER and the Replicated engines as they are;
 * - the single-node tables come from the real migrations (`migrateClickHouse`) in chDB, and are DESCRIBEd;
 * - the cluster DDL is applied in the same chDB with ON CLUSTER dropped and each Replicated engine swapped for its
 *   plain counterpart (same arguments after the Keeper path and replica), under a chDB config that defines the
 *   `{cluster}` macro as a one-shard cluster whose only replica is this process. The Distributed tables are real,
 *   their sharding keys are type-checked by ClickHouse, and inserts through them reach the `_local` tables, whose
 *   materialized views fill the other `_local` tables, as on every shard of a real cluster;
 * - each `_local` table must match its single-node table (columns with types, defaults and codecs, engine, keys,
 *   TTL, settings, indices, projections), each Distributed table its columns; views and materialized views must read
 *   and write what the single-node ones do, with `_local` tables on the shard side;
 * - the sinks' own insert paths (insertBehaviors, insertSummaryRows), run through the Distributed tables, store what
 *   they store in the single-node schema, table by table.
 *
 * Replication, Keeper, multi-shard routing and ON CLUSTER execution are not exercised (no server build installs here).
 *
 * chDB runs in a child process (this file, run by node with CLUSTER_DDL_TEST_OUTPUT set): loaded into one of vitest's
 * worker threads, chDB crashes the whole run when the thread exits (SIGSEGV, even for a bare `SELECT 1`). The child
 * writes what it read as JSON; the tests below judge it.
 */

const CLUSTER_DIR = new URL('../../schema/clickhouse/alternatives/cluster/', import.meta.url).pathname;
const KEEPER_PATH = "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'";
/** Any free-looking port: chDB listens on none, but a replica whose port is the server's tcp_port counts as local. */
const TCP_PORT = 19437;

/** Sharding keys of the Distributed tables the sinks insert into; the others have none (only views write them). */
const SHARDING_KEYS: Record<string, string> = {
  session_replay_events: '_kafka_partition',
  user_behaviors: '_kafka_partition',
  user_watches: 'cityHash64(tenant_id, user_id)',
};

// ---------------------------------------------------------------------------------------------------------------
// Statements

/**
 * Splits SQL text into statements at each `;` outside string literals, quoted identifiers and comments, dropping
 * statements that are only comments.
 */
function splitStatements(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === "'" || c === '"' || c === '`') {
      i++;
      while (i < text.length && text[i] !== c) i += text[i] === '\\' ? 2 : 1;
      i++;
    } else if (c === '-' && text[i + 1] === '-') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 2;
    } else if (c === ';') {
      out.push(text.slice(start, i));
      i++;
      start = i;
    } else {
      i++;
    }
  }
  out.push(text.slice(start));
  return out.map((s) => s.trim()).filter((s) => s.replace(/--.*$/gm, '').trim() !== '');
}

/** How `migrateClickHouse` splits a file (src/clickhouse/migrations.ts): on `;` at the end of a line. */
const migrationSplit = (text: string) =>
  text
    .split(/;\s*$/m)
    .map((s) => s.trim())
    .filter((s) => s.replace(/--.*$/gm, '').trim());

interface ClusterFile {
  readonly name: string;
  readonly text: string;
}

async function clusterFiles(): Promise<ClusterFile[]> {
  const names = (await readdir(CLUSTER_DIR)).filter((n) => n.endsWith('.sql')).sort();
  return Promise.all(names.map(async (name) => ({ name, text: await readFile(join(CLUSTER_DIR, name), 'utf8') })));
}

const REPLICATED_ENGINE =
  /\bReplicated(\w*MergeTree)\('\/clickhouse\/tables\/\{shard\}\/\{database\}\/\{table\}', '\{replica\}'(, )?/g;

/** A cluster statement as one chDB node can run it: no ON CLUSTER, plain engines (their deduplication window too). */
function forOneNode(statement: string): string {
  return statement
    .replaceAll(" ON CLUSTER '{cluster}'", '')
    .replace(REPLICATED_ENGINE, '$1(')
    .replace(/\breplicated_deduplication_window\b/g, 'non_replicated_deduplication_window');
}

// ---------------------------------------------------------------------------------------------------------------
// What a database holds

interface DescribedColumn {
  readonly name: string;
  readonly type: string;
  readonly default_type: string;
  readonly default_expression: string;
  readonly codec_expression: string;
}

interface TableInfo {
  readonly name: string;
  readonly engine: string;
  readonly engine_full: string;
  readonly create_table_query: string;
  readonly as_select: string;
  columns: DescribedColumn[];
  indices: string[];
  projections: string[];
}

type Schema = Map<string, TableInfo>;

function rows<T>(session: Session, query: string): T[] {
  return session
    .query(query, 'JSONEachRow')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as T);
}

function readSchema(session: Session, database: string): Schema {
  const schema: Schema = new Map();
  for (const table of rows<TableInfo>(
    session,
    `SELECT name, engine, engine_full, create_table_query, as_select FROM system.tables
      WHERE database = '${database}' AND name != 'schema_migrations' ORDER BY name`,
  )) {
    const columns =
      table.engine === 'MaterializedView'
        ? []
        : rows<DescribedColumn>(session, `DESCRIBE TABLE ${database}.${table.name}`).map(
            ({ name, type, default_type, default_expression, codec_expression }) => ({
              name,
              type,
              default_type,
              default_expression,
              codec_expression,
            }),
          );
    schema.set(table.name, { ...table, columns, indices: [], projections: [] });
  }
  for (const index of rows<{ table: string; name: string; type_full: string; expr: string; granularity: number }>(
    session,
    `SELECT table, name, type_full, expr, granularity FROM system.data_skipping_indices
      WHERE database = '${database}' ORDER BY table, name`,
  )) {
    schema
      .get(index.table)
      ?.indices.push(`${index.name} ${index.expr} TYPE ${index.type_full} GRANULARITY ${index.granularity}`);
  }
  for (const projection of rows<{ table: string; name: string; query: string }>(
    session,
    `SELECT table, name, query FROM system.projections WHERE database = '${database}' ORDER BY table, name`,
  )) {
    schema.get(projection.table)?.projections.push(`${projection.name}: ${projection.query}`);
  }
  return schema;
}

/** The engine clause without its SETTINGS, and the settings as a sorted list. */
function engineParts(engineFull: string): { clause: string; settings: string[] } {
  const at = engineFull.indexOf(' SETTINGS ');
  if (at < 0) return { clause: engineFull, settings: [] };
  return {
    clause: engineFull.slice(0, at),
    settings: engineFull
      .slice(at + ' SETTINGS '.length)
      .split(', ')
      .sort(),
  };
}

const DISTRIBUTED = /^Distributed\('([^']*)', '([^']*)', '([^']*)'(?:, (.+))?\)$/;

/** A view's query as one node reads it: without the database and with `_local` dropped from table names. */
const normalised = (sql: string, database: string) =>
  sql.replaceAll(`${database}.`, '').replace(/\b(\w+)_local\b/g, '$1');

const columnsOf = (info: TableInfo | undefined, keep: readonly (keyof DescribedColumn)[]) =>
  (info?.columns ?? []).map((c) => keep.map((k) => `${k}=${c[k]}`).join(' '));

const LOCAL_COLUMN_FIELDS = ['name', 'type', 'default_type', 'default_expression', 'codec_expression'] as const;
const DISTRIBUTED_COLUMN_FIELDS = ['name', 'type', 'default_type', 'default_expression'] as const;

/**
 * Every difference between the single-node schema (in `default`) and the cluster variant as one node runs it
 * (`forOneNode`, in `database`), each a sentence; empty when the cluster variant is complete and matches. `statements`
 * are the cluster files' statements as shipped.
 */
function compareSchemas(single: Schema, cluster: Schema, statements: readonly string[], database: string): string[] {
  const problems: string[] = [];
  const expected = new Set<string>();
  const shipped = (name: string) =>
    statements.find((s) => new RegExp(`^(--.*\n)*CREATE TABLE IF NOT EXISTS ${name} ON CLUSTER`).test(s)) ?? '';
  for (const original of single.values()) {
    if (original.engine === 'View' || original.engine === 'MaterializedView') {
      expected.add(original.name);
      const counterpart = cluster.get(original.name);
      if (counterpart?.engine !== original.engine) {
        problems.push(`${original.engine} ${original.name}: missing in the cluster variant`);
        continue;
      }
      if (normalised(counterpart.as_select, database) !== normalised(original.as_select, 'default')) {
        problems.push(`${original.name}: its query differs from the single-node one (beyond _local table names)`);
      }
      const tables = [...counterpart.as_select.matchAll(new RegExp(`\\b${database}\\.(\\w+)`, 'g'))].map((m) => m[1]!);
      if (original.engine === 'MaterializedView') {
        // On each shard, from the shard's own table into the shard's own table.
        const target = /\bTO default\.(\w+)/.exec(original.create_table_query)?.[1];
        const clusterTarget = new RegExp(`\\bTO ${database}\\.(\\w+)`).exec(counterpart.create_table_query)?.[1];
        if (clusterTarget !== `${target}_local`) {
          problems.push(`${original.name}: writes ${clusterTarget}, not ${target}_local (the shard's own table)`);
        }
        for (const table of tables.filter((t) => !t.endsWith('_local'))) {
          problems.push(`${original.name}: reads ${table}, not the shard's _local table`);
        }
      } else {
        // Read by the API through the Distributed tables under the original names.
        for (const table of tables.filter((t) => t.endsWith('_local'))) {
          problems.push(`${original.name}: reads ${table} (one shard), not the Distributed table`);
        }
      }
      continue;
    }

    // A table: <name>_local with the Replicated engine, and a Distributed <name>.
    const localName = `${original.name}_local`;
    expected.add(localName).add(original.name);
    const local = cluster.get(localName);
    if (!local) {
      problems.push(`${localName}: missing`);
    } else {
      const statement = shipped(localName).replace(/--.*$/gm, '');
      if (!statement.includes(`ENGINE = Replicated${original.engine}(${KEEPER_PATH}`)) {
        problems.push(`${localName}: not created with Replicated${original.engine}(${KEEPER_PATH}, ...)`);
      }
      if (statement.includes('non_replicated_deduplication_window')) {
        problems.push(`${localName}: non_replicated_deduplication_window does nothing on a Replicated table`);
      }
      const before = columnsOf(original, LOCAL_COLUMN_FIELDS);
      const after = columnsOf(local, LOCAL_COLUMN_FIELDS);
      if (JSON.stringify(after) !== JSON.stringify(before)) {
        problems.push(`${localName}: columns differ: ${diff(before, after)}`);
      }
      const a = engineParts(original.engine_full);
      const b = engineParts(local.engine_full);
      if (a.clause !== b.clause) problems.push(`${localName}: engine, keys or TTL differ: ${a.clause} / ${b.clause}`);
      if (a.settings.join() !== b.settings.join()) {
        problems.push(`${localName}: settings differ: ${a.settings.join(', ')} / ${b.settings.join(', ')}`);
      }
      if (local.indices.join() !== original.indices.join()) problems.push(`${localName}: skip indices differ`);
      if (local.projections.join() !== original.projections.join()) problems.push(`${localName}: projections differ`);
    }
    const distributed = cluster.get(original.name);
    const args = distributed && DISTRIBUTED.exec(distributed.engine_full);
    if (!distributed || !args) {
      problems.push(`${original.name}: no Distributed table under the original name`);
      continue;
    }
    const [, clusterName, targetDatabase, targetTable, shardingKey] = args;
    if (clusterName !== '{cluster}' || targetDatabase !== database || targetTable !== localName) {
      problems.push(`${original.name}: Distributed over ${clusterName}/${targetDatabase}.${targetTable}`);
    }
    if ((shardingKey ?? '') !== (SHARDING_KEYS[original.name] ?? '')) {
      problems.push(
        `${original.name}: sharding key ${shardingKey ?? '(none)'}, expected ${SHARDING_KEYS[original.name]}`,
      );
    }
    const before = columnsOf(original, DISTRIBUTED_COLUMN_FIELDS);
    const after = columnsOf(distributed, DISTRIBUTED_COLUMN_FIELDS);
    if (JSON.stringify(after) !== JSON.stringify(before)) {
      problems.push(`${original.name}: Distributed columns differ: ${diff(before, after)}`);
    }
  }
  for (const name of cluster.keys()) {
    if (!expected.has(name)) problems.push(`${name}: in the cluster variant only`);
  }
  return problems;
}

function diff(expected: string[], actual: string[]): string {
  const missing = expected.filter((c) => !actual.includes(c));
  const extra = actual.filter((c) => !expected.includes(c));
  return missing.length + extra.length === 0
    ? 'order'
    : [...missing.map((c) => `missing ${c}`), ...extra.map((c) => `unexpected ${c}`)].join('; ');
}

// ---------------------------------------------------------------------------------------------------------------
// The sinks' writes

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const now = Math.floor(Date.now() / HOUR) * HOUR;

/** Behaviours of two tenants over two months, watches updated across batches, an experiment, properties. */
function behaviorBatches(): PositionedBehavior[][] {
  const users = ['u1', 'u2', 'u3', 'u4', 'u5'];
  const offsets = new Map<number, number>();
  const positioned = (record: BehaviorRecord): PositionedBehavior => {
    const partition = users.indexOf(record.user_id) % 3; // the topic is keyed by user
    const offset = offsets.get(partition) ?? 0;
    offsets.set(partition, offset + 1);
    return { record, topic: 'user_behaviors', partition, offset };
  };
  const batch = (day: number, watched: number) =>
    users.flatMap((user_id, u) =>
      ['impression', 'click', 'view', 'order'].slice(0, 2 + (u % 3)).map((action_type, a) =>
        positioned(
          sampleBehavior({
            tenant_id: 7 + (u % 2),
            user_id,
            action_type,
            item_id: `item-${(u + a) % 3}`,
            scenario_id: a % 2 ? 'home' : 'search',
            timestamp: now - day * DAY + u * 60_000 + a * 1000,
            session_id: `s-${user_id}`,
            experiment_id: u < 3 ? 'exp-1' : '',
            experiment_group: u < 3 ? (u % 2 ? 'test' : 'control') : '',
            properties: { plan: u % 2 ? 'pro' : 'free' },
            ...(action_type === 'view'
              ? { view_id: `view-${user_id}`, watch_duration: watched, completion_rate: watched / 100 }
              : {}),
          }),
        ),
      ),
    );
  return [batch(35, 10), batch(1, 30)];
}

function summaryRows(): (SummaryRow & { _kafka_partition?: number; _kafka_offset?: number; _kafka_topic?: string })[] {
  const block = (team: number, session: string, start: number, partition: number | undefined, offset: number) => ({
    team_id: team,
    session_id: session,
    distinct_id: `d-${session}`,
    first_timestamp: clickhouseTime(start),
    last_timestamp: clickhouseTime(start + 9000),
    block_url: `s3://bucket/key-${offset}?range=bytes=0-99`,
    first_url: `https://example.com/${session}`,
    first_url_timestamp: clickhouseTime(start + 10),
    urls: [`https://example.com/${session}`, `https://example.com/${offset}`],
    click_count: 2,
    keypress_count: 1,
    mouse_activity_count: 5,
    active_milliseconds: 4000,
    console_log_count: 1,
    console_warn_count: 0,
    console_error_count: offset % 2,
    size: 1000 + offset,
    event_count: 10,
    message_count: 1,
    snapshot_source: 'web',
    snapshot_library: 'web',
    retention_period_days: 90, // session-b, 40 days old, must outlive the TTL (0014) through OPTIMIZE FINAL
    source_offsets: `session_recording_snapshot_item_events:0:${offset}-${offset}`,
    ...(partition === undefined
      ? {}
      : { _kafka_partition: partition, _kafka_offset: offset, _kafka_topic: 'clickhouse_session_replay_events' }),
  });
  return [
    block(1, 'session-a', now - 2 * DAY, 0, 0),
    block(1, 'session-a', now - 2 * DAY + 10_000, 0, 1),
    block(2, 'session-b', now - 40 * DAY, 1, 0),
    // As `replay reindex` writes them: no topic position (the columns' defaults, _kafka_partition -1).
    block(2, 'session-c', now - 3 * DAY, undefined, 7),
  ];
}

/** Made once: both schemas get the same behaviours (their event ids are random). */
const BEHAVIOR_BATCHES = behaviorBatches();

/** The same writes, in the same order, as the sinks make them (a retried batch included). */
async function writeAll(client: ClickHouseClient): Promise<void> {
  const [first, second] = BEHAVIOR_BATCHES;
  await insertBehaviors(client, first!, 'batch-1');
  await insertBehaviors(client, first!, 'batch-1'); // a retry of a sealed batch: stored once
  await insertBehaviors(client, second!, 'batch-2'); // moves the watches to their later state
  const summaries = summaryRows();
  await insertSummaryRows(client, summaries.slice(0, 2), 'summary-1');
  await insertSummaryRows(client, summaries.slice(0, 2), 'summary-1');
  await insertSummaryRows(client, summaries.slice(2), 'summary-2');
}

/** Every stored row of every table and view, merged (OPTIMIZE FINAL on the storage tables), as sorted JSON lines. */
async function contents(
  client: ClickHouseClient,
  session: Session,
  schema: Schema,
  storageTable: (name: string) => string,
): Promise<Record<string, string[]>> {
  for (const t of schema.values()) {
    if (t.engine.endsWith('MergeTree')) session.query(`OPTIMIZE TABLE default.${storageTable(t.name)} FINAL`);
  }
  const out: Record<string, string[]> = {};
  for (const t of schema.values()) {
    if (t.engine === 'MaterializedView') continue;
    const select = t.columns
      .filter((c) => c.name !== '_inserted_at')
      .map((c) => (c.type.startsWith('AggregateFunction(') ? `finalizeAggregation(${c.name}) AS ${c.name}` : c.name));
    const result = await client.query({ query: `SELECT ${select.join(', ')} FROM ${t.name}`, format: 'JSONEachRow' });
    out[t.name] = ((await result.json()) as unknown[]).map((row) => JSON.stringify(row)).sort();
  }
  out.resume_points = [
    String(await insertedUpTo(client, 'clickhouse_session_replay_events', 0)),
    String(await insertedUpTo(client, 'clickhouse_session_replay_events', 1)),
    ...(await Promise.all(
      [0, 1, 2].map(async (p) => String(await behaviorsInsertedUpTo(client, 'user_behaviors', p))),
    )),
  ];
  return out;
}

function dropAll(session: Session, database: string): void {
  const objects = rows<{ name: string; engine: string }>(
    session,
    `SELECT name, engine FROM system.tables WHERE database = '${database}'`,
  );
  const rank = (e: string) => (e === 'MaterializedView' ? 0 : e === 'View' ? 1 : e === 'Distributed' ? 2 : 3);
  for (const { name } of objects.sort((a, b) => rank(a.engine) - rank(b.engine))) {
    session.query(`DROP TABLE ${database}.${name} SYNC`);
  }
}

// ---------------------------------------------------------------------------------------------------------------

/** The mutations the last test expects to be reported: a column dropped, a column retyped. */
function mutate(files: readonly ClusterFile[]): ClusterFile[] {
  return files.map((f) => {
    // In 0006 the only device_type line without a codec is the Distributed user_behaviors' one.
    if (f.name.startsWith('0006_'))
      return { ...f, text: f.text.replace(/^ {4}device_type LowCardinality\(String\),\n/m, '') };
    // The last column of user_watches_local.
    if (f.name.startsWith('0011_')) {
      return {
        ...f,
        text: f.text.replace(
          'completion_rate Float64\n)\nENGINE = Replicated',
          'completion_rate Float32\n)\nENGINE = Replicated',
        ),
      };
    }
    return f;
  });
}

/** The first statement cut short after `ENGINE =`: formatQuery must refuse it. */
const brokenStatement = (statement: string) => statement.replace(/\)\s*ENGINE = [\s\S]*$/, ') ENGINE = ');

interface Formatted {
  readonly formatted?: string;
  readonly error?: string;
}

/** What the child read, for the tests to judge. */
interface ChildResult {
  readonly formatted: (Formatted & { readonly statement: string })[];
  readonly broken: Formatted;
  readonly single: [string, TableInfo][];
  readonly cluster: [string, TableInfo][];
  readonly mutated: [string, TableInfo][];
  readonly singleContents: Record<string, string[]>;
  /** What the same writes left through the cluster variant, or the error they failed with. */
  readonly clusterContents: Record<string, string[]> | { readonly error: string };
  /** Rows in some `_local` tables after the writes through the Distributed tables. */
  readonly localRows: Record<string, number>;
}

const CHILD_OUTPUT = 'CLUSTER_DDL_TEST_OUTPUT';

/** Applies cluster files, as one node runs them, in `database` (which must exist). */
function applyCluster(session: Session, database: string, files: readonly ClusterFile[]): void {
  session.query(`USE ${database}`);
  for (const file of files) for (const statement of splitStatements(file.text)) session.query(forOneNode(statement));
}

/** The chDB side, in a process of its own: everything the tests look at, written to `output` as JSON. */
async function runChild(output: string): Promise<void> {
  const { Session } = await import('chdb');
  const dir = await mkdtemp(join(tmpdir(), 'ch-cluster-ddl-'));
  const config = join(dir, 'config.xml');
  await writeFile(
    config,
    `<clickhouse>
  <tcp_port>${TCP_PORT}</tcp_port>
  <macros><cluster>replay</cluster><shard>01</shard><replica>r1</replica></macros>
  <remote_servers>
    <replay>
      <shard>
        <internal_replication>true</internal_replication>
        <replica><host>localhost</host><port>${TCP_PORT}</port></replica>
      </shard>
    </replay>
  </remote_servers>
</clickhouse>
`,
  );
  // The session starts the engine with this config; the client (chdb/connection, as the project opens chDB) shares
  // it, since both use the same data directory.
  const session = new Session(join(dir, 'db'), { connectionArgs: [`--config-file=${config}`] });
  const client = openClickHouse({ kind: 'chdb', path: join(dir, 'db') });
  try {
    const files = await clusterFiles();
    const statements = files.flatMap((f) => splitStatements(f.text));
    const format = async (statement: string): Promise<Formatted> => {
      try {
        const result = await client.query({
          query: 'SELECT formatQuery({statement:String}) AS formatted',
          query_params: { statement },
          format: 'JSONEachRow',
        });
        return { formatted: ((await result.json()) as { formatted: string }[])[0]?.formatted ?? '' };
      } catch (error) {
        return { error: (error as Error).message };
      }
    };
    const formatted: ChildResult['formatted'] = [];
    for (const statement of statements) formatted.push({ statement, ...(await format(statement)) });
    const broken = await format(brokenStatement(statements[0]!));

    // The single-node schema, from the real migrations, and what the sinks' writes leave in it.
    await migrateClickHouse(client);
    const single = readSchema(session, 'default');
    await writeAll(client);
    const singleContents = await contents(client, session, single, (name) => name);
    // Then the cluster variant under the same names, in the same database (the sinks write to `default`), and the
    // same writes through its Distributed tables.
    dropAll(session, 'default');
    applyCluster(session, 'default', files);
    const cluster = readSchema(session, 'default');
    let clusterContents: ChildResult['clusterContents'];
    const localRows: Record<string, number> = {};
    try {
      await writeAll(client);
      clusterContents = await contents(client, session, single, (name) => `${name}_local`);
      for (const table of ['user_behaviors', 'user_behaviors_by_user', 'uba_hourly_metrics', 'uba_item_daily']) {
        const [row] = rows<{ n: string }>(session, `SELECT count() AS n FROM default.${table}_local`);
        localRows[table] = Number(row?.n);
      }
    } catch (error) {
      // A cluster file that breaks the sinks' writes: the schema tests say why, this test says that.
      clusterContents = { error: (error as Error).message };
    }
    // And the cluster files with two mistakes in them, in a database of their own.
    session.query('CREATE DATABASE mutated');
    applyCluster(session, 'mutated', mutate(files));
    const mutated = readSchema(session, 'mutated');
    session.query('USE default');

    const result: ChildResult = {
      formatted,
      broken,
      single: [...single],
      cluster: [...cluster],
      mutated: [...mutated],
      singleContents,
      clusterContents,
      localRows,
    };
    await writeFile(output, JSON.stringify(result));
  } finally {
    await client.close();
    session.close();
    await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------

const childOutput = process.env[CHILD_OUTPUT];
if (childOutput) {
  await runChild(childOutput);
} else {
  describe('ClickHouse cluster DDL (schema/clickhouse/alternatives/cluster)', () => {
    let dir: string;
    let files: ClusterFile[];
    let statements: string[];
    let result: ChildResult;
    let single: Schema;
    let cluster: Schema;

    beforeAll(async () => {
      files = await clusterFiles();
      statements = files.flatMap((f) => splitStatements(f.text));
      dir = await mkdtemp(join(tmpdir(), 'ch-cluster-ddl-test-'));
      const output = join(dir, 'result.json');
      await new Promise<void>((resolve, reject) => {
        execFile(
          process.execPath,
          [import.meta.filename],
          { env: { ...process.env, [CHILD_OUTPUT]: output }, maxBuffer: 64 * 1024 * 1024 },
          (error, _stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve()),
        );
      });
      result = JSON.parse(await readFile(output, 'utf8')) as ChildResult;
      single = new Map(result.single);
      cluster = new Map(result.cluster);
    }, 120_000);

    afterAll(async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('ships statements that split the same way here and in migrateClickHouse, every one ON CLUSTER', () => {
      expect(files.length).toBeGreaterThan(0);
      for (const file of files) {
        expect(file.name).toMatch(/^\d{4}_[\w-]+\.sql$/);
        expect(splitStatements(file.text), file.name).toEqual(migrationSplit(file.text));
      }
      for (const statement of statements) {
        expect(statement).toMatch(
          /^(--.*\n)*CREATE (TABLE|VIEW|MATERIALIZED VIEW) IF NOT EXISTS \w+ ON CLUSTER '\{cluster\}'/,
        );
      }
    });

    it('parses every statement with formatQuery, ON CLUSTER and Replicated engines included', () => {
      expect(result.formatted.map((f) => f.statement)).toEqual(statements);
      for (const { statement, formatted, error } of result.formatted) {
        expect(error, statement).toBeUndefined();
        expect(formatted, statement).toMatch(/ON CLUSTER `\{cluster\}`/);
      }
      // Two per table (its _local and Distributed tables), one per view and materialized view.
      const objects = [...single.values()].map((t) => (t.engine.endsWith('MergeTree') ? 2 : 1));
      expect(statements).toHaveLength(objects.reduce((a, b) => a + b, 0));
      // formatQuery does check the syntax: the first statement cut short after ENGINE = is refused.
      expect(brokenStatement(statements[0]!)).not.toBe(statements[0]);
      expect(result.broken.error).toMatch(/Syntax error/);
    });

    it('has for every single-node table a Replicated <name>_local and a Distributed <name> with the same columns', () => {
      const tables = [...single.values()].filter((t) => t.engine.endsWith('MergeTree')).map((t) => t.name);
      expect(tables.sort()).toEqual([
        'session_replay_events',
        'uba_audiences',
        'uba_experiment_daily',
        'uba_hourly_metrics',
        'uba_item_daily',
        'user_behavior_ids',
        'user_behaviors',
        'user_behaviors_by_user',
        'user_watches',
      ]);
      for (const name of tables) {
        expect(cluster.get(`${name}_local`)?.engine, name).toBe(single.get(name)?.engine);
        expect(cluster.get(name)?.engine, name).toBe('Distributed');
      }
      expect(compareSchemas(single, cluster, statements, 'default')).toEqual([]);
    });

    it('stores through the Distributed tables what the single-node schema stores, views and roll-ups included', () => {
      const { singleContents, clusterContents } = result;
      if ('error' in clusterContents)
        expect.fail(`the writes through the Distributed tables failed: ${clusterContents.error}`);
      expect(Object.keys(clusterContents).sort()).toEqual(Object.keys(singleContents).sort());
      for (const [table, stored] of Object.entries(singleContents)) {
        expect(stored.length, table).toBeGreaterThan(0);
        expect(clusterContents[table], table).toEqual(stored);
      }
      // The retried batch was stored once through the Distributed table (its token reached the local table), and the
      // views wrote the shard-side tables.
      expect(result.localRows.user_behaviors).toBe(behaviorBatches().flat().length);
      for (const [table, count] of Object.entries(result.localRows)) expect(count, table).toBeGreaterThan(0);
    });

    it('reports a column dropped or retyped in the cluster files', () => {
      const mutated = mutate(files);
      expect(mutated.map((f) => f.text)).not.toEqual(files.map((f) => f.text));
      const problems = compareSchemas(
        single,
        new Map(result.mutated),
        mutated.flatMap((f) => splitStatements(f.text)),
        'mutated',
      );
      expect(problems).toEqual([
        expect.stringMatching(/^user_behaviors: Distributed columns differ: missing name=device_type /),
        expect.stringMatching(
          /^user_watches_local: columns differ: missing name=completion_rate type=Float64 .*; unexpected name=completion_rate type=Float32 /,
        ),
      ]);
    });
  });
}
