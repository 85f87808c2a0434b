import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Histogram, type Registry } from 'prom-client';
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
  /** Answer CORS preflights and add CORS headers (capture is called from pages on other origins). */
  readonly cors?: boolean;
}

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

/**
 * An HTTP server with the parts every service shares: routing, the error catalogue at the edge, CORS, `/healthz`,
 * `/readyz`, `/metrics`, and request metrics by route and status.
 */
export async function startHttpService(
  options: HttpServiceOptions,
  listen: { readonly host: string; readonly port: number },
): Promise<RunningHttpService> {
  const { router, registry, log } = options;
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests by route pattern, method and status code.',
    labelNames: ['route', 'method', 'status'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request handling time by route pattern.',
    labelNames: ['route'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const errors = new Counter({
    name: 'http_errors_total',
    help: 'Error answers by stable error code.',
    labelNames: ['code'],
    registers: [registry],
  });

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

  const server = createServer(async (req, res) => {
    const started = process.hrtime.bigint();
    const method = req.method ?? 'GET';
    let route = 'unmatched';
    if (options.cors) {
      res.setHeader('access-control-allow-origin', req.headers.origin ?? '*');
      res.setHeader('vary', 'origin');
      if (req.headers.origin) res.setHeader('access-control-allow-credentials', 'true');
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
      if (!res.headersSent) sendError(res, known);
      else res.destroy();
    } finally {
      requests.inc({ route, method, status: String(res.statusCode) });
      duration.observe({ route }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  });
  server.keepAliveTimeout = 65_000;
  server.requestTimeout = 120_000;
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
