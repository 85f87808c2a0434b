import { createHash } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import { insertJsonRows } from '../clickhouse/json-rows-insert.ts';
import { clickhouseTime } from '../recordings/summary-row.ts';
import type { BehaviorRecord } from './behavior-record.ts';

/** A behaviour and where the sink read it on the `user_behaviors` topic. */
export interface PositionedBehavior {
  readonly record: BehaviorRecord;
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
}

/** One `user_behaviors` row as JSONEachRow carries it (`date` is materialized from `timestamp`). */
export interface BehaviorRow {
  readonly tenant_id: number;
  readonly timestamp: string;
  readonly event_id: string;
  readonly user_id: string;
  readonly item_id: string;
  readonly action_type: string;
  readonly scenario_id: string;
  readonly session_id: string;
  readonly view_id: string;
  readonly watch_duration: number;
  readonly completion_rate: number;
  readonly experiment_id: string;
  readonly experiment_group: string;
  readonly device_type: string;
  readonly os: string;
  readonly location: string;
  readonly ip: string;
  readonly current_url: string;
  readonly properties: Readonly<Record<string, string>>;
  readonly source: string;
  readonly captured_at: string;
  readonly _kafka_topic: string;
  readonly _kafka_partition: number;
  readonly _kafka_offset: number;
}

/** One `user_watches` row (0010): a watch's state, or (sign -1) the cancellation of a stored one. */
export interface WatchRow {
  readonly tenant_id: number;
  readonly user_id: string;
  readonly view_id: string;
  readonly version: number;
  readonly sign: 1 | -1;
  readonly timestamp: string;
  readonly event_id: string;
  readonly item_id: string;
  readonly scenario_id: string;
  readonly session_id: string;
  readonly watch_duration: number;
  readonly completion_rate: number;
}

/**
 * The table's time (`DateTime64(3, 'UTC')`): fractional milliseconds are cut (floor), so a behaviour at 1.7 ms and
 * one at 1.2 ms share a millisecond and are ordered by event_id, like any other tie.
 */
export const behaviorTime = (ms: number): string => clickhouseTime(Math.floor(ms));

/** The table's time as ClickHouse answers it (`2026-11-18 12:00:00.123`, UTC) as ISO 8601, which browsers parse alike. */
export const isoTime = (value: string): string => `${value.replace(' ', 'T')}Z`;

export function behaviorRow({ record: r, topic, partition, offset }: PositionedBehavior): BehaviorRow {
  return {
    tenant_id: r.tenant_id,
    timestamp: behaviorTime(r.timestamp),
    event_id: r.event_id,
    user_id: r.user_id,
    item_id: r.item_id,
    action_type: r.action_type,
    scenario_id: r.scenario_id,
    session_id: r.session_id,
    view_id: r.view_id,
    watch_duration: r.watch_duration,
    completion_rate: r.completion_rate,
    experiment_id: r.experiment_id,
    experiment_group: r.experiment_group,
    device_type: r.device_type,
    os: r.os,
    location: r.location,
    ip: r.ip,
    current_url: r.current_url,
    properties: r.properties,
    source: r.source,
    captured_at: behaviorTime(r.captured_at),
    _kafka_topic: topic,
    _kafka_partition: partition,
    _kafka_offset: offset,
  };
}

/**
 * ClickHouse's order of UUIDs, which is not their text order: it compares the last 64 bits (the last 16 hex digits)
 * first, then the first 64. `ORDER BY timestamp, event_id` and the tables' sorting keys use this order.
 */
export function compareEventIds(a: string, b: string): number {
  const x = a.replaceAll('-', '').toLowerCase();
  const y = b.replaceAll('-', '').toLowerCase();
  const [p, q] = [x.slice(16) + x.slice(0, 16), y.slice(16) + y.slice(0, 16)];
  return p < q ? -1 : p > q ? 1 : 0;
}

/** Most table partitions (months) one insert may touch (ClickHouse refuses more than max_partitions_per_insert_block). */
export const MAX_MONTHS_PER_INSERT = 50;

/**
 * A deterministic deduplication token for these behaviours: a hash of their topic positions, so the same batch read
 * again maps to the same token, whatever the order it is passed in.
 */
export function behaviorsToken(behaviors: readonly PositionedBehavior[]): string {
  const positions = behaviors.map((b) => `${b.topic}:${b.partition}:${b.offset}`).sort();
  return createHash('sha256').update(positions.join('\n')).digest('base64url');
}

