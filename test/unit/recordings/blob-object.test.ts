import { describe, expect, it } from 'vitest';
import { compressLz4Frame } from '../../../src/codec/lz4-frames.ts';
import {
  type BlockEntry,
  decodeBlock,
  decodeObject,
  decodeTrailer,
  encodeFooter,
  OBJECT_FORMAT_VERSION,
  TRAILER_BYTES,
  zstdBlock,
} from '../../../src/recordings/blob-object.ts';

const jsonlA = Buffer.from(
  '["w1",{"type":4,"timestamp":1,"data":{"href":"https://a/"}}]\n["w1",{"type":3,"timestamp":2,"data":{"source":1}}]\n',
);
const jsonlB = Buffer.from('["w2",{"type":2,"timestamp":5,"data":{}}]\n');

function entry(start: number, end: number, codec: 'lz4-frame' | 'zstd', sessionId: string): BlockEntry {
  return {
    teamId: 1,
    sessionId,
    distinctId: 'd',
    start,
    end,
    codec,
    snapshotSource: 'web',
    snapshotLibrary: 'web',
    windowIds: ['w1'],
    firstTimestamp: 1,
    lastTimestamp: 2,
    eventCount: 2,
    messageCount: 1,
    rawBytes: 10,
    clickCount: 0,
    keypressCount: 0,
    mouseActivityCount: 1,
    consoleLogCount: 0,
    consoleWarnCount: 0,
    consoleErrorCount: 0,
    activeMilliseconds: 1,
    activeIntervals: [[2, 2]],
    firstUrl: 'https://a/',
    firstUrlTimestamp: 1,
    urls: ['https://a/'],
    kafka: [{ topic: 't', partition: 0, firstOffset: 3, lastOffset: 3 }],
  };
}

/** An object with an LZ4 block (two frames, as capture would have made) and a zstd block. */
function sampleObject() {
  const blockA = Buffer.concat([compressLz4Frame(jsonlA.subarray(0, 60)), compressLz4Frame(jsonlA.subarray(60))]);
  const blockB = zstdBlock(jsonlB);
  const blocks = [
    entry(0, blockA.length - 1, 'lz4-frame', 'a'),
    entry(blockA.length, blockA.length + blockB.length - 1, 'zstd', 'b'),
  ];
  const footer = { version: OBJECT_FORMAT_VERSION, createdAt: 7, retention: '90d' as const, writer: 'test', blocks };
  return { object: Buffer.concat([blockA, blockB, encodeFooter(footer)]), footer };
}

describe('blob object format (byte-level codec)', () => {
  it('round-trips the footer and addresses each block by an inclusive byte range, codec recorded per block', () => {
    const { object, footer } = sampleObject();
    expect(object.subarray(object.length - 8).toString('latin1')).toBe('RPLOBJ01');
    const decoded = decodeObject(object);
    expect(decoded).toEqual(footer);
    const [a, b] = decoded.blocks;
    expect(decodeBlock(object.subarray(a!.start, a!.end + 1), a!.codec).equals(jsonlA)).toBe(true);
    expect(decodeBlock(object.subarray(b!.start, b!.end + 1), b!.codec).equals(jsonlB)).toBe(true);
  });

  it('finds the footer from the 16-byte trailer alone (what a range reader fetches first)', () => {
    const { object } = sampleObject();
    const trailer = decodeTrailer(object.subarray(object.length - TRAILER_BYTES), object.length);
    const footerText = object.subarray(trailer.footerStart, trailer.footerStart + trailer.footerLength).toString();
    expect(JSON.parse(footerText).retention).toBe('90d');
  });

  it('rejects a missing trailer, a damaged footer, an unknown version and damaged blocks', () => {
    const { object } = sampleObject();
    expect(() => decodeObject(object.subarray(0, object.length - 3))).toThrow(
      expect.objectContaining({ code: 'object_corrupt' }),
    );
    const damaged = Buffer.from(object);
    damaged[object.length - TRAILER_BYTES - 10]! ^= 0x20;
    expect(() => decodeObject(damaged)).toThrow(/checksum/);
    const future = encodeFooter({ version: 2, createdAt: 1, retention: '30d', writer: 'x', blocks: [] });
    expect(() => decodeObject(future)).toThrow(/version 2/);
    const { footer } = sampleObject();
    const a = footer.blocks[0]!;
    expect(() => decodeBlock(object.subarray(a.start, a.end), 'lz4-frame')).toThrow(
      expect.objectContaining({ code: 'payload_corrupt' }),
    );
    const b = footer.blocks[1]!;
    const badZstd = Buffer.from(object.subarray(b.start, b.end + 1));
    badZstd[badZstd.length - 2]! ^= 0xff;
    expect(() => decodeBlock(badZstd, 'zstd')).toThrow();
  });
});
