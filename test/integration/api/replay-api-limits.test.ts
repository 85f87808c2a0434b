import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { ApiKeyStore } from '../../../src/api/api-keys.ts';
import { SessionCatalog } from '../../../src/api/session-catalog.ts';
import { runApi } from '../../../src/cli/api-command.ts';
import { openClickHouse } from '../../../src/clickhouse/client.ts';
import { migrateClickHouse } from '../../../src/clickhouse/migrations.ts';
import { insertSummaryRows } from '../../../src/clickhouse/session-replay-events.ts';
import { loadConfig } from '../../../src/config/index.ts';
import { launchChromium } from '../../../src/harness/chromium.ts';
import { startS3FaultProxy } from '../../../src/harness/s3-fault-proxy.ts';
import { createLogger, type Logger } from '../../../src/logging/logger.ts';
import { openPostgres, type SqlDatabase } from '../../../src/postgres/database.ts';
import { migratePostgres } from '../../../src/postgres/migrations.ts';
import { decodeBlock } from '../../../src/recordings/blob-object.ts';
import type { BlobStore } from '../../../src/storage/blob-store.ts';
import { S3BlobStore } from '../../../src/storage/s3-blob-store.ts';
import { type Team, TeamStore } from '../../../src/teams/team-store.ts';
import { freshBucketStore } from '../../support/blob-consumer.ts';
import { playerSettled, replayedFrame } from '../../support/replay-flow.ts';
import { liveRows, liveRowsStart, writeFlushes } from '../../support/summary-rows.ts';
import { createTestTeam } from '../../support/teams.ts';

const stack = inject('stack');
const MiB = 1024 * 1024;
// With the live rows' sessions, some days ago: well inside the team's 90 days (past them, the API answers 410).
const base = liveRowsStart;
type Event = Record<string, unknown> & { timestamp: number };
/** What the tests read of a browser window (the project compiles without the DOM library). */
type BrowserWindow = { getComputedStyle(element: unknown): { color: string }; __pwned?: string };

/** One session written as the live path writes it: one flush (one object, one block) per entry of `flushes`. */
function writeSession(dir: string, team: Team, store: BlobStore, sessionId: string, flushes: Event[][]) {
  return writeFlushes({
    dir,
    team,
    store,
    flushes: flushes.map((events) => [{ sessionId, events }]),
    now: (flush) => base + flush,
  });
}

/** A recorded page for the player: an inline stylesheet, a script and an inline handler that must never run. */
function pageEvents(start: number): Event[] {
  const text = (id: number, textContent: string) => ({ type: 3, id, textContent });
  const element = (id: number, tagName: string, attributes: Record<string, string>, childNodes: unknown[] = []) => ({
    type: 2,
    id,
    tagName,
    attributes,
    childNodes,
  });
  return [
    { type: 4, timestamp: start, data: { href: 'https://shop.example/', width: 1024, height: 768 } },
    {
      type: 2,
      timestamp: start + 10,
      data: {
        initialOffset: { top: 0, left: 0 },
        node: {
          type: 0,
          id: 1,
          childNodes: [
            { type: 1, id: 2, name: 'html', publicId: '', systemId: '' },
            element(3, 'html', {}, [
              element(4, 'head', {}, [
                element(5, 'style', {}, [{ ...text(6, '#styled { color: rgb(1, 2, 3); }'), isStyle: true }]),
                element(7, 'script', {}, [text(8, 'window.parent.__pwned = "script"; window.__pwned = "script";')]),
              ]),
              element(9, 'body', {}, [
                element(10, 'div', { id: 'styled' }, [text(11, 'styled text')]),
                element(12, 'img', { src: 'data:,broken', onerror: 'window.parent.__pwned = "handler"' }),
              ]),
            ]),
          ],
        },
      },
    },
    ...Array.from({ length: 5 }, (_, i) => ({
      type: 3,
      timestamp: start + 1000 * (i + 1),
      data: { source: 1, positions: [{ x: 10 * i, y: 10, id: 10, timeOffset: 0 }] },
    })),
  ];
}

/** Text that compresses well, but not to nothing (LZ4 frames carry real sequences): a bomb of modest ratio. */
const filler = (n: number, seed: number) =>
  Array.from({ length: n }, (_, i) => (i % 40 === 0 ? `${i * seed}` : 'replay')).join(' ');

