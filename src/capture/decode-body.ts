import { promisify } from 'node:util';
import { constants, gunzip } from 'node:zlib';
import { ReplayError } from '../errors/index.ts';

const gunzipAsync = promisify(gunzip);

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

export interface EncodedBody {
  readonly bytes: Buffer;
  /** The `Content-Encoding` header, if any. */
  readonly contentEncoding?: string | undefined;
  readonly contentType?: string | undefined;
  /** The `compression` query parameter posthog-js adds (`gzip-js`, `base64`). */
  readonly compression?: string | null | undefined;
}

function isGzip(bytes: Buffer): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** The `data=` field of a form body, base64 (standard or URL-safe) of the JSON or gzip payload. */
function formData(bytes: Buffer): Buffer {
  const data = new URLSearchParams(bytes.toString('latin1')).get('data');
  if (data === null) throw new ReplayError('invalid_payload', 'form body has no "data" field');
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(data)) throw new ReplayError('invalid_compression', 'form "data" is not base64');
  return Buffer.from(data, 'base64');
}

async function inflate(compressed: Buffer, limits: BodyLimits): Promise<Buffer> {
  const ratioCap = Math.max(limits.ratioFloorBytes, compressed.length * limits.maxCompressionRatio);
  const cap = Math.min(limits.maxDecompressedBytes, ratioCap);
  // One output chunk of the size the gzip trailer announces (ISIZE, the last 4 bytes; +1 so zlib meets the end of the
  // stream in the same call): the body inflates in one thread-pool job into one buffer, instead of in 16 KiB chunks
  // joined at the end (~35 round trips and a copy for a 560 KB body, 3x the CPU). zlib checks ISIZE against the data;
  // with several gzip members it is only the last one's size, which costs more rounds, never a wrong result. The
  // chunk is never smaller than zlib's default nor larger than the cap.
  const announced = compressed.length >= 18 ? compressed.readUInt32LE(compressed.length - 4) : 0;
  const chunkSize = Math.max(constants.Z_DEFAULT_CHUNK, Math.min(announced + 1, cap + 1));
  try {
    return await gunzipAsync(compressed, { maxOutputLength: cap, chunkSize });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      if (cap < limits.maxDecompressedBytes) {
        throw new ReplayError(
          'decompression_ratio_exceeded',
          `body expands more than ${limits.maxCompressionRatio}x (${compressed.length} compressed bytes)`,
        );
      }
      throw new ReplayError('decompressed_too_large', `decompressed body exceeds ${limits.maxDecompressedBytes} bytes`);
    }
    throw new ReplayError('invalid_compression', `body is not valid gzip: ${(error as Error).message}`);
  }
}

/**
 * Turns an upload body into its JSON bytes, whatever way posthog-js encoded it: gzip (detected by its magic bytes,
 * with or without `?compression=gzip-js` or `Content-Encoding: gzip`), a base64 `data=` form field, or plain JSON.
 */
export async function decodeBody(body: EncodedBody, limits: BodyLimits = defaultBodyLimits): Promise<Buffer> {
  const encoding = body.contentEncoding?.trim().toLowerCase();
  if (encoding && encoding !== 'gzip' && encoding !== 'identity') {
    throw new ReplayError('unsupported_encoding', `Content-Encoding "${body.contentEncoding}" is not supported`);
  }
  const compression = body.compression?.toLowerCase();
  if (compression && !['gzip-js', 'gzip', 'base64'].includes(compression)) {
    throw new ReplayError('unsupported_encoding', `compression "${body.compression}" is not supported`);
  }
  let bytes = body.bytes;
  if (bytes.length === 0) throw new ReplayError('empty_body', 'the request body is empty');

  const isForm =
    body.contentType?.toLowerCase().startsWith('application/x-www-form-urlencoded') ||
    bytes.subarray(0, 5).toString('latin1') === 'data=';
  if (isForm) bytes = formData(bytes);
  else if (compression === 'base64') bytes = Buffer.from(bytes.toString('latin1'), 'base64');

  if (isGzip(bytes)) bytes = await inflate(bytes, limits);
  else if (encoding === 'gzip')
    throw new ReplayError('invalid_compression', 'Content-Encoding is gzip but the body is not');
  else if (bytes.length > limits.maxDecompressedBytes) {
    throw new ReplayError('decompressed_too_large', `body exceeds ${limits.maxDecompressedBytes} bytes`);
  }
  if (bytes.length === 0) throw new ReplayError('empty_body', 'the request body is empty after decoding');
  return bytes;
}
