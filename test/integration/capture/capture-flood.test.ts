import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort, LOOPBACK } from '../../../src/harness/ports.ts';
import { openPostgres } from '../../../src/postgres/database.ts';
import { migratePostgres } from '../../../src/postgres/migrations.ts';
import { type Team, TeamStore } from '../../../src/teams/team-store.ts';
import { sampleRrwebEvents, snapshotBody } from '../../support/capture.ts';
import { createTestTeam } from '../../support/teams.ts';

const stack = inject('stack');

/**
 * The flood: capture in its own process (so its memory is its own), loaded with many concurrent 20-29 MB uploads
 * carrying bogus tokens (in the body early, as posthog-js places it; at the very end; none at all; in the query
 * string; over the size limit), while a client with a real token keeps uploading. Bounded in count and time, loopback
 * only.
 *
 * Measured on the 2-core dev machine (24 concurrent, 400 flood requests in ~15 s, 22-27 MB bodies): idle capture
 * ~268 MB resident, of which ~190 MB are mapped files (node, and libchdb.so's code: the CLI loads every command's
 * modules) and ~80 MB anonymous; peak ~466 MB resident, ~280 MB anonymous, with the default 256 MiB in-flight budget.
 * The same flood with the budget off peaks at ~465 MB anonymous (~650 resident), and the old order (read, inflate and
 * JSON.parse every body before looking at its token) needs ~1.3 GB more for 24 such bodies: the bounds below sit
 * between.
 */
const FLOOD_SECONDS = 15;
const FLOOD_CONCURRENCY = 24;
const MAX_FLOOD_REQUESTS = 400;
const ANON_RSS_LIMIT_MB = 400;
const RSS_LIMIT_MB = 600;

async function rssMb(pid: number): Promise<{ total: number; anon: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
  return { total: kb('VmRSS') / 1024, anon: kb('RssAnon') / 1024 };
}

interface Answer {
  readonly status: number; // 0: the connection closed with no answer
  readonly code?: string;
  readonly ms: number;
}

/** One upload with node:http; an answer that arrives while the body is still going out counts (early refusals). */
function upload(agent: Agent | undefined, url: string, body: Buffer, timeoutMs = 60_000): Promise<Answer> {
  const started = Date.now();
  return new Promise((resolve) => {
    let settled = false;
    const finish = (answer: Answer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(answer);
    };
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'text/plain', 'content-length': String(body.length) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        const done = () => {
          let code: string | undefined;
          try {
            code = JSON.parse(Buffer.concat(chunks).toString()).code;
          } catch {}
          finish({ status: res.statusCode ?? 0, code, ms: Date.now() - started });
        };
        res.on('end', done);
        res.on('close', done);
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      finish({ status: -1, ms: Date.now() - started }); // hung
    }, timeoutMs);
    req.on('error', () => setTimeout(() => finish({ status: 0, ms: Date.now() - started }), 500));
    req.end(body);
  });
}

function item(token: string | undefined, data: unknown[], sessionId = randomUUID()) {
  return {
    event: '$snapshot',
    properties: {
      $snapshot_bytes: 1,
      $snapshot_data: data,
      $session_id: sessionId,
      $window_id: 'window-1',
      $lib: 'web',
      ...(token === undefined ? {} : { token }),
      distinct_id: 'flood',
    },
  };
}

