import { PassThrough } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  NotFound,
  S3Client,
  type ServerSideEncryption,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { ReplayError } from '../errors/index.ts';
import type { BlobStore, BlobWriter } from './blob-store.ts';

export interface S3BlobStoreOptions {
  readonly bucket: string;
  /** Custom endpoint for MinIO, R2 and other S3-compatible stores; empty for AWS. */
  readonly endpoint?: string;
  readonly region: string;
  /** Path-style URLs (`endpoint/bucket/key`), which MinIO needs. */
  readonly forcePathStyle?: boolean;
  /** Static credentials; omitted = the AWS default chain (env, profile, instance role). */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
  readonly serverSideEncryption?: ServerSideEncryption;
  readonly kmsKeyId?: string;
  /** Multipart part size (default 8 MiB; S3's minimum is 5 MiB). */
  readonly partSize?: number;
  /** SDK-level attempts per request before an error surfaces (default 3). */
  readonly maxAttempts?: number;
  /** Longest a connection may take to open (default 3 s). */
  readonly connectTimeoutMs?: number;
  /**
   * Longest one request may take (default 30 s): an endpoint that accepts and never answers (black-holed, hung) fails
   * the request instead of holding a flush or a read forever.
   */
  readonly requestTimeoutMs?: number;
}

function isMissing(error: unknown): boolean {
  return error instanceof NoSuchKey || error instanceof NotFound || (error as { name?: string }).name === 'NotFound';
}

/** The commands whose body is object data (see the constructor's payload middleware). */
const UPLOAD_COMMANDS = new Set(['PutObjectCommand', 'UploadPartCommand']);

/** Objects in one S3 bucket. Writes stream through a multipart upload; small objects go up as one PUT. */
export class S3BlobStore implements BlobStore {
  readonly description: string;
  readonly client: S3Client;
  readonly bucket: string;
  private readonly options: S3BlobStoreOptions;

  constructor(options: S3BlobStoreOptions) {
    this.options = options;
    this.bucket = options.bucket;
    this.description = `s3://${options.bucket}${options.endpoint ? ` at ${options.endpoint}` : ''}`;
    this.client = new S3Client({
      region: options.region,
      forcePathStyle: options.forcePathStyle ?? false,
      maxAttempts: options.maxAttempts ?? 3,
      // Checksums only where asked for: uploads ask for CRC32 (below); reads check the objects' own (LZ4 content
      // checksums, the footer CRC).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        connectionTimeout: options.connectTimeoutMs ?? 3000,
        requestTimeout: options.requestTimeoutMs ?? 30_000,
        // Without this the SDK only logs a warning when the timeout passes and goes on waiting.
        throwOnRequestTimeout: true,
      },
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
    });
    // SigV4 would hash every uploaded byte with SHA-256 to sign the payload (~15 % of the blob consumer's CPU at its
    // target rate). Uploads go unsigned instead and carry a CRC32 (computed natively, ~5 times cheaper) that S3
    // checks against the bytes it received: a damaged upload is still refused. The request itself stays signed.
    this.client.middlewareStack.add(
      (next, context) => async (args) => {
        const request = args.request as { headers?: Record<string, string> };
        if (UPLOAD_COMMANDS.has(context.commandName ?? '') && request.headers) {
          request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
        }
        return next(args);
      },
      { step: 'build', name: 'unsignedUploadPayload' },
    );
  }

  newObject(key: string): BlobWriter {
    const body = new PassThrough({ highWaterMark: 1024 * 1024 });
    const upload = new Upload({
      client: this.client,
      params: {
        Bucket: this.options.bucket,
        Key: key,
        Body: body,
        ContentType: 'application/octet-stream',
        ChecksumAlgorithm: 'CRC32',
        ...(this.options.serverSideEncryption ? { ServerSideEncryption: this.options.serverSideEncryption } : {}),
        ...(this.options.kmsKeyId ? { SSEKMSKeyId: this.options.kmsKeyId } : {}),
      },
      partSize: this.options.partSize ?? 8 * 1024 * 1024,
      queueSize: 2,
      leavePartsOnError: false,
    });
    const done = upload.done();
    done.catch(() => {}); // observed through finish(); an abandoned writer must not crash the process
    let bytes = 0;
    return {
      async write(chunk) {
        bytes += chunk.length;
        if (!body.write(chunk)) {
          await Promise.race([new Promise((resolve) => body.once('drain', resolve)), done]);
        }
      },
      async finish() {
        body.end();
        try {
          await done;
        } catch (error) {
          throw new ReplayError('blob_store_unavailable', `upload of ${key} failed: ${(error as Error).message}`, {
            cause: error,
          });
        }
        return { key, bytes };
      },
      async abort() {
        body.destroy();
        await upload.abort().catch(() => {});
      },
    };
  }

  async getRange(key: string, start: number, end: number): Promise<Buffer> {
    try {
      const got = await this.client.send(
        new GetObjectCommand({ Bucket: this.options.bucket, Key: key, Range: `bytes=${start}-${end}` }),
      );
      return Buffer.from(await got.Body!.transformToByteArray());
    } catch (error) {
      if (isMissing(error)) throw new ReplayError('blob_not_found', `no object ${key}`);
      throw new ReplayError('blob_store_unavailable', `read of ${key} failed: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  async size(key: string): Promise<number | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: key }));
      return head.ContentLength;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async *list(prefix: string): AsyncIterable<string> {
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.options.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const object of page.Contents ?? []) if (object.Key) yield object.Key;
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  close(): void {
    this.client.destroy();
  }

  urlOf(key: string): string {
    return `s3://${this.options.bucket}/${key}`;
  }

  keyOf(url: string): string | undefined {
    const prefix = `s3://${this.options.bucket}/`;
    return url.startsWith(prefix) ? url.slice(prefix.length) : undefined;
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: key }));
  }
}
