/**
 * Where flushed objects live. Two implementations: S3-compatible (`s3-blob-store.ts`: AWS, MinIO, R2) and the local
 * filesystem (`fs-blob-store.ts`, the embedded default). Writers stream: an object of hundreds of megabytes never has
 * to be in memory at once.
 */
export interface BlobStore {
  /** A short description for logs and `/readyz` ("s3://bucket/prefix", "file:///data/blobs"). */
  readonly description: string;
  /** Starts writing one object; nothing is visible under `key` until `finish()` resolves. */
  newObject(key: string): BlobWriter;
  /** Bytes `start..end` of an object, both inclusive (an HTTP byte range). Throws `blob_not_found` when it is gone. */
  getRange(key: string, start: number, end: number): Promise<Buffer>;
  /** Size in bytes, or undefined when the object does not exist. */
  size(key: string): Promise<number | undefined>;
  /** Keys under a prefix, in lexical order. */
  list(prefix: string): AsyncIterable<string>;
  delete(key: string): Promise<void>;
  /** The object's address in summary rows (`s3://bucket/key`, `file:///root/key`). */
  urlOf(key: string): string;
  /** The key an address points at, or undefined when it is not in this store. */
  keyOf(url: string): string | undefined;
  /** Releases connections. */
  close(): void;
}

export interface BlobWriter {
  /** Appends bytes; resolves when the writer can take more (backpressure). */
  write(chunk: Buffer): Promise<void>;
  /** Completes the object and makes it durable and visible. */
  finish(): Promise<{ readonly key: string; readonly bytes: number }>;
  /** Gives up: whatever was written is discarded. */
  abort(): Promise<void>;
}
