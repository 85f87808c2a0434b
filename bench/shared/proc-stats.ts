import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/** utime + stime in seconds from the text of /proc/<pid>/stat (clock ticks are 100 Hz on Linux). */
function cpuFromStat(stat: string): number {
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU-seconds a process has used, all its threads. */
export async function cpuSeconds(pid: number): Promise<number> {
  return cpuFromStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
}

/** cpuSeconds, synchronously: for samplers whose timing must not wait for the thread pool. */
export function cpuSecondsSync(pid: number): number {
  return cpuFromStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
}

/** Peak resident set of a process (VmHWM), MB. */
export async function peakRssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

/** CPU-seconds all CPUs together have been busy since boot (/proc/stat: user, nice, system, irq, softirq, steal). */
export async function machineBusySeconds(): Promise<number> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!;
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) / 100;
}

/** CPU-seconds of this process and of every descendant it (or they) waited for: utime, stime, cutime, cstime. */
export async function ownTreeCpuSeconds(): Promise<number> {
  const stat = await readFile('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / 100;
}
