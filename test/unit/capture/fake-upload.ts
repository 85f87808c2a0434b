import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { expect } from 'vitest';
import { type BodyLimits, defaultBodyLimits } from '../../../src/capture/body-encoding.ts';
import type { BufferPool } from '../../../src/capture/buffer-pool.ts';
import { InflightBudget } from '../../../src/capture/inflight-budget.ts';
import { readUpload, type Upload } from '../../../src/capture/read-upload.ts';
import { type ErrorCode, errorCatalogue } from '../../../src/errors/catalogue.ts';
import { isReplayError } from '../../../src/errors/index.ts';

/** An IncomingMessage stand-in: the body in `chunkSize` pieces, and the headers. */
export function fakeRequest(
  body: Buffer,
  headers: Record<string, string> = {},
  chunkSize = 64 * 1024,
): IncomingMessage {
  const stream = new Readable({ read() {} });
  for (let at = 0; at < body.length; at += chunkSize) stream.push(body.subarray(at, at + chunkSize));
  stream.push(null);
  return Object.assign(stream, {
    headers: { 'content-length': String(body.length), ...headers },
    get complete() {
      return stream.readableEnded;
    },
  }) as unknown as IncomingMessage;
}

export const uploadUrl = (query = '') => new URL(`http://capture/s/${query}`);

/** Headers that leave the length undeclared (`content-length: ''`): the body is then read as it streams. */
export const undeclared = { 'content-length': '' };

export interface FakeUploadOptions {
  readonly headers?: Record<string, string>;
  readonly query?: string;
  readonly limits?: BodyLimits;
  readonly maxBodyBytes?: number;
  readonly budget?: InflightBudget;
  readonly authenticate?: (token: string) => Promise<void>;
  readonly chunkSize?: number;
  /** Output buffers for bodies inflated in one piece (the caller then owns `Upload.release`). */
  readonly outputBuffers?: BufferPool;
  /** false: node:zlib alone, without libdeflate first (default true, as capture runs). */
  readonly nativeInflate?: boolean;
}

/** `readUpload` of `body` sent in `chunkSize` pieces (25 MB limit, default body limits, a 1 GiB budget). */
export function uploadOf(body: Buffer, options: FakeUploadOptions = {}): Promise<Upload> {
  const budget = options.budget ?? new InflightBudget(1024 * 1024 * 1024);
  const lease = budget.lease();
  return readUpload(fakeRequest(body, options.headers, options.chunkSize), uploadUrl(options.query), {
    maxBodyBytes: options.maxBodyBytes ?? 25 * 1024 * 1024,
    bodyLimits: options.limits ?? defaultBodyLimits,
    lease,
    authenticate: options.authenticate,
    outputBuffers: options.outputBuffers,
    nativeInflate: options.nativeInflate,
  }).finally(() => lease.release());
}

export type Outcome = ErrorCode | `ok:${string}`;

/** `ok:` and the decoded bytes (base64), or the code of the catalogue error it failed with; anything else throws. */
export async function outcome(upload: Promise<Upload>): Promise<Outcome> {
  try {
    return decoded((await upload).json);
  } catch (error) {
    if (!isReplayError(error)) throw error;
    expect(Object.keys(errorCatalogue)).toContain(error.code);
    return error.code;
  }
}

/** `outcome`, with the upload's buffer given back once its bytes are read (so that the next upload may reuse it). */
export async function outcomeReleased(upload: Promise<Upload>): Promise<Outcome> {
  return outcome(
    upload.then((u) => {
      const copy = { ...u, json: Buffer.from(u.json) };
      u.release();
      return copy;
    }),
  );
}

/** The outcome of a body that decodes to `json`. */
export const decoded = (json: Buffer): Outcome => `ok:${json.toString('base64')}`;

/** `base` with one to six bytes overwritten. */
export const mutated = (base: Buffer) =>
  fc
    .array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 })
    .map((edits) => {
      const copy = Buffer.from(base);
      for (const [at, value] of edits) copy[at] = value;
      return copy;
    });

/** A prefix of `base`, from empty to whole. */
export const truncated = (base: Buffer) => fc.nat(base.length).map((n) => base.subarray(0, n));