describe('a flood of large bogus uploads', () => {
  let child: ChildProcess;
  let base: string;
  let team: Team;
  let log = '';

  beforeAll(async () => {
    const db = await openPostgres({ kind: 'postgres', url: stack.postgres!.url });
    await migratePostgres(db);
    team = await createTestTeam(new TeamStore(db), { name: 'flood' });
    await db.close();
    const port = await freePort();
    base = `http://${LOOPBACK}:${port}`;
    child = spawn('setpriv', ['--pdeathsig', 'KILL', process.execPath, 'bin/replay.js', 'capture'], {
      env: {
        ...process.env,
        LOG_LEVEL: 'warn',
        CAPTURE_PORT: String(port),
        KAFKA_BROKERS: stack.kafka!.brokers,
        DATABASE_URL: stack.postgres!.url,
        CAPTURE_TRANSACTIONAL_ID: `capture-flood-${randomUUID()}`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (c: Buffer) => {
      log += c.toString();
    });
    child.stderr!.on('data', (c: Buffer) => {
      log += c.toString();
    });
    for (let i = 0; i < 300; i++) {
      const ready = await fetch(`${base}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ready) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`capture did not become ready:\n${log.slice(-2000)}`);
  });

  afterAll(async () => {
    if (!child || child.exitCode !== null) return;
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  });

  it('keeps capture under its memory bound, answering the good uploads 200 and the bogus ones 401/503/413', async () => {
    const pid = child.pid!;
    // ~29 MB of base64: incompressible enough that gzip leaves ~22 MB on the wire.
    const blob = randomBytes(21 * 1024 * 1024).toString('base64');
    const small = sampleRrwebEvents();
    const big = [{ type: 3, timestamp: 1_763_800_000_000, data: { payload: blob } }];
    const json = (value: unknown) => Buffer.from(JSON.stringify(value));
    const bogus = [
      // posthog-js order: the token right after the first (small) item's events, then a huge item
      {
        name: 'gzip, token early',
        url: '/s/',
        body: gzipSync(json([item('phc_bogus_early', small), item('phc_bogus_early', big)]), { level: 1 }),
      },
      // the token is the very last thing: everything is read and inflated before it is known
      {
        name: 'gzip, token last',
        url: '/s/',
        body: gzipSync(json([item(undefined, big), { event: '$snapshot', properties: { token: 'phc_bogus_last' } }]), {
          level: 1,
        }),
      },
      {
        name: 'plain JSON, token last',
        url: '/s/',
        body: json([
          item(undefined, [{ type: 3, timestamp: 1, data: blob.slice(0, 24 * 1024 * 1024) }]),
          { event: '$snapshot', properties: { token: 'phc_bogus_plain' } },
        ]),
      },
      { name: 'gzip, no token', url: '/s/', body: gzipSync(json([item(undefined, big)]), { level: 1 }) },
      {
        name: 'query-string token',
        url: '/s/?token=phc_bogus_query',
        body: gzipSync(json([item(undefined, big)]), { level: 1 }),
      },
      { name: 'over 25 MB', url: '/s/', body: Buffer.from(blob.slice(0, 26 * 1024 * 1024)) },
    ];
    for (const b of bogus) expect(b.body.length, b.name).toBeGreaterThan(20 * 1024 * 1024);
    const good = () => gzipSync(json(snapshotBody(team.apiToken, randomUUID(), small)));
    const goodMedium = () =>
      gzipSync(
        json(
          snapshotBody(
            team.apiToken,
            randomUUID(),
            Array.from({ length: 200 }, (_, i) => ({
              type: 3,
              timestamp: 1_763_800_000_000 + i,
              data: { source: 0, adds: [{ text: randomBytes(1500).toString('hex') }] },
            })),
          ),
        ),
      );

    const idle = await rssMb(pid);
    const peak = { ...idle };
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const now = await rssMb(pid).catch(() => ({ total: 0, anon: 0 }));
        peak.total = Math.max(peak.total, now.total);
        peak.anon = Math.max(peak.anon, now.anon);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    const deadline = Date.now() + FLOOD_SECONDS * 1000;
    const outcomes = new Map<string, number>();
    let floodRequests = 0;
    const floodAgent = new Agent({ keepAlive: false, maxSockets: FLOOD_CONCURRENCY });
    const flood = Promise.all(
      Array.from({ length: FLOOD_CONCURRENCY }, async (_, worker) => {
        for (let n = worker; Date.now() < deadline && floodRequests < MAX_FLOOD_REQUESTS; n += FLOOD_CONCURRENCY) {
          floodRequests++;
          const b = bogus[n % bogus.length]!;
          const answer = await upload(floodAgent, `${base}${b.url}`, b.body);
          const key = `${b.name}: ${answer.status} ${answer.code ?? ''}`.trim();
          outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
        }
      }),
    );
    const goodAnswers: Answer[] = [];
    const goodAgent = new Agent({ keepAlive: true, maxSockets: 2 });
    const goodTraffic = (async () => {
      for (let n = 0; Date.now() < deadline; n++) {
        goodAnswers.push(await upload(goodAgent, `${base}/s/`, n % 5 === 4 ? goodMedium() : good(), 30_000));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await Promise.all([flood, goodTraffic]);
    sampling = false;
    await sampler;
    floodAgent.destroy();
    goodAgent.destroy();

    const afterFlood = await rssMb(pid);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    const inflight = Number(/^capture_inflight_bytes(?:\{[^}]*\})? (\d+)/m.exec(metrics)?.[1]);
    const goodStatuses = new Map<number, number>();
    for (const a of goodAnswers) goodStatuses.set(a.status, (goodStatuses.get(a.status) ?? 0) + 1);
    const report = {
      floodSeconds: FLOOD_SECONDS,
      concurrency: FLOOD_CONCURRENCY,
      floodRequests,
      bodyMB: bogus.map((b) => `${b.name} ${(b.body.length / 1e6).toFixed(1)}`),
      rssMB: {
        idle: Math.round(idle.total),
        peak: Math.round(peak.total),
        afterFlood: Math.round(afterFlood.total),
      },
      anonymousRssMB: {
        idle: Math.round(idle.anon),
        peak: Math.round(peak.anon),
        afterFlood: Math.round(afterFlood.anon),
      },
      bogusOutcomes: Object.fromEntries([...outcomes].sort()),
      good: {
        requests: goodAnswers.length,
        statuses: Object.fromEntries(goodStatuses),
        maxMs: Math.max(...goodAnswers.map((a) => a.ms)),
        p50Ms: goodAnswers.map((a) => a.ms).sort((a, b) => a - b)[Math.floor(goodAnswers.length / 2)],
      },
      inflightBytesAfter: inflight,
    };
    process.stderr.write(`[flood] ${JSON.stringify(report, null, 2)}\n`);

    expect(peak.anon, JSON.stringify(report)).toBeLessThan(ANON_RSS_LIMIT_MB);
    expect(peak.total, JSON.stringify(report)).toBeLessThan(RSS_LIMIT_MB);
    expect(goodAnswers.length).toBeGreaterThan(20);
    expect(
      goodAnswers.every((a) => a.status === 200),
      JSON.stringify(report.good),
    ).toBe(true);
    let resets = 0;
    for (const [key, count] of outcomes) {
      const status = Number(key.split(': ')[1]!.split(' ')[0]);
      // 0: the connection was closed on a body over 1 MiB still being sent, and the reset overtook the answer
      // (capture does not read such a body only to drop it). -1 would be a hang.
      if (status === 0) resets += count;
      else expect([401, 413, 503], `${key} x${count}`).toContain(status);
    }
    // How often the reset wins the race with the answer depends on the machine's load (measured 0-23 of 400); what
    // must not happen is most bogus clients never hearing why.
    expect(resets).toBeLessThanOrEqual(floodRequests / 8);
    expect(inflight).toBe(0);
    // still healthy afterwards
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect((await upload(undefined, `${base}/s/`, good())).status).toBe(200);
  }, 180_000);
});
