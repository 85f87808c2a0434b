export interface TokenBucketOptions {
  /** Tokens added per second. */
  readonly ratePerSecond: number;
  /** Bucket size: the burst allowed after a quiet period. */
  readonly burst: number;
  /** Keys tracked at most; the least recently used are forgotten (a forgotten key starts with a full bucket). */
  readonly maxKeys?: number;
  readonly now?: () => number;
}

/** Token buckets per key (team, session): `take` says whether `cost` tokens were available, and takes them if so. */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly maxKeys: number;
  private readonly now: () => number;
  private readonly options: TokenBucketOptions;

  constructor(options: TokenBucketOptions) {
    this.options = options;
    this.maxKeys = options.maxKeys ?? 100_000;
    this.now = options.now ?? Date.now;
  }

  take(key: string, cost = 1): boolean {
    const now = this.now();
    let bucket = this.buckets.get(key);
    if (bucket) {
      this.buckets.delete(key); // re-inserted below: Map order doubles as recency order
      bucket.tokens = Math.min(
        this.options.burst,
        bucket.tokens + ((now - bucket.at) / 1000) * this.options.ratePerSecond,
      );
      bucket.at = now;
    } else {
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
      bucket = { tokens: this.options.burst, at: now };
    }
    this.buckets.set(key, bucket);
    if (bucket.tokens < cost) return false;
    bucket.tokens -= cost;
    return true;
  }
}

/**
 * Sends a session to the overflow topic once it outruns its byte budget, and keeps it there for `stickyMs` so a hot
 * session does not flap between topics (each flip would split its blocks across two consumer groups).
 */
export class OverflowRouter {
  private readonly until = new Map<string, number>();
  private readonly buckets: TokenBuckets;
  private readonly now: () => number;
  private readonly stickyMs: number;

  constructor(options: TokenBucketOptions & { readonly stickyMs: number }) {
    this.buckets = new TokenBuckets(options);
    this.now = options.now ?? Date.now;
    this.stickyMs = options.stickyMs;
  }

  /** True when this session's `bytes` should go to the overflow topic. */
  shouldOverflow(sessionKey: string, bytes: number): boolean {
    const now = this.now();
    const stuck = this.until.get(sessionKey);
    if (stuck !== undefined && stuck > now) return true;
    if (stuck !== undefined) this.until.delete(sessionKey);
    if (this.buckets.take(sessionKey, bytes)) return false;
    if (this.until.size >= 100_000) this.until.delete(this.until.keys().next().value!);
    this.until.set(sessionKey, now + this.stickyMs);
    return true;
  }
}