export interface InsertBehaviorsResult {
  /** Rows written to user_behaviors (before ClickHouse's deduplication). */
  readonly rows: number;
  /** Rows written to user_watches: per updated watch, its new state and the cancellation of the stored one. */
  readonly watchRows: number;
  /** INSERT statements into user_behaviors (one per run of at most MAX_MONTHS_PER_INSERT months). */
  readonly inserts: number;
}

/** One INSERT of a sealed batch: its table, rows and token never change, so a retry is deduplicated. */
export interface BehaviorInsertStep {
  readonly table: 'user_watches' | 'user_behaviors';
  readonly rows: readonly (WatchRow | BehaviorRow)[];
  readonly token: string;
}

/** A sealed batch: the inserts that store it, in order. */
export interface BehaviorInsertPlan {
  readonly steps: readonly BehaviorInsertStep[];
  readonly result: InsertBehaviorsResult;
}

/**
 * Seals a batch of behaviours into the inserts that store it (`runBehaviorInsert` runs them): the watches among them
 * (a `view_id`) as rows of `user_watches`, which needs the stored state of those watches (one key lookup), then the
 * behaviours into `user_behaviors`, whose materialized views fill the timeline index and the roll-ups in the same
 * insert. Idempotent:
 *
 * - every insert carries `insert_deduplication_token` (`dedupToken`, default `behaviorsToken`, and derived ones), and
 *   the views' tables are deduplicated with their source (`deduplicate_blocks_in_dependent_materialized_views`: a
 *   retry that finds the raw rows stored still reaches a roll-up its first attempt did not). So a failed plan is
 *   retried as it is (the sink's sealed batch): never re-planned, since a new plan of a batch whose watches were
 *   stored would leave them out and a roll-up the first attempt missed would stay short;
 * - watches are written first and only when newer than the stored state, so a batch read again after a crash (other
 *   boundaries, another token, a new plan) adds no watch row; user_behaviors, written last, is what
 *   `behaviorsInsertedUpTo` reads, so a batch counts as stored only once all of it is.
 *
 * Rows go in the order of their topic positions, in runs of at most MAX_MONTHS_PER_INSERT months: each run is a
 * contiguous range of every partition's offsets, so a crash between runs leaves a stored prefix, which is what the
 * sink's resume point (the highest stored offset) assumes.
 *
 * The caller checks the records' bounds first (DESIGN §3.5.1); a row ClickHouse refuses fails the whole insert.
 */
export async function planBehaviorInsert(
  client: ClickHouseClient,
  behaviors: readonly PositionedBehavior[],
  dedupToken: string = behaviorsToken(behaviors),
  options: { readonly maxMonthsPerInsert?: number } = {},
): Promise<BehaviorInsertPlan> {
  if (behaviors.length === 0) return { steps: [], result: { rows: 0, watchRows: 0, inserts: 0 } };
  const maxMonths = options.maxMonthsPerInsert ?? MAX_MONTHS_PER_INSERT;
  const sorted = [...behaviors].sort(
    (a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0) || a.partition - b.partition || a.offset - b.offset,
  );
  const rows = sorted.map(behaviorRow);
  const watches = await watchRows(client, rows);
  const runs = runsByMonth(rows, maxMonths);
  const steps: BehaviorInsertStep[] = [
    ...runsByMonth(watches, maxMonths).map((run, i) => ({
      table: 'user_watches' as const,
      rows: run,
      token: `${dedupToken}:watches:${i}`,
    })),
    ...runs.map((run, i) => ({
      table: 'user_behaviors' as const,
      rows: run,
      token: i === 0 ? dedupToken : `${dedupToken}:${i}`,
    })),
  ];
  return { steps, result: { rows: rows.length, watchRows: watches.length, inserts: runs.length } };
}

/** Runs a sealed batch's inserts in order. Retrying a plan that failed (or whose outcome is unknown) is safe. */
export async function runBehaviorInsert(client: ClickHouseClient, plan: BehaviorInsertPlan): Promise<void> {
  for (const step of plan.steps) await runBehaviorInsertStep(client, step);
}

/** Runs one insert of a plan (a caller that retries resumes at the first step not done). */
export async function runBehaviorInsertStep(client: ClickHouseClient, step: BehaviorInsertStep): Promise<void> {
  await insertRows(client, step.table, step.rows, step.token);
}

