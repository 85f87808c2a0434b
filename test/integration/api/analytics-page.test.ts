import { createHash, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ApiKeyStore } from '../../../src/api/api-keys.ts';
import { loadConfig } from '../../../src/config/index.ts';
import { demoPageHtml, serveHtml } from '../../../src/dev/demo-page.ts';
import { launchChromium } from '../../../src/harness/chromium.ts';
import type { Team } from '../../../src/teams/team-store.ts';
import type { BehaviorRecord } from '../../../src/uba/behavior-record.ts';
import { insertBehaviors } from '../../../src/uba/behavior-rows.ts';
import { APPLY_SCRIPT, scriptCall } from '../../../src/uba/realtime/apply-script.ts';
import { appliedOffsetKey, hotItemsKey, keyUpdates } from '../../../src/uba/realtime/keys.ts';
import { sampleBehavior } from '../../support/behaviors.ts';
import type { TestCapture } from '../../support/capture.ts';
import { startRecordingPipeline } from '../../support/pipeline.ts';
import { playerSettled, recordDemoSession, replayedFrame, waitForSession } from '../../support/replay-flow.ts';

// The dashboard page in Chromium on the real read path: a session recorded by posthog-js on the demo page through
// capture → Kafka → blob consumer → MinIO → sink → chDB, behaviours inserted with the behaviour sink's insert path
// (the dropped user's carry that session's id), realtime keys written by the realtime sink's own script, and the API
// serving both the page and its data.

const stack = inject('stack');
const HOUR = 3_600_000;
const DAY = 86_400_000;
const typed = 'blue teapot';
/** Where the screenshot goes: under .data/ (ignored by git), like the project's other local output. */
const resultsDir = join(import.meta.dirname, '../../../.data/test-results');

// biome-ignore lint/suspicious/noExplicitAny: the tests read arbitrary API answers
type Json = Record<string, any>;

// The page's formatting of KPI values and changes, written out here rather than imported.
const count = (v: number | null) => (v === null ? '\u2014' : new Intl.NumberFormat('en-US').format(v));
const kpiText: Record<string, (v: number | null) => string> = {
  impressions: count,
  clicks: count,
  ctr: (v) => (v === null ? '\u2014' : `${(v * 100).toFixed(2)} %`),
  conversions: count,
  conversion_rate: (v) => (v === null ? '\u2014' : v.toFixed(3)),
  active_users: count,
};
const changeText = (v: number | null) =>
  v === null
    ? 'no previous data'
    : `${v > 0 ? '\u25b2 +' : v < 0 ? '\u25bc ' : '= '}${(v * 100).toFixed(1)} % vs previous period`;

