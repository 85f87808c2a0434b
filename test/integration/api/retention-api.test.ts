import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ApiKeyStore } from '../../../src/api/api-keys.ts';
import { SessionCatalog } from '../../../src/api/session-catalog.ts';
import { runApi } from '../../../src/cli/api-command.ts';
import { openClickHouse } from '../../../src/clickhouse/client.ts';
import { migrateClickHouse } from '../../../src/clickhouse/migrations.ts';
import { insertSummaryRows } from '../../../src/clickhouse/session-replay-events.ts';
import { loadConfig } from '../../../src/config/index.ts';
import { launchChromium } from '../../../src/harness/chromium.ts';
import { createLogger } from '../../../src/logging/logger.ts';
import { openPostgres, type SqlDatabase } from '../../../src/postgres/database.ts';
import { migratePostgres } from '../../../src/postgres/migrations.ts';
import type { RetentionClass } from '../../../src/recordings/message-codec.ts';
import type { S3BlobStore } from '../../../src/storage/s3-blob-store.ts';
import { type Team, TeamStore } from '../../../src/teams/team-store.ts';
import { freshBucketStore } from '../../support/blob-consumer.ts';
import { syntheticSession } from '../../support/expected-summary.ts';
import { writeFlushes } from '../../support/summary-rows.ts';
import { createTestTeam } from '../../support/teams.ts';

const stack = inject('stack');
const DAY = 86_400_000;

describe('replay API: sessions past their retention (real Postgres, MinIO, chDB)', () => {
  let dir: string;
  let db: SqlDatabase;
  let clickhouse: ClickHouseClient;
  let store: S3BlobStore;
  let api: Awaited<ReturnType<typeof runApi>>;
  let team30: Team;
  let key: string;
  const now = Date.now();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'retention-api-'));
    db = await openPostgres({ kind: 'postgres', url: stack.postgres!.url });
    await migratePostgres(db);
    const teams = new TeamStore(db);
    const team = (retention: RetentionClass) => createTestTeam(teams, { name: `retention ${retention}`, retention });
    team30 = await team('30d');
    const team90 = await team('90d');
    store = await freshBucketStore();
    clickhouse = openClickHouse({ kind: 'chdb', path: join(dir, 'db') });
    await migrateClickHouse(clickhouse);
    // The TTL would delete the expired row within seconds; held back, the row is there as it is between TTL merges
    // (up to 4 hours per partition), which is when only the API's own check keeps the session from being served.
    await clickhouse.command({ query: 'SYSTEM STOP TTL MERGES session_replay_events' });
    const session = async (owner: Team, sessionId: string, start: number) =>
      writeFlushes({
        dir,
        team: owner,
        store,
        flushes: [[{ sessionId, events: syntheticSession(7, start, 40) }]],
        now: () => start + 60_000,
      });
    const rows = [
      // 31 days old in a 30-day team: expired. The same age in a 90-day team, and a day old in the 30-day one: kept.
      ...(await session(team30, 'old-session', now - 31 * DAY)),
      ...(await session(team30, 'recent-session', now - DAY)),
      // Of the 30-day team, but recorded while the team kept 90 days (its rows say 90).
      ...(await session(team90, 'old-in-90d', now - 31 * DAY)).map((r) => ({ ...r, team_id: team30.id })),
    ];
    await insertSummaryRows(clickhouse, rows);
    key = (await new ApiKeyStore(db).create('retention', [team30.id])).key;
    api = await runApi(loadConfig({ HOME: '/nonexistent', API_PORT: '0' }), createLogger('warn', 'api'), {
      db,
      clickhouse,
      store,
    });
  });
  afterAll(async () => {
    await api?.stop();
    store?.close();
    await clickhouse?.close();
    await db?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const get = async (path: string) => {
    const response = await fetch(`${api.service.url}${path}`, {
      headers: { authorization: `Bearer ${key}` },
      signal: AbortSignal.timeout(20_000),
    });
    const text = await response.text();
    return { status: response.status, text, json: () => JSON.parse(text) };
  };
  const base = () => `/api/projects/${team30.id}/session_recordings`;
  const paths = async (sessionId: string) => {
    const found = await new SessionCatalog(clickhouse).get(team30.id, sessionId);
    expect(found?.blocks.length, sessionId).toBeGreaterThan(0);
    const blocks = found!.blocks;
    return [
      `${base()}/${sessionId}`,
      `${base()}/${sessionId}/snapshots`,
      `${base()}/${sessionId}/snapshots?blocks=0-${blocks.length - 1}`,
      `${base()}/${sessionId}/snapshots/blocks/${blocks[0]!.id}`,
    ];
  };

  it('answers 410 recording_expired for a session past its retention, before the TTL ran', async () => {
    for (const path of await paths('old-session')) {
      const answer = await get(path);
      expect({ path, status: answer.status }).toEqual({ path, status: 410 });
      expect(answer.json()).toEqual({
        type: 'not_found',
        code: 'recording_expired',
        detail: 'This recording has expired: it was kept 30 days.',
      });
    }
  });

  it('serves sessions within their retention, by the retention their rows carry', async () => {
    for (const sessionId of ['recent-session', 'old-in-90d']) {
      for (const path of await paths(sessionId))
        expect({ path, status: (await get(path)).status }).toEqual({ path, status: 200 });
    }
    expect((await get(`${base()}/recent-session`)).json()).toMatchObject({ retention_period_days: 30 });
    expect((await get(`${base()}/old-in-90d`)).json()).toMatchObject({ retention_period_days: 90 });
  });

  it('leaves expired sessions out of the listing', async () => {
    const from = new Date(now - 60 * DAY).toISOString().slice(0, 10);
    const listed = await get(`${base()}?date_from=${from}`);
    expect(listed.status).toBe(200);
    expect(
      listed
        .json()
        .results.map((s: { id: string }) => s.id)
        .sort(),
    ).toEqual(['old-in-90d', 'recent-session']);
    // Pagination counts only what it lists: one per page, two pages, then nothing more.
    const first = (await get(`${base()}?date_from=${from}&limit=1`)).json();
    expect(first.results.map((s: { id: string }) => s.id)).toEqual(['recent-session']);
    const second = (await get(first.next)).json();
    expect(second.results.map((s: { id: string }) => s.id)).toEqual(['old-in-90d']);
    expect(second.next_cursor).toBeNull();
  });

  describe('the player page', () => {
    let browser: Browser;
    beforeAll(async () => {
      browser = await launchChromium(loadConfig());
    });
    afterAll(async () => {
      await browser?.close();
    });

    it('says the recording has expired and how long it was kept, instead of an empty player', async () => {
      const tab = await browser.newPage();
      try {
        await tab.goto(`${api.service.url}/player#key=${key}&team=${team30.id}&session=old-session`);
        await tab.locator('body[data-state="expired"], body[data-state="failed"]').waitFor({ timeout: 30_000 });
        expect(await tab.evaluate('document.body.dataset.state')).toBe('expired');
        expect(await tab.locator('#notices').textContent()).toBe('This recording has expired: it was kept 30 days.');
        expect(await tab.locator('#status').textContent()).toBe('');
        expect(await tab.locator('#player').innerHTML()).toBe('');
        expect(await tab.locator('#summary').innerHTML()).toBe('');
      } finally {
        await tab.close();
      }
    });
  });
});
