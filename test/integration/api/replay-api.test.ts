import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ApiKeyStore } from '../../../src/api/api-keys.ts';
import { SessionCatalog } from '../../../src/api/session-catalog.ts';
import { runApi } from '../../../src/cli/api-command.ts';
import { openClickHouse } from '../../../src/clickhouse/client.ts';
import { migrateClickHouse } from '../../../src/clickhouse/migrations.ts';
import { insertSummaryRows } from '../../../src/clickhouse/session-replay-events.ts';
import { loadConfig } from '../../../src/config/index.ts';
import { createLogger } from '../../../src/logging/logger.ts';
import { openPostgres, type SqlDatabase } from '../../../src/postgres/database.ts';
import { migratePostgres } from '../../../src/postgres/migrations.ts';
import { decodeBlock } from '../../../src/recordings/blob-object.ts';
import type { S3BlobStore } from '../../../src/storage/s3-blob-store.ts';
import { type Team, TeamStore } from '../../../src/teams/team-store.ts';
import { freshBucketStore } from '../../support/blob-consumer.ts';
import { expectedSummary } from '../../support/expected-summary.ts';
import { liveRows, liveRowsStart } from '../../support/summary-rows.ts';
import { createTestTeam } from '../../support/teams.ts';

const stack = inject('stack');
type Sessions = Awaited<ReturnType<typeof liveRows>>['sessions'];

