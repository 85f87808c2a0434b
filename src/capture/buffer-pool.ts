/**
 * Body-sized buffers kept between requests, for the inflated JSON of the bodies posthog-js sends (read-upload.ts).
 * A fresh ~500 KB output buffer per request was over half the buffer bytes capture allocated per request, and V8's
 * background GC threads took a fifth of capture's CPU-seconds. With the buffers reused, capture runs about half as
 * many mark-compacts per request, and that share falls to about a seventh (bench/capture/run.ts).
 *
 * A buffer comes back only through `PooledBuffer.give`, which its holder calls once nothing refers to its bytes any
 * more; until then no other request can be handed it. A buffer that is never given back is simply collected.
 */
export interface BufferPoolOptions {
  /** Largest request served from the pool; a larger one gets `undefined` (the caller allocates as before). */
  readonly maxBufferBytes: number;
  /** Capacity kept idle at most; past it the least recently returned buffers are dropped. */
  readonly maxIdleBytes: number;
}

/** A buffer lent by a `BufferPool`: `bytes` is exactly the size asked for. */
export class PooledBuffer {
  readonly bytes: Buffer;
  private pool: BufferPool | undefined;
  private readonly whole: Buffer;

  /** @internal */
  constructor(pool: BufferPool, whole: Buffer, bytes: number) {
    this.pool = pool;
    this.whole = whole;
    this.bytes = whole.subarray(0, bytes);
  }

  /**
   * Hands the buffer back for another request. Only once nothing refers to `bytes` (or a view of them) any more.
   * A second call does nothing, so the buffer can never be lent to two holders at once.
   */
  give(): void {
    const pool = this.pool;
    this.pool = undefined;
    pool?.accept(this.whole);
  }
}

export class BufferPool {
  private readonly options: BufferPoolOptions;
  /** Idle buffers, least recently returned first. */
  private readonly idle: Buffer[] = [];
  private idleBytes = 0;

  constructor(options: BufferPoolOptions) {
    this.options = options;
  }

  /** Bytes held idle (for tests). */
  get idleCapacity(): number {
    return this.idleBytes;
  }

  /**
   * A buffer of `bytes`: an idle one that is at most a quarter larger (the in-flight budget counts `bytes`, so the
   * memory a request really holds stays close to it), or a fresh one, its size rounded up to an eighth of its power of
   * two so that bodies of about the same size share buffers. Undefined above `maxBufferBytes`.
   */
  take(bytes: number): PooledBuffer | undefined {
    if (bytes <= 0 || bytes > this.options.maxBufferBytes) return undefined;
    const most = bytes + (bytes >>> 2);
    let best = -1;
    for (let i = 0; i < this.idle.length; i++) {
      const capacity = this.idle[i]!.length;
      if (capacity >= bytes && capacity <= most && (best < 0 || capacity < this.idle[best]!.length)) best = i;
    }
    if (best >= 0) {
      const [whole] = this.idle.splice(best, 1);
      this.idleBytes -= whole!.length;
      return new PooledBuffer(this, whole!, bytes);
    }
    return new PooledBuffer(this, Buffer.allocUnsafeSlow(sizeClass(bytes)), bytes);
  }

  /** @internal Takes back a buffer its holder gave up. */
  accept(whole: Buffer): void {
    this.idle.push(whole);
    this.idleBytes += whole.length;
    while (this.idleBytes > this.options.maxIdleBytes) this.idleBytes -= this.idle.shift()!.length;
  }
}

/** `bytes` rounded up to a multiple of an eighth of its largest power of two (at most 1/8 more). */
function sizeClass(bytes: number): number {
  const step = Math.max(1, 2 ** Math.floor(Math.log2(bytes)) / 8);
  return Math.ceil(bytes / step) * step;
}
