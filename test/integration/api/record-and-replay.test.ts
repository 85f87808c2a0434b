import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Browser } from 'playwright-core';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ApiKeyStore } from '../../../src/api/api-keys.ts';
import { DEV_TOKEN } from '../../../src/cli/dev-command.ts';
import { loadConfig } from '../../../src/config/index.ts';
import { demoPageHtml, serveHtml } from '../../../src/dev/demo-page.ts';
import { launchChromium } from '../../../src/harness/chromium.ts';
import { topicNames } from '../../../src/kafka/topics.ts';
import type { SqlDatabase } from '../../../src/postgres/database.ts';
import { hotItemsKey, userRecentKey } from '../../../src/uba/realtime/keys.ts';
import type { TestCapture } from '../../support/capture.ts';
import { eventually, groupOffsets } from '../../support/kafka-offsets.ts';
import { startRecordingPipeline } from '../../support/pipeline.ts';
import { playToEnd, recordDemoSession, waitForSession } from '../../support/replay-flow.ts';

const stack = inject('stack');
const typed = 'blue teapot';

/**
 * Runs one query on the chDB under `path` from a process of its own (chDB is one process's at a time, and this one
 * may have opened another) and returns its rows.
 */
async function queryChdb(path: string, query: string): Promise<Record<string, unknown>[]> {
  const script = `
    import { openClickHouse } from './src/clickhouse/client.ts';
    const clickhouse = openClickHouse({ kind: 'chdb', path: process.argv[1] });
    const rows = await (await clickhouse.query({ query: process.argv[2], format: 'JSONEachRow' })).json();
    await clickhouse.close();
    process.stdout.write(JSON.stringify(rows), () => process.exit(0));`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script, path, query]);
  return JSON.parse(stdout) as Record<string, unknown>[];
}

/** What every replay of the demo session must show: the click's effect and the typed text (masked by posthog-js). */
function expectReplayShowsTheUser(result: Awaited<ReturnType<typeof playToEnd>>) {
  expect(result.status).toBe(`Added to cart: ${typed}`);
  // posthog-js masks input values by default: the replayed field holds one '*' per typed character.
  expect(result.typed).toBe('*'.repeat(typed.length));
  expect(result.summary).toMatch(/Clicks\s*[1-9]/);
  expect(result.summary).toMatch(/Console errors\s*1/);
  expect(result.addressBar).not.toContain('rpk_'); // the key left the address bar
}

