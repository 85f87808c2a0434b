import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { runCapture } from '../../src/cli/capture-command.ts';
import { loadConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { openPostgres } from '../../src/postgres/database.ts';
import { migratePostgres } from '../../src/postgres/migrations.ts';
import { type Team, TeamStore } from '../../src/teams/team-store.ts';
import { createTestTeam } from './teams.ts';

export interface TestCapture {
  readonly url: string;
  readonly teams: TeamStore;
  createTeam(overrides?: Partial<Omit<Team, 'id'>>): Promise<Team>;
  stop(): Promise<void>;
}

/** A capture service on a free loopback port, against the given broker and Postgres, configured like production. */
export async function startTestCapture(options: {
  brokers: string;
  databaseUrl: string;
  env?: Record<string, string>;
}): Promise<TestCapture> {
  const config = loadConfig({
    HOME: '/nonexistent',
    CAPTURE_PORT: '0',
    KAFKA_BROKERS: options.brokers,
    DATABASE_URL: options.databaseUrl,
    CAPTURE_TRANSACTIONAL_ID: `capture-test-${randomUUID()}`,
    ...options.env,
  });
  const db = await openPostgres(
    options.databaseUrl.startsWith('pglite')
      ? { kind: 'pglite', dataDir: 'memory://' }
      : { kind: 'postgres', url: options.databaseUrl },
  );
  await migratePostgres(db);
  const teams = new TeamStore(db);
  const capture = await runCapture(config, createLogger('warn', 'capture'), db, options.brokers);
  return {
    url: capture.service.url,
    teams,
    createTeam: (overrides = {}) => createTestTeam(teams, overrides),
    async stop() {
      await capture.stop();
      await db.close();
    },
  };
}

export interface PostResult {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/**
 * POSTs raw bytes with node:http (not fetch), so a server that answers before reading the whole body (413) is seen
 * as the client sees it: the answer arrives even if writing the rest of the body fails.
 */
export function postRaw(
  url: string,
  body: Buffer,
  headers: Record<string, string> = {},
  method = 'POST',
): Promise<PostResult> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { 'content-length': String(body.length), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: Record<string, unknown> = {};
        try {
          parsed = text ? JSON.parse(text) : {};
        } catch {
          parsed = { text };
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    // A server that answers early (413) and closes makes the upload fail; its answer still arrives, so the error
    // counts only if no answer follows shortly.
    req.on('error', (error) => setTimeout(() => reject(error), 2000).unref());
    req.end(body);
  });
}

const t0 = Date.UTC(2026, 10, 22, 12, 0, 0);

/** A small realistic rrweb session: meta, full snapshot, mouse moves, a click, input, a console error. */
export function sampleRrwebEvents(start = t0): Record<string, unknown>[] {
  return [
    { type: 4, timestamp: start, data: { href: 'https://shop.example/cart', width: 1280, height: 720 } },
    {
      type: 2,
      timestamp: start + 5,
      data: { node: { type: 0, childNodes: [], id: 1 }, initialOffset: { top: 0, left: 0 } },
    },
    { type: 3, timestamp: start + 100, data: { source: 1, positions: [{ x: 1, y: 2, id: 5, timeOffset: 0 }] } },
    { type: 3, timestamp: start + 900, data: { source: 2, type: 2, id: 5, x: 10, y: 20 } },
    { type: 3, timestamp: start + 1500, data: { source: 5, text: 'hello', isChecked: false, id: 9 } },
    {
      type: 6,
      timestamp: start + 1600,
      data: { plugin: 'rrweb/console@1', payload: { level: 'error', trace: [], payload: ['"boom"'] } },
    },
  ];
}

export function snapshotBody(
  token: string,
  sessionId: string,
  events: readonly unknown[],
  extra: Record<string, unknown> = {},
): Record<string, unknown>[] {
  return [
    {
      event: '$snapshot',
      properties: {
        $snapshot_data: events,
        $session_id: sessionId,
        $window_id: 'window-1',
        $lib: 'web',
        token,
        distinct_id: 'user-42',
        ...extra,
      },
    },
  ];
}
