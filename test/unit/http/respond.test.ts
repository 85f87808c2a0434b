import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { ReplayError } from '../../../src/errors/index.ts';
import { clientDetail, logHiddenError, sendError } from '../../../src/http/respond.ts';
import type { Logger } from '../../../src/logging/logger.ts';

/** A response that records what was sent. */
function fakeResponse() {
  const sent: { status?: number; headers?: Record<string, unknown>; body?: string } = {};
  const res = {
    writeHead(status: number, headers: Record<string, unknown>) {
      sent.status = status;
      sent.headers = headers;
      return res;
    },
    end(body: string) {
      sent.body = body;
      return res;
    },
  };
  return { res: res as unknown as ServerResponse, sent };
}

function memoryLog() {
  const lines: { message: string; fields?: Record<string, unknown> }[] = [];
  const log: Logger = {
    debug: () => {},
    info: () => {},
    warn: (message, fields) => lines.push({ message, fields }),
    error: (message, fields) => lines.push({ message, fields }),
    child: () => log,
  };
  return { log, lines };
}

describe('error answers at the HTTP edge', () => {
  const s3Failure = () =>
    new ReplayError(
      'blob_store_unavailable',
      'read of session_recordings/90d/2026/11/18/obj-7 failed: The bucket secret-bucket does not allow access',
      { cause: new Error('AccessDenied: secret-bucket') },
    );

  it('sends a generic per-code detail for server-side failures and logs the full text', () => {
    const cases = [
      s3Failure(),
      new ReplayError(
        'clickhouse_unavailable',
        "session query failed: Code: 60. Table default.secret_table doesn't exist: SELECT ...",
      ),
      new ReplayError('internal_error', 'TypeError at /srv/app/src/x.ts:12'),
      new ReplayError('block_corrupt', 'block 3 lives at s3://secret-bucket/rec/obj-7'),
      new ReplayError('blob_not_found', 'no object session_recordings/90d/obj-7'),
    ];
    for (const error of cases) {
      const { res, sent } = fakeResponse();
      const { log, lines } = memoryLog();
      sendError(res, error, log);
      const body = JSON.parse(sent.body!);
      expect(sent.status).toBe(error.httpStatus);
      expect(body).toEqual({ type: error.type, code: error.code, detail: expect.any(String) });
      for (const secret of ['secret', 'obj-7', 'SELECT', '/srv/app']) expect(sent.body).not.toContain(secret);
      expect(body.detail.length).toBeGreaterThan(10);
      expect(lines.map((l) => l.fields?.detail)).toEqual([error.message]);
    }
  });

  it("keeps a client error's specific detail and does not log it", () => {
    const { res, sent } = fakeResponse();
    const { log, lines } = memoryLog();
    sendError(res, new ReplayError('invalid_block_range', 'blocks=0-999 spans more than 100 blocks'), log);
    expect(JSON.parse(sent.body!)).toEqual({
      type: 'validation_error',
      code: 'invalid_block_range',
      detail: 'blocks=0-999 spans more than 100 blocks',
    });
    expect(sent.status).toBe(400);
    expect(lines).toEqual([]);
  });

  it('answers overload with 503 and Retry-After, without its internals', () => {
    const { res, sent } = fakeResponse();
    sendError(res, new ReplayError('api_overloaded', '16 block decodes in flight, 16 waiting'), memoryLog().log);
    expect(sent.status).toBe(503);
    expect(sent.headers!['retry-after']).toBe('1');
    expect(JSON.parse(sent.body!)).toMatchObject({ code: 'api_overloaded', type: 'server_error' });
    expect(clientDetail(new ReplayError('api_overloaded', 'x'))).toContain('API_MAX_CONCURRENT_DECODES');
  });

  it('logs a storm of the same failure once a second, counting the lines held back', () => {
    const { log, lines } = memoryLog();
    const error = new ReplayError('kafka_unavailable', 'broker 10.0.0.7:9092 is down');
    const t = 1_000_000_000;
    logHiddenError(log, error, t);
    for (let i = 1; i <= 5; i++) logHiddenError(log, error, t + i * 10);
    logHiddenError(log, new ReplayError('team_lookup_failed', 'pg down'), t + 60); // another code: its own line
    logHiddenError(log, error, t + 1500);
    expect(lines.map((l) => [l.fields?.code, l.fields?.similar_since_last])).toEqual([
      ['kafka_unavailable', undefined],
      ['team_lookup_failed', undefined],
      ['kafka_unavailable', 5],
    ]);
  });
});
