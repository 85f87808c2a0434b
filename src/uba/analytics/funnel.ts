import type { ClickHouseClient } from '@clickhouse/client';
import { SESSION_ID_PATTERN } from '../../recordings/rrweb.ts';
import {
  checkInteger,
  checkName,
  checkRange,
  checkTenant,
  DAY_MS,
  invalid,
  MAX_PROPERTY_VALUE_LENGTH,
  MAX_RANGE_DAYS,
  orderKeyMs,
  orderKeySql,
  queryRows,
  toNumber,
} from './query-support.ts';

export const MIN_FUNNEL_STEPS = 2;
export const MAX_FUNNEL_STEPS = 10;
export const MAX_STEP_PROPERTIES = 10;
export const MAX_DROP_OFF_PAGE_SIZE = 1000;
export const DEFAULT_BREAKDOWN_LIMIT = 25;
export const MAX_BREAKDOWN_LIMIT = 100;

export interface FunnelStep {
  /** The behaviour's `action_type`. */
  readonly action: string;
  /** Properties the event must carry, each with exactly this value (all of them). */
  readonly properties?: Readonly<Record<string, string>>;
}

export interface FunnelOptions {
  readonly tenantId: number;
  /** ms since the epoch, `from` included, `to` excluded; at most 93 days. Every step's event must fall inside. */
  readonly from: number;
  readonly to: number;
  readonly steps: readonly FunnelStep[];
  /** The conversion window: every step within `windowMs` of the chain's step-1 event (inclusive). */
  readonly windowMs: number;
  readonly strictOrder: boolean;
  /** A property key: one group per value of it on the chain's step-1 event ('' when absent). */
  readonly breakdown?: string;
  /** Most breakdown values answered, those with most step-1 users first (default 25, at most 100). */
  readonly breakdownLimit?: number;
  /** Session ids per drop-off page (0-1000; 0 lists none). */
  readonly dropOffPageSize: number;
  /** A `nextCursor` of an earlier answer: that step's (and breakdown value's) page continues after it. */
  readonly dropOffCursor?: string;
}

export interface FunnelDropOff {
  /** Users who reached the previous step and not this one. */
  readonly users: number;
  /** Their sessions (the session of the event of their last reached step), non-empty ids only, ascending, one page. */
  readonly sessionIds: string[];
  /** Pass as `dropOffCursor` for the next page of this list; null on the last page. */
  readonly nextCursor: string | null;
}

export interface FunnelStepResult {
  /** 1-based. */
  readonly step: number;
  readonly action: string;
  /** Users whose furthest step is this one or a later one. */
  readonly users: number;
  /** users / users of step 1. */
  readonly conversionFromFirst: number;
  /** users / users of the previous step (1 for step 1). */
  readonly conversionFromPrevious: number;
  /** Null for step 1 (the users who did not start are not counted). */
  readonly dropOff: FunnelDropOff | null;
}

export interface FunnelGroup {
  /** The breakdown property's value; null without a breakdown. */
  readonly breakdown: string | null;
  readonly steps: FunnelStepResult[];
  /** Time from step 1 to the last step of converted users' chains (ms), quantileExactInclusive; null if none. */
  readonly timeToConvertMs: { readonly median: number | null; readonly p90: number | null };
}

export interface FunnelResult {
  readonly groups: FunnelGroup[];
  /** How many breakdown values there are (groups holds at most breakdownLimit of them). */
  readonly breakdownValues: number;
}

interface DropOffCursor {
  readonly step: number;
  readonly breakdown: string;
  readonly after: string;
}

const encodeCursor = (c: DropOffCursor): string =>
  Buffer.from(JSON.stringify([c.step, c.breakdown, c.after])).toString('base64url');

function decodeCursor(text: string, steps: number): DropOffCursor {
  let value: unknown;
  if (typeof text !== 'string' || text.length > 16_384) throw invalid('drop_off_cursor is not a cursor of this funnel');
  try {
    value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw invalid('drop_off_cursor is not a cursor of this funnel');
  }
  const [step, breakdown, after] = Array.isArray(value) ? value : [];
  if (
    !Number.isSafeInteger(step) ||
    step < 2 ||
    step > steps ||
    typeof breakdown !== 'string' ||
    breakdown.length > MAX_PROPERTY_VALUE_LENGTH ||
    typeof after !== 'string' ||
    !SESSION_ID_PATTERN.test(after)
  ) {
    throw invalid('drop_off_cursor is not a cursor of this funnel');
  }
  return { step, breakdown, after };
}

