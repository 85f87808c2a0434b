import type { ClickHouseClient } from '@clickhouse/client';
import { userRecentKey } from '../uba/realtime/keys.ts';
import type { RedisConnection } from '../uba/realtime/redis-connection.ts';

/**
 * A person's behaviours, beyond their recordings: the raw behaviours, the per-user timeline index and the watch
 * states (ClickHouse lightweight deletes, which hide the rows at once and drop them at the next merge), and the
 * user's recent items in Redis. The roll-ups (hourly metrics, item days, experiment days, audience bitmaps of
 * hashed ids) keep counts that name no one and are left as they are.
 */
export async function deletePersonBehaviors(options: {
  readonly clickhouse: ClickHouseClient;
  readonly redis?: RedisConnection;
  readonly teamId: number;
  readonly distinctId: string;
}): Promise<void> {
  for (const table of ['user_behaviors', 'user_behaviors_by_user', 'user_watches']) {
    await options.clickhouse.command({
      query: `DELETE FROM ${table} WHERE tenant_id = {team:Int64} AND user_id = {user:String}`,
      query_params: { team: options.teamId, user: options.distinctId },
    });
  }
  await options.redis?.run('DEL', (client) => client.del(userRecentKey(options.teamId, options.distinctId)));
}