describe('record in Chromium, play back from the API', () => {
  let browser: Browser;

  beforeAll(async () => {
    browser = await launchChromium(loadConfig());
  });
  afterAll(async () => {
    await browser?.close();
  });

  describe('on the real services: capture → Kafka → blob consumer → MinIO → sink → chDB → API', () => {
    let dir: string;
    let capture: TestCapture;
    let db: SqlDatabase;
    let page: { url: string; server: Server };
    let apiUrl: string;
    const stops: (() => Promise<unknown>)[] = [];

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'replay-e2e-'));
      const pipeline = await startRecordingPipeline({
        brokers: stack.kafka!.brokers,
        postgresUrl: stack.postgres!.url,
        dir,
      });
      stops.push(() => pipeline.stop());
      ({ db, apiUrl, capture } = pipeline);
    });
    afterAll(async () => {
      for (const stop of stops.reverse()) await stop();
      page?.server.close();
      await rm(dir, { recursive: true, force: true });
    });

    it("replays what the user typed and clicked, with the session's summary", async () => {
      const team = await capture.createTeam();
      const { key } = await new ApiKeyStore(db).create('e2e', [team.id]);
      page = await serveHtml(demoPageHtml({ captureUrl: capture.url, token: team.apiToken }));
      const sessionId = await recordDemoSession(browser, page.url, typed);
      const summary = await waitForSession(apiUrl, key, team.id, sessionId, typed.length);
      expect(summary).toMatchObject({ id: sessionId, team_id: team.id, console_error_count: 1 });
      expect(summary.urls).toEqual([page.url]);
      expectReplayShowsTheUser(await playToEnd(browser, `${apiUrl}/player#key=${key}`, team.id, sessionId));
    });
  });

  describe('through `replay dev` on the embedded defaults', () => {
    let dataDir: string;
    let child: ChildProcess | undefined;

    beforeAll(async () => {
      dataDir = await mkdtemp(join(tmpdir(), 'replay-dev-'));
    });
    afterAll(async () => {
      child?.kill('SIGKILL');
      await rm(dataDir, { recursive: true, force: true });
    });

    /** Starts `replay dev` (with `env` on top of the test defaults) and reads the URLs it prints. */
    async function startDev(env: Record<string, string> = {}) {
      const process_ = spawn('setpriv', ['--pdeathsig', 'KILL', process.execPath, 'bin/replay.js', 'dev'], {
        env: {
          ...process.env,
          REPLAY_DATA_DIR: dataDir,
          DEV_DEMO_PORT: '0',
          CAPTURE_PORT: '0',
          API_PORT: '0',
          BLOB_FLUSH_INTERVAL_MS: '1000',
          LOG_LEVEL: 'warn',
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child = process_;
      let stdout = '';
      let stderr = '';
      process_.stdout!.on('data', (chunk) => {
        stdout += chunk;
      });
      process_.stderr!.on('data', (chunk) => {
        stderr += chunk;
      });
      const deadline = Date.now() + 90_000;
      // The banner is printed in one write; postgres is its last line.
      while (!/^ {2}postgres\s/m.test(stdout)) {
        if (process_.exitCode !== null || Date.now() > deadline) {
          throw new Error(`replay dev did not start (exit ${process_.exitCode}):\n${stderr.slice(-3000)}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const field = (name: string) => new RegExp(`^ {2}${name}\\s+(\\S+)`, 'm').exec(stdout)![1]!;
      return {
        process: process_,
        demo: field('demo page'),
        player: field('player'),
        apiUrl: field('player').replace(/\/player#.*/, ''),
        capture: field('capture'),
        behaviors: field('behaviours'),
        curl: /^ +(curl .*)$/m.exec(stdout)![1]!,
        kafka: field('kafka'),
        behaviorsSink: field('uba sink'),
        realtimeSink: field('realtime'),
        redis: field('redis'),
        stdout,
        key: /#key=(rpk_\S+)/.exec(stdout)![1]!,
        teamId: Number(/\/api\/projects\/(\d+)\//.exec(stdout)![1]),
        stderr: () => stderr,
      };
    }

    async function stopDev(dev: Awaited<ReturnType<typeof startDev>>) {
      const exited = once(dev.process, 'exit');
      dev.process.kill('SIGINT');
      const timeout = new Promise((resolve) => setTimeout(resolve, 30_000, 'timeout'));
      const result = await Promise.race([exited, timeout]);
      expect(result, `replay dev did not stop on SIGINT:\n${dev.stderr().slice(-2000)}`).not.toBe('timeout');
      expect(dev.process.exitCode).toBe(0);
      child = undefined;
    }

    /**
     * The UBA part of dev: the banner names the behaviours endpoint (with its token and a curl line), both sinks and
     * Redis; a behaviour POSTed to the endpoint reaches Redis (the realtime sink) and is committed by the behaviour
     * sink, which commits only what it has inserted into ClickHouse. Returns the behaviour.
     */
    async function expectDevBehaviorsFlow(dev: Awaited<ReturnType<typeof startDev>>, sessionId: string) {
      expect(dev.behaviors).toBe(`${dev.capture}/api/v1/behaviors`);
      expect(dev.stdout).toMatch(new RegExp(`^ {2}behaviours .*Authorization: Bearer ${DEV_TOKEN}`, 'm'));
      expect(dev.curl).toContain(`curl -sS ${dev.behaviors} -H 'authorization: Bearer ${DEV_TOKEN}'`);
      expect(dev.redis).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
      for (const url of [dev.behaviorsSink, dev.realtimeSink]) expect((await fetch(`${url}/readyz`)).status).toBe(200);
      const behavior = {
        event_id: randomUUID(),
        user_id: `dev-test-${sessionId.slice(0, 8)}`,
        item_id: 'dev-test-item',
        action_type: 'click',
        scenario_id: 'dev_test',
        timestamp: Date.now(),
      };
      const answer = await fetch(dev.behaviors, {
        method: 'POST',
        headers: { authorization: `Bearer ${DEV_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify([behavior]),
      });
      expect(await answer.json()).toEqual({ status: 1, accepted: 1, rejected: [] });
      const redis = createClient({ url: dev.redis });
      await redis.connect();
      try {
        await eventually(
          async () =>
            (await redis.lRange(userRecentKey(dev.teamId, behavior.user_id), 0, -1)).includes(behavior.item_id),
          'the realtime sink to apply the behaviour in Redis',
        );
        expect(await redis.zScore(hotItemsKey(dev.teamId, behavior.scenario_id), behavior.item_id)).toBeGreaterThan(0);
      } finally {
        await redis.quit();
      }
      const groupId = loadConfig().behaviorsGroupId;
      // Capture writes each request in a transaction, whose commit marker is the last offset of its partition: the
      // sink has committed everything once it is at most one (that marker) short of the end.
      await eventually(async () => {
        const o = await groupOffsets(dev.kafka, groupId, topicNames.userBehaviors, 4);
        return o.end.every((end, p) => o.committed[p]! >= end - 1);
      }, 'the behaviour sink to commit all of user_behaviors');
      return behavior;
    }

    it('records the demo page and plays it in the player; Ctrl-C stops it and the data is there next run', async () => {
      const first = await startDev();
      const sessionId = await recordDemoSession(browser, first.demo, typed);
      const summary = await waitForSession(first.apiUrl, first.key, first.teamId, sessionId, typed.length);
      expectReplayShowsTheUser(await playToEnd(browser, first.player, first.teamId, sessionId));
      const behavior = await expectDevBehaviorsFlow(first, sessionId);
      await stopDev(first);
      // The behaviour and the demo page's own are in dev's chDB, the page's with the session of their replay.
      const rows = await queryChdb(
        join(dataDir, 'clickhouse'),
        `SELECT toString(event_id) AS event_id, action_type, user_id, item_id, session_id, source FROM user_behaviors
          WHERE tenant_id = ${first.teamId} ORDER BY timestamp, event_id`,
      );
      expect(rows.filter((r) => r.event_id === behavior.event_id)).toEqual([
        {
          event_id: behavior.event_id,
          action_type: 'click',
          user_id: behavior.user_id,
          item_id: behavior.item_id,
          session_id: '',
          source: 'behaviors-api',
        },
      ]);
      const demo = rows.filter((r) => r.session_id === sessionId);
      for (const action of ['$pageview', 'add_to_cart', 'impression', 'add_cart'])
        expect(demo.map((r) => r.action_type)).toContain(action);

      // The second run also routes every session to the overflow topic (the smallest per-session byte budget):
      // dev's overflow blob consumer must make such a session playable too.
      const second = await startDev({ CAPTURE_SESSION_BYTES_PER_SECOND: '1024', CAPTURE_SESSION_BURST_BYTES: '1024' });
      expect(second.key).toBe(first.key);
      expect(second.stdout).toContain(`overflow    ${topicNames.recordingsOverflow}`);
      const again = await waitForSession(second.apiUrl, second.key, second.teamId, sessionId, typed.length, 5_000);
      expect(again).toEqual(summary);
      const hot = await recordDemoSession(browser, second.demo, typed);
      await waitForSession(second.apiUrl, second.key, second.teamId, hot, typed.length).catch((error: Error) => {
        throw new Error(`${error.message}\nreplay dev stderr:\n${second.stderr().slice(-3000)}`);
      });
      expectReplayShowsTheUser(await playToEnd(browser, second.player, second.teamId, hot));
      const metrics = await (await fetch(`${second.capture}/metrics`)).text();
      expect(Number(/^capture_overflow_routed_total(?:\{[^}]*\})? (\S+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0);
      await stopDev(second);
    }, 420_000);
  });
});
