import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/index.ts';
import { ManagedProcess } from './child-process.ts';
import { freePort, LOOPBACK } from './ports.ts';
import { prometheusPrerequisites } from './prerequisites.ts';

export interface ScrapeTarget {
  /** `host:port` of a `/metrics` endpoint. */
  readonly target: string;
  readonly labels?: Readonly<Record<string, string>>;
}

export interface LocalPrometheus {
  /** `http://127.0.0.1:<port>`: the HTTP API (`/api/v1/query`, `/api/v1/targets`, `/api/v1/rules`). */
  readonly url: string;
  readonly version: string;
  /** Instant query; resolves with the result vector or scalar as the API returns it, rejects on a query error. */
  query(expr: string): Promise<PrometheusSample[]>;
  stop(): Promise<void>;
}

export interface PrometheusSample {
  readonly metric: Record<string, string>;
  readonly value: number;
}

/**
 * Starts a real Prometheus server (Debian's) on loopback scraping `targets` every `scrapeIntervalS` seconds and
 * evaluating `ruleFiles` as often, its TSDB in `dir`. For tests: it answers queries on the real series.
 */
export async function startLocalPrometheus(
  config: Config,
  options: {
    readonly dir: string;
    readonly job: string;
    readonly targets: readonly ScrapeTarget[];
    readonly ruleFiles?: readonly string[];
    readonly scrapeIntervalS?: number;
    readonly startTimeoutMs?: number;
  },
): Promise<LocalPrometheus> {
  const prereq = prometheusPrerequisites(config);
  await mkdir(join(options.dir, 'data'), { recursive: true });
  const interval = `${options.scrapeIntervalS ?? 1}s`;
  const configFile = join(options.dir, 'prometheus.yml');
  await writeFile(
    configFile,
    JSON.stringify({
      global: { scrape_interval: interval, evaluation_interval: interval, scrape_timeout: interval },
      rule_files: options.ruleFiles ?? [],
      scrape_configs: [
        {
          job_name: options.job,
          static_configs: options.targets.map(({ target, labels }) => ({ targets: [target], labels: labels ?? {} })),
        },
      ],
    }),
  );
  const port = await freePort();
  const url = `http://${LOOPBACK}:${port}`;
  const server = new ManagedProcess({
    name: 'prometheus',
    command: prereq.binary,
    args: [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(options.dir, 'data')}`,
      `--web.listen-address=${LOOPBACK}:${port}`,
      '--storage.tsdb.retention.time=1h',
    ],
    logFile: join(options.dir, 'prometheus.log'),
  });
  try {
    await server.waitUntil(
      async () => (await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2000) })).ok,
      options.startTimeoutMs ?? 30_000,
      `answering /-/ready on ${LOOPBACK}:${port}`,
    );
  } catch (error) {
    await server.kill();
    throw error;
  }
  return {
    url,
    version: prereq.version,
    async query(expr) {
      const response = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: expr })}`, {
        signal: AbortSignal.timeout(10_000),
      });
      const body = (await response.json()) as {
        status: string;
        error?: string;
        data?: { resultType: string; result: unknown };
      };
      if (body.status !== 'success' || !body.data) throw new Error(`query ${expr} failed: ${body.error}`);
      const { resultType, result } = body.data;
      if (resultType === 'scalar') return [{ metric: {}, value: Number((result as [number, string])[1]) }];
      return (result as { metric: Record<string, string>; value: [number, string] }[]).map((sample) => ({
        metric: sample.metric,
        value: Number(sample.value[1]),
      }));
    },
    stop: () => server.stop(),
  };
}
