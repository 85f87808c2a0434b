import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LOOPBACK } from './ports.ts';

/**
 * An HTTP proxy in front of the real MinIO that can be switched to answer every request with S3's 503 SlowDown (an
 * S3 outage), or to black-hole them (accept, read, never answer: a hung endpoint), injected on the wire with the real
 * server behind it untouched.
 */
export async function startS3FaultProxy(target: string) {
  const upstream = new URL(target);
  let failing = false;
  let blackhole = false;
  let failed = 0;
  let swallowed = 0;
  const server: Server = createServer((req, res) => {
    if (blackhole) {
      swallowed++;
      req.resume(); // read the request, answer nothing; the socket stays open until the client gives up
      return;
    }
    if (failing) {
      failed++;
      req.resume();
      const body =
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>injected outage</Message></Error>';
      res.writeHead(503, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) }).end(body);
      return;
    }
    const forward = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve));
  return {
    endpoint: `http://${LOOPBACK}:${(server.address() as AddressInfo).port}`,
    setFailing(value: boolean) {
      failing = value;
    },
    setBlackhole(value: boolean) {
      blackhole = value;
    },
    get failedRequests() {
      return failed;
    },
    get swallowedRequests() {
      return swallowed;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
