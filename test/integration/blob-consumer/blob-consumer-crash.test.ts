import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { findOrphans } from '../../../src/blob-consumer/orphans.ts';
import { ensureTopics } from '../../../src/kafka/admin.ts';
import { topicNames } from '../../../src/kafka/topics.ts';
import {
  expectExactlyOnce,
  freshBucketStore,
  sessionMessages,
  testTeam,
  waitForTeamRows,
} from '../../support/blob-consumer.ts';
import { syntheticSession } from '../../support/expected-summary.ts';
import { produceAll } from '../../support/kafka.ts';

const stack = inject('stack');
const brokers = stack.kafka!.brokers;

/** A blob consumer in its own process, so the test can kill -9 it; resolves `marker` when its log shows `waitFor`. */
function spawnConsumer(env: Record<string, string>, waitFor?: string) {
  const child: ChildProcess = spawn(process.execPath, ['bin/replay.js', 'blob-consumer'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const marker = new Promise<void>((resolve) => {
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      if (waitFor && log.includes(waitFor)) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { child, marker, exited, log: () => log };
}

describe('blob consumer killed with SIGKILL at random points', () => {
  it('loses no event and duplicates no summary among committed records', async () => {
    const topic = `recordings-crash-${randomUUID()}`;
    await ensureTopics(brokers, [{ name: topic, partitions: 4, config: {} }]);
    const store = await freshBucketStore();
    const team = testTeam(920_000 + Math.floor(Math.random() * 10_000));
    const base = Date.UTC(2026, 10, 21, 8, 0, 0);
    const sessions = Array.from({ length: 24 }, (_, i) => ({
      sessionId: randomUUID(),
      events: syntheticSession(100 + i, base + i * 10_000, 80),
    }));
    // Each session's messages are produced in three waves, between crashes.
    const waves = [0, 1, 2].map((wave) =>
      sessions.flatMap((s) => sessionMessages(topic, team, s.sessionId, s.events.slice(wave * 28, (wave + 1) * 28), 2)),
    );
    const env = {
      KAFKA_BROKERS: brokers,
      LOG_LEVEL: 'debug',
      BLOB_TOPIC: topic,
      BLOB_GROUP_ID: `crash-${randomUUID()}`,
      BLOB_TRANSACTIONAL_ID: `crash-${randomUUID()}`,
      // Static membership: each restart takes the partitions back at once instead of waiting out the dead member.
      KAFKA_GROUP_INSTANCE_ID: `crash-member-${randomUUID()}`,
      BLOB_STORE: 's3',
      S3_BUCKET: store.bucket,
      S3_ENDPOINT: stack.minio!.endpoint,
      S3_ACCESS_KEY_ID: stack.minio!.accessKeyId,
      S3_SECRET_ACCESS_KEY: stack.minio!.secretAccessKey,
      BLOB_SPOOL_DIR: await mkdtemp(join(tmpdir(), 'replay-crash-spool-')),
      BLOB_FLUSH_INTERVAL_MS: '500',
      BLOB_MIN_FREE_DISK_BYTES: '0',
      BLOB_CONSUMER_PORT: '0',
    };

    // 1: killed while consuming and spooling, before any flush can finish.
    await produceAll(brokers, waves[0]!);
    let run = spawnConsumer({ ...env, BLOB_FLUSH_INTERVAL_MS: '60000' }, 'consuming');
    await run.marker;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    run.child.kill('SIGKILL');
    await run.exited;

    // 2: killed after its objects are written and before the transaction commits.
    run = spawnConsumer({ ...env, BLOB_FAULT_DELAY_BEFORE_COMMIT_MS: '5000' }, 'objects written; committing');
    await run.marker;
    run.child.kill('SIGKILL');
    await run.exited;

    // 3: a clean round commits something, then a kill at a random moment of the next.
    await produceAll(brokers, waves[1]!);
    run = spawnConsumer(env, '] flushed ');
    await Promise.race([run.marker, new Promise((resolve) => setTimeout(resolve, 20_000))]);
    expect(run.log()).toContain('flushed');
    await produceAll(brokers, waves[2]!);
    await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 1500)));
    run.child.kill('SIGKILL');
    await run.exited;

    // 4: a last consumer finishes the job.
    run = spawnConsumer(env);
    const rows = await waitForTeamRows(
      brokers,
      team.id,
      sessions.reduce((n, s) => n + s.events.length, 0),
    );
    run.child.kill('SIGTERM');
    await run.exited;

    await expectExactlyOnce(store, rows, sessions, expect);

    // The flush killed between upload and commit left an object nobody references: listed, then removable.
    const scan = () =>
      findOrphans({
        store,
        prefix: 'session_recordings',
        brokers,
        summaryTopic: topicNames.replaySummaries,
        minAgeMs: 0,
        maxAgeMs: 3_600_000,
      });
    const found = await scan();
    expect(found.orphans.length).toBeGreaterThanOrEqual(1);
    const referenced = new Set(rows.map((r) => store.keyOf(r.block_url.split('?')[0]!)));
    for (const key of found.orphans) expect(referenced.has(key)).toBe(false);
    for (const key of found.orphans) await store.delete(key);
    expect((await scan()).orphans).toEqual([]);
    await expectExactlyOnce(store, rows, sessions, expect);
  });
});

describe('two blob consumer processes configured with one transactional id', () => {
  it('the newer fences the older, which stops and exits non-zero with one line naming producer_fenced', async () => {
    const topic = `recordings-fenced-${randomUUID()}`;
    await ensureTopics(brokers, [{ name: topic, partitions: 2, config: {} }]);
    const store = await freshBucketStore();
    const team = testTeam(925_000 + Math.floor(Math.random() * 5_000));
    const base = Date.UTC(2026, 10, 27, 8, 0, 0);
    const wave = (seed: number) =>
      Array.from({ length: 4 }, (_, i) => ({
        sessionId: randomUUID(),
        events: syntheticSession(seed + i, base + i * 10_000, 30),
      })).flatMap((s) => sessionMessages(topic, team, s.sessionId, s.events, 2));
    const env = (group: string) => ({
      KAFKA_BROKERS: brokers,
      LOG_LEVEL: 'info',
      BLOB_TOPIC: topic,
      BLOB_GROUP_ID: group,
      BLOB_TRANSACTIONAL_ID: `fenced-${topic}`,
      BLOB_STORE: 's3',
      S3_BUCKET: store.bucket,
      S3_ENDPOINT: stack.minio!.endpoint,
      S3_ACCESS_KEY_ID: stack.minio!.accessKeyId,
      S3_SECRET_ACCESS_KEY: stack.minio!.secretAccessKey,
      BLOB_FLUSH_INTERVAL_MS: '500',
      BLOB_MIN_FREE_DISK_BYTES: '0',
      BLOB_CONSUMER_PORT: '0',
    });
    await produceAll(brokers, wave(10));
    const older = spawnConsumer(
      { ...env(`fenced-a-${randomUUID()}`), BLOB_SPOOL_DIR: await mkdtemp(join(tmpdir(), 'fenced-a-')) },
      '] flushed ',
    );
    await older.marker;
    let exitCode: number | null = null;
    older.child.once('exit', (code) => {
      exitCode = code;
    });
    const newer = spawnConsumer(
      { ...env(`fenced-b-${randomUUID()}`), BLOB_SPOOL_DIR: await mkdtemp(join(tmpdir(), 'fenced-b-')) },
      'consuming',
    );
    await newer.marker;
    await produceAll(brokers, wave(20)); // the older one's next transaction meets the fence
    await Promise.race([older.exited, new Promise((resolve) => setTimeout(resolve, 60_000))]);
    expect(exitCode).toBe(1);
    expect(older.log()).toMatch(/^error \[producer_fenced\]: /m);
    expect(newer.child.exitCode).toBeNull();
    newer.child.kill('SIGTERM');
    await newer.exited;
  });
});
