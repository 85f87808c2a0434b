import { fileURLToPath } from 'node:url';
import { ManagedProcess } from '../../src/harness/child-process.ts';
import { metricValue, scrape } from '../../test/support/metrics.ts';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
/** Restarts of a role that exits by itself, per run. */
const MAX_RESTARTS = 10;

/**
 * One role of the pipeline as its own Node process (`bin/replay.js <command>`, or a bench entry point), under a
 * stable identity held in its environment: killed and started again, it is the same instance (same transactional id,
 * same static group member, same spool, same ports). The process dies with the chaos run (pdeathsig).
 */
export class RoleProcess {
  readonly name: string;
  private readonly script: readonly string[];
  private readonly env: Readonly<Record<string, string>>;
  private readonly logFile: string;
  /** Base URLs whose `/readyz` must all answer 200 for the role to be ready. */
  private readonly healthUrls: readonly string[];
  private current: ManagedProcess | undefined;
  /** Restarts of a process that exited by itself (a fatal error), as a supervisor (Kubernetes, compose) would. */
  restarts = 0;

  constructor(options: {
    name: string;
    script: readonly string[];
    env: Record<string, string>;
    logFile: string;
    healthUrls: readonly string[];
  }) {
    this.name = options.name;
    this.script = options.script;
    this.env = { LOG_LEVEL: 'warn', ...options.env };
    this.logFile = options.logFile;
    this.healthUrls = options.healthUrls;
  }

  get running(): boolean {
    return this.current?.running ?? false;
  }

  start(): void {
    if (this.running) throw new Error(`${this.name} is already running`);
    const started = new ManagedProcess({
      name: this.name,
      command: process.execPath,
      args: this.script,
      env: this.env,
      cwd: repoRoot,
      logFile: this.logFile,
    });
    this.current = started;
    // A process that exits by itself (a fatal error: it cannot go on) is started again after a second, as its
    // supervisor would, at most MAX_RESTARTS times a run (one that can never start then stays down, and the
    // scenario's bounded catch-up reports it). One this class killed or stopped is not: the scenario decides.
    started
      .completion()
      .catch(() => {})
      .then(async () => {
        if (this.current !== started || started === this.ending) return;
        await new Promise((resolve) => setTimeout(resolve, 1000));
        if (this.current !== started || started === this.ending || this.restarts >= MAX_RESTARTS) return;
        this.restarts++;
        process.stderr.write(`[chaos] ${this.name} exited by itself (see ${this.logFile}); started again\n`);
        this.start();
      });
  }

  /** The process being killed or stopped on purpose (never restarted by the supervision above). */
  private ending: ManagedProcess | undefined;

  /** kill -9. */
  async kill(): Promise<void> {
    this.ending = this.current;
    await this.current?.kill();
  }

  /** SIGTERM (the role's clean shutdown), SIGKILL after 20 s. */
  async stop(): Promise<void> {
    this.ending = this.current;
    await this.current?.stop(20_000);
  }

  /** A metric of the role's (first) service, summed over its series; undefined while it does not answer. */
  async metric(name: string): Promise<number | undefined> {
    const text = await scrape(this.healthUrls[0]!).catch(() => undefined);
    return text === undefined ? undefined : metricValue(text, name);
  }

  /** Waits until every health URL answers ready; throws (with the log's tail) if the process dies or time runs out. */
  async ready(timeoutMs: number): Promise<void> {
    if (!this.current) throw new Error(`${this.name} was never started`);
    await this.current.waitUntil(
      async () => {
        const answers = await Promise.all(
          this.healthUrls.map(async (url) => {
            const answer = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) });
            await answer.body?.cancel();
            return answer.ok;
          }),
        );
        return answers.every(Boolean);
      },
      timeoutMs,
      'ready',
    );
  }
}
