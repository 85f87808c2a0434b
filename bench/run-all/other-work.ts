/**
 * How much of the machine other work used while run-all ran: CPU the whole machine was busy minus the CPU of
 * run-all and everything it started (benches, their services, once reaped). The load average cannot tell the two
 * apart.
 */
import { cpus } from 'node:os';
import { machineBusySeconds, ownTreeCpuSeconds } from '../shared/proc-stats.ts';

export interface OtherWork {
  /** CPU-seconds used by processes outside run-all's tree. */
  readonly cpuSeconds: number;
  /** That over the machine's capacity in the same time (all cores): 0.25 is half a core of 2. */
  readonly share: number;
}

/** Starts measuring; the returned function tells what other work used since. */
export async function measureOtherWork(): Promise<() => Promise<OtherWork>> {
  const [busy, own, started] = [await machineBusySeconds(), await ownTreeCpuSeconds(), performance.now()];
  return async () => {
    const others = Math.max(0, (await machineBusySeconds()) - busy - ((await ownTreeCpuSeconds()) - own));
    const capacity = ((performance.now() - started) / 1000) * cpus().length;
    return { cpuSeconds: Number(others.toFixed(1)), share: capacity > 0 ? Number((others / capacity).toFixed(3)) : 0 };
  };
}
