import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cpuSecondsSync } from './proc-stats.ts';

interface Sample {
  readonly at: number;
  /** Bytes appended to spool files so far (flushed and deleted ones included). */
  readonly grown: number;
  readonly cpu: number;
}

/** The stretch between the first and the last append: consumption without start-up or the final flush wait. */
export interface ConsumingWindow {
  readonly seconds: number;
  /** Share of all appended bytes appended after the first sample that saw any (the first batch is before it). */
  readonly share: number;
  readonly cpuSeconds: number;
}

/**
 * Watches a blob consumer's spool directory from outside, every few milliseconds, with stat only (no cost to the
 * consumer, unlike scraping its /metrics that often; a few percent of a core here). The consumer appends each message's frames to the batch's
 * spool file as it takes the message, so the files' growth marks when consuming happened.
 */
export class SpoolGrowth {
  readonly #dir: string;
  readonly #pid: number;
  readonly #sizes = new Map<string, number>();
  readonly #samples: Sample[] = [];
  #grown = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(dir: string, pid: number) {
    this.#dir = dir;
    this.#pid = pid;
  }

  /** Every 2 ms: on the fast path a run's whole input can be taken in tens of milliseconds. */
  start(intervalMs = 2): void {
    this.#timer = setInterval(() => this.#sample(), intervalMs);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** From the first sample that saw an append to the first that saw them all; undefined if that is one sample. */
  window(): ConsumingWindow | undefined {
    this.#sample();
    const first = this.#samples.find((s) => s.grown > 0);
    const last = this.#samples.find((s) => s.grown === this.#grown);
    if (!first || !last || last.at <= first.at) return undefined;
    return {
      seconds: (last.at - first.at) / 1000,
      share: (last.grown - first.grown) / last.grown,
      cpuSeconds: last.cpu - first.cpu,
    };
  }

  #sample(): void {
    const seen = new Set<string>();
    let names: string[];
    try {
      names = readdirSync(this.#dir).filter((name) => name.endsWith('.spool'));
    } catch {
      return; // not created yet
    }
    for (const name of names) {
      const size = (() => {
        try {
          return statSync(join(this.#dir, name)).size;
        } catch {
          return undefined; // flushed and deleted meanwhile
        }
      })();
      if (size === undefined) continue;
      seen.add(name);
      this.#grown += Math.max(0, size - (this.#sizes.get(name) ?? 0));
      this.#sizes.set(name, size);
    }
    for (const name of this.#sizes.keys()) if (!seen.has(name)) this.#sizes.delete(name);
    // Only changes matter: keep the first sample of each new total.
    if (this.#samples.at(-1)?.grown === this.#grown) return;
    this.#samples.push({ at: performance.now(), grown: this.#grown, cpu: cpuSecondsSync(this.#pid) });
  }
}
