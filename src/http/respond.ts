import type { ServerResponse } from 'node:http';
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
