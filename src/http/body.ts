import type { IncomingMessage } from 'node:http';
import { ReplayError } from '../errors/index.ts';

/**
 * Reads a request body up to `maxBytes`. A declared Content-Length over the limit is refused before any byte is
 * read; an undeclared one is counted as it streams and refused the moment it passes the limit.
 */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    throw new ReplayError('body_too_large', `body of ${declared} bytes exceeds ${maxBytes} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new ReplayError('body_too_large', `body exceeds ${maxBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}