describe('replay API (real Postgres, MinIO, chDB)', () => {
  let dir: string;
  let db: SqlDatabase;
  let clickhouse: ClickHouseClient;
  let store: S3BlobStore;
  let api: Awaited<ReturnType<typeof runApi>>;
  let teamA: Team;
  let teamB: Team;
  let sessionsA: Sessions;
  let keyA: string;
  let keyB: string;
  let revokedKey: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'replay-api-'));
    db = await openPostgres({ kind: 'postgres', url: stack.postgres!.url });
    await migratePostgres(db);
    const teams = new TeamStore(db);
    const team = (name: string) => createTestTeam(teams, { name, retention: '90d' });
    teamA = await team('A');
    teamB = await team('B');
    store = await freshBucketStore();
    clickhouse = openClickHouse({ kind: 'chdb', path: join(dir, 'db') });
    await migrateClickHouse(clickhouse);
    // Both teams hold sessions with the same ids: only the team in the path may decide which one is read.
    await Promise.all(['a', 'b'].map((name) => mkdir(join(dir, name))));
    const a = await liveRows(join(dir, 'a'), teamA.id, store);
    const b = await liveRows(join(dir, 'b'), teamB.id, store);
    sessionsA = a.sessions;
    await insertSummaryRows(clickhouse, [...a.rows, ...b.rows]);

    const keys = new ApiKeyStore(db);
    keyA = (await keys.create('a', [teamA.id])).key;
    keyB = (await keys.create('b', [teamB.id])).key;
    const revoked = await keys.create('revoked', [teamA.id]);
    revokedKey = revoked.key;
    await keys.revoke(revoked.info.id);

    const config = loadConfig({ HOME: '/nonexistent', API_PORT: '0', API_MAX_BLOCKS_PER_REQUEST: '2' });
    api = await runApi(config, createLogger('warn', 'api'), { db, clickhouse, store });
  });
  afterAll(async () => {
    await api?.stop();
    await clickhouse?.close();
    await db?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const get = async (path: string, key: string | null = keyA, headers: Record<string, string> = {}) => {
    const response = await fetch(`${api.service.url}${path}`, {
      headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
      signal: AbortSignal.timeout(20_000),
    });
    const text = await response.text();
    let json: Record<string, unknown> | undefined;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    // biome-ignore lint/suspicious/noExplicitAny: the tests read arbitrary API answers
    return { status: response.status, headers: response.headers, text, json: json as Record<string, any> };
  };
  const recordings = (team: Team) => `/api/projects/${team.id}/session_recordings`;
  // The day the sessions were recorded (liveRowsStart's, some days ago) and the next.
  const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);
  const [sessionDay, nextDay] = [isoDay(liveRowsStart), isoDay(liveRowsStart + 86_400_000)];
  const day = `date_from=${sessionDay}&date_to=${nextDay}`;

  it('refuses requests without a valid key for the team, and never shows another team its sessions', async () => {
    const list = `${recordings(teamA)}?${day}`;
    expect((await get(list, null)).json.code).toBe('missing_api_key');
    expect((await get(list, null)).status).toBe(401);
    expect((await get(list, `rpk_${'x'.repeat(43)}`)).json.code).toBe('invalid_api_key');
    expect((await get(list, 'not-a-key')).json.code).toBe('invalid_api_key');
    expect((await get(list, revokedKey)).json.code).toBe('invalid_api_key');
    const basic = await fetch(`${api.service.url}${list}`, { headers: { authorization: `Basic ${keyA}` } });
    expect(basic.status).toBe(401);

    // Team B's key on team A's paths: 404, not 403, and no data.
    for (const path of [
      list,
      `${recordings(teamA)}/session-0`,
      `${recordings(teamA)}/session-0/snapshots`,
      `${recordings(teamA)}/session-0/snapshots?blocks=0`,
    ]) {
      const answer = await get(path, keyB);
      expect(answer.status, path).toBe(404);
      expect(answer.json.code).toBe('not_found');
      expect(answer.text).not.toContain('session-0');
    }
    // The same session id in each team: each key reads its own team's session.
    const own = await get(`${recordings(teamB)}/session-0`, keyB);
    expect(own.json).toMatchObject({ id: 'session-0', team_id: teamB.id });
    expect((await get(`${recordings(teamA)}/session-0`, keyA)).json).toMatchObject({ team_id: teamA.id });
    expect((await get('/api/projects', keyB)).json.results).toEqual([{ id: teamB.id, name: 'B' }]);
  });

  it('validates ids and ranges before they reach SQL or the blob store', async () => {
    const cases: [string, number, string][] = [
      [`${recordings(teamA)}/..%2F..%2Fetc%2Fpasswd`, 400, 'invalid_session_id'],
      [`${recordings(teamA)}/session-0%00`, 400, 'invalid_session_id'],
      [`${recordings(teamA)}/${'a'.repeat(71)}`, 400, 'invalid_session_id'],
      [`${recordings(teamA)}/session'%20OR%201=1--`, 400, 'invalid_session_id'],
      ['/api/projects/1%20OR%201=1/session_recordings', 400, 'invalid_parameter'],
      ['/api/projects/99999999999999999999/session_recordings', 400, 'invalid_parameter'],
      [`${recordings(teamA)}/session-0/snapshots?blocks=2-1`, 400, 'invalid_block_range'],
      [`${recordings(teamA)}/session-0/snapshots?blocks=0-999999999`, 400, 'invalid_block_range'],
      [`${recordings(teamA)}/session-0/snapshots?blocks=3`, 400, 'invalid_block_range'],
      [`${recordings(teamA)}/session-0/snapshots?blocks=-1`, 400, 'invalid_block_range'],
      [`${recordings(teamA)}/session-0/snapshots?blocks=0-2`, 400, 'invalid_block_range'], // over the limit of 2
      [`${recordings(teamA)}/session-0/snapshots?blocks=1e3`, 400, 'invalid_block_range'],
      [`${recordings(teamA)}/session-0/snapshots/blocks/..%2F..%2Fx`, 400, 'invalid_parameter'],
      [`${recordings(teamA)}/session-0/snapshots/blocks/${'A'.repeat(22)}`, 404, 'not_found'],
      [`${recordings(teamA)}/session-0/snapshots?blocks=0&extra=1`, 400, 'invalid_parameter'],
      [`${recordings(teamA)}?date_from=2026-11-19&date_to=2026-11-18`, 400, 'invalid_parameter'],
      [`${recordings(teamA)}?date_from=1900-01-01&date_to=2026-11-18`, 400, 'invalid_parameter'],
      [`${recordings(teamA)}?date_from=yesterday`, 400, 'invalid_parameter'],
      [`${recordings(teamA)}?limit=0`, 400, 'invalid_parameter'],
      [`${recordings(teamA)}?limit=100000`, 400, 'invalid_parameter'],
      [`${recordings(teamA)}?min_duration=-5`, 400, 'invalid_parameter'],
      [`${recordings(teamA)}?cursor=garbage`, 400, 'invalid_parameter'],
      [`${recordings(teamA)}?sort=DROP%20TABLE`, 400, 'invalid_parameter'],
      [`${recordings(teamA)}/no-such-session`, 404, 'not_found'],
    ];
    for (const [path, status, code] of cases) {
      const answer = await get(path);
      expect({ path, status: answer.status, code: answer.json?.code }).toEqual({ path, status, code });
    }
  });

  it('lists sessions newest first with filters and cursor pagination', async () => {
    const all = await get(`${recordings(teamA)}?${day}`);
    expect(all.status).toBe(200);
    expect(all.headers.get('cache-control')).toBe('no-store');
    const ids = (all.json.results as { id: string }[]).map((s) => s.id);
    expect(ids).toEqual(sessionsA.map((s) => s.id).reverse());
    expect(all.json.next).toBeNull();

    const paged: string[] = [];
    let next: string | null = `${recordings(teamA)}?${day}&limit=5`;
    let pages = 0;
    while (next) {
      const page = await get(next);
      expect(page.status).toBe(200);
      paged.push(...(page.json.results as { id: string }[]).map((s) => s.id));
      next = page.json.next;
      pages++;
    }
    expect(pages).toBe(3);
    expect(paged).toEqual(ids);

    const durations = new Map(
      sessionsA.map((s) => {
        const e = expectedSummary(s.events);
        return [s.id, { duration: e.lastTimestamp - e.firstTimestamp, active: e.activeMilliseconds }];
      }),
    );
    const threshold = [...durations.values()].map((d) => d.duration).sort((a, b) => a - b)[6]!;
    const long = await get(`${recordings(teamA)}?${day}&min_duration=${Math.ceil(threshold / 1000)}`);
    const expectedLong = sessionsA
      .filter((s) => durations.get(s.id)!.duration >= Math.ceil(threshold / 1000) * 1000)
      .map((s) => s.id)
      .reverse();
    expect((long.json.results as { id: string }[]).map((s) => s.id)).toEqual(expectedLong);
    const activeThreshold = [...durations.values()].map((d) => d.active).sort((a, b) => a - b)[5]!;
    const active = await get(`${recordings(teamA)}?${day}&min_active_seconds=${Math.ceil(activeThreshold / 1000)}`);
    expect((active.json.results as { id: string }[]).map((s) => s.id)).toEqual(
      sessionsA
        .filter((s) => durations.get(s.id)!.active >= Math.ceil(activeThreshold / 1000) * 1000)
        .map((s) => s.id)
        .reverse(),
    );
    expect((await get(`${recordings(teamA)}?${day}&distinct_id=u`)).json.results).toHaveLength(12);
    expect((await get(`${recordings(teamA)}?${day}&distinct_id=nobody`)).json.results).toHaveLength(0);
    // Sessions start at 09:00 + i hours on their day: a window from 15:00 holds sessions 6 to 11.
    const afternoon = await get(`${recordings(teamA)}?date_from=${sessionDay}T15:00:00Z&date_to=${nextDay}`);
    expect((afternoon.json.results as { id: string }[]).map((s) => s.id)).toEqual(
      sessionsA
        .slice(6)
        .map((s) => s.id)
        .reverse(),
    );
  });

  it("serves a session's summary as computed from its events, revalidated by ETag", async () => {
    const session = sessionsA[3]!;
    const expected = expectedSummary(session.events);
    const answer = await get(`${recordings(teamA)}/${session.id}`);
    expect(answer.json).toMatchObject({
      id: session.id,
      team_id: teamA.id,
      distinct_id: 'u',
      start_time: new Date(expected.firstTimestamp).toISOString(),
      end_time: new Date(expected.lastTimestamp).toISOString(),
      duration_ms: expected.lastTimestamp - expected.firstTimestamp,
      active_ms: expected.activeMilliseconds,
      click_count: expected.clickCount,
      keypress_count: expected.keypressCount,
      mouse_activity_count: expected.mouseActivityCount,
      console_error_count: expected.consoleErrorCount,
      console_warn_count: expected.consoleWarnCount,
      console_log_count: expected.consoleLogCount,
      first_url: expected.firstUrl,
      urls: expected.urls,
      event_count: expected.eventCount,
      block_count: 3,
    });
    const etag = answer.headers.get('etag')!;
    expect(answer.headers.get('cache-control')).toContain('no-cache');
    const again = await get(`${recordings(teamA)}/${session.id}`, keyA, { 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect(again.text).toBe('');
  });

  it("streams a session's events in time order from its blocks, and serves raw blocks cacheable forever", async () => {
    const session = sessionsA[5]!;
    const list = await get(`${recordings(teamA)}/${session.id}/snapshots`);
    const blocks = list.json.blocks as { index: number; id: string; missing: boolean; raw_url: string }[];
    expect(blocks.map((b) => [b.index, b.missing])).toEqual([
      [0, false],
      [1, false],
      [2, false],
    ]);
    expect(list.json.max_blocks_per_request).toBe(2);
    expect(list.text).not.toContain('s3://'); // addresses stay internal

    const lines = async (range: string) => {
      const answer = await get(`${recordings(teamA)}/${session.id}/snapshots?blocks=${range}`);
      expect(answer.status).toBe(200);
      expect(answer.headers.get('content-type')).toContain('application/x-ndjson');
      return answer.text
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as [string, Record<string, unknown>]);
    };
    const events = [...(await lines('0-1')), ...(await lines('2'))];

    // Compressed for clients that ask (browsers do), identical once inflated; plain for clients that do not.
    const rawGet = (encoding: string | undefined) =>
      new Promise<{ encoding: string | undefined; body: Buffer }>((resolve, reject) => {
        const url = new URL(`${api.service.url}${recordings(teamA)}/${session.id}/snapshots?blocks=0-1`);
        request(
          url,
          { headers: { authorization: `Bearer ${keyA}`, ...(encoding ? { 'accept-encoding': encoding } : {}) } },
          (response) => {
            const chunks: Buffer[] = [];
            response.on('data', (chunk: Buffer) => chunks.push(chunk));
            response.on('end', () =>
              resolve({ encoding: response.headers['content-encoding'], body: Buffer.concat(chunks) }),
            );
          },
        )
          .on('error', reject)
          .end();
      });
    const zipped = await rawGet('gzip, deflate, br');
    const plain = await rawGet(undefined);
    const refused = await rawGet('gzip;q=0, identity');
    expect(zipped.encoding).toBe('gzip');
    expect(plain.encoding).toBeUndefined();
    expect(refused.encoding).toBeUndefined();
    expect(gunzipSync(zipped.body).equals(plain.body)).toBe(true);
    expect(zipped.body.length).toBeLessThan(plain.body.length / 2);
    expect(events.every(([windowId]) => windowId === 'w')).toBe(true);
    expect(events.map(([, event]) => event)).toEqual(
      [...session.events].sort((a, b) => (a.timestamp as number) - (b.timestamp as number)),
    );

    const raw = await fetch(`${api.service.url}${blocks[1]!.raw_url}`, {
      headers: { authorization: `Bearer ${keyA}` },
    });
    expect(raw.status).toBe(200);
    expect(raw.headers.get('cache-control')).toContain('immutable');
    const jsonl = decodeBlock(Buffer.from(await raw.arrayBuffer()), 'lz4-frame').toString('utf8');
    expect(
      jsonl
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line)[1]),
    ).toEqual(session.events.slice(31, 62));
    const cached = await fetch(`${api.service.url}${blocks[1]!.raw_url}`, {
      headers: { authorization: `Bearer ${keyA}`, 'if-none-match': raw.headers.get('etag')! },
    });
    expect(cached.status).toBe(304);
  });

  it('says which blocks are missing when an object was deleted, and still streams the others', async () => {
    const session = sessionsA[7]!;
    const before = await get(`${recordings(teamA)}/${session.id}/snapshots`);
    const block = (before.json.blocks as { raw_url: string }[])[1]!;
    const stored = await new SessionCatalog(clickhouse).get(teamA.id, session.id);
    await store.delete(store.keyOf(stored!.blocks[1]!.url.split('?')[0]!)!);

    const after = await get(`${recordings(teamA)}/${session.id}/snapshots`);
    expect((after.json.blocks as { missing: boolean }[]).map((b) => b.missing)).toEqual([false, true, false]);
    const raw = await get(block.raw_url);
    expect(raw.status).toBe(404);
    expect(raw.json.code).toBe('blob_not_found');

    const started = Date.now();
    const answer = await get(`${recordings(teamA)}/${session.id}/snapshots?blocks=0-1`);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(answer.status).toBe(200);
    const items = answer.text
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line));
    const missing = items.filter((item) => !Array.isArray(item));
    expect(missing).toEqual([
      {
        missing_block: expect.objectContaining({
          index: 1,
          code: 'blob_not_found',
          first_timestamp: new Date(session.events[31]!.timestamp as number).toISOString(),
        }),
      },
    ]);
    expect(items.filter(Array.isArray).map((item) => item[1])).toEqual(session.events.slice(0, 31));

    // What an SRE sees: the failed reads by code and the missing blocks served, on a service still ready.
    const metrics = await (await fetch(`${api.service.url}/metrics`)).text();
    expect(metrics).toMatch(/^replay_api_block_reads_total\{result="blob_not_found"[^}]*\} [1-9]/m);
    expect(metrics).toMatch(/^replay_api_missing_blocks_total\{service="replay-api"\} [1-9]/m);
    expect((await fetch(`${api.service.url}/readyz`)).status).toBe(200);
  });
});