/** `planBehaviorInsert` then `runBehaviorInsert`: for a caller that does not retry, or retries with the same plan. */
export async function insertBehaviors(
  client: ClickHouseClient,
  behaviors: readonly PositionedBehavior[],
  dedupToken?: string,
  options: { readonly maxMonthsPerInsert?: number } = {},
): Promise<InsertBehaviorsResult> {
  const plan = await planBehaviorInsert(client, behaviors, dedupToken, options);
  await runBehaviorInsert(client, plan);
  return plan.result;
}

function insertRows(client: ClickHouseClient, table: string, rows: readonly object[], token: string): Promise<void> {
  return insertJsonRows(client, table, rows, {
    insert_deduplicate: 1,
    insert_deduplication_token: token,
    deduplicate_blocks_in_dependent_materialized_views: 1,
    // chDB defaults to asynchronous inserts, which would batch this with others and skip deduplication.
    async_insert: 0,
  });
}

/** Consecutive runs of rows touching at most `maxMonths` months each (the tables are partitioned by month). */
function runsByMonth<T extends { readonly timestamp: string }>(rows: readonly T[], maxMonths: number): T[][] {
  const runs: T[][] = [];
  let run: T[] = [];
  let months = new Set<string>();
  for (const row of rows) {
    const month = row.timestamp.slice(0, 7);
    if (!months.has(month) && months.size >= maxMonths) {
      runs.push(run);
      run = [];
      months = new Set();
    }
    months.add(month);
    run.push(row);
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

/** The highest offset stored from one topic partition (-1 when none): where the behaviour sink resumes. */
export async function behaviorsInsertedUpTo(
  client: ClickHouseClient,
  topic: string,
  partition: number,
): Promise<number> {
  const [row] = await (
    await client.query({
      // max() and count() exactly as the kafka_topic_position projection (0006) holds them, so this reads a few
      // projection rows per part instead of the table. count() tells "no rows" from a stored offset 0.
      query: `SELECT max(_kafka_offset) AS offset, count() AS rows FROM user_behaviors
                WHERE _kafka_topic = {topic:String} AND _kafka_partition = {partition:Int32}`,
      query_params: { topic, partition },
      format: 'JSONEachRow',
    })
  ).json<{ offset: number; rows: number }>();
  return row && Number(row.rows) > 0 ? Number(row.offset) : -1;
}

/** Ids looked up per query in user_behavior_ids. */
const ID_LOOKUP_CHUNK = 5000;

/**
 * Which of these behaviours user_behaviors already holds, by `tenant:event_id` (user_behavior_ids, 0013): the behaviour
 * sink leaves them out, so a request its client retried is stored once. One primary-key read per tenant and chunk.
 */
export async function storedEventIds(
  client: ClickHouseClient,
  behaviors: readonly { readonly tenant_id: number; readonly event_id: string }[],
): Promise<Set<string>> {
  const byTenant = new Map<number, string[]>();
  for (const b of behaviors) {
    const ids = byTenant.get(b.tenant_id);
    if (ids) ids.push(b.event_id);
    else byTenant.set(b.tenant_id, [b.event_id]);
  }
  const found = new Set<string>();
  for (const [tenant, ids] of byTenant) {
    for (let i = 0; i < ids.length; i += ID_LOOKUP_CHUNK) {
      const rows = await (
        await client.query({
          query: `SELECT DISTINCT toString(event_id) AS id FROM user_behavior_ids
                   WHERE tenant_id = {tenant:Int64} AND event_id IN {ids:Array(UUID)}`,
          query_params: { tenant, ids: ids.slice(i, i + ID_LOOKUP_CHUNK) },
          format: 'JSONEachRow',
        })
      ).json<{ id: string }>();
      for (const { id } of rows) found.add(`${tenant}:${id}`);
    }
  }
  return found;
}

// ---------------------------------------------------------------------------------------------------------------
// Watches (user_watches, a VersionedCollapsingMergeTree): one live state per (tenant, user, view).

type WatchState = Omit<WatchRow, 'version' | 'sign'>;

const watchKey = (w: { tenant_id: number; user_id: string; view_id: string }) =>
  JSON.stringify([w.tenant_id, w.user_id, w.view_id]);

/** Which of two states of one watch is the later: by time, then the watch's progress, then event_id. */
export function compareWatchStates(a: WatchState, b: WatchState): number {
  if (a.timestamp !== b.timestamp) return a.timestamp < b.timestamp ? -1 : 1;
  if (a.watch_duration !== b.watch_duration) return a.watch_duration < b.watch_duration ? -1 : 1;
  if (a.completion_rate !== b.completion_rate) return a.completion_rate < b.completion_rate ? -1 : 1;
  return compareEventIds(a.event_id, b.event_id);
}

function watchState(row: BehaviorRow): WatchState {
  return {
    tenant_id: row.tenant_id,
    user_id: row.user_id,
    view_id: row.view_id,
    timestamp: row.timestamp,
    event_id: row.event_id,
    item_id: row.item_id,
    scenario_id: row.scenario_id,
    session_id: row.session_id,
    watch_duration: row.watch_duration,
    completion_rate: row.completion_rate,
  };
}

/** Keys looked up per query (three IN lists, so the primary key narrows the read to those users' granules). */
const LOOKUP_CHUNK = 1000;

/**
 * The rows that move each watch of the batch to its latest state: for every watch whose latest state in the batch is
 * newer than the stored one, a cancel row (sign -1) for each live stored row (normally one) and the new state (sign
 * +1, next version). Only the batch's latest state of a watch is written; intermediate ones would cancel each other.
 */
async function watchRows(client: ClickHouseClient, rows: readonly BehaviorRow[]): Promise<WatchRow[]> {
  const latest = new Map<string, WatchState>();
  for (const row of rows) {
    if (row.view_id === '') continue;
    const state = watchState(row);
    const key = watchKey(state);
    const seen = latest.get(key);
    if (!seen || compareWatchStates(state, seen) > 0) latest.set(key, state);
  }
  if (latest.size === 0) return [];
  const stored = await storedWatches(client, [...latest.values()]);
  const out: WatchRow[] = [];
  for (const [key, state] of latest) {
    const live = stored.get(key) ?? [];
    const current = live.at(-1); // highest version
    if (current && compareWatchStates(state, current.state) <= 0) continue; // already stored, or older than stored
    for (const row of live)
      for (let i = 0; i < row.live; i++) out.push({ ...row.state, version: row.version, sign: -1 });
    out.push({ ...state, version: (current?.version ?? 0) + 1, sign: 1 });
  }
  return out;
}

interface StoredWatch {
  readonly version: number;
  /** sum(sign) of this version: 1 for a live state. */
  readonly live: number;
  readonly state: WatchState;
}

/** The live (uncancelled) stored states of these watches, by watch key, lowest version first. */
async function storedWatches(
  client: ClickHouseClient,
  states: readonly WatchState[],
): Promise<Map<string, StoredWatch[]>> {
  const found = new Map<string, StoredWatch[]>();
  for (let i = 0; i < states.length; i += LOOKUP_CHUNK) {
    const chunk = states.slice(i, i + LOOKUP_CHUNK);
    const wanted = new Set(chunk.map(watchKey));
    const rows = await (
      await client.query({
        query: `SELECT tenant_id, user_id, view_id, version, toInt64(sum(sign)) AS live,
                  any(timestamp) AS timestamp, any(event_id) AS event_id, any(item_id) AS item_id,
                  any(scenario_id) AS scenario_id, any(session_id) AS session_id,
                  any(watch_duration) AS watch_duration, any(completion_rate) AS completion_rate
                FROM user_watches
                WHERE tenant_id IN {tenants:Array(Int64)} AND user_id IN {users:Array(String)}
                  AND view_id IN {views:Array(String)}
                GROUP BY tenant_id, user_id, view_id, version
                HAVING live > 0
                ORDER BY version`,
        query_params: {
          tenants: [...new Set(chunk.map((s) => s.tenant_id))],
          users: [...new Set(chunk.map((s) => s.user_id))],
          views: [...new Set(chunk.map((s) => s.view_id))],
        },
        format: 'JSONEachRow',
      })
    ).json<WatchState & { version: number; live: number }>();
    for (const { version, live, ...stored } of rows) {
      // 64-bit integers may arrive quoted (output_format_json_quote_64bit_integers): the key and the copy need numbers.
      const state = { ...stored, tenant_id: Number(stored.tenant_id) };
      const key = watchKey(state);
      if (!wanted.has(key)) continue; // the IN lists' cross product also matches other watches of these users
      const list = found.get(key) ?? [];
      list.push({ version: Number(version), live: Number(live), state });
      found.set(key, list);
    }
  }
  return found;
}
