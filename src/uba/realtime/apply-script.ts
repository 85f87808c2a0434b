import { createHash } from 'node:crypto';
import type { KeyUpdate } from './keys.ts';

/**
 * The one Lua script that applies a partition's batch to Redis, atomically (Redis runs a script alone: no other
 * client sees half of it, and a crash of the sink cannot split it):
 *
 * 1. reads the partition's applied offset (`realtime:offset:{group}:{topic}:{partition}`, -1 when absent);
 * 2. checks, before writing anything, that every key the new messages touch is absent or of its type (Redis does not
 *    roll a script back: a WRONGTYPE halfway would leave half a batch applied, and the retry would apply it twice).
 *    A key of another type is answered as `conflict` with its index, and nothing is written;
 * 3. applies the updates of each message whose offset is above the applied one, in offset order, skipping the others:
 *    ZSET scores are added in log2 space (`logAdd` in keys.ts), HASH counts incremented, LIST items pushed;
 * 4. trims and expires each touched key once: the ZSET to its `hotMax` best members, the LIST to `recentMax`; ZSET and
 *    LIST expiries slide (EXPIRE), a minute's HASH expires at its minute + TTL (EXPIREAT; a minute already past its TTL
 *    is deleted at once, so a late behaviour never revives a stale minute);
 * 5. sets the applied offset to the batch's last offset (with its own expiry).
 *
 * A message is applied once whatever happens around the script: a batch sent again (a lost reply, a timeout, a
 * restart between the script and the Kafka commit, another consumer group with the same offset keys) finds its
 * offsets applied and skips them; two owners of one partition (a revocation that did not wait) interleave safely, as
 * each message is applied only above the offset its predecessor set.
 *
 * The shebang makes Redis refuse the script up front when it is out of memory (`OOM`), instead of failing its first
 * write halfway. All keys are declared in KEYS, but they span tenants: on Redis Cluster they would sit on different
 * slots, so this design needs a single Redis (or primary with replicas), or keys sharing one hash tag.
 *
 * KEYS: [offset key, data key 1..K]. ARGV: lastOffset, offsetTtlS, hotMax, hotTtlS, recentMax, recentTtlS, K, then K
 * pairs (kind z|h|l, expire-at seconds for h else 0), then per message: offset, n, and n triples (key index, member or
 * field, score or increment).
 * Reply: {'ok', applied messages, skipped messages, updates applied, previous applied offset} or {'conflict', indexes}.
 */
export const APPLY_SCRIPT = `#!lua
local applied = tonumber(redis.call('GET', KEYS[1]) or '-1')
local last = tonumber(ARGV[1])
local offsetTtl = tonumber(ARGV[2])
local hotMax = tonumber(ARGV[3])
local hotTtl = tonumber(ARGV[4])
local recentMax = tonumber(ARGV[5])
local recentTtl = tonumber(ARGV[6])
local k = tonumber(ARGV[7])
local kinds, expireAt = {}, {}
local p = 8
for i = 1, k do
  kinds[i] = ARGV[p]
  expireAt[i] = tonumber(ARGV[p + 1])
  p = p + 2
end
local first = p
local messages, skipped = 0, 0
local needed = {}
while p <= #ARGV do
  local offset = tonumber(ARGV[p])
  local n = tonumber(ARGV[p + 1])
  p = p + 2
  messages = messages + 1
  if offset > applied then
    for j = 0, n - 1 do needed[tonumber(ARGV[p + 3 * j])] = true end
  end
  p = p + 3 * n
end
local types = { z = 'zset', h = 'hash', l = 'list' }
local conflicts = {}
for i = 1, k do
  if needed[i] then
    local t = redis.call('TYPE', KEYS[i + 1])['ok']
    if t ~= 'none' and t ~= types[kinds[i]] then conflicts[#conflicts + 1] = i end
  end
end
if #conflicts > 0 then
  table.insert(conflicts, 1, 'conflict')
  return conflicts
end
local LN2 = math.log(2)
local updates, done = 0, 0
p = first
while p <= #ARGV do
  local offset = tonumber(ARGV[p])
  local n = tonumber(ARGV[p + 1])
  p = p + 2
  if offset > applied then
    done = done + 1
    for j = 1, n do
      local i = tonumber(ARGV[p])
      local key = KEYS[i + 1]
      local member = ARGV[p + 1]
      local kind = kinds[i]
      if kind == 'z' then
        local score = tonumber(ARGV[p + 2])
        local old = redis.call('ZSCORE', KEYS[i + 1], member)
        if old then
          old = tonumber(old)
          local hi, lo = math.max(old, score), math.min(old, score)
          score = hi + math.log(1 + math.pow(2, lo - hi)) / LN2
        end
        redis.call('ZADD', key, score, member)
      elseif kind == 'h' then
        redis.call('HINCRBY', key, member, ARGV[p + 2])
      else
        redis.call('LPUSH', key, member)
      end
      updates = updates + 1
      p = p + 3
    end
  else
    skipped = skipped + 1
    p = p + 3 * n
  end
end
if done > 0 then
  for i = 1, k do
    if needed[i] then
      local key = KEYS[i + 1]
      if kinds[i] == 'z' then
        redis.call('ZREMRANGEBYRANK', key, 0, -(hotMax + 1))
        redis.call('EXPIRE', key, hotTtl)
      elseif kinds[i] == 'h' then
        redis.call('EXPIREAT', key, expireAt[i])
      else
        redis.call('LTRIM', key, 0, recentMax - 1)
        redis.call('EXPIRE', key, recentTtl)
      end
    end
  end
end
if last > applied then
  redis.call('SET', KEYS[1], last, 'EX', offsetTtl)
end
return { 'ok', done, skipped, updates, applied }
`;

