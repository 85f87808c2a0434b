/**
 * The keys of the messages a sink took lately, per partition, so that a copy arriving again is applied once. Copies
 * come from clients: capture commits a request and dies before answering, and the client resends it. A resent
 * recording carries the same request id (capture names a request by its body's digest) and a resent behaviour the
 * same event id. Retries come seconds apart and, keyed by session or user, to the same partition, so a bounded window
 * per partition is enough. What it cannot see: a copy that lands after a restart or a rebalance whose first copy was
 * committed before it (the window starts empty), or one that capture routed to another topic.
 */
export class RecentKeys {
  private readonly byPartition = new Map<string, Map<string, number>>();
  private readonly maxPerPartition: number;
  private readonly windowMs: number;

  /**
   * @param maxPerPartition keys remembered per partition (oldest forgotten first; default 20,000: ~4 MB of heap for
   *   the blob consumer's keys, two minutes of a partition taking 167 messages a second)
   * @param windowMs how long one is remembered (default 10 minutes)
   */
  constructor(maxPerPartition = 20_000, windowMs = 600_000) {
    this.maxPerPartition = maxPerPartition;
    this.windowMs = windowMs;
  }

  /** Whether `key` was recorded on `partition` within the window. */
  has(partition: string, key: string, now = Date.now()): boolean {
    const at = this.byPartition.get(partition)?.get(key);
    return at !== undefined && now - at < this.windowMs;
  }

  /** Records `key` as taken on `partition`. */
  record(partition: string, key: string, now = Date.now()): void {
    let keys = this.byPartition.get(partition);
    if (!keys) {
      keys = new Map();
      this.byPartition.set(partition, keys);
    }
    keys.delete(key);
    keys.set(key, now);
    // Maps keep insertion order: the first entries are the oldest.
    for (const [oldest, at] of keys) {
      if (keys.size <= this.maxPerPartition && now - at < this.windowMs) break;
      keys.delete(oldest);
    }
  }

  /** Forgets the partitions for which `drop` is true (revoked: their next owner reads them again from the commit). */
  forget(drop: (partition: string) => boolean): void {
    for (const partition of this.byPartition.keys()) if (drop(partition)) this.byPartition.delete(partition);
  }
}
