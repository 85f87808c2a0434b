import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ApiKeyStore } from '../../../src/api/api-keys.ts';
import { rebuildSummaryRows } from '../../../src/blob-consumer/reindex.ts';
import { runApi } from '../../../src/cli/api-command.ts';
import { openClickHouse } from '../../../src/clickhouse/client.ts';
import { migrateClickHouse } from '../../../src/clickhouse/migrations.ts';
import { insertSummaryRows } from '../../../src/clickhouse/session-replay-events.ts';
import { loadConfig } from '../../../src/config/index.ts';
import { createLogger } from '../../../src/logging/logger.ts';
import { openPostgres, type SqlDatabase } from '../../../src/postgres/database.ts';
import { migratePostgres } from '../../../src/postgres/migrations.ts';
import { decodeObject } from '../../../src/recordings/blob-object.ts';
import type { SummaryRow } from '../../../src/recordings/summary-row.ts';
import type { S3BlobStore } from '../../../src/storage/s3-blob-store.ts';
import { type Team, TeamStore } from '../../../src/teams/team-store.ts';
import { insertBehaviors } from '../../../src/uba/behavior-rows.ts';
import { userRecentKey } from '../../../src/uba/realtime/keys.ts';
import { sampleBehavior } from '../../support/behaviors.ts';
import { freshBucketStore } from '../../support/blob-consumer.ts';
import { syntheticSession } from '../../support/expected-summary.ts';
import { eventually } from '../../support/kafka-offsets.ts';
import { utcMidnightDaysAgo, writeFlushes } from '../../support/summary-rows.ts';
import { createTestTeam } from '../../support/teams.ts';

const stack = inject('stack');
// 09:00 UTC some days ago, well inside the team's 90 days (past them, the API answers 410 recording_expired).
const base = utcMidnightDaysAgo(10) + 9 * 3_600_000;
const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/**
 * Deleting recordings (DESIGN §3.9) on the real services: MinIO objects shared by many sessions, Postgres for keys,
 * requests and the audit log, chDB for the summary rows and behaviours, Redis for a person's recent items.
 */