describe('the analytics page in Chromium', () => {
  let browser: Browser;
  let dir: string;
  let capture: TestCapture;
  let apiUrl: string;
  let page: { url: string; server: Server };
  let teamA: Team;
  let teamB: Team;
  let key: string;
  let sessionId: string;
  const stops: (() => Promise<unknown>)[] = [];
  /** The Redis keys this file wrote: the stack's Redis is shared, and team ids repeat across files' databases. */
  let redisKeys: string[] = [];
  /** Browser console lines about the Content-Security-Policy, and uncaught page errors. */
  const problems: string[] = [];

  const get = async (path: string): Promise<Json> => {
    const response = await fetch(`${apiUrl}${path}`, { headers: { authorization: `Bearer ${key}` } });
    expect(response.status, path).toBe(200);
    return (await response.json()) as Json;
  };
  const watch = (tab: Page) => {
    tab.on('console', (message) => {
      if (/Content Security Policy|Trusted Type/i.test(message.text())) problems.push(message.text());
    });
    tab.on('pageerror', (error) => problems.push(error.message));
    return tab;
  };
  /** Waits for a condition read with evaluate (not waitForFunction: Playwright polls that with eval, which the CSP refuses). */
  const until = async (tab: Page, expression: string, timeoutMs = 15_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await tab.evaluate(expression))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${expression}`);
      await tab.waitForTimeout(200);
    }
  };

  beforeAll(async () => {
    browser = await launchChromium(loadConfig());
    dir = await mkdtemp(join(tmpdir(), 'analytics-page-'));
    const brokers = stack.kafka!.brokers;
    const read = await startRecordingPipeline({
      brokers,
      postgresUrl: stack.postgres!.url,
      dir,
      env: { REDIS_URL: stack.redis!.url },
    });
    stops.push(() => read.stop());
    capture = read.capture;
    apiUrl = read.apiUrl;
    teamA = await capture.createTeam({ name: 'shop A' });
    teamB = await capture.createTeam({ name: 'shop B' });
    key = (await new ApiKeyStore(read.db).create('analytics-page', [teamA.id])).key;

    // A real session of team A: posthog-js records the demo page while the user types and adds to the cart.
    page = await serveHtml(demoPageHtml({ captureUrl: capture.url, token: teamA.apiToken }));
    sessionId = await recordDemoSession(browser, page.url, typed);
    await waitForSession(apiUrl, key, teamA.id, sessionId, typed.length);

    const now = Date.now();
    const records: BehaviorRecord[] = [];
    const add = (tenant: number, overrides: Partial<BehaviorRecord>) =>
      records.push(sampleBehavior({ tenant_id: tenant, scenario_id: 'home', ...overrides }));
    const journey = (tenant: number, user: string, actions: number, start: number, session = '', prefix = 'a') => {
      ['impression', 'click', 'add_cart', 'order'].slice(0, actions).forEach((action, i) => {
        add(tenant, {
          user_id: user,
          item_id: `${prefix}-item-${user.length % 4}`,
          action_type: action,
          timestamp: start + i * 60_000,
          session_id: session,
        });
      });
    };
    // Team A, the last two days: six buyers, three who stop after the click (one of them in the recorded session),
    // four who only saw an impression; and a little in the previous period, for the change.
    for (let u = 0; u < 6; u++) journey(teamA.id, `buyer-${u}`, 4, now - 2 * DAY + u * HOUR);
    journey(teamA.id, 'dropper', 2, now - DAY, sessionId);
    journey(teamA.id, 'browser-1', 2, now - DAY + HOUR, 'unrecorded-session-1');
    journey(teamA.id, 'browser-2', 2, now - DAY + 2 * HOUR);
    for (let u = 0; u < 4; u++) journey(teamA.id, `looker-${u}`, 1, now - 20 * HOUR + u * HOUR);
    for (let u = 0; u < 3; u++) journey(teamA.id, `old-${u}`, 2, now - 9 * DAY + u * HOUR);
    // This minute's hot items (also in Redis below).
    const recent: BehaviorRecord[] = [];
    for (let i = 0; i < 6; i++) {
      const tenant = i < 4 ? teamA.id : teamB.id;
      const item = i < 4 ? `a-hot-${i % 2}` : 'b-secret-hot';
      recent.push(
        sampleBehavior({
          tenant_id: tenant,
          user_id: `live-${i}`,
          item_id: item,
          action_type: 'click',
          scenario_id: 'home',
          timestamp: now - 30_000 + i,
        }),
      );
    }
    records.push(...recent);
    // Team B: more of everything, under names that must never appear on team A's page.
    for (let u = 0; u < 20; u++)
      journey(teamB.id, `buyer-${u}`, 1 + (u % 4), now - DAY + u * 60_000, 'b-secret-session', 'b-secret');
    await insertBehaviors(
      read.clickhouse,
      records.map((record, offset) => ({ record, topic: 'analytics-page-test', partition: 0, offset })),
    );

    const config = loadConfig({ HOME: '/nonexistent' });
    const redis = createClient({ url: stack.redis!.url });
    await redis.connect();
    try {
      // Another file's hot items of the same team ids (its own database's) must not show in this one's.
      await redis.del([hotItemsKey(teamA.id, 'home'), hotItemsKey(teamB.id, 'home')]);
      const call = scriptCall(
        appliedOffsetKey(`analytics-page-${randomUUID()}`, 'user_behaviors', 0),
        recent.length - 1,
        recent.map((record, i) => ({
          offset: i,
          updates: keyUpdates(record, { weights: config.realtimeActionWeights, halfLifeS: config.realtimeHalfLifeS }),
        })),
        {
          offsetTtlS: 3600,
          hotMaxItems: config.realtimeHotMaxItems,
          hotTtlS: config.realtimeHotTtlS,
          metricsTtlS: config.realtimeMetricsTtlS,
          recentMax: config.realtimeRecentMax,
          recentTtlS: config.realtimeRecentTtlS,
        },
      );
      redisKeys = call.keys;
      await redis.eval(APPLY_SCRIPT, { keys: call.keys, arguments: call.arguments });
    } finally {
      await redis.quit();
    }
  }, 240_000);

  afterAll(async () => {
    if (redisKeys.length) {
      const redis = createClient({ url: stack.redis!.url });
      await redis.connect();
      await redis.del(redisKeys);
      await redis.quit();
    }
    await browser?.close();
    page?.server.close();
    for (const stop of stops.reverse()) await stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves the page under a strict CSP (its own script by hash, ECharts from node_modules, Trusted Types)', async () => {
    const response = await fetch(`${apiUrl}/analytics`);
    const html = await response.text();
    const directives = new Map(
      (response.headers.get('content-security-policy') ?? '').split(';').map((d) => {
        const [name = '', ...values] = d.trim().split(/\s+/);
        return [name, values];
      }),
    );
    const hash = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
    const inline = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
    expect(inline).toHaveLength(1);
    expect(directives.get('script-src')!.sort()).toEqual(["'self'", hash(inline[0]!)].sort());
    const styles = [...html.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((m) => m[1]!);
    expect(directives.get('style-src')).toEqual(styles.map(hash));
    expect(directives.get('default-src')).toEqual(["'none'"]);
    expect(directives.get('connect-src')).toEqual(["'self'"]);
    expect(directives.get('require-trusted-types-for')).toEqual(["'script'"]);
    expect(html).not.toMatch(/\son[a-z]+=/i); // no inline event handlers
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    const asset = await fetch(`${apiUrl}/analytics/assets/echarts.min.js`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect((await asset.text()).length).toBeGreaterThan(500_000);
    expect((await fetch(`${apiUrl}/analytics/assets/package.json`)).status).toBe(404);
  });

  it('shows the KPIs the API returns, the charts, and a funnel whose drop-off link plays the recorded session', async () => {
    const tab = watch(await browser.newPage({ viewport: { width: 1400, height: 1000 } }));
    await tab.goto(`${apiUrl}/analytics#key=${key}&team=${teamA.id}`);
    await tab.locator('body:is([data-state="ready"], [data-state="failed"], [data-state="key"])').waitFor({
      state: 'attached',
      timeout: 30_000,
    });
    expect(await tab.evaluate('document.body.dataset.state')).toBe('ready');
    expect(tab.url()).not.toContain('rpk_'); // the key left the address bar
    for (const id of ['kpis', 'trend', 'top-items', 'funnel', 'retention', 'paths', 'realtime']) {
      expect(await tab.locator(`#${id}`).getAttribute('data-state'), id).toBe('ready');
    }

    // KPI tiles: the text of the dashboard route's answer for the query the page asked.
    const kpiQuery = (await tab.locator('#kpis').getAttribute('data-query'))!;
    const dashboard = await get(`/api/projects/${teamA.id}/analytics/dashboard?${kpiQuery}`);
    expect(dashboard.current).toMatchObject({ impressions: 13, clicks: 13, conversions: 6, active_users: 17 });
    expect(dashboard.previous).toMatchObject({ impressions: 3, clicks: 3 });
    for (const [name, format] of Object.entries(kpiText)) {
      const tile = tab.locator(`.tile[data-kpi="${name}"]`);
      expect(await tile.locator('.value').textContent(), name).toBe(format(dashboard.current[name]));
      expect(await tile.locator('.change').textContent(), name).toBe(changeText(dashboard.change[name]));
    }

    // Top items, retention, paths and the trend come from team A's own answers.
    const topQuery = (await tab.locator('#top-items').getAttribute('data-query'))!;
    const top = await get(`/api/projects/${teamA.id}/analytics/top-items?${topQuery}`);
    expect(
      await tab.locator('#top-items-body tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-item'))),
    ).toEqual(top.results.map((r: Json) => r.item_id));
    const retentionQuery = (await tab.locator('#retention').getAttribute('data-query'))!;
    const retention = await get(`/api/projects/${teamA.id}/analytics/retention?${retentionQuery}`);
    expect(await tab.locator('#retention-body tr').count()).toBe(retention.cohorts.length);
    const pathsQuery = (await tab.locator('#paths').getAttribute('data-query'))!;
    const paths = await get(`/api/projects/${teamA.id}/analytics/paths?${pathsQuery}`);
    expect(paths.users).toBeGreaterThan(0);
    const sankey = (await tab.evaluate("window.analytics.charts['paths-chart'].getOption().series[0].data")) as Json[];
    expect(sankey.map((n) => n.name)).toEqual(paths.nodes.map((n: Json) => n.id));
    for (const chart of ['trend-chart', 'funnel-chart', 'paths-chart']) {
      expect(await tab.locator(`#${chart} canvas`).count(), chart).toBeGreaterThan(0);
    }

    // The funnel (impression → click → add_cart → order by default): its bars and table are the route's answer.
    const funnelQuery = (await tab.locator('#funnel').getAttribute('data-query'))!;
    const funnel = await get(`/api/projects/${teamA.id}/analytics/funnel?${funnelQuery}`);
    expect(JSON.parse(new URLSearchParams(funnelQuery).get('steps')!)).toEqual([
      { action: 'impression' },
      { action: 'click' },
      { action: 'add_cart' },
      { action: 'order' },
    ]);
    const users = funnel.groups[0].steps.map((s: Json) => s.users);
    expect(users).toEqual([13, 9, 6, 6]);
    expect(await tab.evaluate("window.analytics.charts['funnel-chart'].getOption().series[0].data")).toEqual(users);
    expect(
      await tab.locator('#funnel-body tr').evaluateAll((rows) => rows.map((r) => r.children[2]!.textContent)),
    ).toEqual(users.map(String));
    // Step 3 (add_cart): the three who stopped at the click; two have sessions, one of them recorded.
    const dropped = funnel.groups[0].steps[2].drop_off;
    expect(dropped.users).toBe(3);
    expect(dropped.sessions.map((s: Json) => s.session_id).sort()).toEqual([sessionId, 'unrecorded-session-1'].sort());

    // Realtime: the source and team A's hot items, refreshed every 5 s.
    const realtime = await get(`/api/projects/${teamA.id}/analytics/realtime?limit=10`);
    expect(realtime.source).toBe('redis');
    expect(await tab.locator('#realtime-source').textContent()).toBe('source: redis');
    expect(
      await tab.locator('#realtime-body tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-item'))),
    ).toEqual(realtime.hot_items.map((h: Json) => h.item_id));
    expect(realtime.hot_items.map((h: Json) => h.item_id).sort()).toEqual(['a-hot-0', 'a-hot-1']);
    const refreshes = (await tab.evaluate('window.analytics.realtimeRefreshes')) as number;
    await until(tab, `window.analytics.realtimeRefreshes > ${refreshes}`, 12_000);

    // Nothing of team B's.
    expect(await tab.locator('body').textContent()).not.toContain('b-secret');

    await mkdir(resultsDir, { recursive: true });
    await tab.screenshot({ path: join(resultsDir, 'analytics-page.png'), fullPage: true });

    // A bar click opens that step's replays; one click on the recorded one plays it in the player.
    const box = tab.locator('.drop-off[data-step="3"]');
    await box.locator('summary').click();
    const link = box.locator(`a[data-session="${sessionId}"]`);
    expect(await link.getAttribute('href')).toBe(`${apiUrl}/player#team=${teamA.id}&session=${sessionId}`);
    await link.click();
    await tab.waitForURL(/\/player#/);
    await tab.locator(playerSettled).waitFor({ state: 'attached', timeout: 30_000 });
    const status = await tab.evaluate(
      "document.body.dataset.state + ' ' + document.getElementById('status').textContent",
    );
    expect(status).toMatch(/^playing/);
    await tab.evaluate('window.replay.seek(window.replay.timeline.end, false)');
    const replayed = tab.frameLocator(replayedFrame);
    await replayed.locator('#status').waitFor({ timeout: 10_000 });
    expect(await replayed.locator('#status').textContent()).toBe(`Added to cart: ${typed}`);
    expect(await replayed.locator('#search').inputValue()).toBe('*'.repeat(typed.length));
    expect(await tab.locator('#title').textContent()).toBe(`Session ${sessionId}`);
    await tab.close();
    expect(problems).toEqual([]);
  });

  it("asks for a key without one, and shows nothing of another team's project", async () => {
    const tab = watch(await browser.newPage());
    await tab.goto(`${apiUrl}/analytics`);
    await tab.locator('body[data-state="key"]').waitFor({ state: 'attached', timeout: 15_000 });
    expect(await tab.locator('#key-form').isVisible()).toBe(true);
    // Team B's project with team A's key: every panel is refused (404), nothing of team B is shown.
    await tab.goto(`${apiUrl}/analytics#team=${teamB.id}`);
    await tab.reload();
    await tab.locator('#key-input').fill(key);
    await tab.locator('#key-form button').click();
    await tab
      .locator('body:is([data-state="ready"], [data-state="failed"])')
      .waitFor({ state: 'attached', timeout: 30_000 });
    for (const id of ['kpis', 'funnel', 'realtime']) {
      expect(await tab.locator(`#${id}`).getAttribute('data-state'), id).toBe('failed');
      expect(await tab.locator(`#${id} .status`).textContent(), id).toMatch(/^not_found: /);
    }
    expect(await tab.locator('body').textContent()).not.toContain('b-secret');
    expect(await tab.locator('.tile').count()).toBe(0);
    await tab.close();
    expect(problems).toEqual([]);
  });
});
