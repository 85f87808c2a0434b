import type { ReplayError } from '../errors/index.ts';
import { backoffDelay } from './backoff.ts';

/** A partition whose message failed transiently: to be rewound to `offset`, and paused until `retryAt`. */
export interface Retry {
  readonly offset: number;
  attempts: number;
  /** Failures of this offset with an unclassified error (quarantined after `maxUnclassified`). */
  unclassified: number;
  retryAt: number;
  /** When the partition started failing (for readiness). */
  readonly since: number;
  /** When the partition was seeked back to `offset` (undefined until the seek succeeded). */
  rewoundAt: number | undefined;
}

/**
 * The transient half of the error contract, per partition: which partitions are waiting to retry a message, from
 * which offset, until when (jittered, growing backoff: 100 ms to 5 s), and whether they have been rewound yet. One
 * partition's failures never pause another.
 */
export class PartitionRetries {
  private readonly retries = new Map<string, Retry>();
  private readonly maxUnclassified: number;

  constructor(options: { readonly maxUnclassified: number }) {
    this.maxUnclassified = options.maxUnclassified;
  }

  get(key: string): Retry | undefined {
    return this.retries.get(key);
  }

  /** The partition took its message (or lost the partition): no retry pending. */
  clear(key: string): void {
    this.retries.delete(key);
  }

  /** Records a transient failure of `offset`; the returned retry says when to try again. */
  failed(key: string, offset: number, error: ReplayError, now = Date.now()): Retry {
    const previous = this.retries.get(key);
    const retry: Retry =
      previous && previous.offset === offset
        ? previous
        : { offset, attempts: 0, unclassified: 0, retryAt: 0, since: now, rewoundAt: undefined };
    retry.rewoundAt = undefined;
    retry.attempts++;
    if (error.code === 'internal_error') retry.unclassified++;
    retry.retryAt = now + backoffDelay(retry.attempts - 1, 100, 5000);
    this.retries.set(key, retry);
    return retry;
  }

  /** True when this unclassified failure would be the last allowed: quarantine the message instead of retrying. */
  exhausted(key: string, offset: number, error: ReplayError): boolean {
    if (error.code !== 'internal_error') return false;
    const retry = this.retries.get(key);
    const seen = retry && retry.offset === offset ? retry.unclassified : 0;
    return seen + 1 >= this.maxUnclassified;
  }

  /** Whether the partition must stay paused: waiting out its backoff, or not rewound yet. */
  holds(key: string, now = Date.now()): boolean {
    const retry = this.retries.get(key);
    return retry !== undefined && (retry.retryAt > now || retry.rewoundAt === undefined);
  }

  /** Retries whose partition still has to be seeked back. */
  *unrewound(): Iterable<[string, Retry]> {
    for (const entry of this.retries) if (entry[1].rewoundAt === undefined) yield entry;
  }

  /** True when some partition has been failing for longer than `ms`. */
  failingLongerThan(ms: number, now = Date.now()): boolean {
    for (const retry of this.retries.values()) if (now - retry.since > ms) return true;
    return false;
  }
}
