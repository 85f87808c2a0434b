import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { ReplayError } from '../errors/index.ts';
import type { Logger } from '../logging/logger.ts';
import { processMetricsRegistry } from '../metrics/registry.ts';
import { sendError, sendJson } from './respond.ts';
import type { Router } from './router.ts';

export interface HttpServiceOptions {
  readonly router: Router;
  readonly registry: Registry;
  readonly log: Logger;
  /** `/readyz` answers 200 only while this returns true (connected, consuming, flushes succeeding). */
  readonly ready: () => boolean;
  /**
   * Answer CORS preflights and add CORS headers (capture is called from pages on other origins). `true` is
   * `{origins: ['*']}`: any origin, without credentials.
   */
  readonly cors?: boolean | CorsOptions;
  /** Connection limits and timeouts; each has a default (`defaultHttpLimits`). */
  readonly limits?: HttpLimits;
}

export interface CorsOptions {
  /**
   * Which origins may call the service from a browser. `*`: any origin, answered `access-control-allow-origin: *`
   * and never with credentials (a browser then sends no cookies and reads no credentialed answer). A listed origin
   * (`https://app.example.com`, scheme, host and port exactly as the browser sends `Origin`) is reflected, with
   * `access-control-allow-credentials: true`. The two combine: listed origins get credentials, others `*`. Without
   * `*`, an origin not listed gets no CORS headers, so its pages cannot read the answers.
   */
  readonly origins: readonly string[];
}

/** Connection limits and timeouts of one HTTP server. */
export interface HttpLimits {
  /** Open connections at most; a connection beyond it is closed as it is accepted. 0 = no limit. */
  readonly maxConnections?: number;
  /**
   * Longest wait for a request's headers: a connection that sends nothing, or only part of its headers, for this
   * long is closed.
   */
  readonly headersTimeoutMs?: number;
  /**
   * Longest wait for a whole request, headers and body. A slower client (a large body trickling in) is answered
   * 408 `request_timeout` and its connection closed.
   */
  readonly requestTimeoutMs?: number;
  /** How long an idle keep-alive connection stays open after a response. */
  readonly keepAliveTimeoutMs?: number;
}

export const defaultHttpLimits: Required<HttpLimits> = {
  maxConnections: 0,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 120_000,
  keepAliveTimeoutMs: 65_000,
};

export interface RunningHttpService {
  readonly server: Server;
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

const corsHeaders = {
  'access-control-allow-methods': 'GET, POST, OPTIONS',
  'access-control-allow-headers': 'content-type, content-encoding, authorization',
  'access-control-max-age': '86400',
};

export interface CorsPolicy {
  readonly any: boolean;
  readonly listed: ReadonlySet<string>;
}

export function corsPolicy(cors: boolean | CorsOptions | undefined): CorsPolicy | undefined {
  if (!cors) return undefined;
  const origins = cors === true ? ['*'] : cors.origins;
  return { any: origins.includes('*'), listed: new Set(origins.filter((o) => o !== '*')) };
}

/** The CORS headers of an answer to `origin` (the request's `Origin`, if any). */
export function corsHeadersFor(policy: CorsPolicy, origin: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  if (policy.listed.size > 0) headers.vary = 'origin';
  if (origin !== undefined && policy.listed.has(origin)) {
    headers['access-control-allow-origin'] = origin;
    headers['access-control-allow-credentials'] = 'true';
  } else if (policy.any) {
    headers['access-control-allow-origin'] = '*';
  }
  // posthog-js backs off by `Retry-After` (429, 503); a page on another origin may read it only if exposed.
  if (headers['access-control-allow-origin']) headers['access-control-expose-headers'] = 'retry-after';
  return headers;
}

/** Node's answers to a broken request, for the cases it answers at all (before any byte of a response went out). */
function clientErrorResponse(code: string | undefined): string {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    const body = JSON.stringify(
      new ReplayError('request_timeout', 'the request did not arrive in time; the connection is closed').toJSON(),
    );
    return [
      'HTTP/1.1 408 Request Timeout',
      'content-type: application/json; charset=utf-8',
      `content-length: ${Buffer.byteLength(body)}`,
      'connection: close',
      '',
      body,
    ].join('\r\n');
  }
  if (code === 'HPE_HEADER_OVERFLOW')
    return 'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n';
  if (code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW') return 'HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\n\r\n';
  return 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n';
}

/** The metrics every service's HTTP layer has (docs/metrics.md is generated from these factories). */
export function createHttpMetrics(registry: Registry, ready: () => boolean) {
  const registers = [registry];
  return {
    requests: new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests by route pattern, method and status code.',
      labelNames: ['route', 'method', 'status'],
      registers,
    }),
    duration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request handling time by route pattern.',
      labelNames: ['route'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    errors: new Counter({
      name: 'http_errors_total',
      help: 'Error answers by stable error code.',
      labelNames: ['code'],
      registers,
    }),
    ready: new Gauge({
      name: 'service_ready',
      help: '1 while `/readyz` would answer ready, else 0 (read at each scrape).',
      registers,
      collect() {
        this.set(ready() ? 1 : 0);
      },
    }),
  };
}

/**
 * An HTTP server with the parts every service shares: routing, the error catalogue at the edge, CORS, `/healthz`,
 * `/readyz`, `/metrics`, request metrics by route and status, and bounded connections: a connection limit, and
 * timeouts for headers, for whole requests (a body trickling in is cut with 408 `request_timeout`) and for idle
 * keep-alive connections.
 */
