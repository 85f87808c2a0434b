import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ReplayError } from '../errors/index.ts';

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

/** The error body every service answers with: `{type, code, detail}` and the catalogue's status. */
export function sendError(res: ServerResponse, error: ReplayError): void {
  const headers: Record<string, string> = {};
  if (error.httpStatus === 413) headers.connection = 'close'; // the rest of the body is not read
  if (error.httpStatus === 429 || error.httpStatus === 503) headers['retry-after'] = '1';
  sendJson(res, error.httpStatus, error.toJSON(), headers);
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
