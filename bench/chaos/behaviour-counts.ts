import { createLogger } from '../../src/logging/logger.ts';
import { realtimeMetricsKey } from '../../src/uba/realtime/keys.ts';
import { RedisConnection } from '../../src/uba/realtime/redis-connection.ts';

/** Where one tenant's behaviours ended up: ClickHouse rows per event id, the hourly roll-up, Redis's minute counts. */
export interface BehaviourCounts {
  /** Rows of user_behaviors per event id (a row stored twice shows 2). */
  readonly copies: Readonly<Record<string, number>>;
  /** Behaviours counted by the uba_hourly_metrics roll-up. */
  readonly rollup: number;
  /** Behaviours counted by the realtime sink's `metrics:realtime:*` hashes. */
  readonly realtime: number;
}

/** Reads a tenant's behaviour counts from the read side (its control port) and from Redis, each bounded. */
export class BehaviourCounter {
  private readonly controlUrl: string;
  private readonly redis: RedisConnection;

  constructor(controlUrl: string, redisUrl: string) {
    this.controlUrl = controlUrl;
    this.redis = new RedisConnection({
      url: redisUrl,
      connectTimeoutMs: 2000,
      commandTimeoutMs: 3000,
      log: createLogger('error', 'chaos.redis'),
    });
  }

  /** The counts; throws while the read side or Redis does not answer. */
  async counts(tenant: number): Promise<BehaviourCounts> {
    const response = await fetch(`${this.controlUrl}/behaviours?tenant=${tenant}`, {
      signal: AbortSignal.timeout(10_000),
    });
    if (!response.ok) throw new Error(`the read side answered ${response.status}: ${await response.text()}`);
    const stored = (await response.json()) as Omit<BehaviourCounts, 'realtime'>;
    const realtime = await this.redis.run('realtime counts', async (client) => {
      let total = 0;
      for (const key of await client.keys(realtimeMetricsKey(tenant, 'chaos', '*'))) {
        for (const count of Object.values(await client.hGetAll(key))) total += Number(count);
      }
      return total;
    });
    return { ...stored, realtime };
  }

  close(): Promise<void> {
    return this.redis.close();
  }
}
