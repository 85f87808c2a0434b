import { randomBytes } from 'node:crypto';
import * as lz4 from 'lz4-napi';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DecodeSlots } from '../../../src/api/replay-api.ts';
import type { SessionBlock } from '../../../src/api/session-catalog.ts';
import { decodeStoredBlock, sessionEventLines } from '../../../src/api/session-events.ts';
import {
  compressLz4Frame,
  decompressLz4Frames,
  decompressLz4FramesWithin,
  lz4BlockOutputSize,
} from '../../../src/codec/lz4-frames.ts';
import { isReplayError, ReplayError } from '../../../src/errors/index.ts';
import { zstdBlock } from '../../../src/recordings/blob-object.ts';

// The frame decoder, wrapped so a test can see which frames were actually decoded (a bounded decode never hands a
// frame that would cross the limit to the decoder at all).
vi.mock('lz4-napi', async (importOriginal) => {
  const actual = await importOriginal<typeof import('lz4-napi')>();
  return { ...actual, decompressFrameSync: vi.fn(actual.decompressFrameSync) };
});
const decodedFrames = vi.mocked(lz4.decompressFrameSync);
afterEach(() => decodedFrames.mockClear());

const MiB = 1024 * 1024;
/** rrweb-like JSONL: compressible, but not trivially (LZ4 sequences of every length). */
function jsonl(bytes: number, seed = 1): Buffer {
  const lines: string[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const line = `${JSON.stringify(['w', { type: 3, timestamp: 1000 + i, data: { source: (i * seed) % 7, text: `row ${i} ${'x'.repeat((i * 37 * seed) % 300)}`, id: i } }])}\n`;
    lines.push(line);
    size += line.length;
  }
  return Buffer.from(lines.join(''));
}

/** The data blocks of one LZ4 frame without optional header fields (what compressLz4Frame makes): [start, end). */
function frameBlocks(frame: Buffer): [number, number, boolean][] {
  const blocks: [number, number, boolean][] = [];
  let at = 4 + 2 + 1;
  for (;;) {
    const word = frame.readUInt32LE(at);
    at += 4;
    if (word === 0) return blocks;
    const size = word & 0x7fffffff;
    blocks.push([at, at + size, (word & 0x80000000) !== 0]);
    at += size;
  }
}

describe('bounded LZ4 frame decoding', () => {
  it('decodes exactly what decompressLz4Frames does while under the limit', () => {
    const parts = [jsonl(300_000), jsonl(5_000, 3), randomBytes(70_000), jsonl(1_200_000, 5)];
    const stored = Buffer.concat(parts.map(compressLz4Frame));
    const whole = Buffer.concat(parts);
    expect(decompressLz4FramesWithin(stored, whole.length)!.equals(whole)).toBe(true);
    expect(decompressLz4FramesWithin(stored, Number.POSITIVE_INFINITY)!.equals(decompressLz4Frames(stored))).toBe(true);
  });

  it('counts the output of an LZ4 block from its sequences, without decoding it', () => {
    for (const data of [
      jsonl(3 * MiB),
      jsonl(100_000, 7),
      randomBytes(50_000),
      Buffer.alloc(2 * MiB),
      Buffer.from('x'),
    ]) {
      const frame = compressLz4Frame(data);
      let total = 0;
      for (const [from, to, stored] of frameBlocks(frame))
        total += stored ? to - from : lz4BlockOutputSize(frame, from, to);
      expect(total).toBe(data.length);
    }
  });

  it('refuses, exactly at the limit, a frame that would inflate past it, without decoding it', () => {
    // One 3 MiB block: its quick bound (the 4 MiB block maximum) passes the limit, so the exact count decides.
    const data = jsonl(3 * MiB);
    const frame = compressLz4Frame(data);
    expect(decompressLz4FramesWithin(frame, data.length)!.length).toBe(data.length);
    decodedFrames.mockClear();
    expect(decompressLz4FramesWithin(frame, data.length - 1)).toBeUndefined();
    expect(decodedFrames).not.toHaveBeenCalled();
  });

  it('stops a decompression bomb before it inflates: 200 MiB of zeros in a few hundred KB', () => {
    const bomb = compressLz4Frame(Buffer.alloc(200 * MiB));
    expect(bomb.length).toBeLessThan(MiB);
    const before = process.memoryUsage().arrayBuffers;
    expect(decompressLz4FramesWithin(bomb, 8 * MiB)).toBeUndefined();
    expect(decodedFrames).not.toHaveBeenCalled();
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * MiB);
  });

  it('stops between frames once the running total would pass the limit', () => {
    const frames = Array.from({ length: 5 }, (_, i) => compressLz4Frame(jsonl(500_000, i + 1)));
    const sizes = frames.map((f) => decompressLz4Frames(f).length);
    const limit = sizes[0]! + sizes[1]! + 10;
    decodedFrames.mockClear();
    expect(decompressLz4FramesWithin(Buffer.concat(frames), limit)).toBeUndefined();
    expect(decodedFrames).toHaveBeenCalledTimes(2); // the third frame is never decoded
  });

  it('still reports damage as damage', () => {
    const frame = compressLz4Frame(jsonl(10_000));
    expect(() => decompressLz4FramesWithin(frame.subarray(0, frame.length - 9), MiB)).toThrow();
  });
});

