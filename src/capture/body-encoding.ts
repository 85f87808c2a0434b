import { ReplayError } from '../errors/index.ts';

/**
 * The ways posthog-js encodes a `/s/` body, and the bounds on decoding one: gzip (detected by its magic bytes, with
 * or without `?compression=gzip-js` or `Content-Encoding: gzip`), the base64 `data=` form field (`sendBeacon`,
 * `?compression=base64`), or plain JSON. `readUpload` (read-upload.ts) does the reading.
 */

/** How large a body may decode (the caps `readUpload` counts every decoded chunk against). */
export interface BodyLimits {
  /** Largest decompressed body accepted (DESIGN §3.1: 64 MB). */
  readonly maxDecompressedBytes: number;
  /** Largest decompressed/compressed ratio accepted once the output passes `ratioFloorBytes`: a gzip-bomb guard. */
  readonly maxCompressionRatio: number;
  readonly ratioFloorBytes: number;
}

export const defaultBodyLimits: BodyLimits = {
  maxDecompressedBytes: 64 * 1024 * 1024,
  maxCompressionRatio: 500,
  ratioFloorBytes: 1024 * 1024,
};

/** The most `compressedBytes` of gzip may inflate to: the ratio guard (above its floor) within the size cap. */
export function inflatedCap(limits: BodyLimits, compressedBytes: number): number {
  return Math.min(
    limits.maxDecompressedBytes,
    Math.max(limits.ratioFloorBytes, compressedBytes * limits.maxCompressionRatio),
  );
}

/** What the headers say about a body's encoding. */
export interface DeclaredEncoding {
  /** `Content-Encoding: gzip`: a body that is not gzip is refused. */
  readonly gzip: boolean;
  /** `?compression=base64`: the body is base64 text. */
  readonly base64: boolean;
}

/**
 * Reads the `Content-Encoding` header and the `compression` query parameter; throws 415 `unsupported_encoding` for
 * any value posthog-js does not send, so such a body is refused before a byte of it is read.
 */
export function declaredEncoding(
  contentEncoding: string | undefined,
  compression: string | null | undefined,
): DeclaredEncoding {
  const encoding = contentEncoding?.trim().toLowerCase();
  if (encoding && encoding !== 'gzip' && encoding !== 'identity') {
    throw new ReplayError('unsupported_encoding', `Content-Encoding "${contentEncoding}" is not supported`);
  }
  const param = compression?.toLowerCase();
  if (param && param !== 'gzip-js' && param !== 'gzip' && param !== 'base64') {
    throw new ReplayError('unsupported_encoding', `compression "${compression}" is not supported`);
  }
  return { gzip: encoding === 'gzip', base64: param === 'base64' };
}

/** Throws 400 `invalid_compression` when the headers said gzip of a (decoded) body that is not. */
export function expectNotDeclaredGzip(declared: DeclaredEncoding): void {
  if (declared.gzip) throw new ReplayError('invalid_compression', 'Content-Encoding is gzip but the body is not');
}

export function isGzip(bytes: Buffer): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** A form body: declared so, or starting with its field; `start` is the body's first 5 bytes (or all, if fewer). */
export function isForm(contentType: string | undefined, start: Buffer): boolean {
  return (
    contentType?.toLowerCase().startsWith('application/x-www-form-urlencoded') === true ||
    start.subarray(0, 5).toString('latin1') === 'data='
  );
}

/** What a base64 body carries (JSON or gzip): a form's `data=` field, or else the whole body. */
export function base64Payload(wire: Buffer, form: boolean): Buffer {
  return form ? formData(wire) : Buffer.from(wire.toString('latin1'), 'base64');
}

/** The `data=` field of a form body, base64 (standard or URL-safe) of the JSON or gzip payload. */
function formData(bytes: Buffer): Buffer {
  const data = new URLSearchParams(bytes.toString('latin1')).get('data');
  if (data === null) throw new ReplayError('invalid_payload', 'form body has no "data" field');
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(data)) throw new ReplayError('invalid_compression', 'form "data" is not base64');
  return Buffer.from(data, 'base64');
}
