import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { InspectorSession } from './inspector.ts';
import { allCommitted, type GroupOffsets, groupOffsets } from './kafka-offsets.ts';

/** A `replay <command>` child process, its output, and ways to wait for a line of it and to kill it. */
export interface ReplayProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first match of `pattern` in the output; rejects on exit or after `timeoutMs`. */
  waitForLog(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray>;
  /** SIGKILL unless it has exited, then waits for the exit. */
  killNow(): Promise<void>;
  log(): string;
}

/** `replay <command>` as a real child process (so it can be SIGKILLed), optionally with the inspector on a free port. */
export function spawnReplay(
  command: string,
  env: Record<string, string>,
  options: { inspect?: boolean } = {},
): ReplayProcess {
  const child = spawn(
    process.execPath,
    [...(options.inspect ? ['--inspect=127.0.0.1:0'] : []), 'bin/replay.js', command],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  let onLog = () => {};
  const append = (chunk: Buffer) => {
    log += chunk.toString();
    onLog();
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const waitForLog = (pattern: RegExp, timeoutMs: number) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${command} printed no ${pattern} in ${timeoutMs} ms:\n${log}`)),
        timeoutMs,
      );
      const check = () => {
        const match = pattern.exec(log);
        if (match) {
          clearTimeout(timer);
          resolve(match);
        }
      };
      onLog = check;
      check();
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`${command} exited before printing ${pattern}:\n${log}`));
      });
    });
  const killNow = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  return { child, exited, waitForLog, killNow, log: () => log };
}

/** Connects the inspector of a process spawned with `inspect: true` once it says where it listens. */
export async function inspect(process: ReplayProcess): Promise<InspectorSession> {
  const [, url] = await process.waitForLog(/Debugger listening on (ws:\/\/\S+)/, 20_000);
  const inspector = await InspectorSession.connect(url!);
  await inspector.send('Debugger.enable');
  return inspector;
}

/**
 * Sets a breakpoint on the line of the consumer framework's BatchingSink that commits offsets, which runs only after
 * the sink's write returned. `paused` resolves once the process stops there (a kill then lands between write and
 * commit); it is wrapped so that awaiting the breakpoint's setting does not wait for the pause.
 */
export async function pauseAtBatchCommit(
  inspector: InspectorSession,
  timeoutMs = 30_000,
): Promise<{ paused: Promise<unknown> }> {
  const file = 'src/consumer/batching-sink.ts';
  const breakpoint = await inspector.breakAt(
    file,
    await readFile(file, 'utf8'),
    'const committing = this.commitWritten(offsets)',
  );
  const paused = inspector.waitForEvent(
    'Debugger.paused',
    (p) => (p.hitBreakpoints as string[] | undefined)?.includes(breakpoint) ?? false,
    timeoutMs,
  );
  return { paused };
}

/**
 * The crash of the batch sinks' kill tests: starts `replay <command>` with the inspector, lets round 1 through
 * (written, then committed), then stops the process on the framework's commit line while it handles round 2 and
 * SIGKILLs it there. Checks that the broker still holds round 1's offsets, and returns them: the sink's target holds
 * more, which the caller checks against its own store.
 */
export async function killBetweenWriteAndCommit(options: {
  readonly command: string;
  readonly env: Record<string, string>;
  readonly brokers: string;
  readonly groupId: string;
  readonly topic: string;
  readonly partitions: number;
  readonly produceFirst: () => Promise<void>;
  readonly produceSecond: () => Promise<void>;
}): Promise<GroupOffsets> {
  const { brokers, groupId, topic, partitions } = options;
  const victim = spawnReplay(options.command, options.env, { inspect: true });
  let inspector: InspectorSession | undefined;
  try {
    inspector = await inspect(victim);
    await victim.waitForLog(new RegExp(`\\[${options.command}\\.consumer\\] consuming`), 30_000);
    await options.produceFirst();
    const afterFirst = await allCommitted(brokers, groupId, topic, partitions, 30_000);
    const { paused } = await pauseAtBatchCommit(inspector);
    await options.produceSecond();
    await paused;
    victim.child.kill('SIGKILL');
    const { signal } = await victim.exited;
    if (signal !== 'SIGKILL') throw new Error(`${options.command} exited with ${signal} instead of being killed`);
    const afterKill = await groupOffsets(brokers, groupId, topic, partitions);
    if (afterKill.committed.join() !== afterFirst.committed.join())
      throw new Error(`offsets moved past round 1: ${afterFirst.committed} → ${afterKill.committed}`);
    return afterKill;
  } catch (error) {
    throw new Error(`${String(error)}\n--- ${options.command} output ---\n${victim.log()}`);
  } finally {
    inspector?.close();
    await victim.killNow();
  }
}
