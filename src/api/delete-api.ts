import type { IncomingMessage } from 'node:http';
import type { DeletionFilter, DeletionRequest, DeletionStore } from '../deletion/deletion-store.ts';
import type { DeletionWorker } from '../deletion/deletion-worker.ts';
import { ReplayError } from '../errors/index.ts';
import { sendJson } from '../http/respond.ts';
import type { RouteContext, Router } from '../http/router.ts';
import type { ApiKeyStore } from './api-keys.ts';
import { authorisedFor } from './authentication.ts';
import { parseSessionId } from './parameters.ts';

export interface DeleteApiOptions {
  readonly keys: ApiKeyStore;
  readonly deletions: DeletionStore;
  /** Hides a request's sessions before the route answers; its background loop erases their bytes. */
  readonly worker: DeletionWorker;
}

const sessionsPath = '/api/projects/:team/session_recordings';
const MAX_BODY_BYTES = 16 * 1024;
const DISTINCT_ID_MAX = 200;
/** How long a route holds the request it hides (if it dies meanwhile, a worker takes the request over after this). */
const HIDE_HOLD_MS = 120_000;

/** A request as the routes answer it: where it stands, and where to ask again. */
export function deletionView(request: DeletionRequest) {
  return {
    id: request.id,
    kind: request.kind,
    target: request.target,
    status: request.status,
    sessions_total: request.sessionsTotal,
    sessions_done: request.sessionsDone,
    error: request.error,
    requested_by: request.requestedBy,
    created_at: request.createdAt.toISOString(),
    finished_at: request.finishedAt?.toISOString() ?? null,
    progress_url: `/api/projects/${request.teamId}/session_recordings/delete/${request.id}`,
  };
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES)
      throw new ReplayError('body_too_large', `a delete filter is at most ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new ReplayError('invalid_json', 'the body is not JSON');
  }
}

const invalid = (detail: string) => new ReplayError('invalid_parameter', detail);

function parseDate(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = typeof value === 'string' ? Date.parse(value) : Number.NaN;
  if (!Number.isFinite(ms)) throw invalid(`${name} must be an ISO 8601 date or time`);
  return ms;
}

function parseDistinctId(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > DISTINCT_ID_MAX) {
    throw invalid(`distinct_id must be 1-${DISTINCT_ID_MAX} characters`);
  }
  return value;
}

/** `{date_from?, date_to?, distinct_id?, url_contains?}`: at least one, nothing else (a typo must not delete all). */
export function parseDeletionFilter(body: unknown): DeletionFilter {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw invalid('the body must be a JSON object');
  const known = new Set(['date_from', 'date_to', 'distinct_id', 'url_contains']);
  const fields = body as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((key) => !known.has(key));
  if (unknown.length > 0) throw invalid(`unknown filter field ${unknown.join(', ')}`);
  if (Object.keys(fields).length === 0)
    throw invalid('give at least one of date_from, date_to, distinct_id, url_contains');
  const fromMs = parseDate(fields.date_from, 'date_from');
  const toMs = parseDate(fields.date_to, 'date_to');
  if (fromMs !== undefined && toMs !== undefined && toMs <= fromMs) throw invalid('date_to must be after date_from');
  const url = fields.url_contains;
  if (url !== undefined && (typeof url !== 'string' || url.length === 0 || url.length > 2000)) {
    throw invalid('url_contains must be 1-2000 characters');
  }
  return {
    ...(fromMs !== undefined ? { fromMs } : {}),
    ...(toMs !== undefined ? { toMs } : {}),
    ...(fields.distinct_id !== undefined ? { distinctId: parseDistinctId(fields.distinct_id) } : {}),
    ...(url !== undefined ? { urlContains: url as string } : {}),
  };
}

/**
 * The delete routes of DESIGN §3.9, for keys with the `delete` scope: one session, one person (every session and
 * behaviour of a distinct id), or every session a filter matches. Each is a deletion request (the audit log). A
 * session or person is hidden before the route answers (404 and out of listings from then on); a filter's
 * sessions are hidden batch by batch, with progress at `progress_url`. Bytes are erased in the background.
 */
export function addDeleteApiRoutes(router: Router, options: DeleteApiOptions): Router {
  const { keys, deletions, worker } = options;

  /** The key is checked before the path or the body is looked at: a caller without one learns nothing else. */
  async function accept(
    context: RouteContext,
    kind: 'session' | 'person' | 'filter',
    parseTarget: () => Promise<string | DeletionFilter>,
  ) {
    const { key, teamId } = await authorisedFor(keys, context, 'delete');
    const target = await parseTarget();
    const hides = kind !== 'filter';
    const request = await deletions.create({
      teamId,
      kind,
      target,
      keyId: key.id,
      requestedBy: `api key ${key.id} (${key.label})`,
      // Held while this route hides its sessions, so no worker works on them at the same time.
      ...(hides ? { holdMs: HIDE_HOLD_MS } : {}),
    });
    if (hides) {
      await worker.prepare(request);
      await worker.hideAll((await deletions.get(teamId, request.id)) ?? request);
      await deletions.release(request.id);
    }
    const now = (await deletions.get(teamId, request.id)) ?? request;
    sendJson(context.res, 202, deletionView(now));
  }

  return router
    .on('DELETE', `${sessionsPath}/:session`, (context) =>
      accept(context, 'session', async () => parseSessionId(context.params.session!)),
    )
    .on('DELETE', '/api/projects/:team/persons/:distinct_id', (context) =>
      accept(context, 'person', async () => parseDistinctId(context.params.distinct_id)),
    )
    .on('POST', `${sessionsPath}/delete`, (context) =>
      accept(context, 'filter', async () => parseDeletionFilter(await readJson(context.req))),
    )
    .on('GET', `${sessionsPath}/delete/:request`, async (context) => {
      const { teamId } = await authorisedFor(keys, context, 'delete');
      const id = Number(context.params.request);
      const request = Number.isSafeInteger(id) && id > 0 ? await deletions.get(teamId, id) : undefined;
      if (!request) throw new ReplayError('not_found', `no deletion request ${context.params.request}`);
      sendJson(context.res, 200, deletionView(request));
    });
}
