import type { ClickHouseClient } from '@clickhouse/client';
import { behaviorTime } from '../behavior-rows.ts';
import {
  checkInteger,
  checkName,
  checkRange,
  checkTenant,
  DAY_MS,
  dayText,
  invalid,
  queryRows,
  toNumber,
} from './query-support.ts';

export type RetentionPeriod = 'day' | 'week';
/** Most period offsets after the cohort's own (N): 31 days, or 12 weeks. */
export const MAX_RETENTION_PERIODS: Readonly<Record<RetentionPeriod, number>> = { day: 31, week: 12 };

export interface RetentionOptions {
  readonly tenantId: number;
  /** ms since the epoch, `from` included, `to` excluded, at most 93 days: the cohorts' start actions. */
  readonly from: number;
  readonly to: number;
  /** Calendar periods in UTC: a day, or an ISO week (Monday to Sunday). */
  readonly period: RetentionPeriod;
  /** N: offsets 0..N after each cohort's period are answered (≤ 31 days or ≤ 12 weeks). */
  readonly periods: number;
  readonly startAction: string;
  readonly returnAction: string;
}

export interface RetentionCell {
  /** Periods after the cohort's own (0 = the same period). */
  readonly offset: number;
  /** Cohort users who did the return action in that period. */
  readonly users: number;
  /** users / the cohort's users. */
  readonly rate: number;
}

export interface RetentionCohort {
  /** The period's first day, 'YYYY-MM-DD' (a Monday for weeks). */
  readonly period: string;
  /** Users whose first start action of the range falls in this period. */
  readonly users: number;
  /** Offsets 0..N, every one present (zeros included); an empty cohort's rates are 0. */
  readonly retained: RetentionCell[];
}

export interface RetentionResult {
  readonly period: RetentionPeriod;
  readonly periods: number;
  /** Every period the range touches, oldest first, empty ones included. */
  readonly cohorts: RetentionCohort[];
}

/** The first millisecond of the UTC day or ISO week holding `ms`. */
function periodStart(ms: number, period: RetentionPeriod): number {
  const day = Math.floor(ms / DAY_MS) * DAY_MS;
  if (period === 'day') return day;
  const weekday = (new Date(day).getUTCDay() + 6) % 7; // Monday 0
  return day - weekday * DAY_MS;
}

const periodMs = (period: RetentionPeriod) => (period === 'day' ? DAY_MS : 7 * DAY_MS);

/**
 * Cohort retention from the raw behaviours. A user's cohort is the period (UTC day, or ISO week from Monday) of
 * their first `startAction` in [from, to); they are retained at offset n (0..N) when they did `returnAction` at
 * any time in the n-th period after it, whether before or after their start action within period 0, and whether or
 * not that period ends before `to` (returns are read up to N periods after the last cohort). The same action may be
 * both (offset 0 is then 100 %).
 *
 * Exact unique counts: the read is grouped by `user_id` (the same exact hash table uniqExact builds, on the string,
 * no 64-bit key and so no collisions), each user yields their cohort and distinct return offsets, and the cells are
 * `count()` of those rows. The roll-up `uba_audiences` (daily groupBitmap states) could answer whole-day ranges with
 * bitmap AND / AND NOT, exact up to sipHash64 collisions, but not a range cut inside a day; so this reads the raw
 * table, only the two actions (action_type follows date in the ORDER BY) over the range plus N periods.
 * Cost: those rows, memory one entry per user (their cohort and up to N+1 return periods).
 */
export async function retention(client: ClickHouseClient, options: RetentionOptions): Promise<RetentionResult> {
  const tenant = checkTenant(options.tenantId);
  const range = checkRange(options.from, options.to);
  const period = options.period;
  if (period !== 'day' && period !== 'week') throw invalid("period must be 'day' or 'week'");
  const n = checkInteger('periods', options.periods, 0, MAX_RETENTION_PERIODS[period]);
  const startAction = checkName('startAction', options.startAction);
  const returnAction = checkName('returnAction', options.returnAction);

  const first = periodStart(range.from, period);
  const last = periodStart(range.to - 1, period);
  // Returns are read from the first cohort's period to the end of the last cohort's N-th period.
  const readTo = last + (n + 1) * periodMs(period);
  const periodOf = period === 'day' ? 'toDate(timestamp)' : 'toMonday(timestamp)';
  const offsetOf = period === 'day' ? "dateDiff('day', cohort, p)" : "intDiv(dateDiff('day', cohort, p), 7)";
  const inRange = `timestamp >= {from:DateTime64(3, 'UTC')} AND timestamp < {to:DateTime64(3, 'UTC')}`;
  const rows = await queryRows<{ cohort: string; offset: number | string; users: number | string }>(
    client,
    `SELECT cohort, offset, count() AS users
     FROM (
       SELECT
         minIf(${periodOf}, action_type = {start:String} AND ${inRange}) AS cohort,
         countIf(action_type = {start:String} AND ${inRange}) AS starts,
         groupUniqArrayIf(${periodOf}, action_type = {ret:String}) AS returns
       FROM user_behaviors
       WHERE tenant_id = {tenant:Int64}
         AND date >= {read_from_date:Date} AND date <= {read_to_date:Date}
         AND action_type IN ({start:String}, {ret:String})
         AND timestamp >= {read_from:DateTime64(3, 'UTC')} AND timestamp < {read_to:DateTime64(3, 'UTC')}
       GROUP BY user_id
       HAVING starts > 0
     )
     -- -1 stands for the cohort itself (its size).
     ARRAY JOIN arrayConcat([-1], arrayFilter(o -> o >= 0 AND o <= {n:UInt8},
       arrayMap(p -> toInt64(${offsetOf}), returns))) AS offset
     GROUP BY cohort, offset`,
    {
      tenant,
      start: startAction,
      ret: returnAction,
      from: range.fromTime,
      to: range.toTime,
      read_from: behaviorTime(first),
      read_to: behaviorTime(readTo),
      read_from_date: dayText(first),
      read_to_date: dayText(readTo - 1),
      n,
    },
  );

  const cells = new Map<string, number>();
  for (const row of rows) cells.set(`${row.cohort}/${toNumber(row.offset)}`, toNumber(row.users));
  const cohorts: RetentionCohort[] = [];
  for (let start = first; start <= last; start += periodMs(period)) {
    const day = dayText(start);
    const users = cells.get(`${day}/-1`) ?? 0;
    cohorts.push({
      period: day,
      users,
      retained: Array.from({ length: n + 1 }, (_, offset) => {
        const retained = cells.get(`${day}/${offset}`) ?? 0;
        return { offset, users: retained, rate: users === 0 ? 0 : retained / users };
      }),
    });
  }
  return { period, periods: n, cohorts };
}
