/**
 * Runs one bench as a child process, as a user runs it (`node bench/x.ts ... --out FILE`), inside a wall-clock
 * budget: past it the bench's process group gets SIGTERM, then SIGKILL, and its figures count as missing.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { measureOtherWork, type OtherWork } from './other-work.ts';
import type { BenchStep } from './plan.ts';

export type BenchStatus = 'ok' | 'failed' | 'timed out' | 'skipped';

export interface BenchOutcome {
  readonly name: string;
  readonly status: BenchStatus;
  readonly command: string;
  readonly seconds: number;
  readonly budgetSeconds: number;
  readonly exitCode: number | null;
  /** Why it is not ok, in a few words. */
  readonly reason?: string;
  readonly outFile: string;
  readonly logFile: string;
  /** The JSON it wrote (also when it failed after writing it). */
  readonly json?: unknown;
  /** 1-minute load average when it started and when it ended. */
  readonly loadAverage: { readonly before: number; readonly after: number };
  /** CPU other work (outside run-all) used while it ran: how shared the machine was. */
  readonly otherWork: OtherWork;
}

/** Seconds between SIGTERM and SIGKILL: benches stop their brokers on SIGTERM. */
const KILL_GRACE_SECONDS = 10;
const HEARTBEAT_MS = 15_000;

/** The bench's command line after `node`, as a user would type it. */
const argv = (step: BenchStep, outFile: string) => [step.script, ...step.args, '--out', outFile];

export async function runBench(
  step: BenchStep,
  options: {
    readonly cwd: string;
    readonly outFile: string;
    readonly logFile: string;
    readonly budgetSeconds: number;
    readonly signal: AbortSignal;
    readonly progress: (message: string) => void;
  },
): Promise<BenchOutcome> {
  const args = argv(step, options.outFile);
  const command = `node ${args.join(' ')}`;
  const loadBefore = loadavg()[0]!;
  const otherWork = await measureOtherWork();
  const started = performance.now();
  const seconds = () => (performance.now() - started) / 1000;
  const log = createWriteStream(options.logFile);
  // Its own process group, so the services it started (capture, consumers) go with it when it is killed.
  const child = spawn(process.execPath, args, { cwd: options.cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let lastLine = '';
  child.stdout.pipe(log, { end: false });
  child.stderr.on('data', (chunk: Buffer) => {
    log.write(chunk);
    const lines = chunk.toString().trimEnd().split('\n');
    lastLine = lines.at(-1)?.slice(0, 140) ?? lastLine;
  });

  let killedFor: string | undefined;
  const killGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // Already gone.
    }
  };
  const stop = (reason: string) => {
    if (killedFor) return;
    killedFor = reason;
    options.progress(`${step.name}: ${reason}; stopping it (SIGTERM, SIGKILL after ${KILL_GRACE_SECONDS} s)`);
    killGroup('SIGTERM');
    setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_SECONDS * 1000).unref();
  };
  const termAt = Math.max(1, options.budgetSeconds - KILL_GRACE_SECONDS);
  const overrun = setTimeout(
    () => stop(`not done ${termAt} s into its ${options.budgetSeconds} s budget (the rest is for stopping)`),
    termAt * 1000,
  );
  const onAbort = () => stop('run-all interrupted');
  options.signal.addEventListener('abort', onAbort);
  const heartbeat = setInterval(
    () =>
      options.progress(
        `${step.name}: ${seconds().toFixed(0)} s of ${options.budgetSeconds} s${lastLine ? ` | ${lastLine}` : ''}`,
      ),
    HEARTBEAT_MS,
  );

  const exitCode = await new Promise<number | null>((resolve) => {
    child.once('error', (error) => {
      lastLine = error.message;
      resolve(null);
    });
    child.once('close', (code) => resolve(code));
  });
  clearTimeout(overrun);
  clearInterval(heartbeat);
  options.signal.removeEventListener('abort', onAbort);
  // Whatever it left running in its group (a capture child, say) goes too.
  killGroup('SIGKILL');
  await new Promise((resolve) => log.end(resolve));

  const json = await readFile(options.outFile, 'utf8').then(
    (text) => JSON.parse(text) as unknown,
    () => undefined,
  );
  const status: BenchStatus = killedFor ? 'timed out' : exitCode === 0 && json !== undefined ? 'ok' : 'failed';
  const reason =
    status === 'ok'
      ? undefined
      : (killedFor ??
        (json === undefined ? `exit ${exitCode}, no JSON; last line: ${lastLine}` : `exit ${exitCode}: ${lastLine}`));
  return {
    name: step.name,
    status,
    command,
    seconds: Number(seconds().toFixed(1)),
    budgetSeconds: options.budgetSeconds,
    exitCode,
    ...(reason ? { reason } : {}),
    outFile: options.outFile,
    logFile: options.logFile,
    ...(json === undefined ? {} : { json }),
    loadAverage: { before: Number(loadBefore.toFixed(2)), after: Number(loadavg()[0]!.toFixed(2)) },
    otherWork: await otherWork(),
  };
}

/** The outcome of a bench not started (the time bound would not leave it its budget, or run-all was interrupted). */
export function skippedOutcome(
  step: BenchStep,
  files: { readonly outFile: string; readonly logFile: string },
  reason: string,
): BenchOutcome {
  const load = Number(loadavg()[0]!.toFixed(2));
  return {
    name: step.name,
    status: 'skipped',
    command: `node ${argv(step, files.outFile).join(' ')}`,
    seconds: 0,
    budgetSeconds: 0,
    exitCode: null,
    reason,
    outFile: files.outFile,
    logFile: files.logFile,
    loadAverage: { before: load, after: load },
    otherWork: { cpuSeconds: 0, share: 0 },
  };
}
