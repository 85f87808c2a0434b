import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { objectKey } from '../../src/blob-consumer/write-objects.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { type RetentionClass, retentionClasses } from '../../src/recordings/message-codec.ts';
import { retentionDays } from '../../src/recordings/summary-row.ts';
import { FsBlobStore } from '../../src/storage/fs-blob-store.ts';
import { startRetentionSweeper, sweepExpiredObjects } from '../../src/storage/fs-retention-sweeper.ts';

const DAY = 86_400_000;
const PREFIX = 'session_recordings';
/** Midday, so "today" and the day boundaries are unambiguous. */
const NOW = Date.UTC(2026, 11, 2, 12, 0, 0);
const today = Date.UTC(2026, 11, 2);

/** A logger whose lines are kept for the test to read. */
function capturingLog() {
  const lines: string[] = [];
  return { lines, log: createLogger('info', 'sweep', (line) => lines.push(line) > 0) };
}

describe('the filesystem blob store retention sweeper', () => {
  let root: string;
  let store: FsBlobStore;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'retention-sweep-'));
    store = new FsBlobStore(root);
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** Writes `count` objects as a flush at `at` writes them (the live path's key). */
  async function put(retention: RetentionClass, at: number, count = 2): Promise<string[]> {
    const keys: string[] = [];
    for (let i = 0; i < count; i++) {
      const writer = store.newObject(objectKey(PREFIX, retention, at + i));
      await writer.write(Buffer.from('object'));
      keys.push((await writer.finish()).key);
    }
    return keys;
  }

  const keysUnder = async (prefix: string) => {
    const keys: string[] = [];
    for await (const key of store.list(prefix)) keys.push(key);
    return keys;
  };

  it('deletes, per class, exactly the days its retention has passed, as a lifecycle rule counts them', async () => {
    const expired: string[] = [];
    const kept: string[] = [];
    for (const retention of retentionClasses) {
      const days = retentionDays[retention];
      // Day D expires at D + days + 1 (S3 rounds creation + days up to the next midnight UTC): the youngest expired
      // day was created days + 1 before today, late in the day; the oldest kept one days before today, at midnight.
      expired.push(...(await put(retention, today - (days + 1) * DAY + DAY - 1000)));
      expired.push(...(await put(retention, today - (days + 40) * DAY)));
      kept.push(...(await put(retention, today - days * DAY)));
      kept.push(...(await put(retention, NOW - 1000)));
    }
    // A day holding a leftover partial upload of a flush that died: it goes with its day.
    await writeFile(join(root, dirname(expired[0]!), 'leftover.0f.partial'), 'part');
    // What the key scheme does not name is not the sweeper's: another prefix, a stray directory.
    await mkdir(join(root, 'other', '30d', '2020', '01', '01'), { recursive: true });
    await writeFile(join(root, 'other', '30d', '2020', '01', '01', 'x'), 'x');
    await mkdir(join(root, PREFIX, '30d', 'notes'), { recursive: true });

    const { lines, log } = capturingLog();
    const result = await sweepExpiredObjects({ root, prefix: PREFIX, maxObjects: 1000, log, now: () => NOW });

    expect(result).toEqual({ removed: expired.length + 1, more: false });
    expect((await keysUnder(`${PREFIX}/`)).sort()).toEqual(kept.sort());
    expect(await keysUnder('other/')).toEqual(['other/30d/2020/01/01/x']);
    // Emptied day, month and year directories are gone; kept days and unknown directories stay.
    const days = retentionDays['30d'];
    const keptDay = new Date(today - days * DAY).toISOString().slice(0, 10).split('-');
    expect((await readdir(join(root, PREFIX, '30d'))).sort()).toEqual([keptDay[0], 'notes'].sort());
    // 2026-09 held only expired days: its directory went with them.
    expect((await readdir(join(root, PREFIX, '30d', '2026'))).sort()).toEqual(['11', '12']);
    const thirtyOneDaysAgo = new Date(today - (days + 1) * DAY).toISOString().slice(0, 10);
    await expect(readdir(join(root, PREFIX, '30d', ...thirtyOneDaysAgo.split('-')))).rejects.toThrow(/ENOENT/);
    expect((await readdir(join(root, PREFIX, '5y'))).length).toBeGreaterThan(0);
    // What was removed is logged, per class and day.
    const removedLines = lines.filter((l) => l.includes('retention sweep removed expired objects'));
    expect(removedLines).toHaveLength(retentionClasses.length * 2);
    expect(removedLines.some((l) => l.includes('class=30d') && l.includes(`day=${thirtyOneDaysAgo}`))).toBe(true);

    // A second sweep finds nothing more.
    expect(await sweepExpiredObjects({ root, prefix: PREFIX, maxObjects: 1000, log, now: () => NOW })).toEqual({
      removed: 0,
      more: false,
    });
  });

  it('deletes at most maxObjects per sweep, oldest first, and finishes in later sweeps', async () => {
    const oldest = await put('30d', today - 200 * DAY, 3);
    const older = await put('30d', today - 100 * DAY, 3);
    const kept = await put('30d', today - 2 * DAY, 1);
    const { log } = capturingLog();
    const sweep = () => sweepExpiredObjects({ root, prefix: PREFIX, maxObjects: 4, log, now: () => NOW });

    expect(await sweep()).toEqual({ removed: 4, more: true });
    const left = await keysUnder(`${PREFIX}/`);
    expect(left.filter((k) => oldest.includes(k))).toEqual([]);
    expect(left.filter((k) => older.includes(k))).toHaveLength(2);
    expect(await sweep()).toEqual({ removed: 2, more: false });
    expect(await keysUnder(`${PREFIX}/`)).toEqual(kept);
  });

  it('sweeps at start, then on its interval, and stop() cancels the next sweep', async () => {
    await put('30d', today - 60 * DAY, 2);
    const recent = await put('30d', today - 10 * DAY, 1);
    const { lines, log } = capturingLog();
    let clock = NOW;
    const sweeper = startRetentionSweeper({
      root,
      prefix: PREFIX,
      maxObjects: 100,
      log,
      intervalMs: 50,
      now: () => clock,
    });
    await expect.poll(() => keysUnder(`${PREFIX}/`)).toEqual(recent);
    // The sweep logs once its deletes are done, so the line may follow the poll that saw them.
    await expect
      .poll(() => lines.some((l) => l.includes('retention sweep done') && l.includes('removed=2')))
      .toBe(true);

    // Three weeks later the recent object is past its 30 days too: a later sweep removes it without a call.
    clock = NOW + 21 * DAY;
    await expect.poll(() => keysUnder(`${PREFIX}/`)).toEqual([]);

    await sweeper.stop();
    const afterStop = await put('1y', today - 800 * DAY, 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await keysUnder(`${PREFIX}/1y/`)).toEqual(afterStop);
  });
});
