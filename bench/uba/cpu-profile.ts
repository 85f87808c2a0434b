import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The parts of a V8 `.cpuprofile` (what `node --cpu-prof` writes) this summary reads. */
interface CpuProfile {
  readonly nodes: readonly {
    readonly id: number;
    readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  }[];
  readonly startTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface ProfileShare {
  readonly name: string;
  readonly seconds: number;
  /** Of the main thread's busy (non-idle) time. */
  readonly share: number;
}

export interface ProfileSummary {
  readonly file: string;
  /** Main-thread time not idle, in seconds (native threads — librdkafka, chDB, libuv's pool — are not sampled). */
  readonly busySeconds: number;
  /** Whether only the samples of the requested window were counted (false: the whole profile, start-up included). */
  readonly windowed: boolean;
  readonly functions: readonly ProfileShare[];
  readonly modules: readonly ProfileShare[];
}

/** Where a frame's code lives, short: a package, a Node module, a project file, or V8's own pseudo-frames. */
function moduleOf(url: string, functionName: string): string {
  if (url === '') return functionName === '(garbage collector)' ? 'GC' : functionName || '(native)';
  const packages = url.lastIndexOf('/node_modules/');
  if (packages >= 0) {
    const rest = url.slice(packages + '/node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  const src = url.indexOf('/src/');
  return src >= 0 ? url.slice(src + 1) : url.slice(url.lastIndexOf('/') + 1);
}

function top(times: Map<string, number>, busy: number, n: number): ProfileShare[] {
  return [...times]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, us]) => ({ name, seconds: us / 1e6, share: us / busy }));
}

/**
 * Self time by function and by module of one profile; idle time is left out of the shares. `window` (microseconds of
 * CLOCK_MONOTONIC, the clock of both V8's profile timestamps and `process.hrtime`) keeps only the samples taken
 * within it, so start-up and warm-up stay out; a window the profile does not cover falls back to the whole profile.
 */
export async function summariseProfile(
  file: string,
  window?: { readonly fromUs: number; readonly toUs: number },
  n = 8,
): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  const times: number[] = [];
  let at = profile.startTime;
  for (const delta of profile.timeDeltas) {
    at += delta;
    times.push(at);
  }
  const windowed = window !== undefined && times.some((t) => t >= window.fromUs && t <= window.toUs);
  const functions = new Map<string, number>();
  const modules = new Map<string, number>();
  let busy = 0;
  profile.samples.forEach((id, i) => {
    const frame = byId.get(id);
    const us = profile.timeDeltas[i] ?? 0;
    if (windowed && (times[i]! < window.fromUs || times[i]! > window.toUs)) return;
    if (!frame || frame.functionName === '(idle)') return;
    busy += us;
    const module = moduleOf(frame.url, frame.functionName);
    const name =
      frame.url === '' ? module : `${frame.functionName || '(anonymous)'} (${module}:${frame.lineNumber + 1})`;
    functions.set(name, (functions.get(name) ?? 0) + us);
    modules.set(module, (modules.get(module) ?? 0) + us);
  });
  return {
    file,
    busySeconds: busy / 1e6,
    windowed,
    functions: top(functions, busy, n),
    modules: top(modules, busy, n),
  };
}

/** The newest `.cpuprofile` in a directory (each stage writes its own directory). */
export async function newestProfile(dir: string): Promise<string | undefined> {
  const files = (await readdir(dir).catch(() => [])).filter((f) => f.endsWith('.cpuprofile')).sort();
  return files.length > 0 ? join(dir, files.at(-1)!) : undefined;
}

/** One line: the largest shares of the main thread, as "name 21 %". */
export function profileLine(shares: readonly ProfileShare[], n = 6): string {
  return shares
    .slice(0, n)
    .map((s) => `${s.name} ${(s.share * 100).toFixed(0)} %`)
    .join(', ');
}
