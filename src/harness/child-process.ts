import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { ReplayError } from '../errors/index.ts';

export interface ManagedProcessOptions {
  /** Short name used in errors ("kafka", "minio"). */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** stdout and stderr go here; the tail is quoted when start-up fails. */
  readonly logFile: string;
  /** Run as this system user (used for PostgreSQL, which refuses to run as root). */
  readonly runAsUser?: string;
  /** The signal that asks for a clean shutdown (default SIGTERM). */
  readonly stopSignal?: NodeJS.Signals;
}

/**
 * A server process owned by this Node process. It is started through `setpriv --pdeathsig KILL`, so the kernel kills
 * it when its parent dies for any reason, kill -9 included: an interrupted test run leaves no server behind.
 */
export class ManagedProcess {
  readonly name: string;
  readonly logFile: string;
  private readonly child: ChildProcess;
  private readonly stopSignal: NodeJS.Signals;
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exited: Promise<void>;

  constructor(options: ManagedProcessOptions) {
    this.name = options.name;
    this.logFile = options.logFile;
    this.stopSignal = options.stopSignal ?? 'SIGTERM';
    const log = createWriteStream(options.logFile, { flags: 'a' });
    const identity = options.runAsUser
      ? [`--reuid=${options.runAsUser}`, `--regid=${options.runAsUser}`, '--init-groups']
      : [];
    this.child = spawn('setpriv', [...identity, '--pdeathsig', 'KILL', '--', options.command, ...options.args], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout?.pipe(log, { end: false });
    this.child.stderr?.pipe(log, { end: false });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        log.end();
        resolve();
      });
      this.child.once('error', (error) => {
        log.write(`spawn failed: ${error.message}\n`);
        this.exitInfo = { code: -1, signal: null };
        log.end();
        resolve();
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** Resolves when the process has exited (for one-shot tools such as `initdb`). Rejects on a non-zero exit. */
  async completion(): Promise<void> {
    await this.exited;
    if (this.exitInfo?.code !== 0) throw await this.failure(`exited with ${this.describeExit()}`);
  }

  /**
   * Polls `probe` until it returns true, the process dies or the deadline passes. The probe's own errors count as
   * "not yet".
   */
  async waitUntil(probe: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let delay = 50;
    while (Date.now() < deadline) {
      if (!this.running) throw await this.failure(`exited with ${this.describeExit()} before it was ${what}`);
      if (await probe().catch(() => false)) return;
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 500);
    }
    throw await this.failure(`was not ${what} within ${Math.round(timeoutMs / 1000)} s`, 'service_timeout');
  }

  /** The stop signal, then SIGKILL after `graceMs`. Idempotent. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.child.kill(this.stopSignal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** Immediate SIGKILL, for fault-injection tests. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  private describeExit(): string {
    const info = this.exitInfo;
    if (!info) return 'no exit';
    return info.signal ? `signal ${info.signal}` : `code ${info.code}`;
  }

  private async failure(
    what: string,
    code: 'service_start_failed' | 'service_timeout' = 'service_start_failed',
  ): Promise<ReplayError> {
    const log = await readFile(this.logFile, 'utf8').catch(() => '');
    const tail = log.trimEnd().split('\n').slice(-12).join('\n');
    return new ReplayError(code, `${this.name} ${what}; last lines of ${this.logFile}:\n${tail}`);
  }
}
