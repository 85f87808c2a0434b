import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { orderBlocks, type SessionBlock } from '../../../src/api/session-catalog.ts';
import { sessionEventLines } from '../../../src/api/session-events.ts';
import { compressLz4Frame } from '../../../src/codec/lz4-frames.ts';
import { ReplayError } from '../../../src/errors/index.ts';
import { blockCodecOf, zstdBlock } from '../../../src/recordings/blob-object.ts';

type Event = { type: number; timestamp: number; data: Record<string, unknown>; cv?: string };
const event = (timestamp: number, n = timestamp): Event => ({ type: 3, timestamp, data: { source: 1, n } });
const jsonl = (events: Event[], windowId = 'w1') =>
  Buffer.from(events.map((e) => `${JSON.stringify([windowId, e])}\n`).join(''));

function blocks(
  contents: Buffer[],
  firsts: number[],
): { list: SessionBlock[]; read: (b: SessionBlock) => Promise<Buffer> } {
  const list = contents.map((_, index) => ({
    index,
    id: `block${index}`,
    firstTimestamp: firsts[index]!,
    lastTimestamp: firsts[index]! + 100,
    url: `mem://${index}`,
  }));
  return { list, read: async (block) => contents[block.index]! };
}

async function collect(lines: AsyncGenerator<string>) {
  const out: unknown[] = [];
  for await (const line of lines) out.push(JSON.parse(line));
  return out;
}

describe('stored block codecs', () => {
  it('tells LZ4 frames from zstd by magic number and refuses anything else', () => {
    const text = jsonl([event(1)]);
    expect(blockCodecOf(compressLz4Frame(text))).toBe('lz4-frame');
    expect(blockCodecOf(zstdBlock(text))).toBe('zstd');
    expect(() => blockCodecOf(text)).toThrow(expect.objectContaining({ code: 'block_corrupt' }));
    expect(() => blockCodecOf(Buffer.alloc(2))).toThrow(expect.objectContaining({ code: 'block_corrupt' }));
  });
});

describe("a session's event stream", () => {
  it('merges overlapping blocks into event-time order and writes a resent event once', async () => {
    const duplicate = event(6, 99);
    const { list, read } = blocks(
      [
        compressLz4Frame(jsonl([event(1), event(5), duplicate, event(9)])),
        zstdBlock(jsonl([event(4), duplicate, event(10)])),
      ],
      [1, 4],
    );
    const out = (await collect(sessionEventLines(list, read))) as [string, Event][];
    expect(out.map(([, e]) => e.timestamp)).toEqual([1, 4, 5, 6, 9, 10]);
    expect(out.every(([windowId]) => windowId === 'w1')).toBe(true);
  });

  it('keeps two different events that share a timestamp', async () => {
    const { list, read } = blocks([compressLz4Frame(jsonl([event(3, 1), event(3, 2)]))], [3]);
    expect(await collect(sessionEventLines(list, read))).toHaveLength(2);
  });

  it('undoes posthog-js compression server-side', async () => {
    const snapshot = { type: 2, timestamp: 7, data: { node: { id: 1, type: 0, childNodes: [] } } };
    const squeezed = { ...snapshot, cv: '2024-10', data: gzipSync(JSON.stringify(snapshot.data)).toString('latin1') };
    const { list, read } = blocks([compressLz4Frame(jsonl([squeezed as never]))], [7]);
    expect(await collect(sessionEventLines(list, read))).toEqual([['w1', snapshot]]);
  });

  it('puts a missing_block line where a block could not be read, damaged or gone, and goes on', async () => {
    const contents = [
      compressLz4Frame(jsonl([event(1)])),
      Buffer.alloc(0),
      randomBytes(64),
      zstdBlock(jsonl([event(40)])),
    ];
    const { list } = blocks(contents, [1, 10, 20, 40]);
    const read = async (block: SessionBlock) => {
      if (block.index === 1) throw new ReplayError('blob_not_found', 'gone');
      return contents[block.index]!;
    };
    const out = (await collect(sessionEventLines(list, read))) as unknown[];
    expect(out).toEqual([
      ['w1', event(1)],
      {
        missing_block: expect.objectContaining({
          index: 1,
          code: 'blob_not_found',
          first_timestamp: new Date(10).toISOString(),
        }),
      },
      { missing_block: expect.objectContaining({ index: 2, code: 'block_corrupt' }) },
      ['w1', event(40)],
    ]);
  });

  it('marks a block whose lines are not [window_id, event] as corrupt', async () => {
    const { list, read } = blocks([compressLz4Frame(Buffer.from('{"not":"a line"}\n'))], [1]);
    expect(await collect(sessionEventLines(list, read))).toEqual([
      { missing_block: expect.objectContaining({ index: 0, code: 'block_corrupt' }) },
    ]);
  });
});

describe('block numbering', () => {
  it('orders blocks by first timestamp, counts a block stored twice once, and ids stay stable', () => {
    const ordered = orderBlocks(
      [30, 10, 20, 10],
      [35, 15, 25, 15],
      ['s3://b/c?range=bytes=0-9', 's3://b/a?range=bytes=0-9', 's3://b/b?range=bytes=0-9', 's3://b/a?range=bytes=0-9'],
    );
    expect(ordered.map((b) => [b.index, b.firstTimestamp, b.url.slice(5, 8)])).toEqual([
      [0, 10, 'b/a'],
      [1, 20, 'b/b'],
      [2, 30, 'b/c'],
    ]);
    expect(orderBlocks([10], [15], ['s3://b/a?range=bytes=0-9'])[0]!.id).toBe(ordered[0]!.id);
    expect(ordered[0]!.id).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });
});
