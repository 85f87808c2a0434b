import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { isReplayError, ReplayError } from '../errors/index.ts';
import { clientHas, logHiddenError, sendJson, sendRevalidatedJson } from '../http/respond.ts';
import type { RouteContext, Router } from '../http/router.ts';
import type { Logger } from '../logging/logger.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import type { TeamStore } from '../teams/team-store.ts';
import type { SessionBehavior } from '../uba/behavior-queries.ts';
import type { ApiKeyStore } from './api-keys.ts';
import { authenticate, authorisedTeam } from './authentication.ts';
import {
  encodeCursor,
  parseBlockRange,
  parseListFilters,
  parseSessionId,
  rejectUnknownParameters,
} from './parameters.ts';
import { isExpired, type SessionBlock, type SessionCatalog } from './session-catalog.ts';
import { blockAddress, readStoredBlock, sessionEventLines } from './session-events.ts';

export interface ReplayApiOptions {
  readonly keys: ApiKeyStore;
  readonly teams: TeamStore;
  readonly sessions: SessionCatalog;
  readonly store: BlobStore;
  /** The most blocks one `?blocks=i-j` request may decode (API_MAX_BLOCKS_PER_REQUEST). */
  readonly maxBlocksPerRequest: number;
  /** Block reads and decodes in flight at once (API_MAX_CONCURRENT_DECODES); past it, `api_overloaded`. */
  readonly maxConcurrentDecodes: number;
  /** How long a request waits for a decode slot before `api_overloaded` (API_DECODE_WAIT_MS). */
  readonly decodeWaitMs: number;
  /** The most bytes one block may inflate to (API_MAX_BLOCK_BYTES); past it the block is `block_too_large`. */
  readonly maxBlockBytes: number;
  /** Which of a team's sessions were deleted: such a session answers `recording_deleted` rather than `not_found`. */
  readonly deletedAmong: (teamId: number, sessionIds: readonly string[]) => Promise<Set<string>>;
  /** The behaviours and posthog-js events recorded with a session, for the player's event list. */
  readonly sessionBehaviors: (
    teamId: number,
    sessionId: string,
    range: { readonly fromMs: number; readonly toMs: number },
    limit: number,
  ) => Promise<readonly SessionBehavior[]>;
  /** Where the full text of errors that clients see only generically goes (missing blocks). */
  readonly log?: Logger;
  readonly registry: Registry;
  readonly now?: () => number;
}

const BLOCK_ID_PATTERN = /^[A-Za-z0-9_-]{22}$/;
/** The most analytics events one session lists, and how far outside the recording they are looked for. */
const MAX_SESSION_EVENTS = 1000;
const SESSION_EVENTS_MARGIN_MS = 60_000;
const sessionsPath = '/api/projects/:team/session_recordings';

