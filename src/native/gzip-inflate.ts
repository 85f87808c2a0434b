import { loadAddon } from './addon.ts';

/**
 * Inflates one whole gzip member into `output` and answers the bytes written, or -1 for anything else (bad data, a
 * wrong checksum, too little room, trailing bytes, a second member, a header CRC), which the caller then inflates
 * with node:zlib so that its answers and error codes stay the reference. native/gzip-inflate.c, with libdeflate:
 * about twice zlib's speed, and no thread-pool round trip. It decodes a few malformed deflate streams zlib refuses
 * (when the gzip CRC-32 and size match its output): see the C file.
 */
export type InflateGzipInto = (gzip: Buffer, output: Buffer) => number;

export const nativeInflateGzipInto: InflateGzipInto | undefined = loadAddon<{ inflateInto: InflateGzipInto }>(
  'gzip-inflate',
)?.inflateInto;
