import { closeSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * An append-only spool file on local disk holding the payload frames of one batch. Memory keeps only where each
 * session's frames are (extents); the bytes wait here until the flush copies them into the object. Nothing is
 * fsynced: after a crash the spool is worthless anyway, because offsets were not committed and Kafka replays.
 * Synchronous I/O on purpose: appends and reads hit the page cache and cost less than a thread-pool round trip.
 */
export class Spool {
  readonly path: string;
  private fd: number;
  private size = 0;

  constructor(dir: string, name: string) {
    this.path = join(dir, name);
    this.fd = openSync(this.path, 'w+');
  }

  /** Appends bytes; returns their offset in the spool. */
  append(bytes: Buffer): number {
    const at = this.size;
    let written = 0;
    while (written < bytes.length) written += writeSync(this.fd, bytes, written, bytes.length - written, at + written);
    this.size += bytes.length;
    return at;
  }

  /** Reads `length` bytes at `offset` into `target` at `targetOffset`. */
  readInto(offset: number, length: number, target: Buffer, targetOffset = 0): void {
    let read = 0;
    while (read < length) {
      const n = readSync(this.fd, target, targetOffset + read, length - read, offset + read);
      if (n === 0) throw new Error(`spool ${this.path} ended at ${offset + read}, expected ${offset + length}`);
      read += n;
    }
  }

  get bytes(): number {
    return this.size;
  }

  /** Closes and deletes the file. */
  discard(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
    unlinkSync(this.path);
  }
}
