import { readFileSync } from 'node:fs';
import type { Config } from '../config/index.ts';
import type { Command } from './command.ts';

/** Where each long-running role serves /healthz and /readyz. */
const roleListeners: Readonly<Record<string, (config: Config) => { host: string; port: number }>> = {
  capture: (c) => ({ host: c.captureHost, port: c.capturePort }),
  'blob-consumer': (c) => ({ host: c.blobConsumerHost, port: c.blobConsumerPort }),
  sink: (c) => ({ host: c.sinkHost, port: c.sinkPort }),
  'behaviors-sink': (c) => ({ host: c.behaviorsHost, port: c.behaviorsPort }),
  'realtime-sink': (c) => ({ host: c.realtimeHost, port: c.realtimePort }),
  api: (c) => ({ host: c.apiHost, port: c.apiPort }),
};

const TIMEOUT_MS = 3000;

/**
 * The role a container runs: the first argument after the CLI entry in the command line of PID 1 (the image's
 * ENTRYPOINT is `node bin/replay.js`), so one HEALTHCHECK line in the Dockerfile serves every role.
 */
function containerRole(): string | undefined {
  try {
    const argv = readFileSync('/proc/1/cmdline', 'utf8').split('\0');
    const entry = argv.findIndex((arg) => arg.endsWith('bin/replay.js'));
    return entry >= 0 ? argv[entry + 1] : undefined;
  } catch {
    return undefined;
  }
}

export const healthcheckCommand: Command = {
  async run(args, { config, stdout }) {
    const ready = args.includes('--ready');
    const named = args.find((arg) => !arg.startsWith('--'));
    const role = named ?? containerRole();
    const listener = role !== undefined && Object.hasOwn(roleListeners, role) ? roleListeners[role] : undefined;
    if (listener === undefined) {
      // The container runs a one-shot role (migrate): nothing to probe, healthy while it runs.
      if (named === undefined && role !== undefined) return 0;
      stdout(`healthcheck: name a role (${Object.keys(roleListeners).join(', ')})\n`);
      return 2;
    }
    const { host, port } = listener(config);
    const target = host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host;
    const url = `http://${target.includes(':') ? `[${target}]` : target}:${port}/${ready ? 'readyz' : 'healthz'}`;
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
      stdout(`${role} ${url}: ${response.status}\n`);
      return response.ok ? 0 : 1;
    } catch (error) {
      stdout(`${role} ${url}: ${(error as Error).message}\n`);
      return 1;
    }
  },
};