interface FunnelRow {
  readonly bd: string;
  readonly reached: (number | string)[];
  readonly ttc: (number | null)[];
  readonly groups: number | string;
  readonly [drop: `drop${number}`]: string[];
}

/**
 * A funnel over the raw behaviours: `windowFunnel`'s semantics, computed exactly in `(timestamp, event_id)` order.
 *
 * Per user, the events of the range that match a step are taken in `(timestamp, event_id)` order (ClickHouse's UUID
 * order, `compareEventIds`) through `windowFunnel`'s algorithm: a step-1 event starts a chain (and replaces the held
 * step 1); an event of step k extends the chain held at step k-1 when it is within `windowMs` of that chain's step-1
 * event (`ts ≤ start + windowMs`, in ms); the search ends when the last step is reached. An event matching several
 * steps is tried for the highest first, so one event never fills two steps of one chain (ClickHouse 26.x's
 * `windowFunnel` sorts a tied event's steps lowest first, so `click → click` converts on one click there). The
 * function itself is not used: it takes no tie-breaker (`sequence_ts` keeps 20 bits of event_id and shifts the
 * window's edge by them), and it returns only the level, where the drop-off sessions, the breakdown and the time to
 * convert need the chain.
 *
 * - The chain a user counts with is the one held at their furthest step when the search ends: for a converted user
 *   the first chain to complete (of those ending on that event, the latest start); otherwise the latest chain to
 *   reach that step, with the last event that extended it. Its step-1 event gives the breakdown value (the
 *   property's value, '' when absent), its furthest event the drop-off session, its first and last events the time
 *   to convert.
 * - `strictOrder` is `windowFunnel`'s `strict_order`: once the user's first step-1 event is seen, the search ends
 *   (the steps reached so far count) at the first event that is of one of the funnel's actions but matches no step
 *   (a `click` without a step's properties), or whose highest matching step's previous step is not reached yet
 *   (A → C before any B). Events of other actions are not read and never break a chain; repeating a reached step
 *   (A B B C) does not either; a step event outside the window is skipped.
 *
 * SQL: one read of `user_behaviors` for the tenant, the range's days and the funnel's actions only (action_type
 * follows date in the ORDER BY, so other actions' granules are skipped), one row per event with a bit per matched
 * step; `groupArray` per user of an exact UInt256 order key (`orderKeySql`), sorted; per step one vectorized scan
 * (`arrayMap` + `arrayFill`, no per-element loop: `arrayFold` was 6-10× slower) giving the state after each event;
 * then per breakdown value `sumForEach` of the levels, `quantilesExactInclusive(0.5, 0.9)` of the times (linear
 * interpolation between closest ranks, numpy's default) and per step `groupUniqArrayIf` of the drop-off sessions,
 * sorted, cut to a page. Cost: the funnel actions' rows of the range (about 2.5× a bare `windowFunnel` over them),
 * memory ~ 32 bytes and a session id per event, held per user; the scans O(events × steps).
 */
