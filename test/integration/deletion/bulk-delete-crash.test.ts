import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ApiKeyStore } from '../../../src/api/api-keys.ts';
import { openClickHouse } from '../../../src/clickhouse/client.ts';
import { migrateClickHouse } from '../../../src/clickhouse/migrations.ts';
import { insertSummaryRows } from '../../../src/clickhouse/session-replay-events.ts';
import { freePort } from '../../../src/harness/ports.ts';
import { openPostgres, type SqlDatabase } from '../../../src/postgres/database.ts';
import { migratePostgres } from '../../../src/postgres/migrations.ts';
import type { SummaryRow } from '../../../src/recordings/summary-row.ts';
import type { S3BlobStore } from '../../../src/storage/s3-blob-store.ts';
import { type Team, TeamStore } from '../../../src/teams/team-store.ts';
import { freshBucketStore } from '../../support/blob-consumer.ts';
import { syntheticSession } from '../../support/expected-summary.ts';
import { eventually } from '../../support/kafka-offsets.ts';
import { type ReplayProcess, spawnReplay } from '../../support/replay-process.ts';
import { utcMidnightDaysAgo, writeFlushes } from '../../support/summary-rows.ts';
import { createTestTeam } from '../../support/teams.ts';

const stack = inject('stack');
// Two consecutive UTC days some days ago, well inside the team's year (past it, the API answers 410).
const day1 = utcMidnightDaysAgo(10);
const day2 = day1 + 86_400_000;
const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const SESSIONS = 10_000;
const EVENTS = 4;

/**
 * A bulk delete by date range over 10k sessions, run by a real `replay api` process that is SIGKILLed half-way and
 * started again: the request resumes where it stopped and finishes, progress is visible all along, and at every
 * moment each session is either deleted (404 recording_deleted) or whole (every event, no missing block): nothing half-deleted is served.
 */