describe('replay API limits and edge hygiene (real Postgres, MinIO, chDB)', () => {
  let dir: string;
  let db: SqlDatabase;
  let clickhouse: ClickHouseClient;
  let store: S3BlobStore;
  let team: Team;
  let key: string;
  let sessions: Awaited<ReturnType<typeof liveRows>>['sessions'];
  const stops: (() => Promise<unknown>)[] = [];

  // The API under test reads through this store: real MinIO, optionally slowed down, with the reads in flight counted.
  const reads = { delayMs: 0, inFlight: 0, maxInFlight: 0 };
  let api: Awaited<ReturnType<typeof runApi>>;
  const logged: string[] = [];
  const memoryLog = (): Logger => createLogger('warn', 'api', (line) => logged.push(line) > 0);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'replay-api-limits-'));
    db = await openPostgres({ kind: 'postgres', url: stack.postgres!.url });
    await migratePostgres(db);
    team = await createTestTeam(new TeamStore(db), { name: 'limits', retention: '90d' });
    key = (await new ApiKeyStore(db).create('limits', [team.id])).key;
    store = await freshBucketStore();
    clickhouse = openClickHouse({ kind: 'chdb', path: join(dir, 'db') });
    await migrateClickHouse(clickhouse);

    await mkdir(join(dir, 'live'));
    const live = await liveRows(join(dir, 'live'), team.id, store);
    sessions = live.sessions;
    // "bomb": block 0 is small; block 1 holds 2 MiB of JSONL (in LZ4 frames of under 1 MiB each), past the 1 MiB limit.
    const big = Array.from({ length: 20 }, (_, i) => ({
      type: 5,
      timestamp: base + 60_000 + i,
      data: { tag: 'payload', payload: { text: filler(17_000, i) } },
    }));
    const bomb = await writeSession(dir, team, store, 'bomb', [pageEvents(base).slice(0, 3), big]);
    const page = await writeSession(dir, team, store, 'page', [pageEvents(base)]);
    await insertSummaryRows(clickhouse, [...live.rows, ...bomb, ...page]);

    const slowStore: BlobStore = Object.assign(Object.create(store) as S3BlobStore, {
      async getRange(objectKey: string, start: number, end: number) {
        reads.inFlight++;
        reads.maxInFlight = Math.max(reads.maxInFlight, reads.inFlight);
        try {
          if (reads.delayMs) await new Promise((resolve) => setTimeout(resolve, reads.delayMs));
          return await store.getRange(objectKey, start, end);
        } finally {
          reads.inFlight--;
        }
      },
    });
    const config = loadConfig({
      HOME: '/nonexistent',
      API_PORT: '0',
      API_MAX_CONCURRENT_DECODES: '2',
      API_DECODE_WAIT_MS: '100',
      API_MAX_BLOCK_BYTES: String(MiB),
    });
    api = await runApi(config, memoryLog(), { db, clickhouse, store: slowStore });
    stops.push(() => api.stop());
  });
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
    await clickhouse?.close();
    await db?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const recordings = () => `/api/projects/${team.id}/session_recordings`;
  const get = async (url: string, headers: Record<string, string> = {}) => {
    const response = await fetch(url, {
      headers: { authorization: `Bearer ${key}`, ...headers },
      signal: AbortSignal.timeout(30_000),
    });
    return { status: response.status, headers: response.headers, text: await response.text() };
  };
  const lines = (text: string) =>
    text
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line));

  it('answers 503 api_overloaded with Retry-After past API_MAX_CONCURRENT_DECODES, and serves the rest whole', async () => {
    reads.delayMs = 300;
    reads.maxInFlight = 0;
    const session = sessions[4]!;
    const expected = [...session.events.slice(0, 62)].sort((a, b) => (a.timestamp as number) - (b.timestamp as number));
    try {
      const answers = await Promise.all(
        Array.from({ length: 12 }, () => get(`${api.service.url}${recordings()}/${session.id}/snapshots?blocks=0-1`)),
      );
      const refused = answers.filter((a) => a.status === 503);
      const served = answers.filter((a) => a.status === 200);
      expect(refused.length + served.length).toBe(12);
      expect(refused.length).toBeGreaterThan(0);
      expect(served.length).toBeGreaterThanOrEqual(2);
      for (const answer of refused) {
        expect(JSON.parse(answer.text)).toMatchObject({ type: 'server_error', code: 'api_overloaded' });
        expect(answer.headers.get('retry-after')).toBe('1');
      }
      for (const answer of served) expect(lines(answer.text).map((line) => line[1])).toEqual(expected);
      expect(reads.maxInFlight).toBeLessThanOrEqual(2); // never more block reads at once than slots
    } finally {
      reads.delayMs = 0;
    }

    // Raw block reads take slots too, and give them back: afterwards the API serves normally and is still ready.
    const list = JSON.parse((await get(`${api.service.url}${recordings()}/${session.id}/snapshots`)).text);
    for (const block of list.blocks as { raw_url: string }[]) {
      expect((await get(`${api.service.url}${block.raw_url}`)).status).toBe(200);
    }
    // Clients that go away mid-request (waiting for a slot, or mid-read) leave no slot behind.
    reads.delayMs = 300;
    try {
      const gone = [list.blocks[0].raw_url, `${recordings()}/${session.id}/snapshots?blocks=0-1`].flatMap((path) =>
        Array.from({ length: 3 }, () =>
          fetch(`${api.service.url}${path}`, {
            headers: { authorization: `Bearer ${key}` },
            signal: AbortSignal.timeout(50),
          }).catch(() => undefined),
        ),
      );
      await Promise.all(gone);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    } finally {
      reads.delayMs = 0;
    }
    const again = await get(`${api.service.url}${recordings()}/${session.id}/snapshots?blocks=0-1`);
    expect(again.status).toBe(200);
    expect((await fetch(`${api.service.url}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${api.service.url}/metrics`)).text();
    expect(metrics).toMatch(/^replay_api_decodes_in_flight\{[^}]*\} 0$/m);
    expect(metrics).toMatch(/^http_errors_total\{code="api_overloaded"[^}]*\} [1-9]/m);
  });

  it('reports a block that inflates past API_MAX_BLOCK_BYTES as a missing block_too_large, and streams the others', async () => {
    const answer = await get(`${api.service.url}${recordings()}/bomb/snapshots?blocks=0-1`);
    expect(answer.status).toBe(200);
    const items = lines(answer.text);
    expect(items.filter(Array.isArray).map((item) => item[1])).toEqual(pageEvents(base).slice(0, 3));
    expect(items.filter((item) => !Array.isArray(item))).toEqual([
      {
        missing_block: expect.objectContaining({
          index: 1,
          code: 'block_too_large',
          first_timestamp: new Date(base + 60_000).toISOString(),
        }),
      },
    ]);
    expect(logged.join('')).toContain('block_too_large'); // the server log says which block and why
    // The block itself is sound and inflates past 1 MiB: it is the limit that refused it, not damage.
    const list = JSON.parse((await get(`${api.service.url}${recordings()}/bomb/snapshots`)).text);
    const raw = await fetch(`${api.service.url}${list.blocks[1].raw_url}`, {
      headers: { authorization: `Bearer ${key}` },
    });
    const stored = Buffer.from(await raw.arrayBuffer());
    expect(stored.length).toBeLessThan(MiB);
    expect(decodeBlock(stored, 'lz4-frame').length).toBeGreaterThan(MiB);
  });

  it('never shows the bucket, the object key or the S3 message in a 5xx answer caused by S3', async () => {
    const proxy = await startS3FaultProxy(stack.minio!.endpoint);
    stops.push(() => proxy.close());
    const minio = stack.minio!;
    const failing = new S3BlobStore({
      bucket: store.bucket,
      endpoint: proxy.endpoint,
      region: minio.region,
      forcePathStyle: true,
      credentials: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
      maxAttempts: 1,
    });
    const config = loadConfig({ HOME: '/nonexistent', API_PORT: '0' });
    const broken = await runApi(config, memoryLog(), { db, clickhouse, store: failing });
    stops.push(async () => {
      await broken.stop();
      failing.close();
    });
    const session = sessions[6]!;
    const stored = (await new SessionCatalog(clickhouse).get(team.id, session.id))!;
    const objectKey = store.keyOf(stored.blocks[0]!.url.split('?')[0]!)!;
    const list = JSON.parse((await get(`${broken.service.url}${recordings()}/${session.id}/snapshots`)).text);
    proxy.setFailing(true);

    const stderr = vi.spyOn(process.stderr, 'write');
    try {
      const raw = await get(`${broken.service.url}${list.blocks[0].raw_url}`);
      const events = await get(`${broken.service.url}${recordings()}/${session.id}/snapshots?blocks=0`);
      expect(raw.status).toBe(503);
      expect(JSON.parse(raw.text)).toEqual({
        type: 'server_error',
        code: 'blob_store_unavailable',
        detail: expect.any(String),
      });
      expect(raw.headers.get('retry-after')).toBe('1');
      expect(events.status).toBe(200);
      expect(lines(events.text)).toEqual([
        { missing_block: expect.objectContaining({ index: 0, code: 'blob_store_unavailable' }) },
      ]);
      const proxyHost = new URL(proxy.endpoint).host;
      for (const body of [raw.text, events.text]) {
        for (const secret of [store.bucket, objectKey, 'rec/', 'SlowDown', 'injected outage', proxyHost, 's3://']) {
          expect(body, `${body} shows ${secret}`).not.toContain(secret);
        }
      }
      // The server log has the whole story.
      const serverLog = [...stderr.mock.calls.map(([chunk]) => String(chunk)), ...logged].join('');
      expect(serverLog).toContain(objectKey);
      expect(proxy.failedRequests).toBeGreaterThan(0);
    } finally {
      stderr.mockRestore();
      proxy.setFailing(false);
    }
  });

  describe('the player page', () => {
    let browser: Browser;
    beforeAll(async () => {
      browser = await launchChromium(loadConfig());
    });
    afterAll(async () => {
      await browser?.close();
    });

    it('sends a Content-Security-Policy that allows only its own script files, and hardening headers', async () => {
      const response = await fetch(`${api.service.url}/player`);
      const html = await response.text();
      const csp = response.headers.get('content-security-policy') ?? '';
      const directives = new Map(
        csp.split(';').map((d) => {
          const [name = '', ...values] = d.trim().split(/\s+/);
          return [name, values];
        }),
      );
      expect(directives.get('default-src')).toEqual(["'none'"]);
      expect(directives.get('frame-ancestors')).toEqual(["'none'"]);
      expect(directives.get('object-src')).toEqual(["'none'"]);
      expect(directives.get('base-uri')).toEqual(["'none'"]);
      expect(directives.get('connect-src')).toEqual(["'self'"]);
      const scripts = directives.get('script-src') ?? [];
      expect(scripts).not.toContain("'unsafe-inline'");
      expect(scripts).not.toContain("'unsafe-eval'");
      // No inline script at all: the page's scripts are files of its own origin, and only those run.
      expect(scripts).toEqual(["'self'"]);
      expect([...html.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/g)].map((m) => m[1]!.trim())).toEqual(['', '']);
      const sources = [...html.matchAll(/<script\b[^>]*\bsrc="([^"]+)"/g)].map((m) => m[1]!);
      expect(sources).toEqual(['/player/assets/rrweb-player.js', '/player/assets/player-app.js']);
      for (const source of sources) {
        const asset = await fetch(`${api.service.url}${source}`);
        expect(asset.status).toBe(200);
        expect(asset.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
        expect(asset.headers.get('x-content-type-options')).toBe('nosniff');
      }
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('referrer-policy')).toBe('no-referrer');
      expect(response.headers.get('x-frame-options')).toBe('DENY');
    });

    it('plays a recording under that policy: recorded styles apply, recorded scripts never run', async () => {
      const tab = await browser.newPage();
      const violations: string[] = [];
      tab.on('console', (message) => {
        if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
      });
      try {
        await tab.goto(`${api.service.url}/player#key=${key}&team=${team.id}&session=page`);
        await tab.locator(playerSettled).waitFor({ state: 'attached', timeout: 30_000 });
        expect(
          await tab.evaluate("document.body.dataset.state + ' ' + document.getElementById('status').textContent"),
        ).toMatch(/^playing/);
        await tab.evaluate('window.replay.seek(window.replay.timeline.end, false)');
        const replayed = tab.frameLocator(replayedFrame);
        await replayed.locator('#styled').waitFor({ state: 'attached', timeout: 10_000 });
        expect(await replayed.locator('#styled').textContent()).toBe('styled text');
        expect(
          await replayed
            .locator('#styled')
            .evaluate((e) => (globalThis as unknown as BrowserWindow).getComputedStyle(e).color),
        ).toBe('rgb(1, 2, 3)');
        await tab.waitForTimeout(500);
        expect(await tab.evaluate('window.__pwned')).toBeUndefined();
        expect(
          await replayed.locator('body').evaluate(() => (globalThis as unknown as BrowserWindow).__pwned),
        ).toBeUndefined();
        // The replay iframe is sandboxed without scripts.
        const sandbox = await tab.locator(replayedFrame).getAttribute('sandbox');
        expect(sandbox?.split(/\s+/)).not.toContain('allow-scripts');
        // Nothing the player needs was refused (a refused recorded script would be fine; there is none to refuse:
        // rrweb does not rebuild scripts).
        expect(violations.filter((v) => !/script/i.test(v))).toEqual([]);
      } finally {
        await tab.close();
      }
    });
  });
});