export async function funnel(client: ClickHouseClient, options: FunnelOptions): Promise<FunnelResult> {
  const tenant = checkTenant(options.tenantId);
  const range = checkRange(options.from, options.to);
  const steps = options.steps;
  if (!Array.isArray(steps) || steps.length < MIN_FUNNEL_STEPS || steps.length > MAX_FUNNEL_STEPS) {
    throw invalid(`a funnel has ${MIN_FUNNEL_STEPS}-${MAX_FUNNEL_STEPS} steps`);
  }
  const windowMs = checkInteger('windowMs', options.windowMs, 1, MAX_RANGE_DAYS * DAY_MS);
  const pageSize = checkInteger('dropOffPageSize', options.dropOffPageSize, 0, MAX_DROP_OFF_PAGE_SIZE);
  const limit = checkInteger(
    'breakdownLimit',
    options.breakdownLimit ?? DEFAULT_BREAKDOWN_LIMIT,
    1,
    MAX_BREAKDOWN_LIMIT,
  );
  const breakdown = options.breakdown === undefined ? undefined : checkName('breakdown', options.breakdown);
  const cursor = options.dropOffCursor === undefined ? undefined : decodeCursor(options.dropOffCursor, steps.length);
  if (cursor && breakdown === undefined && cursor.breakdown !== '') {
    throw invalid('drop_off_cursor is not a cursor of this funnel');
  }

  const k = steps.length;
  const params: Record<string, unknown> = {
    tenant,
    from: range.fromTime,
    to: range.toTime,
    from_date: range.fromDate,
    to_date: range.toDate,
    k,
    w: windowMs,
    strict: options.strictOrder ? 1 : 0,
    limit,
    page: pageSize,
    cursor_step: cursor?.step ?? 0,
    cursor_bd: cursor?.breakdown ?? '',
    cursor_after: cursor?.after ?? '',
    bk: breakdown ?? '',
  };
  const conditions = steps.map((step, i) => {
    if (typeof step !== 'object' || step === null) throw invalid(`steps[${i}] must be an object`);
    params[`a${i}`] = checkName(`steps[${i}].action`, step.action);
    const properties = Object.entries(step.properties ?? {});
    if (properties.length > MAX_STEP_PROPERTIES)
      throw invalid(`steps[${i}] has more than ${MAX_STEP_PROPERTIES} properties`);
    const parts = [`action_type = {a${i}:String}`];
    properties.forEach(([key, value], j) => {
      params[`k${i}_${j}`] = checkName(`steps[${i}].properties key`, key);
      if (typeof value !== 'string' || value.length > MAX_PROPERTY_VALUE_LENGTH) {
        throw invalid(
          `steps[${i}].properties.${key} must be a string of at most ${MAX_PROPERTY_VALUE_LENGTH} characters`,
        );
      }
      params[`v${i}_${j}`] = value;
      parts.push(
        `mapContains(properties, {k${i}_${j}:String}) AND properties[{k${i}_${j}:String}] = {v${i}_${j}:String}`,
      );
    });
    return parts.join(' AND ');
  });
  params.actions = [...new Set(steps.map((s) => s.action))];

  const stepsList = Array.from({ length: k }, (_, i) => i + 1);
  // Per event, a bit per step it matches (bit j-1 for step j).
  const mask = `toUInt16(${conditions.map((c, i) => `if(${c}, ${1 << i}, 0)`).join(' + ')})`;
  // The event's highest matched step (0 for none).
  const highest = `multiIf(${[...stepsList]
    .reverse()
    .map((j) => `bitTest(m, ${j - 1}), ${j}`)
    .join(', ')}, 0)`;
  // Per step j, c_j[i] is windowFunnel's state for step j after event i: (index of the chain's step-1 event, its ms,
  // index of the event that last extended it), zeros while no chain has reached j. An event of step j extends the
  // state of step j-1 held before it (so one event never fills two steps of a chain) when within the window of that
  // chain's start; arrayFill carries the last extension forward. Each is a vectorized scan: O(events) per step.
  const zero = "CAST((0, 0, 0), 'Tuple(UInt32, Int64, UInt32)')";
  const before = (j: number) => `arrayPopBack(arrayPushFront(c${j}, ${zero}))`;
  const scans = stepsList.map((j) =>
    j === 1
      ? `arrayFill(x -> x.1 != 0, arrayMap((m, t, i) -> if(bitTest(m, 0), (i, t, i), ${zero}), mask, ts, idx)) AS c1`
      : `arrayFill(x -> x.1 != 0, arrayMap((m, p, t, i) -> if(bitTest(m, ${j - 1}) AND p.1 != 0 AND t <= p.2 + w,
           (p.1, p.2, i), ${zero}), mask, ${before(j - 1)}, ts, idx)) AS c${j}`,
  );
  // strict_order: the first event after a step-1 event that matches no step, or whose highest step's previous step
  // is not reached before it, ends the search (0: none).
  const cut = `arrayFirstIndex((h, m, ${stepsList
    .slice(0, -1)
    .map((j) => `b${j}`)
    .join(', ')}) -> b1.1 != 0 AND (m = 0 OR multiIf(${stepsList
    .slice(1)
    .map((j) => `h = ${j}, b${j - 1}.1 = 0`)
    .join(', ')}, 0)),
    high, mask, ${stepsList.slice(0, -1).map(before).join(', ')})`;
  const drops = Array.from({ length: k - 1 }, (_, n) => n + 2).map((j) =>
    pageSize === 0
      ? `CAST([], 'Array(String)') AS drop${j}`
      : // The cursor's filter runs on the aggregated list: in the -If condition it cost ~30 ms per step, data or not.
        `arraySlice(arraySort(arrayFilter(
           s -> s > if(bd = {cursor_bd:String} AND {cursor_step:UInt8} = ${j}, {cursor_after:String}, ''),
           groupUniqArrayIf(session, level = ${j - 1}))), 1, {page:UInt32} + 1) AS drop${j}`,
  );

  // Per user: the events' keys, (ms, event_id in ClickHouse's UUID order, mask) as one UInt256, so that sorting
  // them is (timestamp, event_id) order; their sessions and breakdown values stay in arrival order, found back by key.
  let perUser = `
    SELECT
      groupArray(key) AS keys,
      groupArray(session_id) AS sessions,
      ${breakdown === undefined ? '' : 'groupArray(bd_value) AS bds,'}
      arraySort(keys) AS sorted,
      arrayMap(x -> ${orderKeyMs('x')}, sorted) AS ts,
      arrayMap(x -> toUInt16(bitAnd(x, 65535)), sorted) AS mask,
      arrayEnumerate(sorted) AS idx,
      arrayMap(m -> ${highest}, mask) AS high
    FROM (
      SELECT user_id, session_id, ${mask} AS row_mask,
        ${orderKeySql('row_mask')} AS key
        ${breakdown === undefined ? '' : ', properties[{bk:String}] AS bd_value'}
      FROM user_behaviors
      WHERE tenant_id = {tenant:Int64}
        AND date >= {from_date:Date} AND date <= {to_date:Date}
        AND action_type IN {actions:Array(String)}
        AND timestamp >= {from:DateTime64(3, 'UTC')} AND timestamp < {to:DateTime64(3, 'UTC')}
        AND (strict = 1 OR row_mask != 0)
    )
    GROUP BY user_id`;
  // One subquery per stage: an alias used in the same SELECT is expanded where it is used, and the scans refer to
  // each other, so one flat SELECT grows past ClickHouse's query-tree limit.
  const stage = (expressions: string) => {
    perUser = `SELECT *, ${expressions} FROM (${perUser})`;
  };
  for (const scan of scans) stage(scan);
  stage(`arrayFirstIndex(x -> x.1 != 0, c${k}) AS done, if(strict = 1, ${cut}, 0) AS cut_at`);
  stage(`if(cut_at = 0, length(sorted) + 1, cut_at) AS cut,
    done != 0 AND done < cut AS converted,
    -- Where the search ended: the completing event, else the event before the cut (the last one without strict).
    if(converted, done, cut - 1) AS at,
    if(converted, k, toUInt8(${stepsList.map((j) => `(c${j}[at].1 != 0)`).join(' + ')})) AS level`);
  stage(`multiIf(${stepsList.map((j) => `level = ${j}, c${j}[at]`).join(', ')}, ${zero}) AS chain`);
  const query = `
    WITH {k:UInt8} AS k, {w:Int64} AS w, {strict:UInt8} AS strict
    SELECT
      bd,
      sumForEach(arrayMap(j -> toUInt64(level >= j), range(1, k + 1))) AS reached,
      quantilesExactInclusiveIf(0.5, 0.9)(ttc, level = k) AS ttc,
      ${drops.join(',\n      ')},
      count() OVER () AS groups
    FROM (
      SELECT
        level,
        ${breakdown === undefined ? "''" : 'bds[indexOf(keys, sorted[chain.1])]'} AS bd,
        sessions[indexOf(keys, sorted[chain.3])] AS session,
        ts[chain.3] - chain.2 AS ttc
      FROM (${perUser})
      WHERE level >= 1
    )
    GROUP BY bd
    ORDER BY reached[1] DESC, bd
    LIMIT {limit:UInt32}`;

  const rows = await queryRows<FunnelRow>(client, query, params);
  const groups = rows.map((row): FunnelGroup => {
    const reached = row.reached.map(toNumber);
    const first = reached[0] ?? 0;
    return {
      breakdown: breakdown === undefined ? null : row.bd,
      steps: steps.map((step, i) => {
        const users = reached[i] ?? 0;
        const previous = i === 0 ? users : (reached[i - 1] ?? 0);
        let dropOff: FunnelDropOff | null = null;
        if (i > 0) {
          const page = row[`drop${i + 1}`] ?? [];
          const more = page.length > pageSize;
          const sessionIds = page.slice(0, pageSize);
          dropOff = {
            users: previous - users,
            sessionIds,
            nextCursor: more ? encodeCursor({ step: i + 1, breakdown: row.bd, after: sessionIds.at(-1)! }) : null,
          };
        }
        return {
          step: i + 1,
          action: step.action,
          users,
          conversionFromFirst: first === 0 ? 0 : users / first,
          conversionFromPrevious: i === 0 ? 1 : previous === 0 ? 0 : users / previous,
          dropOff,
        };
      }),
      timeToConvertMs: {
        median: reached[k - 1] ? toNumber(row.ttc[0]) : null,
        p90: reached[k - 1] ? toNumber(row.ttc[1]) : null,
      },
    };
  });
  return { groups, breakdownValues: rows.length === 0 ? 0 : toNumber(rows[0]!.groups) };
}