/** The replay API of DESIGN §3.6 on `router`; every route needs a personal API key for the team it names. */
export function addReplayApiRoutes(router: Router, options: ReplayApiOptions): Router {
  const now = options.now ?? Date.now;
  const metrics = createApiMetrics(options.registry);
  const slots = new DecodeSlots(options.maxConcurrentDecodes, options.decodeWaitMs, metrics.decodesInFlight);
  const onMissing = (_block: SessionBlock, error: ReplayError) => {
    if (options.log) logHiddenError(options.log, error);
  };

  /** Reads a block from the blob store, timed and counted by outcome (a rising `blob_not_found` rate means data loss). */
  async function readBlock(block: SessionBlock): Promise<Buffer> {
    const started = performance.now();
    try {
      const bytes = await readStoredBlock(options.store, block);
      metrics.blockReads.inc({ result: 'ok' });
      metrics.blockBytes.inc(bytes.length);
      return bytes;
    } catch (error) {
      metrics.blockReads.inc({ result: isReplayError(error) ? error.code : 'blob_store_unavailable' });
      throw error;
    } finally {
      metrics.blockReadSeconds.observe((performance.now() - started) / 1000);
    }
  }

  async function session(context: RouteContext) {
    const teamId = await authorisedTeam(options.keys, context);
    const sessionId = parseSessionId(context.params.session!);
    const found = await options.sessions.get(teamId, sessionId);
    if (!found) {
      if ((await options.deletedAmong(teamId, [sessionId])).has(sessionId)) {
        throw new ReplayError('recording_deleted', 'This recording was deleted.');
      }
      throw new ReplayError('not_found', `no session recording ${sessionId}`);
    }
    // The sentence is the detail the player shows as it is.
    if (isExpired(found.summary, now())) {
      throw new ReplayError(
        'recording_expired',
        `This recording has expired: it was kept ${found.summary.retention_period_days} days.`,
      );
    }
    return { teamId, ...found };
  }

  return router
    .on('GET', '/api/projects', async (context) => {
      const key = await authenticate(options.keys, context);
      const teams = await options.teams.byIds(key.teamIds);
      sendRevalidatedJson(context.req, context.res, { results: teams.map((t) => ({ id: t.id, name: t.name })) });
    })
    .on('GET', sessionsPath, async (context) => {
      const teamId = await authorisedTeam(options.keys, context);
      const filters = parseListFilters(teamId, context.url.searchParams, now());
      const { sessions, more } = await options.sessions.list(filters);
      const last = sessions.at(-1);
      const cursor = more && last ? encodeCursor({ startMs: Date.parse(last.start_time), id: last.id }) : null;
      let next: string | null = null;
      if (cursor) {
        const query = new URLSearchParams(context.url.searchParams);
        query.set('cursor', cursor);
        next = `${context.url.pathname}?${query}`;
      }
      // A listing changes with every flush: never cached.
      context.res.setHeader('cache-control', 'no-store');
      const body = JSON.stringify({ results: sessions, next_cursor: cursor, next });
      context.res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(body);
    })
    .on('GET', `${sessionsPath}/:session`, async (context) => {
      rejectUnknownParameters(context.url.searchParams, []);
      const { summary } = await session(context);
      sendRevalidatedJson(context.req, context.res, summary);
    })
    .on('GET', `${sessionsPath}/:session/events`, async (context) => {
      rejectUnknownParameters(context.url.searchParams, []);
      const { teamId, summary } = await session(context);
      // posthog-js stamps events with the client's clock, as it does the recording: a minute either side of the
      // recording keeps the page's events that straddle its first and last snapshot.
      const range = {
        fromMs: Date.parse(summary.start_time) - SESSION_EVENTS_MARGIN_MS,
        toMs: Date.parse(summary.end_time) + SESSION_EVENTS_MARGIN_MS,
      };
      let results: readonly SessionBehavior[];
      try {
        results = await options.sessionBehaviors(teamId, summary.id, range, MAX_SESSION_EVENTS);
      } catch (error) {
        throw new ReplayError('clickhouse_unavailable', `session events query failed: ${(error as Error).message}`, {
          cause: error,
        });
      }
      context.res.setHeader('cache-control', 'no-store');
      sendJson(context.res, 200, { results, limit: MAX_SESSION_EVENTS });
    })
    .on('GET', `${sessionsPath}/:session/snapshots`, async (context) => {
      rejectUnknownParameters(context.url.searchParams, ['blocks']);
      const { teamId, summary, blocks } = await session(context);
      const range = context.url.searchParams.get('blocks');
      if (range === null) {
        const missing = await missingBlocks(options.store, blocks);
        sendRevalidatedJson(context.req, context.res, {
          session_id: summary.id,
          max_blocks_per_request: options.maxBlocksPerRequest,
          blocks: blocks.map((block) => ({
            index: block.index,
            id: block.id,
            first_timestamp: new Date(block.firstTimestamp).toISOString(),
            last_timestamp: new Date(block.lastTimestamp).toISOString(),
            missing: missing.has(block.index),
            raw_url: `/api/projects/${teamId}/session_recordings/${summary.id}/snapshots/blocks/${block.id}`,
          })),
        });
        return;
      }
      const { first, last } = parseBlockRange(range, blocks.length, options.maxBlocksPerRequest);
      // One slot for the whole stream: it reads and decodes its blocks one after another (the next block's bytes
      // prefetched), so it holds about one decoded block at a time, until the last line is written.
      const release = await slots.acquire();
      try {
        const lines = sessionEventLines(blocks.slice(first, last + 1), readBlock, {
          maxBlockBytes: options.maxBlockBytes,
          onMissing,
        });
        await streamLines(context, lines, metrics);
      } finally {
        release();
      }
    })
    .on('GET', `${sessionsPath}/:session/snapshots/blocks/:block`, async (context) => {
      rejectUnknownParameters(context.url.searchParams, []);
      const { blocks } = await session(context);
      const id = context.params.block!;
      if (!BLOCK_ID_PATTERN.test(id)) throw new ReplayError('invalid_parameter', 'block id is 22 base64url characters');
      const block = blocks.find((b) => b.id === id);
      if (!block) throw new ReplayError('not_found', `the session has no block ${id}`);
      // A block id names an object and byte range, and objects are never rewritten: the bytes can be cached forever.
      const etag = `"${block.id}"`;
      const cacheHeaders = { etag, 'cache-control': 'private, max-age=31536000, immutable', vary: 'authorization' };
      if (clientHas(context.req, etag)) {
        context.res.writeHead(304, cacheHeaders).end();
        return;
      }
      // A raw block is held in memory until it is sent: it takes a slot like a decode, until the response closes.
      const release = await slots.acquire();
      const { res } = context;
      const closed = res.destroyed
        ? Promise.resolve()
        : once(res, 'close').then(
            () => undefined,
            () => undefined,
          );
      try {
        const bytes = await readBlock(block);
        sendRawBlock(res, block, bytes, cacheHeaders);
        await closed;
      } finally {
        release();
      }
    });
}

