import { mkdir } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { Config } from '../config/index.ts';
import { ManagedProcess } from './child-process.ts';
import { freePort, LOOPBACK } from './ports.ts';
import { redisPrerequisites } from './prerequisites.ts';

export interface LocalRedis {
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  readonly version: string;
  readonly process: ManagedProcess;
  stop(): Promise<void>;
}

/** Sends one inline command and resolves with the first reply line (`+PONG`, `-ERR ...`); for health checks only. */
export function redisCommand(port: number, command: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, LOOPBACK);
    let reply = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`redis on port ${port} did not answer ${command} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () => socket.write(`${command}\r\n`));
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      if (!reply.includes('\r\n')) return;
      clearTimeout(timer);
      socket.end();
      resolve(reply.slice(0, reply.indexOf('\r\n')));
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/**
 * Starts a real `redis-server` (Debian's) on loopback, protected mode on, its files in `dir`. By default nothing is
 * persisted (its state is test and `dev` scratch; the realtime sink's exactly-once does not rely on Redis surviving a
 * restart of its own). `persistent` keeps the data across its own restarts, for outage tests: an append-only file
 * fsynced before every reply (`appendfsync always`, so a write Redis acknowledged survives even SIGKILL); pass the
 * `port` (and `dir`) of a stopped one to start it again where it was, with its data.
 */
export async function startLocalRedis(
  config: Config,
  options: {
    readonly dir: string;
    readonly persistent?: boolean;
    readonly port?: number;
    readonly startTimeoutMs?: number;
  },
): Promise<LocalRedis> {
  const prereq = redisPrerequisites(config);
  await mkdir(options.dir, { recursive: true });
  const port = options.port ?? (await freePort());
  const persistence = options.persistent ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  const server = new ManagedProcess({
    name: 'redis',
    command: prereq.binary,
    args: [
      '--port',
      String(port),
      '--bind',
      LOOPBACK,
      '--daemonize',
      'no',
      '--save',
      '',
      ...persistence,
      '--dir',
      options.dir,
      '--protected-mode',
      'yes',
    ],
    logFile: join(options.dir, 'redis.log'),
  });
  try {
    await server.waitUntil(
      async () => (await redisCommand(port, 'PING')) === '+PONG',
      options.startTimeoutMs ?? 30_000,
      `answering PING on ${LOOPBACK}:${port}`,
    );
  } catch (error) {
    await server.kill();
    throw error;
  }
  return {
    url: `redis://${LOOPBACK}:${port}`,
    port,
    version: prereq.version,
    process: server,
    stop: () => server.stop(),
  };
}
