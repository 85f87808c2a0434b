import { createServer } from 'node:net';

/** Every local server binds here: the project never listens on or sends test traffic to another address. */
export const LOOPBACK = '127.0.0.1';

/** A TCP port that was free on loopback a moment ago (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port assigned'));
      });
    });
  });
}