export async function startHttpService(
  options: HttpServiceOptions,
  listen: { readonly host: string; readonly port: number },
): Promise<RunningHttpService> {
  const { router, registry, log } = options;
  const { requests, duration, errors } = createHttpMetrics(registry, options.ready);

  router
    .on('GET', '/healthz', ({ res }) => sendJson(res, 200, { status: 'ok' }))
    .on('GET', '/readyz', ({ res }) =>
      options.ready() ? sendJson(res, 200, { status: 'ready' }) : sendJson(res, 503, { status: 'not ready' }),
    )
    .on('GET', '/metrics', async ({ res }) => {
      // Rendered one registry at a time: Registry.merge would drop the service's default labels (`service=...`) and
      // miss metrics registered after the merge.
      const text = `${await registry.metrics()}\n${await processMetricsRegistry().metrics()}`;
      res.writeHead(200, { 'content-type': registry.contentType }).end(text);
    });

  const limits = { ...defaultHttpLimits, ...stripUndefined(options.limits ?? {}) };
  const requestTimeout = limits.requestTimeoutMs;
  const headersTimeout =
    requestTimeout > 0 ? Math.min(limits.headersTimeoutMs, requestTimeout) : limits.headersTimeoutMs;
  const shortest = Math.min(...[headersTimeout, requestTimeout].filter((t) => t > 0));
  const cors = corsPolicy(options.cors);
  /** The response in progress on each connection: a timeout answers only where none has started. */
  const responding = new WeakMap<Socket, ServerResponse>();

  const server = createServer(
    {
      headersTimeout,
      requestTimeout,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // How often expired requests are looked for: the timeouts hold to within this.
      connectionsCheckingInterval: Number.isFinite(shortest) ? Math.max(100, Math.min(1000, shortest / 4)) : 1000,
    },
    async (req, res) => {
      const started = process.hrtime.bigint();
      const method = req.method ?? 'GET';
      let route = 'unmatched';
      // The connection's wait-for-a-request timer (set on connect) ends here; the request timeout takes over.
      req.socket.setTimeout(0);
      responding.set(req.socket, res);
      res.once('finish', () => {
        if (responding.get(req.socket) === res) responding.delete(req.socket);
      });
      if (cors) {
        for (const [name, value] of Object.entries(corsHeadersFor(cors, req.headers.origin)))
          res.setHeader(name, value);
      }
      try {
        const url = new URL(req.url ?? '/', 'http://localhost');
        if (options.cors && method === 'OPTIONS') {
          route = 'preflight';
          res.writeHead(204, corsHeaders).end();
        } else {
          const matched = router.match(method, url.pathname);
          route = matched.label;
          await matched.handler({ req, res, url, params: matched.params });
        }
      } catch (error) {
        const known =
          error instanceof ReplayError ? error : new ReplayError('internal_error', 'internal error', { cause: error });
        if (!(error instanceof ReplayError)) log.error('request failed', { route, error: (error as Error).stack });
        errors.inc({ code: known.code });
        if (!res.headersSent) {
          const hasBody = Number(req.headers['content-length']) > 0 || req.headers['transfer-encoding'] !== undefined;
          if (hasBody && !req.complete) closeAfterAnswer(req, res);
          sendError(res, known, log);
        } else res.destroy();
      } finally {
        requests.inc({ route, method, status: String(res.statusCode) });
        duration.observe({ route }, Number(process.hrtime.bigint() - started) / 1e9);
      }
    },
  );
  if (limits.maxConnections > 0) server.maxConnections = limits.maxConnections;
  // A connection that sends no request at all is not covered by headersTimeout (that starts with the first byte):
  // it gets the same time to begin, through the socket's idle timer (Node destroys the socket when it fires).
  if (headersTimeout > 0) server.on('connection', (socket: Socket) => socket.setTimeout(headersTimeout));
  // Node's own handling, except that a request timeout is answered with the catalogue's JSON error.
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    const inFlight = responding.get(socket);
    if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT' && !inFlight) errors.inc({ code: 'request_timeout' });
    if (socket.writable && !inFlight?.headersSent && error.code !== 'ECONNRESET') {
      socket.write(clientErrorResponse(error.code));
    }
    socket.destroy(error);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: `http://${listen.host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

/** How long a connection answered before its body was read keeps taking (and discarding) the rest of the body. */
const LINGER_MS = 2000;
/** Bodies up to this size (declared) are taken to their end after an early answer; larger ones are cut. */
const LINGER_MAX_BYTES = 1024 * 1024;

/**
 * An error answered before the request's body was read to its end (a refused token, an over-budget or over-size
 * body): the connection is closed rather than reused. Closing a socket with unread bytes in its receive buffer sends
 * a reset, and a reset can make the client's kernel drop our answer before the client read it (it then sees a
 * network error, not the 401/413/503). So for a body of ordinary size (a declared length up to `LINGER_MAX_BYTES`:
 * every posthog-js upload but the rarest): half-close after the answer, discard whatever of the body still arrives,
 * and destroy the socket when the client is done or after `LINGER_MS`, whichever comes first. A larger or undeclared
 * body is not worth reading only to drop it: its connection is closed at once (Node's own `connection: close`
 * handling), and such a client may see a reset instead of the answer.
 */
function closeAfterAnswer(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('connection', 'close');
  const declared = Number(req.headers['content-length']);
  if (!(declared <= LINGER_MAX_BYTES)) return;
  const socket = req.socket;
  // Node ends a `connection: close` response with `socket.destroySoon()` (end, then destroy once written).
  socket.destroySoon = () => {
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
    // Destroyed once both are true: the answer is written out, and the client has sent all of its body.
    socket.end(() => {
      if (req.complete) socket.destroy();
    });
    req.once('end', () => {
      if (socket.writableFinished) socket.destroy();
    });
  };
  req.resume(); // the rest of the body is read and dropped
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
