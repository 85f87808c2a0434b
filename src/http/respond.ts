import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorCatalogue, type ReplayError } from '../errors/index.ts';
import { createLogger, type Logger } from '../logging/logger.ts';

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/**
 * Whether an error's own text may reach a client. A client's own mistake (4xx: validation, authentication, a route or
 * resource that does not exist) keeps its detail, which speaks only of what the client sent. A failure of the server
 * or of a store behind it (5xx: `blob_store_unavailable`, `clickhouse_unavailable`, `internal_error`, `block_corrupt`,
 * ...; and `blob_not_found`, whose text comes from the blob store) does not: its text can hold bucket names, object
 * keys, SQL and server messages. Those go to the server log; the client gets the code's generic meaning.
 */
export function detailIsPublic(error: ReplayError): boolean {
  return error.httpStatus < 500 && error.code !== 'blob_not_found';
}

/** The `detail` a client reads: the error's own for its mistakes, the catalogue's meaning of the code otherwise. */
export function clientDetail(error: ReplayError): string {
  return detailIsPublic(error) ? error.message : errorCatalogue[error.code].doc.replaceAll('`', '');
}

/** Until the caller passes its own logger, hidden error texts go to stderr (warn and error always print). */
const edgeLog = createLogger('info', 'http');
const LOG_INTERVAL_MS = 1000;
const lastLogged = new Map<string, { at: number; suppressed: number }>();

/**
 * Logs the full text of an error whose detail a client does not see: one line per code per second at most (an outage
 * or an overload answers many requests alike), with the number of lines held back since.
 */
export function logHiddenError(log: Logger, error: ReplayError, now = Date.now()): void {
  const last = lastLogged.get(error.code);
  if (last && now - last.at < LOG_INTERVAL_MS) {
    last.suppressed++;
    return;
  }
  lastLogged.set(error.code, { at: now, suppressed: 0 });
  const cause = error.cause instanceof Error ? error.cause.message : undefined;
  log.warn('error answered with its generic detail', {
    code: error.code,
    status: error.httpStatus,
    detail: error.message,
    ...(cause && cause !== error.message ? { cause } : {}),
    ...(last?.suppressed ? { similar_since_last: last.suppressed } : {}),
  });
}

/**
 * The error body every service answers with: `{type, code, detail}` and the catalogue's status. The detail is
 * sanitised here, at the edge, for every service (`clientDetail`); the hidden text is logged to `log`.
 */
export function sendError(res: ServerResponse, error: ReplayError, log: Logger = edgeLog): void {
  const headers: Record<string, string> = {};
  if (error.httpStatus === 413) headers.connection = 'close'; // the rest of the body is not read
  if (error.httpStatus === 429 || error.httpStatus === 503) headers['retry-after'] = '1';
  if (!detailIsPublic(error)) logHiddenError(log, error);
  sendJson(res, error.httpStatus, { type: error.type, code: error.code, detail: clientDetail(error) }, headers);
}

/** Whether the client's cached copy (`If-None-Match`) is still this entity. */
export function clientHas(req: IncomingMessage, etag: string): boolean {
  const header = req.headers['if-none-match'];
  return header?.split(',').some((tag) => tag.trim() === etag || tag.trim() === '*') ?? false;
}

/**
 * JSON that may change but is worth revalidating: a strong ETag of the body and `no-cache`, so a client keeps its copy
 * and asks each time; an unchanged answer is a bodyless 304.
 */
export function sendRevalidatedJson(req: IncomingMessage, res: ServerResponse, body: unknown): void {
  const text = JSON.stringify(body);
  const etag = `"${createHash('sha256').update(text).digest('base64url').slice(0, 27)}"`;
  const headers = { etag, 'cache-control': 'private, no-cache', vary: 'authorization' };
  if (clientHas(req, etag)) {
    res.writeHead(304, headers).end();
    return;
  }
  res.writeHead(200, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}
