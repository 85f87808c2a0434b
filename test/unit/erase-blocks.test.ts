import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { blockToErase, eraseBlocks } from '../../src/deletion/erase-blocks.ts';
import { decodeObject } from '../../src/recordings/blob-object.ts';
import type { SummaryRow } from '../../src/recordings/summary-row.ts';
import { FsBlobStore } from '../../src/storage/fs-blob-store.ts';
import type { Team } from '../../src/teams/team-store.ts';
import { syntheticSession } from '../support/expected-summary.ts';
import { utcMidnightDaysAgo, writeFlushes } from '../support/summary-rows.ts';

const team: Team = {
  id: 3,
  name: 't',
  apiToken: 'x',
  sessionRecordingEnabled: true,
  retention: '30d',
  consoleLogCaptureEnabled: true,
};
// Two days ago: objects inside their 30-day retention (the last test moves the clock past it).
const base = utcMidnightDaysAgo(2);

/** Erasing blocks from a shared object, on the bytes of a real object in a filesystem store. */
describe('eraseBlocks', () => {
  let dir: string;
  let store: FsBlobStore;
  let rows: SummaryRow[];
  let key: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'erase-'));
    store = new FsBlobStore(join(dir, 'blobs'));
    const sessions = ['a', 'b', 'c'].map((id, i) => ({
      sessionId: id,
      events: syntheticSession(i, base, 30),
      distinctId: `person-${id}`,
    }));
    rows = await writeFlushes({ dir, team, store, flushes: [sessions], now: () => base });
    key = blockToErase(store, rows[0]!.block_url)!.key;
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const whole = async () => store.getRange(key, 0, (await store.size(key))! - 1);
  const range = (row: SummaryRow) => blockToErase(store, row.block_url)!;

  it('zeroes the block in place, redacts its footer entry and leaves every other byte of the blocks as it was', async () => {
    const before = await whole();
    const b = rows.find((r) => r.session_id === 'b')!;
    const { start, end } = range(b);
    expect(await eraseBlocks(store, key, [range(b)], new Set(['3:b']))).toBe(end - start + 1);
    const after = await whole();
    expect(after.subarray(start, end + 1).every((byte) => byte === 0)).toBe(true);
    for (const row of rows.filter((r) => r !== b)) {
      const other = range(row);
      expect(after.subarray(other.start, other.end + 1).equals(before.subarray(other.start, other.end + 1))).toBe(true);
    }
    const footer = decodeObject(after);
    const entry = footer.blocks.find((block) => block.sessionId === 'b')!;
    expect(entry).toMatchObject({ deleted: true, distinctId: '', urls: [], firstUrl: null, start, end });
    expect(footer.blocks.find((block) => block.sessionId === 'a')).toMatchObject({ distinctId: 'person-a' });
    expect(footer.blocks.find((block) => block.sessionId === 'a')?.deleted).toBeUndefined();
  });

  it('changes nothing when run again (the object is not even rewritten)', async () => {
    const b = rows.find((r) => r.session_id === 'b')!;
    await eraseBlocks(store, key, [range(b)], new Set(['3:b']));
    const file = join(dir, 'blobs', key);
    const first = (await stat(file)).mtimeMs;
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await eraseBlocks(store, key, [range(b)], new Set(['3:b']))).toBe(0);
    expect((await stat(file)).mtimeMs).toBe(first);
  });

  it('has nothing to erase in an object that is gone', async () => {
    await store.delete(key);
    expect(await eraseBlocks(store, key, [range(rows[0]!)], new Set(['3:a']))).toBe(0);
  });

  it('still zeroes the range of an object whose footer does not decode', async () => {
    const bytes = await whole();
    bytes.fill(0x7b, bytes.length - 40, bytes.length - 16); // damage the end of the footer JSON
    await writeFile(join(dir, 'blobs', key), bytes);
    const a = range(rows.find((r) => r.session_id === 'a')!);
    expect(await eraseBlocks(store, key, [a], new Set(['3:a']))).toBe(a.end - a.start + 1);
    expect((await whole()).subarray(a.start, a.end + 1).every((byte) => byte === 0)).toBe(true);
  });

  it('reads block addresses of its own store only', () => {
    expect(blockToErase(store, 's3://elsewhere/k?range=bytes=0-9')).toBeUndefined();
    expect(blockToErase(store, `${store.urlOf(key)}?range=bytes=x-9`)).toBeUndefined();
    expect(blockToErase(store, `${store.urlOf(key)}?range=bytes=5-9`)).toEqual({ key, start: 5, end: 9 });
  });
});

describe('eraseBlocks on what the footer knows', () => {
  let dir: string;
  let store: FsBlobStore;
  let rows: SummaryRow[];
  let key: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'erase-footer-'));
    store = new FsBlobStore(join(dir, 'blobs'));
    const sessions = ['a', 'b'].map((id, i) => ({ sessionId: id, events: syntheticSession(10 + i, base, 30) }));
    rows = await writeFlushes({ dir, team, store, flushes: [sessions], now: () => base });
    key = blockToErase(store, rows[0]!.block_url)!.key;
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('also zeroes a block of the session that its address list missed, and never writes into the footer', async () => {
    const b = blockToErase(store, rows.find((r) => r.session_id === 'b')!.block_url)!;
    const size = (await store.size(key))!;
    // No address of b's block given, only one pointing into the footer: b's block is zeroed from the footer entry.
    expect(await eraseBlocks(store, key, [{ key, start: size - 20, end: size - 1 }], new Set(['3:b']))).toBe(
      b.end - b.start + 1,
    );
    const after = await store.getRange(key, 0, (await store.size(key))! - 1);
    expect(after.subarray(b.start, b.end + 1).every((byte) => byte === 0)).toBe(true);
    expect(decodeObject(after).blocks.find((block) => block.sessionId === 'b')?.deleted).toBe(true);
  });
});

describe('eraseBlocks on an object past its retention', () => {
  it('removes the object instead of rewriting it (a rewrite would restart its lifecycle clock)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'erase-expired-'));
    try {
      const store = new FsBlobStore(join(dir, 'blobs'));
      const sessions = [{ sessionId: 'a', events: syntheticSession(5, base, 20) }];
      const [row] = await writeFlushes({ dir, team, store, flushes: [sessions], now: () => base });
      const block = blockToErase(store, row!.block_url)!;
      // The key is dated `base` in the 30d class: 20 days later it is within, 32 days later past.
      await eraseBlocks(store, block.key, [block], new Set(['3:a']), base + 20 * 86_400_000);
      expect(await store.size(block.key)).toBeGreaterThan(0);
      await eraseBlocks(store, block.key, [block], new Set(['3:a']), base + 32 * 86_400_000);
      expect(await store.size(block.key)).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
