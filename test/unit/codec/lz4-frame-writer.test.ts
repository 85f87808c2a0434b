import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { compressFrameSync, decompressFrameSync } from 'lz4-napi';
import { describe, expect, it } from 'vitest';
import { compressLz4Frame, decompressLz4Frames, scanLz4Frames, xxhash32 } from '../../../src/codec/lz4-frames.ts';

/** JSONL that compresses like rrweb events do: repeated keys and structure, varying numbers and text. */
function jsonl(events: number): Buffer {
  const lines: string[] = [];
  for (let i = 0; i < events; i++) {
    lines.push(
      JSON.stringify([
        'w-1',
        {
          type: 3,
          timestamp: 1_763_800_000_000 + i,
          data: { source: 1, positions: [{ x: i % 997, y: (i * 7) % 613, id: i % 40, timeOffset: -i }] },
        },
      ]),
    );
  }
  return Buffer.from(`${lines.join('\n')}\n`);
}

describe('XXH32', () => {
  it('equals the checksum lz4-napi writes into its frames, at every length and alignment', () => {
    const data = randomBytes(70_000);
    for (const length of [0, 1, 3, 4, 5, 15, 16, 17, 31, 32, 33, 64, 1000, 65_536, 69_999]) {
      for (const offset of [0, 1, 2, 3]) {
        const bytes = data.subarray(offset, offset + length);
        const frame = compressFrameSync(Buffer.from(bytes), { contentChecksum: true });
        expect(xxhash32(bytes), `${length} bytes at ${offset}`).toBe(frame.readUInt32LE(frame.length - 4));
      }
    }
  });

  it('gives the reference vectors', () => {
    // XXH32 with seed 0 of "" and "abc", as the specification lists them.
    expect(xxhash32(Buffer.alloc(0))).toBe(0x02cc5d05);
    expect(xxhash32(Buffer.from('abc'))).toBe(0x32d153ff);
  });
});

describe('the LZ4 frame writer', () => {
  it('writes frames lz4-napi decodes back to the input, with a checked header and content checksum', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.uint8Array({ maxLength: 300_000 }), fc.constant(randomBytes(5 << 20)), fc.nat(20_000).map(jsonl)),
        (input) => {
          const data = Buffer.from(input);
          const frame = compressLz4Frame(data);
          expect(decompressFrameSync(frame).equals(data)).toBe(true);
          expect(scanLz4Frames(frame)).toEqual([[0, frame.length]]);
          expect(frame.readUInt32LE(frame.length - 4)).toBe(xxhash32(data));
        },
      ),
      { numRuns: 60 },
    );
  });

  it('stores incompressible blocks as they are, so a frame of noise grows only by its framing', () => {
    const noise = randomBytes(9 << 20);
    const frame = compressLz4Frame(noise);
    // header 7, three 4 MiB blocks of 4 + their bytes, end mark and checksum 8
    expect(frame.length).toBe(7 + 3 * 4 + noise.length + 8);
    expect(decompressLz4Frames(frame).equals(noise)).toBe(true);
  });

  it('concatenated frames decode as one stream, and damage is refused', () => {
    const a = jsonl(3000);
    const b = jsonl(10);
    const joined = Buffer.concat([compressLz4Frame(a), compressLz4Frame(b)]);
    expect(decompressLz4Frames(joined).equals(Buffer.concat([a, b]))).toBe(true);
    const frame = compressLz4Frame(a);
    const flipped = Buffer.from(frame);
    flipped[frame.length - 2]! ^= 0x01; // the content checksum
    expect(() => decompressLz4Frames(flipped)).toThrow();
    const header = Buffer.from(frame);
    header[6]! ^= 0x01; // the header checksum
    expect(() => decompressLz4Frames(header)).toThrow();
    expect(() => decompressLz4Frames(frame.subarray(0, frame.length - 5))).toThrow();
  });

  it('compresses rrweb-like JSONL no worse than lz4-napi', () => {
    const data = jsonl(50_000);
    expect(compressLz4Frame(data).length).toBeLessThanOrEqual(
      compressFrameSync(data, { contentChecksum: true }).length * 1.02,
    );
  });
});
