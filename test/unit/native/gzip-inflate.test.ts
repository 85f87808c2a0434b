import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { nativeInflateGzipInto } from '../../../src/native/gzip-inflate.ts';

// The addon on byte buffers, alone (test/unit/capture/read-upload.test.ts compares it with node:zlib through uploads).
const inflateInto = nativeInflateGzipInto!;
const text = Buffer.from(
  JSON.stringify({ events: Array.from({ length: 500 }, (_, i) => ({ i, t: 'é😀'.repeat(i % 7) })) }),
);
const gz = gzipSync(text);

describe('the native gzip inflater', () => {
  it('is built (scripts/setup runs scripts/build-native)', () => {
    expect(nativeInflateGzipInto).toBeTypeOf('function');
  });

  it('inflates one member into the buffer it is given, exactly, with room to spare or none', () => {
    for (const room of [text.length, text.length + 1, text.length * 2]) {
      const out = Buffer.alloc(room);
      expect(inflateInto(gz, out)).toBe(text.length);
      expect(out.subarray(0, text.length).equals(text)).toBe(true);
    }
    expect(inflateInto(gzipSync(Buffer.alloc(0)), Buffer.alloc(1))).toBe(0);
  });

  it('answers -1 for too little room, damage, a wrong checksum, trailing bytes or a second member', () => {
    const out = Buffer.alloc(text.length * 2);
    expect(inflateInto(gz, Buffer.alloc(text.length - 1))).toBe(-1);
    for (let cut = 0; cut < gz.length; cut += 97) expect(inflateInto(gz.subarray(0, cut), out)).toBe(-1);
    const badCrc = Buffer.from(gz);
    badCrc[badCrc.length - 6]! ^= 1;
    expect(inflateInto(badCrc, out)).toBe(-1);
    expect(inflateInto(Buffer.concat([gz, Buffer.from([0])]), out)).toBe(-1);
    expect(inflateInto(Buffer.concat([gz, gz]), Buffer.alloc(text.length * 3))).toBe(-1);
    expect(inflateInto(text, out)).toBe(-1); // not gzip at all
    const headerCrc = Buffer.concat([gz.subarray(0, 10), Buffer.from([0, 0]), gz.subarray(10)]);
    headerCrc[3]! |= 0x02; // FHCRC: libdeflate would skip it unchecked, so node:zlib judges it
    expect(inflateInto(headerCrc, out)).toBe(-1);
  });

  it('answers -1 for arguments that are not two buffers', () => {
    const call = inflateInto as (...args: unknown[]) => number;
    expect(call(gz)).toBe(-1);
    expect(call('gzip', Buffer.alloc(10))).toBe(-1);
    expect(call(gz, 10)).toBe(-1);
  });
});