describe('stored blocks under API_MAX_BLOCK_BYTES', () => {
  const tooLarge = (fn: () => unknown) => {
    try {
      fn();
    } catch (error) {
      return isReplayError(error, 'block_too_large');
    }
    return false;
  };

  it('refuses LZ4 and zstd blocks that inflate past the limit with block_too_large, decodes the rest', () => {
    const data = jsonl(2 * MiB);
    expect(tooLarge(() => decodeStoredBlock(compressLz4Frame(data), 0, MiB))).toBe(true);
    expect(tooLarge(() => decodeStoredBlock(zstdBlock(data), 0, MiB))).toBe(true);
    expect(tooLarge(() => decodeStoredBlock(zstdBlock(Buffer.alloc(300 * MiB)), 0, 4 * MiB))).toBe(true);
    expect(decodeStoredBlock(compressLz4Frame(data), 0, data.length).equals(data)).toBe(true);
    expect(decodeStoredBlock(zstdBlock(data), 0, data.length).equals(data)).toBe(true);
  });

  it('keeps damage block_corrupt', () => {
    const zstd = zstdBlock(jsonl(10_000));
    expect(() => decodeStoredBlock(zstd.subarray(0, zstd.length - 5), 0, MiB)).toThrow(
      expect.objectContaining({ code: 'block_corrupt' }),
    );
  });

  it("turns an oversized block into a missing_block line with a generic detail, logging the error's own text", async () => {
    const event = (timestamp: number) => ({ type: 3, timestamp, data: { source: 1 } });
    const line = (timestamp: number) => Buffer.from(`${JSON.stringify(['w', event(timestamp)])}\n`);
    const contents = [
      compressLz4Frame(line(1)),
      compressLz4Frame(Buffer.concat([line(5), jsonl(2 * MiB)])),
      zstdBlock(line(9)),
    ];
    const list: SessionBlock[] = contents.map((_, index) => ({
      index,
      id: `block${index}`,
      firstTimestamp: [1, 5, 9][index]!,
      lastTimestamp: [1, 5, 9][index]! + 1,
      url: `s3://secret-bucket/rec/${index}?range=bytes=0-9`,
    }));
    const missing: ReplayError[] = [];
    const out: unknown[] = [];
    const lines = sessionEventLines(list, async (b) => contents[b.index]!, {
      maxBlockBytes: MiB,
      onMissing: (_block, error) => missing.push(error),
    });
    for await (const text of lines) out.push(JSON.parse(text));
    expect(out).toEqual([
      ['w', event(1)],
      {
        missing_block: {
          index: 1,
          first_timestamp: new Date(5).toISOString(),
          last_timestamp: new Date(6).toISOString(),
          code: 'block_too_large',
          detail: expect.stringContaining('API_MAX_BLOCK_BYTES'),
        },
      },
      ['w', event(9)],
    ]);
    expect(missing.map((e) => e.code)).toEqual(['block_too_large']);
  });

  it('never puts a store error text into a missing_block line', async () => {
    const list: SessionBlock[] = [{ index: 0, id: 'b', firstTimestamp: 1, lastTimestamp: 2, url: 'x' }];
    const secret = 'read of rec/90d/2026/11/18/object-1 in s3://secret-bucket failed: AccessDenied for arn:aws:iam::1';
    const cases: [() => never, string][] = [
      [
        () => {
          throw new Error(secret);
        },
        'blob_store_unavailable',
      ],
      [
        () => {
          throw new ReplayError('blob_store_unavailable', secret);
        },
        'blob_store_unavailable',
      ],
      [
        () => {
          throw new ReplayError('blob_not_found', `no object rec/90d/2026/11/18/object-1 (${secret})`);
        },
        'blob_not_found',
      ],
    ];
    for (const [fail, code] of cases) {
      const logged: ReplayError[] = [];
      const out: string[] = [];
      for await (const text of sessionEventLines(list, async () => fail(), { onMissing: (_b, e) => logged.push(e) })) {
        out.push(text);
      }
      expect(out).toHaveLength(1);
      expect(JSON.parse(out[0]!).missing_block.code).toBe(code);
      expect(out[0]).not.toContain('secret-bucket');
      expect(out[0]).not.toContain('object-1');
      expect(logged[0]!.message).toContain('secret-bucket'); // the log keeps the whole story
    }
  });
});

describe('decode slots', () => {
  it('grants up to its size, hands a released slot to the first waiter, and gives it back when idle', async () => {
    const slots = new DecodeSlots(2, 1000);
    const a = await slots.acquire();
    const b = await slots.acquire();
    expect(slots.inFlight).toBe(2);
    let granted = false;
    const waiting = slots.acquire().then((release) => {
      granted = true;
      return release;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(granted).toBe(false);
    a();
    a(); // twice is harmless
    const c = await waiting;
    expect(slots.inFlight).toBe(2);
    b();
    c();
    expect(slots.inFlight).toBe(0);
  });

  it('refuses with api_overloaded after the wait, at once when the queue is full, and at once with no wait', async () => {
    const slots = new DecodeSlots(1, 50);
    const held = await slots.acquire();
    const started = Date.now();
    const waited = slots.acquire();
    await expect(slots.acquire()).rejects.toMatchObject({ code: 'api_overloaded', httpStatus: 503 }); // queue of 1 full
    await expect(waited).rejects.toMatchObject({ code: 'api_overloaded' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    held();
    expect(slots.inFlight).toBe(0);

    const noWait = new DecodeSlots(1, 0);
    const only = await noWait.acquire();
    await expect(noWait.acquire()).rejects.toMatchObject({ code: 'api_overloaded' });
    only();
    (await noWait.acquire())();
    expect(noWait.inFlight).toBe(0);
  });
});