/** A block's stored bytes, with its index and time span in headers. */
function sendRawBlock(res: ServerResponse, block: SessionBlock, bytes: Buffer, cacheHeaders: Record<string, string>) {
  res.writeHead(200, {
    'content-type': 'application/octet-stream',
    'content-length': bytes.length,
    'x-block-index': String(block.index),
    'x-block-first-timestamp': new Date(block.firstTimestamp).toISOString(),
    'x-block-last-timestamp': new Date(block.lastTimestamp).toISOString(),
    ...cacheHeaders,
  });
  res.end(bytes);
}

/**
 * At most `size` block reads and decodes at once: each holds up to a block in memory (API_MAX_BLOCK_BYTES decoded),
 * so the number of them bounds the API's memory. A request that finds every slot taken waits for one, first come first
 * served, for at most `waitMs`, in a queue no longer than `size`; past either bound it is refused at once with
 * `api_overloaded` (503, `Retry-After: 1`) rather than piling up memory. Nothing has been sent by then, so the client
 * can simply retry.
 */
export class DecodeSlots {
  private inUse = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly size: number;
  private readonly waitMs: number;
  private readonly gauge: Gauge | undefined;

  constructor(size: number, waitMs: number, gauge?: Gauge) {
    this.size = size;
    this.waitMs = waitMs;
    this.gauge = gauge;
  }

  get inFlight(): number {
    return this.inUse;
  }

  /** Takes a slot (waiting up to `waitMs`); the function it resolves to gives it back (calling it twice is harmless). */
  acquire(): Promise<() => void> {
    if (this.inUse < this.size && this.waiting.length === 0) {
      this.inUse++;
      this.gauge?.set(this.inUse);
      return Promise.resolve(this.releaser());
    }
    const overloaded = () =>
      new ReplayError(
        'api_overloaded',
        `${this.inUse} block decodes in flight (API_MAX_CONCURRENT_DECODES=${this.size}), ${this.waiting.length} waiting`,
      );
    if (this.waitMs === 0 || this.waiting.length >= this.size) return Promise.reject(overloaded());
    return new Promise((resolve, reject) => {
      const grant = () => {
        clearTimeout(timer);
        resolve(this.releaser());
      };
      const timer = setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(grant), 1);
        reject(overloaded());
      }, this.waitMs);
      this.waiting.push(grant);
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next)
        next(); // the slot passes straight to the longest waiter
      else {
        this.inUse--;
        this.gauge?.set(this.inUse);
      }
    };
  }
}

