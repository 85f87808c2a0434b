import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, statfsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const MiB = 1024 * 1024;
const DISK_BYTES = 96 * MiB;
/** BLOB_MIN_FREE_DISK_BYTES of the blob consumers: they flush early below it and pause fetching below half of it. */
const MIN_FREE_BYTES = 32 * MiB;

export interface SpoolDisk {
  readonly dir: string;
  readonly minFreeBytes: number;
  /** Someone else's file fills the disk to a quarter of the watermark: the consumers must pause, not drop. */
  fill(): Promise<void>;
  /** Deletes that file: the consumers must resume. */
  release(): Promise<void>;
  unmount(): void;
}

/**
 * A real size-limited filesystem (tmpfs) for the spool, so "disk at the watermark" is the kernel's free-space count
 * and not a mock. Mounting needs root; the promise rejects otherwise.
 */
export async function mountSpoolDisk(dir: string): Promise<SpoolDisk> {
  mkdirSync(dir, { recursive: true });
  await promisify(execFile)('mount', ['-t', 'tmpfs', '-o', `size=${DISK_BYTES}`, 'tmpfs', dir]);
  const ballast = join(dir, 'ballast');
  return {
    dir,
    minFreeBytes: MIN_FREE_BYTES,
    async fill() {
      const { bavail, bsize } = statfsSync(dir);
      await writeFile(ballast, Buffer.alloc(Math.max(0, bavail * bsize - MIN_FREE_BYTES / 4)));
    },
    release: () => rm(ballast, { force: true }),
    unmount() {
      execFileSync('umount', ['-l', dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
