import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import type { Config } from '../config/index.ts';
import { ManagedProcess } from './child-process.ts';
import { freePort, LOOPBACK } from './ports.ts';
import { postgresPrerequisites } from './prerequisites.ts';

export interface LocalPostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres`; trust auth, loopback only. */
  readonly url: string;
  readonly version: string;
  readonly process: ManagedProcess;
  stop(): Promise<void>;
}

/** PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres` system user. */
async function clusterOwner(dir: string): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  await chown(dir, uid, gid);
  return 'postgres';
}

async function serverVersion(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const result = await client.query<{ server_version: string }>('SHOW server_version');
    return result.rows[0]!.server_version;
  } finally {
    await client.end();
  }
}

/**
 * A throwaway PostgreSQL cluster on loopback (`initdb` + `postgres` in the foreground, so the harness owns the
 * process). Durability is switched off: it is for tests.
 */
export async function startLocalPostgres(
  config: Config,
  options: { readonly dir: string; readonly startTimeoutMs?: number },
): Promise<LocalPostgres> {
  const { binDir } = postgresPrerequisites(config);
  await mkdir(options.dir, { recursive: true });
  const runAsUser = await clusterOwner(options.dir);
  const dataDir = join(options.dir, 'data');
  const logFile = join(options.dir, 'postgres.log');
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    await new ManagedProcess({
      name: 'initdb',
      command: join(binDir, 'initdb'),
      args: ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-sync'],
      logFile: join(options.dir, 'initdb.log'),
      runAsUser,
    }).completion();
  }

  const port = await freePort();
  const server = new ManagedProcess({
    name: 'postgres',
    command: join(binDir, 'postgres'),
    args: [
      '-D',
      dataDir,
      '-p',
      String(port),
      '-k',
      options.dir,
      '-c',
      `listen_addresses=${LOOPBACK}`,
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'logging_collector=off',
    ],
    logFile,
    runAsUser,
    // SIGINT is PostgreSQL's fast shutdown: it does not wait for clients to disconnect.
    stopSignal: 'SIGINT',
  });
  const url = `postgres://postgres@${LOOPBACK}:${port}/postgres`;
  let version = '';
  try {
    await server.waitUntil(
      async () => {
        version = await serverVersion(url);
        return true;
      },
      options.startTimeoutMs ?? 30_000,
      `accepting connections on port ${port}`,
    );
  } catch (error) {
    await server.kill();
    throw error;
  }
  return { url, version, process: server, stop: () => server.stop() };
}
