import { type PartitionRef, partitionKey } from './sink.ts';

/**
 * Per owned partition, the highest offset a sink's target already holds (-1 when none): looked up once per
 * assignment, before the partition's first write, then advanced by each write. A sink that writes without a
 * transaction skips messages at or below it, so a crash between a write and its commit stores nothing twice. A value
 * that is stale is still safe: the target only ever holds more than it says.
 */
export class ResumePoints {
  private readonly known = new Map<string, number>();
  private readonly lookup: (ref: PartitionRef) => Promise<number>;

  constructor(lookup: (ref: PartitionRef) => Promise<number>) {
    this.lookup = lookup;
  }

  /** True when the target is known to hold this message already. */
  holds(message: PartitionRef & { readonly offset: number }): boolean {
    const known = this.known.get(partitionKey(message));
    return known !== undefined && message.offset <= known;
  }

  /** The partition's resume point, looked up when not known; remembered only while `owned`. */
  async of(ref: PartitionRef, owned: boolean): Promise<number> {
    const key = partitionKey(ref);
    const known = this.known.get(key);
    if (known !== undefined) return known;
    const found = await this.lookup(ref);
    if (owned) this.known.set(key, found);
    return found;
  }

  /** After a write: the target holds everything of the partition up to `offset`. */
  advance(ref: PartitionRef, offset: number): void {
    this.known.set(partitionKey(ref), offset);
  }

  /** Forgets partitions revoked, or whose batch changed after an attempt that may have written part of it. */
  forget(keys: readonly string[]): void {
    for (const key of keys) this.known.delete(key);
  }
}