describe('delete API (real MinIO, Postgres, chDB, Redis)', () => {
  let dir: string;
  let db: SqlDatabase;
  let clickhouse: ClickHouseClient;
  let store: S3BlobStore;
  let api: Awaited<ReturnType<typeof runApi>>;
  let team: Team;
  let other: Team;
  let deleteKey: string;
  let readKey: string;
  let otherDeleteKey: string;
  let rows: SummaryRow[];
  const sessions = Array.from({ length: 101 }, (_, i) => ({
    sessionId: `s-${String(i).padStart(3, '0')}-${randomUUID().slice(0, 8)}`,
    events: syntheticSession(900 + i, base + i * 60_000, 40),
    distinctId: i < 3 ? 'person-x' : `user-${i}`,
  }));

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'replay-delete-'));
    db = await openPostgres({ kind: 'postgres', url: stack.postgres!.url });
    await migratePostgres(db);
    const teams = new TeamStore(db);
    const create = (name: string) => createTestTeam(teams, { name, retention: '90d' });
    team = await create('deleting');
    other = await create('other');
    store = await freshBucketStore();
    clickhouse = openClickHouse({ kind: 'chdb', path: join(dir, 'db') });
    await migrateClickHouse(clickhouse);
    // One flush: every session's block in one object, as the blob consumer writes them.
    rows = await writeFlushes({ dir, team, store, flushes: [sessions], now: () => base + 3_600_000 * 3 });
    await insertSummaryRows(clickhouse, rows);
    const keys = new ApiKeyStore(db);
    deleteKey = (await keys.create('deleter', [team.id], ['delete'])).key;
    readKey = (await keys.create('reader', [team.id])).key;
    otherDeleteKey = (await keys.create('other deleter', [other.id], ['delete'])).key;
    const config = loadConfig({ HOME: '/nonexistent', API_PORT: '0' });
    api = await runApi(config, createLogger('warn', 'api'), { db, clickhouse, store, redisUrl: stack.redis!.url });
  });
  afterAll(async () => {
    await api?.stop();
    await clickhouse?.close();
    await db?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const call = async (method: string, path: string, key: string, body?: unknown) => {
    const response = await fetch(`${api.service.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await response.text();
    // biome-ignore lint/suspicious/noExplicitAny: the tests read arbitrary API answers
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.status, text, json };
  };
  const path = (rest: string) => `/api/projects/${team.id}${rest}`;
  /** A deleted session answers 404 `recording_deleted` on every session route, so the player can say so. */
  const expectDeleted = (answer: { status: number; json?: { code?: string } }, what?: string) =>
    expect({ status: answer.status, code: answer.json?.code }, what).toEqual({
      status: 404,
      code: 'recording_deleted',
    });
  const events = async (sessionId: string) => {
    const list = await call('GET', path(`/session_recordings/${sessionId}/snapshots`), readKey);
    if (list.status !== 200) return list;
    const blocks = list.json.blocks.length;
    const answer = await call(
      'GET',
      path(`/session_recordings/${sessionId}/snapshots?blocks=0-${blocks - 1}`),
      readKey,
    );
    return { status: answer.status, text: answer.text };
  };
  const listed = async () => {
    const answer = await call(
      'GET',
      path(`/session_recordings?date_from=${isoDay(base)}&date_to=${isoDay(base + 2 * 86_400_000)}&limit=500`),
      readKey,
    );
    return (answer.json.results as { id: string }[]).map((s) => s.id);
  };
  const done = (id: number) =>
    eventually(async () => {
      const answer = await call('GET', path(`/session_recordings/delete/${id}`), deleteKey);
      return answer.json.status === 'done' ? answer.json : undefined;
    }, `deletion request ${id} done`);

  it('refuses another team (404) and a key without the delete scope (403)', async () => {
    const target = sessions[10]!.sessionId;
    const otherTeam = await call('DELETE', path(`/session_recordings/${target}`), otherDeleteKey);
    expect(otherTeam.status).toBe(404);
    const noScope = await call('DELETE', path(`/session_recordings/${target}`), readKey);
    expect(noScope.status).toBe(403);
    expect(noScope.json.code).toBe('insufficient_scope');
    expect((await call('POST', path('/session_recordings/delete'), readKey, { distinct_id: 'x' })).status).toBe(403);
    expect((await call('POST', path('/session_recordings/delete'), deleteKey, {})).json.code).toBe('invalid_parameter');
    expect(
      (await call('POST', path('/session_recordings/delete'), deleteKey, { date_form: '2026-01-01' })).json.code,
    ).toBe('invalid_parameter');
    expect((await events(target)).status).toBe(200);
  });

  it('deletes one session sharing its object with 100 others: gone at once, its bytes zeroed, the others intact', async () => {
    const victim = sessions[50]!;
    const others = sessions.filter((s) => s !== victim && s.distinctId !== 'person-x');
    const before = new Map<string, string>();
    for (const s of others) before.set(s.sessionId, (await events(s.sessionId)).text);
    const victimRow = rows.find((r) => r.session_id === victim.sessionId)!;
    const [base, range] = victimRow.block_url.split('?range=bytes=');
    const key = store.keyOf(base!)!;
    const [start, end] = range!.split('-').map(Number) as [number, number];
    expect(new Set(rows.map((r) => r.block_url.split('?')[0])).size).toBe(1); // one object for all 101

    const answer = await call('DELETE', path(`/session_recordings/${victim.sessionId}`), deleteKey);
    expect(answer.status).toBe(202);
    expect(answer.json).toMatchObject({ kind: 'session', target: victim.sessionId, sessions_total: 1 });
    // Gone at once: 404 recording_deleted, out of the listing.
    expectDeleted(await call('GET', path(`/session_recordings/${victim.sessionId}`), readKey));
    expect(await listed()).not.toContain(victim.sessionId);

    const finished = await done(answer.json.id);
    expect(finished.sessions_done).toBe(1);
    // Its range of the raw object, read with the store's own credentials: zeros only.
    const raw = await store.getRange(key, start, end);
    expect(raw.length).toBe(end - start + 1);
    expect(raw.every((byte) => byte === 0)).toBe(true);
    // The footer keeps where it was, nothing of what it held; reindex leaves it out.
    const footer = decodeObject(await store.getRange(key, 0, (await store.size(key))! - 1));
    const entry = footer.blocks.find((b) => b.sessionId === victim.sessionId)!;
    expect(entry).toMatchObject({ deleted: true, distinctId: '', urls: [], firstUrl: null });
    const rebuilt = await rebuildSummaryRows({ store, prefix: 'rec', fromMs: 0, toMs: Date.now() + 1 });
    const rebuiltIds = rebuilt.flatMap((o) => o.rows.map((r) => r.session_id));
    expect(rebuiltIds).not.toContain(victim.sessionId);
    expect(rebuiltIds).toContain(others[0]!.sessionId);
    // Every other session replays byte-identical.
    for (const s of others) expect((await events(s.sessionId)).text, s.sessionId).toBe(before.get(s.sessionId));
    // The audit row: who, what, when.
    const [audit] = await db.query<{ kind: string; requested_by: string; status: string }>(
      'SELECT kind, requested_by, status FROM deletion_requests WHERE id = $1',
      [answer.json.id],
    );
    expect(audit).toMatchObject({ kind: 'session', status: 'done' });
    expect(audit!.requested_by).toContain('deleter');
  });

  it('deletes a person: every session and behaviour of the distinct id, and the Redis recent items', async () => {
    const person = sessions.filter((s) => s.distinctId === 'person-x');
    expect(person).toHaveLength(3);
    const positioned = (record: ReturnType<typeof sampleBehavior>, offset: number) => ({
      record,
      topic: 'user_behaviors',
      partition: 0,
      offset,
    });
    await insertBehaviors(
      clickhouse,
      [
        ...Array.from({ length: 5 }, () => sampleBehavior({ tenant_id: team.id, user_id: 'person-x' })),
        ...Array.from({ length: 4 }, () => sampleBehavior({ tenant_id: team.id, user_id: 'someone-else' })),
      ].map(positioned),
    );
    const redis = createClient({ url: stack.redis!.url });
    await redis.connect();
    try {
      await redis.lPush(userRecentKey(team.id, 'person-x'), ['item-1', 'item-2']);
      await redis.lPush(userRecentKey(team.id, 'someone-else'), ['item-3']);
      const answer = await call('DELETE', path('/persons/person-x'), deleteKey);
      expect(answer.status).toBe(202);
      expect(answer.json).toMatchObject({ kind: 'person', sessions_total: 3 });
      for (const s of person) expectDeleted(await events(s.sessionId), s.sessionId);
      expect(await redis.exists(userRecentKey(team.id, 'person-x'))).toBe(0);
      expect(await redis.exists(userRecentKey(team.id, 'someone-else'))).toBe(1);
      await done(answer.json.id);
    } finally {
      await redis.quit();
    }
    const count = async (table: string, user: string) => {
      const result = await clickhouse.query({
        query: `SELECT count() AS n FROM ${table} WHERE tenant_id = {t:Int64} AND user_id = {u:String}`,
        query_params: { t: team.id, u: user },
        format: 'JSONEachRow',
      });
      return Number((await result.json<{ n: string }>())[0]!.n);
    };
    expect(await count('user_behaviors', 'person-x')).toBe(0);
    expect(await count('user_behaviors_by_user', 'person-x')).toBe(0);
    expect(await count('user_behaviors', 'someone-else')).toBe(4);
    expect(await count('user_behaviors_by_user', 'someone-else')).toBe(4);
    for (const s of person) {
      const row = rows.find((r) => r.session_id === s.sessionId)!;
      const [base, range] = row.block_url.split('?range=bytes=');
      const [start, end] = range!.split('-').map(Number) as [number, number];
      expect((await store.getRange(store.keyOf(base!)!, start, end)).every((b) => b === 0)).toBe(true);
    }
  });

  it('hides a session whose rows have not reached ClickHouse yet, when they arrive', async () => {
    const late = { sessionId: `late-${randomUUID().slice(0, 8)}`, events: syntheticSession(77, base + 7_200_000, 40) };
    const answer = await call('DELETE', path(`/session_recordings/${late.sessionId}`), deleteKey);
    expect(answer.status).toBe(202);
    await done(answer.json.id);
    // The sink catches up: the session's rows arrive after its deletion.
    const lateRows = await writeFlushes({ dir, team, store, flushes: [[late]], now: () => base + 3_600_000 * 5 });
    await insertSummaryRows(clickhouse, lateRows);
    expectDeleted(await call('GET', path(`/session_recordings/${late.sessionId}`), readKey));
    expect(await listed()).not.toContain(late.sessionId);
    // Progress is the team's, for keys that may delete.
    expect((await call('GET', path(`/session_recordings/delete/${answer.json.id}`), readKey)).status).toBe(403);
    const otherTeam = await call(
      'GET',
      `/api/projects/${team.id}/session_recordings/delete/${answer.json.id}`,
      otherDeleteKey,
    );
    expect(otherTeam.status).toBe(404);
  });

  it('keeps the is_deleted row without personal data, so late rows of a deleted session stay hidden', async () => {
    const victim = sessions[50]!;
    const result = await clickhouse.query({
      query: `SELECT is_deleted, distinct_id, block_urls, all_urls FROM session_replay_events
               WHERE team_id = {t:Int64} AND session_id = {s:String}`,
      query_params: { t: team.id, s: victim.sessionId },
      format: 'JSONEachRow',
    });
    expect(await result.json()).toEqual([{ is_deleted: 1, distinct_id: '', block_urls: [], all_urls: [] }]);
    // A block of it still in flight when it was deleted arrives now: it merges with the marker and stays hidden.
    await insertSummaryRows(
      clickhouse,
      rows.filter((r) => r.session_id === victim.sessionId),
    );
    expectDeleted(await call('GET', path(`/session_recordings/${victim.sessionId}`), readKey));
  });
});
