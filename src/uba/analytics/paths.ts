import type { ClickHouseClient } from '@clickhouse/client';
import {
  checkInteger,
  checkName,
  checkRange,
  checkTenant,
  invalid,
  orderKeySql,
  queryRows,
  toNumber,
} from './query-support.ts';

export type PathDirection = 'next' | 'previous';
export const MAX_PATH_DEPTH = 3;
export const MAX_PATH_TOP_K = 20;
export const DEFAULT_PATH_TOP_K = 10;

export interface PathsOptions {
  readonly tenantId: number;
  /** ms since the epoch, `from` included, `to` excluded, at most 93 days. */
  readonly from: number;
  readonly to: number;
  /** The anchor action. */
  readonly action: string;
  /** After the anchor (`next`) or before it (`previous`). */
  readonly direction: PathDirection;
  /** Steps away from the anchor, 1-3 (default 3). */
  readonly depth?: number;
  /** Actions kept per depth, 1-20 (default 10); the rest of that depth is one "other" node. */
  readonly topK?: number;
  /** Only follow events of the anchor event's own session (default false: the user's whole sequence). */
  readonly sameSession?: boolean;
}

export interface SankeyNode {
  /** `${depth}:${action}`; an "other" node is `${depth}:` (actions are never empty). */
  readonly id: string;
  /** The action, or 'other'. */
  readonly name: string;
  /** Steps from the anchor (0 = the anchor), in either direction. */
  readonly depth: number;
  /** User paths through this node. */
  readonly value: number;
  readonly other: boolean;
}

export interface SankeyLink {
  readonly source: string;
  readonly target: string;
  /** User paths through both nodes. */
  readonly value: number;
}

export interface PathsResult {
  readonly direction: PathDirection;
  /** Users with the anchor action in the range (one path each). */
  readonly users: number;
  /** Depth 0 first, then by depth, most paths first, "other" last in its depth. */
  readonly nodes: SankeyNode[];
  /** Always in time order: for `previous`, from the farther node (depth d+1) to the nearer (depth d). */
  readonly links: SankeyLink[];
}

/**
 * The most common actions after (or before) an action, as a Sankey graph of user paths.
 *
 * One path per user with the anchor action in the range: for `next`, from their first anchor event, the next `depth`
 * events of the range; for `previous`, from their last anchor event, the `depth` events before it; in
 * `(timestamp, event_id)` order (ClickHouse's UUID order for ties), whatever actions they are (the anchor action
 * again included). With `sameSession`, only events with the anchor event's session_id count, and an anchor without a
 * session has an empty path. A node is (depth, action): the `topK` actions with most paths at that depth (ties by
 * name), the others merged into that depth's "other" node; a link counts the paths through two consecutive nodes, so
 * a node's paths are at least the sum of its links towards the farther depth (paths that end there are the rest).
 *
 * SQL: the users with the anchor (`user_id IN` a read of the anchor action only), then every behaviour of those users
 * in the range (all actions: the next one may be any), `groupArray` per user of an exact `(timestamp, event_id)` key
 * (`orderKeySql`); the anchor is the smallest (largest) key of an anchor event, the path the `depth` nearest keys
 * after (before) it by a partial sort (no full sort per user), their actions found back by key; then `count()` per
 * distinct path (at most the number of users, in practice a few thousand rows). The top-K and the links are computed
 * here from those paths. Cost: every row of the anchor users in the range (the next action may be any, so no action
 * filter), memory ~ 32 bytes and an action (and a session id with `sameSession`) per event, held per user.
 */
