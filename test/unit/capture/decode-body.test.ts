import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodeBody } from '../../../src/capture/decode-body.ts';
import { isReplayError } from '../../../src/errors/index.ts';

const json = Buffer.from(JSON.stringify([{ event: '$snapshot', properties: { $session_id: 's' } }]));

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (error) {
    if (isReplayError(error)) return error.code;
    throw error;
  }
}

describe('request body decoding', () => {
  it('accepts every encoding posthog-js uses', async () => {
    const gz = gzipSync(json);
    const base64 = json.toString('base64');
    const cases = [
      { bytes: json },
      { bytes: json, contentType: 'text/plain' },
      { bytes: gz, compression: 'gzip-js' },
      { bytes: gz }, // gzip without the query parameter: detected by magic bytes
      { bytes: gz, contentEncoding: 'gzip' },
      { bytes: Buffer.from(`data=${encodeURIComponent(base64)}`), contentType: 'application/x-www-form-urlencoded' },
      { bytes: Buffer.from(`data=${encodeURIComponent(base64)}`), compression: 'base64' },
      { bytes: Buffer.from(`data=${encodeURIComponent(gz.toString('base64'))}`) },
    ];
    for (const body of cases)
      expect((await decodeBody(body)).equals(json), JSON.stringify(body).slice(0, 80)).toBe(true);
  });

  it('rejects bad encodings with stable codes', async () => {
    expect(await codeOf(decodeBody({ bytes: Buffer.alloc(0) }))).toBe('empty_body');
    expect(await codeOf(decodeBody({ bytes: json, contentEncoding: 'br' }))).toBe('unsupported_encoding');
    expect(await codeOf(decodeBody({ bytes: json, compression: 'lz64' }))).toBe('unsupported_encoding');
    expect(await codeOf(decodeBody({ bytes: json, contentEncoding: 'gzip' }))).toBe('invalid_compression');
    const truncated = gzipSync(json).subarray(0, 20);
    expect(await codeOf(decodeBody({ bytes: truncated }))).toBe('invalid_compression');
    const corrupt = Buffer.from(gzipSync(json));
    corrupt[12]! ^= 0xff;
    expect(await codeOf(decodeBody({ bytes: corrupt }))).toBe('invalid_compression');
    expect(await codeOf(decodeBody({ bytes: Buffer.from('data=%%%notbase64') }))).toBe('invalid_compression');
    expect(
      await codeOf(decodeBody({ bytes: Buffer.from('foo=bar'), contentType: 'application/x-www-form-urlencoded' })),
    ).toBe('invalid_payload');
  });

  it('stops gzip bombs by ratio and oversized bodies by size, without inflating them fully', async () => {
    const bomb = gzipSync(Buffer.alloc(40 * 1024 * 1024)); // ~40 KB that would inflate to 40 MB
    expect(bomb.length).toBeLessThan(64 * 1024);
    expect(await codeOf(decodeBody({ bytes: bomb }))).toBe('decompression_ratio_exceeded');
    const limits = { maxDecompressedBytes: 1024 * 1024, maxCompressionRatio: 1e9, ratioFloorBytes: 0 };
    expect(await codeOf(decodeBody({ bytes: gzipSync(Buffer.alloc(2 * 1024 * 1024, 'a')) }, limits))).toBe(
      'decompressed_too_large',
    );
    expect(await codeOf(decodeBody({ bytes: Buffer.alloc(2 * 1024 * 1024, 'a') }, limits))).toBe(
      'decompressed_too_large',
    );
  });

  it('inflates in one chunk of the announced size without trusting it: several members, exact caps, a false ISIZE', async () => {
    const a = Buffer.from('a'.repeat(100_000));
    const b = Buffer.from(JSON.stringify({ b: 'é'.repeat(50) }));
    // several gzip members: the trailer announces only the last one's size
    expect((await decodeBody({ bytes: Buffer.concat([gzipSync(a), gzipSync(b)]) })).equals(Buffer.concat([a, b]))).toBe(
      true,
    );
    expect((await decodeBody({ bytes: Buffer.concat([gzipSync(b), gzipSync(a)]) })).equals(Buffer.concat([b, a]))).toBe(
      true,
    );
    // exactly at the cap passes, one byte over does not
    const limits = { maxDecompressedBytes: 200_000, maxCompressionRatio: 1e9, ratioFloorBytes: 0 };
    for (const size of [1, 16_383, 16_384, 16_385, 199_999, 200_000]) {
      const body = Buffer.alloc(size, 'x');
      expect((await decodeBody({ bytes: gzipSync(body) }, limits)).equals(body), String(size)).toBe(true);
    }
    expect(await codeOf(decodeBody({ bytes: gzipSync(Buffer.alloc(200_001, 'x')) }, limits))).toBe(
      'decompressed_too_large',
    );
    // a trailer announcing another size is damage zlib reports
    for (const announced of [0, 10, 99_999, 0xffffffff]) {
      const lying = Buffer.from(gzipSync(a));
      lying.writeUInt32LE(announced, lying.length - 4);
      expect(await codeOf(decodeBody({ bytes: lying })), String(announced)).toBe('invalid_compression');
    }
  });
});