export const APPLY_SCRIPT_SHA = createHash('sha1').update(APPLY_SCRIPT).digest('hex');

/** What a batch writes besides its updates: trims and expiries (seconds). */
export interface ApplyLimits {
  readonly offsetTtlS: number;
  readonly hotMaxItems: number;
  readonly hotTtlS: number;
  readonly metricsTtlS: number;
  readonly recentMax: number;
  readonly recentTtlS: number;
}

/** One message of a batch: its offset and its key updates (none for a message that changes nothing). */
export interface MessageUpdates {
  readonly offset: number;
  readonly updates: readonly KeyUpdate[];
}

export interface ScriptCall {
  readonly keys: string[];
  readonly arguments: string[];
  /** The data keys in KEYS order (KEYS[i + 1] = dataKeys[i - 1]): a `conflict` reply names them by index. */
  readonly dataKeys: readonly string[];
}

const KIND = { zset: 'z', hash: 'h', list: 'l' } as const;

/** The KEYS and ARGV of one script call for a partition's messages (in offset order). */
export function scriptCall(
  offsetKey: string,
  lastOffset: number,
  messages: readonly MessageUpdates[],
  limits: ApplyLimits,
): ScriptCall {
  const index = new Map<string, number>();
  const keyArgs: string[] = [];
  const dataKeys: string[] = [];
  const body: string[] = [];
  for (const message of messages) {
    body.push(String(message.offset), String(message.updates.length));
    for (const update of message.updates) {
      let i = index.get(update.key);
      if (i === undefined) {
        i = dataKeys.length + 1;
        index.set(update.key, i);
        dataKeys.push(update.key);
        const expireAt = update.kind === 'hash' ? Math.floor(update.minuteMs / 1000) + limits.metricsTtlS : 0;
        keyArgs.push(KIND[update.kind], String(expireAt));
      }
      if (update.kind === 'zset') body.push(String(i), update.member, String(update.score));
      else if (update.kind === 'hash') body.push(String(i), update.field, '1');
      else body.push(String(i), update.member, '');
    }
  }
  return {
    keys: [offsetKey, ...dataKeys],
    arguments: [
      String(lastOffset),
      String(limits.offsetTtlS),
      String(limits.hotMaxItems),
      String(limits.hotTtlS),
      String(limits.recentMax),
      String(limits.recentTtlS),
      String(dataKeys.length),
      ...keyArgs,
      ...body,
    ],
    dataKeys,
  };
}

export type ScriptReply =
  | { readonly status: 'ok'; applied: number; skipped: number; updates: number; previous: number }
  | { readonly status: 'conflict'; readonly keys: readonly string[] };

/** The script's reply, read back (a reply of any other shape is a bug: thrown). */
export function readScriptReply(reply: unknown, call: ScriptCall): ScriptReply {
  if (Array.isArray(reply) && reply[0] === 'ok' && reply.length === 5) {
    const [, applied, skipped, updates, previous] = reply.map(Number);
    return { status: 'ok', applied: applied!, skipped: skipped!, updates: updates!, previous: previous! };
  }
  if (Array.isArray(reply) && reply[0] === 'conflict') {
    return { status: 'conflict', keys: reply.slice(1).map((i) => call.dataKeys[Number(i) - 1]!) };
  }
  throw new Error(`unexpected reply from the realtime script: ${JSON.stringify(reply)}`);
}