export async function paths(client: ClickHouseClient, options: PathsOptions): Promise<PathsResult> {
  const tenant = checkTenant(options.tenantId);
  const range = checkRange(options.from, options.to);
  const action = checkName('action', options.action);
  const direction = options.direction;
  if (direction !== 'next' && direction !== 'previous') throw invalid("direction must be 'next' or 'previous'");
  const depth = checkInteger('depth', options.depth ?? MAX_PATH_DEPTH, 1, MAX_PATH_DEPTH);
  const topK = checkInteger('topK', options.topK ?? DEFAULT_PATH_TOP_K, 1, MAX_PATH_TOP_K);
  const sameSession = options.sameSession === true;

  const next = direction === 'next';
  const inRange = `tenant_id = {tenant:Int64} AND date >= {from_date:Date} AND date <= {to_date:Date}
      AND timestamp >= {from:DateTime64(3, 'UTC')} AND timestamp < {to:DateTime64(3, 'UTC')}`;
  const rows = await queryRows<{ path: string[]; users: number | string }>(
    client,
    `SELECT path, count() AS users
     FROM (
       SELECT
         groupArray(${orderKeySql()}) AS keys,
         groupArray(action_type) AS actions,
         ${sameSession ? 'groupArray(session_id)' : "CAST([], 'Array(String)')"} AS sessions,
         -- The anchor: the user's first (last) anchor event in (timestamp, event_id) order.
         ${next ? 'arrayMin' : 'arrayMax'}(arrayFilter((x, a) -> a = {action:String}, keys, actions)) AS anchor,
         ${sameSession ? 'sessions[indexOf(keys, anchor)]' : "''"} AS anchor_session,
         arrayFilter(${
           sameSession
             ? `(x, s) -> x ${next ? '>' : '<'} anchor AND anchor_session != '' AND s = anchor_session, keys, sessions`
             : `x -> x ${next ? '>' : '<'} anchor, keys`
         }) AS candidates,
         -- Only the nearest few are ordered (a partial sort), then their actions found back by key.
         arraySlice(${next ? 'arrayPartialSort' : 'arrayPartialReverseSort'}({depth:UInt8}, candidates), 1, {depth:UInt8}) AS nearest,
         arrayMap(x -> actions[indexOf(keys, x)], nearest) AS path
       FROM user_behaviors
       WHERE ${inRange}
         AND user_id IN (SELECT user_id FROM user_behaviors WHERE ${inRange} AND action_type = {action:String})
       GROUP BY user_id
       HAVING anchor != 0
     )
     GROUP BY path`,
    {
      tenant,
      from: range.fromTime,
      to: range.toTime,
      from_date: range.fromDate,
      to_date: range.toDate,
      action,
      depth,
    },
  );
  return sankey(
    action,
    direction,
    rows.map((r) => ({ path: r.path, users: toNumber(r.users) })),
    topK,
  );
}

/** The Sankey graph of counted paths (each path: the actions at depth 1, 2, ... from the anchor). */
function sankey(
  anchor: string,
  direction: PathDirection,
  counted: readonly { readonly path: readonly string[]; readonly users: number }[],
  topK: number,
): PathsResult {
  const users = counted.reduce((sum, p) => sum + p.users, 0);
  const depthOf = Math.max(0, ...counted.map((p) => p.path.length));
  // Per depth, the kept actions.
  const kept: Set<string>[] = [];
  for (let d = 1; d <= depthOf; d++) {
    const byAction = new Map<string, number>();
    for (const p of counted) {
      const a = p.path[d - 1];
      if (a !== undefined) byAction.set(a, (byAction.get(a) ?? 0) + p.users);
    }
    const ranked = [...byAction].sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    kept[d] = new Set(ranked.slice(0, topK).map(([a]) => a));
  }
  const nodeId = (d: number, a: string) => (d === 0 || kept[d]!.has(a) ? `${d}:${a}` : `${d}:`);
  const nodes = new Map<string, SankeyNode>();
  const links = new Map<string, { source: string; target: string; value: number }>();
  const addNode = (d: number, a: string, value: number) => {
    const id = nodeId(d, a);
    const node = nodes.get(id);
    const other = id === `${d}:`;
    nodes.set(id, { id, name: other ? 'other' : a, depth: d, value: (node?.value ?? 0) + value, other });
    return id;
  };
  for (const p of counted) {
    let previous = addNode(0, anchor, p.users);
    p.path.forEach((a, i) => {
      const id = addNode(i + 1, a, p.users);
      // Links run in time order: next paths away from the anchor, previous paths towards it.
      const [source, target] = direction === 'next' ? [previous, id] : [id, previous];
      const key = `${source}\n${target}`;
      const link = links.get(key);
      links.set(key, { source, target, value: (link?.value ?? 0) + p.users });
      previous = id;
    });
  }
  const order = (a: SankeyNode, b: SankeyNode) =>
    a.depth - b.depth ||
    Number(a.other) - Number(b.other) ||
    b.value - a.value ||
    (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const sortedNodes = [...nodes.values()].sort(order);
  const rank = new Map(sortedNodes.map((n, i) => [n.id, i]));
  const sortedLinks = [...links.values()].sort(
    (a, b) => rank.get(a.source)! - rank.get(b.source)! || rank.get(a.target)! - rank.get(b.target)!,
  );
  return { direction, users, nodes: sortedNodes, links: sortedLinks };
}
