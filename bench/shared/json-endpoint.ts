import type { ServerResponse } from 'node:http';

/**
 * Answers a bench's loopback control request with what `answer` resolves to, as JSON: 404 when it resolves to
 * undefined (no such route), `failureStatus` with the error when it rejects.
 */
export function answerJson(res: ServerResponse, answer: () => Promise<unknown>, failureStatus = 500): void {
  answer().then(
    (body) => {
      res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body ?? { error: 'not found' }));
    },
    (error: unknown) => {
      res.writeHead(failureStatus, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: String(error) }));
    },
  );
}