/** Blocks whose object is gone or shorter than the block's range: one size lookup per distinct object. */
async function missingBlocks(store: BlobStore, blocks: readonly SessionBlock[]): Promise<Set<number>> {
  const missing = new Set<number>();
  const byObject = new Map<string, { index: number; end: number }[]>();
  for (const block of blocks) {
    try {
      const { key, end } = blockAddress(store, block);
      byObject.set(key, [...(byObject.get(key) ?? []), { index: block.index, end }]);
    } catch {
      missing.add(block.index);
    }
  }
  await Promise.all(
    [...byObject].map(async ([key, members]) => {
      const size = await store.size(key).catch(() => undefined);
      for (const { index, end } of members) if (size === undefined || end >= size) missing.add(index);
    }),
  );
  return missing;
}

/** Writes JSONL as it is produced, waiting for the socket to drain; stops early when the client goes away. */
async function streamLines(
  { req, res }: RouteContext,
  lines: AsyncGenerator<string>,
  metrics: ReturnType<typeof createApiMetrics>,
): Promise<void> {
  // rrweb JSON shrinks several times over; level 1 keeps the CPU cost small next to decoding the blocks.
  const gzip = acceptsGzip(req.headers['accept-encoding']) ? createGzip({ level: 1 }) : undefined;
  res.writeHead(200, {
    'content-type': 'application/x-ndjson; charset=utf-8',
    // The range's blocks can still change (late blocks, deleted objects): not cached.
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    vary: 'accept-encoding',
    ...(gzip ? { 'content-encoding': 'gzip' } : {}),
  });
  const out: Writable = gzip ?? res;
  // Resolves when the response is complete or the client went away (pipeline destroys the gzip stream then).
  const delivered = gzip ? pipeline(gzip, res).catch(() => undefined) : undefined;
  try {
    for await (const line of lines) {
      if (res.destroyed) break; // the client went away: stop reading blocks
      if (line.startsWith('{"missing_block"')) metrics.missingBlocks.inc();
      else metrics.events.inc();
      if (!out.write(`${line}\n`)) await Promise.race([once(out, 'drain'), once(res, 'close')]);
    }
  } finally {
    await lines.return(undefined);
    if (!res.destroyed) out.end();
    await delivered;
  }
}

/** Whether `Accept-Encoding` allows gzip (present, and not refused with q=0). */
export function acceptsGzip(header: string | undefined): boolean {
  return (header ?? '').split(',').some((entry) => {
    const [coding = '', ...params] = entry.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return (coding === 'gzip' || coding === 'x-gzip') && (q === undefined || Number(q.slice(2)) > 0);
  });
}

/** This component's metrics (docs/metrics.md is generated from these factories). */
export function createApiMetrics(registry: Registry) {
  const registers = [registry];
  return {
    blockReads: new Counter({
      name: 'replay_api_block_reads_total',
      help: 'Blocks read from the blob store by outcome (ok, or the error code: blob_not_found, block_corrupt, ...).',
      labelNames: ['result'],
      registers,
    }),
    blockBytes: new Counter({
      name: 'replay_api_block_read_bytes_total',
      help: 'Stored (compressed) block bytes read.',
      registers,
    }),
    blockReadSeconds: new Histogram({
      name: 'replay_api_block_read_seconds',
      help: 'Time to read one block from the blob store (a range GET).',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    events: new Counter({ name: 'replay_api_events_streamed_total', help: 'Events written as JSONL.', registers }),
    missingBlocks: new Counter({
      name: 'replay_api_missing_blocks_total',
      help: 'missing_block lines written in place of blocks that could not be read.',
      registers,
    }),
    decodesInFlight: new Gauge({
      name: 'replay_api_decodes_in_flight',
      help: 'Block reads and decodes holding a slot (at most API_MAX_CONCURRENT_DECODES; past it, 503 api_overloaded).',
      registers,
    }),
  };
}
