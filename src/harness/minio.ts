import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/index.ts';
import { ManagedProcess } from './child-process.ts';
import { freePort, LOOPBACK } from './ports.ts';
import { minioPrerequisites } from './prerequisites.ts';

export interface LocalMinio {
  readonly endpoint: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly region: string;
  readonly version: string;
  readonly process: ManagedProcess;
  stop(): Promise<void>;
}

/** Starts a MinIO server on loopback with its data in `dir`. Credentials are fixed: it is never reachable off-host. */
export async function startLocalMinio(
  config: Config,
  options: { readonly dir: string; readonly startTimeoutMs?: number },
): Promise<LocalMinio> {
  const prereq = minioPrerequisites(config);
  await mkdir(join(options.dir, 'data'), { recursive: true });
  const port = await freePort();
  const consolePort = await freePort();
  const accessKeyId = 'replay-local';
  const secretAccessKey = 'replay-local-secret';
  const server = new ManagedProcess({
    name: 'minio',
    command: prereq.binary,
    args: [
      'server',
      join(options.dir, 'data'),
      '--address',
      `${LOOPBACK}:${port}`,
      '--console-address',
      `${LOOPBACK}:${consolePort}`,
      '--quiet',
    ],
    env: {
      MINIO_ROOT_USER: accessKeyId,
      MINIO_ROOT_PASSWORD: secretAccessKey,
      MINIO_BROWSER: 'off',
      MINIO_UPDATE: 'off',
    },
    logFile: join(options.dir, 'minio.log'),
  });
  const endpoint = `http://${LOOPBACK}:${port}`;
  try {
    await server.waitUntil(
      async () => (await fetch(`${endpoint}/minio/health/ready`)).ok,
      options.startTimeoutMs ?? 60_000,
      `ready on ${endpoint}`,
    );
  } catch (error) {
    await server.kill();
    throw error;
  }
  return {
    endpoint,
    accessKeyId,
    secretAccessKey,
    region: 'us-east-1',
    version: prereq.version,
    process: server,
    stop: () => server.stop(),
  };
}