describe('bulk delete, killed half-way and resumed', () => {
  let dir: string;
  let db: SqlDatabase;
  let store: S3BlobStore;
  let team: Team;
  let key: string;
  let rows: SummaryRow[];
  let env: Record<string, string>;
  let api: ReplayProcess | undefined;
  let url: string;

  const sessionId = (i: number) => `bulk-${String(i).padStart(5, '0')}`;
  const sessionDay = (i: number) => (i < SESSIONS / 2 ? day1 : day2);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'replay-bulk-delete-'));
    db = await openPostgres({ kind: 'postgres', url: stack.postgres!.url });
    await migratePostgres(db);
    team = await createTestTeam(new TeamStore(db), { name: 'bulk', retention: '1y' });
    key = (await new ApiKeyStore(db).create('bulk deleter', [team.id], ['delete'])).key;
    store = await freshBucketStore();
    // Twenty flushes (twenty objects of 500 sessions): day 1's sessions, then day 2's, in the chDB the API process
    // will open.
    const sessions = Array.from({ length: SESSIONS }, (_, i) => ({
      sessionId: sessionId(i),
      events: syntheticSession(i, sessionDay(i) + (i % 5000) * 10_000, EVENTS - 2),
    }));
    rows = await writeFlushes({
      dir,
      team,
      store,
      flushes: Array.from({ length: 20 }, (_, f) => sessions.slice(f * 500, (f + 1) * 500)),
      now: (flush) => day2 + flush * 60_000,
    });
    const clickhouse = openClickHouse({ kind: 'chdb', path: join(dir, 'db') });
    await migrateClickHouse(clickhouse);
    await insertSummaryRows(clickhouse, rows);
    await clickhouse.close();
    const minio = stack.minio!;
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    env = {
      HOME: '/nonexistent',
      LOG_LEVEL: 'warn',
      API_PORT: String(port),
      API_DELETION_LEASE_MS: '2000',
      DATABASE_URL: stack.postgres!.url,
      CLICKHOUSE_URL: `chdb://${join(dir, 'db')}`,
      REDIS_URL: stack.redis!.url,
      BLOB_STORE: 's3',
      S3_BUCKET: store.bucket,
      S3_ENDPOINT: minio.endpoint,
      S3_REGION: minio.region,
      S3_ACCESS_KEY_ID: minio.accessKeyId,
      S3_SECRET_ACCESS_KEY: minio.secretAccessKey,
      BLOB_PREFIX: 'rec',
    };
  });
  afterAll(async () => {
    await api?.killNow();
    await db?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const startApi = async () => {
    api = spawnReplay('api', env);
    await eventually(async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.ok, 'the API ready', 60_000);
  };
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${url}/api/projects/${team.id}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      ...(body ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await response.text();
    return { status: response.status, text, json: text.startsWith('{') ? JSON.parse(text) : undefined };
  };
  /** 'deleted' (404 recording_deleted), 'whole' (every event, no missing block), or what else it was. */
  const state = async (i: number) => {
    const list = await call('GET', `/session_recordings/${sessionId(i)}/snapshots`);
    if (list.status === 404 && list.json?.code === 'recording_deleted') return 'deleted';
    if (list.status !== 200) return `status ${list.status}`;
    const last = (list.json.blocks as unknown[]).length - 1;
    const blocks = await call('GET', `/session_recordings/${sessionId(i)}/snapshots?blocks=0-${last}`);
    if (blocks.status === 404 && blocks.json?.code === 'recording_deleted') return 'deleted'; // deleted in between
    const lines = blocks.text.split('\n').filter(Boolean);
    if (lines.some((line) => line.startsWith('{"missing_block"'))) return 'missing block';
    return lines.length === EVENTS ? 'whole' : `${lines.length} events`;
  };
  const sample = Array.from({ length: 12 }, (_, k) => (k * 853) % SESSIONS);

  it('resumes after kill -9, shows progress, and never serves a half-deleted session', async () => {
    await startApi();
    for (const i of sample) expect(await state(i), sessionId(i)).toBe('whole');
    const accepted = await call('POST', '/session_recordings/delete', {
      date_from: new Date(day1).toISOString(),
      date_to: new Date(day2).toISOString(),
    });
    expect(accepted.status).toBe(202);
    const progress = `/session_recordings/delete/${accepted.json.id}`;
    const seen: number[] = [];
    const states = new Set<string>();
    // Watch until a good part is done, checking sessions as it goes; then kill the process mid-request.
    await eventually(
      async () => {
        const now = (await call('GET', progress)).json;
        seen.push(now.sessions_done);
        for (const i of sample.slice(0, 4)) states.add(await state(i));
        return now.sessions_total === SESSIONS / 2 && now.sessions_done >= 1000 && now.sessions_done < 4000;
      },
      'the request part-way',
      120_000,
      20,
    );
    await api!.killNow();
    const atKill = (
      await db.query<{ sessions_done: number; status: string }>(
        'SELECT sessions_done, status FROM deletion_requests WHERE id = $1',
        [accepted.json.id],
      )
    )[0]!;
    expect(atKill.status).toBe('running');
    expect(atKill.sessions_done).toBeLessThan(SESSIONS / 2);

    await startApi();
    const finished = await eventually(
      async () => {
        const now = (await call('GET', progress)).json;
        seen.push(now.sessions_done);
        for (const i of sample) states.add(await state(i));
        return now.status === 'done' ? now : undefined;
      },
      'the request finished after the restart',
      180_000,
      50,
    );
    expect(finished).toMatchObject({ sessions_total: SESSIONS / 2, sessions_done: SESSIONS / 2, error: null });
    // Progress went up step by step, never down.
    expect(seen.some((n) => n > 0 && n < SESSIONS / 2)).toBe(true);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect([...states].sort()).toEqual(['deleted', 'whole']);
    for (const i of sample) expect(await state(i), sessionId(i)).toBe(sessionDay(i) === day1 ? 'deleted' : 'whole');
    // Day 1's bytes are zeros in their object; day 2's are intact.
    for (const i of sample) {
      const row = rows.find((r) => r.session_id === sessionId(i))!;
      const [base, range] = row.block_url.split('?range=bytes=');
      const [start, end] = range!.split('-').map(Number) as [number, number];
      const bytes = await store.getRange(store.keyOf(base!)!, start, end);
      expect(
        bytes.every((b) => b === 0),
        sessionId(i),
      ).toBe(sessionDay(i) === day1);
    }
    const listing = await call('GET', `/session_recordings?date_from=${isoDay(day1)}&date_to=${isoDay(day2)}&limit=10`);
    expect(listing.json.results).toEqual([]);
  });
});
