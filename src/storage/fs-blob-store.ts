import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { ReplayError } from '../errors/index.ts';
import type { BlobStore, BlobWriter } from './blob-store.ts';

/**
 * Objects as files under a root directory. A write goes to a temporary name and is renamed into place after fsync,
 * so a reader sees a whole object or none, as with S3.
 */
export class FsBlobStore implements BlobStore {
  readonly description: string;
  private readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
    this.description = `file://${this.root}`;
  }

  private pathOf(key: string): string {
    const path = resolve(this.root, key);
    if (!path.startsWith(this.root + sep)) throw new ReplayError('not_found', `key ${key} is outside the store`);
    return path;
  }

  newObject(key: string): BlobWriter {
    const path = this.pathOf(key);
    const temp = `${path}.${randomUUID()}.partial`;
    let stream: WriteStream | undefined;
    let bytes = 0;
    const ready = mkdir(dirname(path), { recursive: true }).then(() => {
      stream = createWriteStream(temp);
    });
    return {
      async write(chunk) {
        await ready;
        bytes += chunk.length;
        if (!stream!.write(chunk)) await new Promise<void>((done) => stream!.once('drain', () => done()));
      },
      async finish() {
        await ready;
        await new Promise<void>((done, fail) => stream!.end((error?: Error | null) => (error ? fail(error) : done())));
        const handle = await open(temp, 'r');
        await handle.sync();
        await handle.close();
        await rename(temp, path);
        return { key, bytes };
      },
      async abort() {
        await ready.catch(() => {});
        stream?.destroy();
        await rm(temp, { force: true });
      },
    };
  }

  async getRange(key: string, start: number, end: number): Promise<Buffer> {
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of createReadStream(this.pathOf(key), { start, end })) chunks.push(chunk as Buffer);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT')
        throw new ReplayError('blob_not_found', `no object ${key}`);
      throw error;
    }
    return Buffer.concat(chunks);
  }

  async size(key: string): Promise<number | undefined> {
    return stat(this.pathOf(key)).then(
      (s) => s.size,
      () => undefined,
    );
  }

  async *list(prefix: string): AsyncIterable<string> {
    const keys: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const entry of entries) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) await walk(path);
        else if (!entry.name.endsWith('.partial')) {
          const key = relative(this.root, path).split(sep).join('/');
          if (key.startsWith(prefix)) keys.push(key);
        }
      }
    };
    await walk(this.root);
    yield* keys.sort();
  }

  close(): void {}

  urlOf(key: string): string {
    return `${this.description}/${key}`;
  }

  keyOf(url: string): string | undefined {
    const prefix = `${this.description}/`;
    return url.startsWith(prefix) ? url.slice(prefix.length) : undefined;
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }
}
