import type { ClickHouseClient } from '@clickhouse/client';
import { checkName, checkRange, checkTenant, DAY_MS, queryRows, toNumber } from './query-support.ts';
import { compareProportions, type ProportionComparison } from './two-proportion-test.ts';

export const DEFAULT_CONVERSION_ACTION = 'order';
export const DEFAULT_CONTROL_GROUP = 'control';
/** uba_experiment_daily's converting users are those with this action (0010). */
const ROLLUP_CONVERSION_ACTION = 'order';
const MAX_GROUPS = 1000;

export interface ExperimentOptions {
  readonly tenantId: number;
  readonly experimentId: string;
  /** ms since the epoch, `from` included, `to` excluded, at most 93 days. */
  readonly from: number;
  readonly to: number;
  /** Default 'order'. */
  readonly conversionAction?: string;
  /** The group the others are compared with: default 'control' when there is one, else the first group by name. */
  readonly control?: string;
}

export interface ExperimentGroup {
  readonly group: string;
  /** Distinct users with any behaviour of this experiment and group in the range. */
  readonly users: number;
  /** Distinct users with a conversion-action behaviour of this experiment and group in the range. */
  readonly converted: number;
  /** converted / users. */
  readonly rate: number;
  readonly isControl: boolean;
  /** Against the control group (null for the control itself, or without one). */
  readonly vsControl: ProportionComparison | null;
}

export interface ExperimentResult {
  readonly experimentId: string;
  readonly conversionAction: string;
  /** The control group's name; null when the requested one has no users. */
  readonly control: string | null;
  /** Where the counts were read: the roll-up when it answers exactly, else the raw behaviours. */
  readonly source: 'uba_experiment_daily' | 'user_behaviors';
  readonly test: string;
  /** By group name. */
  readonly groups: ExperimentGroup[];
}

export const EXPERIMENT_TEST =
  'two-proportion z-test: two-sided p-value with the pooled standard error, 95 % interval of the rate difference ' +
  'with the unpooled standard error';

/**
 * Per group of an experiment: users exposed, users converted, rate, and against the control group the difference,
 * lift, 95 % interval of the difference and two-sided p-value of a two-proportion z-test (pooled SE for z and the
 * p-value, unpooled SE for the interval: `compareProportions`).
 *
 * A user is exposed to a group by any behaviour carrying that `experiment_id` and `experiment_group` (a behaviour
 * with an empty group is in no group), and converted by a behaviour of the conversion action carrying them too (the
 * SDK tags every behaviour of an exposed user); a user seen in two groups counts in both. Counts are exact
 * (uniqExact on user_id).
 *
 * Source: `uba_experiment_daily` (0010) holds exactly these counts as uniqExact states per day for the conversion
 * action `order`, so when the action is `order` and the range is whole UTC days it is read (a few rows per group and
 * day, milliseconds). Otherwise (another action, or a range cut inside a day) the roll-up cannot answer and the raw
 * table is read: `uniqExact(user_id)` and `uniqExactIf(user_id, action_type = ...)` over every behaviour of the
 * tenant's range with that experiment (experiment_id is not in the ORDER BY, so every row of the range is read).
 */
export async function experimentResults(
  client: ClickHouseClient,
  options: ExperimentOptions,
): Promise<ExperimentResult> {
  const tenant = checkTenant(options.tenantId);
  const experimentId = checkName('experimentId', options.experimentId);
  const range = checkRange(options.from, options.to);
  const conversionAction = checkName('conversionAction', options.conversionAction ?? DEFAULT_CONVERSION_ACTION);
  const requestedControl = options.control === undefined ? undefined : checkName('control', options.control);

  const rollup = conversionAction === ROLLUP_CONVERSION_ACTION && range.from % DAY_MS === 0 && range.to % DAY_MS === 0;
  const query = rollup
    ? `SELECT experiment_group AS grp, uniqExactMerge(users) AS users, uniqExactMerge(converted_users) AS converted
       FROM uba_experiment_daily
       WHERE tenant_id = {tenant:Int64} AND experiment_id = {experiment:String} AND experiment_group != ''
         AND date >= {from_date:Date} AND date <= {to_date:Date}
       GROUP BY grp ORDER BY grp LIMIT {max_groups:UInt32}`
    : `SELECT experiment_group AS grp, uniqExact(user_id) AS users,
         uniqExactIf(user_id, action_type = {conversion:String}) AS converted
       FROM user_behaviors
       WHERE tenant_id = {tenant:Int64} AND date >= {from_date:Date} AND date <= {to_date:Date}
         AND timestamp >= {from:DateTime64(3, 'UTC')} AND timestamp < {to:DateTime64(3, 'UTC')}
         AND experiment_id = {experiment:String} AND experiment_group != ''
       GROUP BY grp ORDER BY grp LIMIT {max_groups:UInt32}`;
  const rows = await queryRows<{ grp: string; users: number | string; converted: number | string }>(client, query, {
    tenant,
    experiment: experimentId,
    conversion: conversionAction,
    from: range.fromTime,
    to: range.toTime,
    from_date: range.fromDate,
    to_date: range.toDate,
    max_groups: MAX_GROUPS,
  });
  const counted = rows
    .map((r) => ({ group: r.grp, users: toNumber(r.users), converted: toNumber(r.converted) }))
    .filter((g) => g.users > 0);
  const names = counted.map((g) => g.group);
  const control =
    requestedControl !== undefined
      ? names.includes(requestedControl)
        ? requestedControl
        : null
      : names.includes(DEFAULT_CONTROL_GROUP)
        ? DEFAULT_CONTROL_GROUP
        : (names[0] ?? null); // ORDER BY grp: the first by name
  const base = counted.find((g) => g.group === control);
  return {
    experimentId,
    conversionAction,
    control,
    source: rollup ? 'uba_experiment_daily' : 'user_behaviors',
    test: EXPERIMENT_TEST,
    groups: counted.map((g) => ({
      group: g.group,
      users: g.users,
      converted: g.converted,
      rate: g.converted / g.users,
      isControl: g.group === control,
      vsControl: base && g.group !== control ? compareProportions(base, g) : null,
    })),
  };
}
