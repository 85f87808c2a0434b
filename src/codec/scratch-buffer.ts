/**
 * A buffer reused by a synchronous step for data that lives only until the step returns (JSONL until it is
 * compressed, a frame until it is copied out). Allocating a body-sized buffer per message made most of capture's GC
 * work: each one counts as external memory and brings the next collection closer.
 */
export class ScratchBuffer {
  private buffer = Buffer.allocUnsafe(0);
  private readonly keptBytes: number;

  /** @param keptBytes the largest size kept between calls; a larger request gets a buffer of its own. */
  constructor(keptBytes: number) {
    this.keptBytes = keptBytes;
  }

  /** `bytes` of space, valid until the next call. */
  take(bytes: number): Buffer {
    if (this.buffer.length < bytes) {
      const fresh = Buffer.allocUnsafe(bytes);
      if (bytes > this.keptBytes) return fresh;
      this.buffer = fresh;
    }
    return this.buffer.subarray(0, bytes);
  }
}
