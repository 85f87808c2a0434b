import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ApiKeyStore } from '../../../src/api/api-keys.ts';
import { freePort } from '../../../src/harness/ports.ts';
import { openPostgres, type SqlDatabase } from '../../../src/postgres/database.ts';
import { migratePostgres } from '../../../src/postgres/migrations.ts';
import { type Team, TeamStore } from '../../../src/teams/team-store.ts';
import { freshBucketStore } from '../../support/blob-consumer.ts';
import { postRaw, sampleRrwebEvents, snapshotBody } from '../../support/capture.ts';
import { startSinkAndApi } from '../../support/pipeline.ts';
import { createTestTeam } from '../../support/teams.ts';

const stack = inject('stack');
const FLUSH_INTERVAL_MS = 1000;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A pipeline command as its own process (so it can be SIGKILLed), with the given environment. */
function spawnCommand(command: string, env: Record<string, string>) {
  const child: ChildProcess = spawn('setpriv', ['--pdeathsig', 'KILL', process.execPath, 'bin/replay.js', command], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    log += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
    log: () => log,
  };
}

/**
 * kill -9 of capture and of the blob consumer, each restarted at once with the same stable instance identity
 * (transactional id, static group membership): every session accepted before the kill is playable again within the
 * flush interval + 5 s of the restart, none is lost, none is doubled. The restarted blob consumer fences its dead
 * predecessor at once, so `read_committed` readers do not wait out the old transaction's timeout.
 */
