import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { ensureTopics } from '../../../src/kafka/admin.ts';
import { topicNames } from '../../../src/kafka/topics.ts';
import {
  expectExactlyOnce,
  freshBucketStore,
  sessionMessages,
  startTestBlobConsumer,
  teamRows,
  testTeam,
  waitForTeamRows,
} from '../../support/blob-consumer.ts';
import { syntheticSession } from '../../support/expected-summary.ts';
import { produceAll, readTopic } from '../../support/kafka.ts';
import { eventually } from '../../support/kafka-offsets.ts';
import { metricValue, scrape } from '../../support/metrics.ts';

const stack = inject('stack');
const brokers = stack.kafka!.brokers;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const MiB = 1024 * 1024;

/** A real, size-limited filesystem (tmpfs) for the spool: the disk filling up is the kernel's ENOSPC, not a mock. */
function smallFilesystem(bytes: number): { dir: string; unmount(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'replay-small-fs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir]);
  } catch (error) {
    throw new Error(`this test mounts a tmpfs for the spool and needs root: ${(error as Error).message}`);
  }
  return {
    dir,
    unmount() {
      execFileSync('umount', ['-l', dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function sessionsOf(seed: number, count: number, events: number) {
  const base = Date.UTC(2026, 10, 25, 9, 0, 0);
  return Array.from({ length: count }, (_, i) => ({
    sessionId: randomUUID(),
    events: syntheticSession(seed + i, base + i * 9000, events),
  }));
}

describe('blob consumer on a full spool disk (a real tmpfs)', () => {
  it('ENOSPC is backpressure: the consumer flushes to free the spool, pauses, resumes, and loses nothing', async () => {
    const topic = `recordings-enospc-${randomUUID()}`;
    await ensureTopics(brokers, [{ name: topic, partitions: 2, config: {} }]);
    const store = await freshBucketStore();
    const team = testTeam(950_000 + Math.floor(Math.random() * 10_000));
    const sessions = sessionsOf(900, 40, 300);
    const records = sessions.flatMap((s) => sessionMessages(topic, team, s.sessionId, s.events, 4));
    const bytes = records.reduce((n, r) => n + r.value.length, 0);
    // A spool disk a quarter the size of what arrives, and no watermark: only ENOSPC can stop the spool.
    const fs = smallFilesystem(Math.max(64 * 1024, Math.floor(bytes / 4)));
    cleanups.push(() => fs.unmount());
    const running = await startTestBlobConsumer({
      brokers,
      topic,
      store,
      env: {
        BLOB_SPOOL_DIR: fs.dir,
        BLOB_MIN_FREE_DISK_BYTES: '0',
        // Long enough that the spool fills before the age trigger: the first flushes happen because of ENOSPC.
        BLOB_FLUSH_INTERVAL_MS: '5000',
      },
    });
    cleanups.push(() => running.stop());
    await produceAll(brokers, records);
    const rows = await waitForTeamRows(
      brokers,
      team.id,
      sessions.reduce((n, s) => n + s.events.length, 0),
    );
    const metrics = await scrape(running.http.url);
    expect(metricValue(metrics, 'consumer_retries_total', { code: 'disk_full' })).toBeGreaterThan(0);
    expect(metricValue(metrics, 'blob_flushes_total', { reason: 'disk' })).toBeGreaterThan(0);
    expect(metricValue(metrics, 'consumer_quarantined_total')).toBe(0);
    await expectExactlyOnce(store, rows, sessions, expect);
  });

  it('below the free-space watermark intake pauses until space returns, then everything lands once', async () => {
    const topic = `recordings-watermark-${randomUUID()}`;
    await ensureTopics(brokers, [{ name: topic, partitions: 2, config: {} }]);
    const store = await freshBucketStore();
    const team = testTeam(960_000 + Math.floor(Math.random() * 10_000));
    const sessions = sessionsOf(1900, 12, 60);
    const fs = smallFilesystem(16 * MiB);
    cleanups.push(() => fs.unmount());
    // Someone else's file leaves 3 MiB free: below half of the 8 MiB watermark.
    const ballast = join(fs.dir, 'ballast');
    writeFileSync(ballast, Buffer.alloc(13 * MiB));
    const running = await startTestBlobConsumer({
      brokers,
      topic,
      store,
      env: { BLOB_SPOOL_DIR: fs.dir, BLOB_MIN_FREE_DISK_BYTES: String(8 * MiB), BLOB_FLUSH_INTERVAL_MS: '500' },
    });
    cleanups.push(() => running.stop());
    await produceAll(
      brokers,
      sessions.flatMap((s) => sessionMessages(topic, team, s.sessionId, s.events, 2)),
    );
    await pause(4000);
    const held = await readTopic(brokers, topicNames.replaySummaries, { idleMs: 1000 });
    expect(teamRows(held, team.id)).toEqual([]);
    const metrics = await scrape(running.http.url);
    expect(metricValue(metrics, 'consumer_paused')).toBe(1);
    expect(metricValue(metrics, 'blob_spool_free_disk_bytes')).toBeLessThan(4 * MiB);

    rmSync(ballast);
    const rows = await waitForTeamRows(
      brokers,
      team.id,
      sessions.reduce((n, s) => n + s.events.length, 0),
    );
    await expectExactlyOnce(store, rows, sessions, expect);
    await eventually(
      async () => metricValue(await scrape(running.http.url), 'consumer_paused') === 0,
      'fetching to resume once the disk has room',
    );
  });
});