describe('kill -9 of capture and of the blob consumer, then a restart', () => {
  let dir: string;
  let db: SqlDatabase;
  let apiUrl: string;
  let team: Team;
  let key: string;
  const stops: (() => Promise<unknown>)[] = [];
  let captureEnv: Record<string, string>;
  let consumerEnv: Record<string, string>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'replay-kill-'));
    db = await openPostgres({ kind: 'postgres', url: stack.postgres!.url });
    await migratePostgres(db);
    team = await createTestTeam(new TeamStore(db), { name: 'kill test' });
    key = (await new ApiKeyStore(db).create('kill', [team.id])).key;
    const store = await freshBucketStore();
    const instance = randomUUID().slice(0, 8);
    captureEnv = {
      KAFKA_BROKERS: stack.kafka!.brokers,
      DATABASE_URL: stack.postgres!.url,
      CAPTURE_PORT: String(await freePort()),
      CAPTURE_TRANSACTIONAL_ID: `capture-kill-${instance}`,
    };
    consumerEnv = {
      KAFKA_BROKERS: stack.kafka!.brokers,
      BLOB_GROUP_ID: `blob-kill-${instance}`,
      BLOB_TRANSACTIONAL_ID: `blob-kill-${instance}`,
      KAFKA_GROUP_INSTANCE_ID: `blob-kill-${instance}`,
      BLOB_STORE: 's3',
      S3_BUCKET: store.bucket,
      S3_ENDPOINT: stack.minio!.endpoint,
      S3_ACCESS_KEY_ID: stack.minio!.accessKeyId,
      S3_SECRET_ACCESS_KEY: stack.minio!.secretAccessKey,
      BLOB_SPOOL_DIR: join(dir, 'spool'),
      BLOB_FLUSH_INTERVAL_MS: String(FLUSH_INTERVAL_MS),
      BLOB_MIN_FREE_DISK_BYTES: '0',
      BLOB_CONSUMER_PORT: '0',
    };
    const read = await startSinkAndApi({
      brokers: stack.kafka!.brokers,
      postgresUrl: stack.postgres!.url,
      store,
      dir,
      env: { SINK_INSERT_INTERVAL_MS: '200' },
    });
    stops.push(() => read.stop());
    apiUrl = read.apiUrl;
  });
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
    await db?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const captureUrl = () => `http://127.0.0.1:${captureEnv.CAPTURE_PORT}/s/`;

  /** Posts one session of 6 events, retrying (as posthog-js does) until capture answers 200; its id. */
  async function record(start: number): Promise<string> {
    const sessionId = randomUUID();
    const body = Buffer.from(JSON.stringify(snapshotBody(team.apiToken, sessionId, sampleRrwebEvents(start))));
    for (let attempt = 0; attempt < 100; attempt++) {
      const answer = await postRaw(captureUrl(), body).catch(() => undefined);
      if (answer?.status === 200) return sessionId;
      await pause(200);
    }
    throw new Error('capture never accepted the session');
  }

  /** The session's events as the API serves them (one line per event, none missing), or undefined. */
  async function events(sessionId: string): Promise<number | undefined> {
    const base = `${apiUrl}/api/projects/${team.id}/session_recordings/${sessionId}`;
    const headers = { authorization: `Bearer ${key}` };
    const summary = await fetch(base, { headers });
    if (!summary.ok) return undefined;
    const { duplicate_blocks, block_count } = (await summary.json()) as Record<string, number>;
    expect(duplicate_blocks).toBe(0);
    const lines = (await (await fetch(`${base}/snapshots?blocks=0-${block_count! - 1}`, { headers })).text())
      .split('\n')
      .filter(Boolean);
    return lines.some((l) => l.startsWith('{"missing_block"')) ? undefined : lines.length;
  }

  /** Milliseconds from `since` until every session is playable with all its 6 events. */
  async function playableAfter(since: number, sessions: readonly string[]): Promise<number> {
    for (;;) {
      const counts = await Promise.all(sessions.map(events));
      if (counts.every((n) => n === 6)) return Date.now() - since;
      expect(
        counts.every((n) => n === undefined || n === 6),
        `no session has more events than sent`,
      ).toBe(true);
      if (Date.now() - since > 60_000) throw new Error(`not playable after 60 s: ${JSON.stringify(counts)}`);
      await pause(100);
    }
  }

  it('every accepted session is playable within the flush interval + 5 s of each restart', async () => {
    const t = Date.now() - 3_600_000; // an hour ago: well inside the team's 30 days (past them, the API answers 410)
    let capture = spawnCommand('capture', captureEnv);
    let consumer = spawnCommand('blob-consumer', consumerEnv);
    const sessions: string[] = [];
    const worst: Record<string, number> = {};
    try {
      for (let i = 0; i < 3; i++) sessions.push(await record(t + i * 10_000));
      await playableAfter(Date.now(), sessions);

      for (let round = 0; round < 2; round++) {
        // The blob consumer dies at a random moment of its flush cycle, with sessions accepted and not yet flushed.
        for (let i = 0; i < 3; i++) sessions.push(await record(t + (sessions.length + i) * 10_000));
        await pause(Math.floor(Math.random() * FLUSH_INTERVAL_MS));
        await consumer.kill();
        const consumerRestart = Date.now();
        consumer = spawnCommand('blob-consumer', consumerEnv);
        worst.blobConsumer = Math.max(worst.blobConsumer ?? 0, await playableAfter(consumerRestart, sessions));

        // Capture dies with sessions just accepted; clients retry until the restarted capture answers.
        for (let i = 0; i < 3; i++) sessions.push(await record(t + (sessions.length + i) * 10_000));
        await capture.kill();
        const captureRestart = Date.now();
        capture = spawnCommand('capture', captureEnv);
        sessions.push(await record(t + sessions.length * 10_000));
        worst.capture = Math.max(worst.capture ?? 0, await playableAfter(captureRestart, sessions));
      }
    } finally {
      await capture.stop();
      await consumer.stop();
    }
    process.stderr.write(`[kill-restart] worst time to playable after a restart (ms): ${JSON.stringify(worst)}\n`);
    expect(worst.blobConsumer).toBeLessThanOrEqual(FLUSH_INTERVAL_MS + 5000);
    expect(worst.capture).toBeLessThanOrEqual(FLUSH_INTERVAL_MS + 5000);
  });
});
