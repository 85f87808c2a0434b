import type { BehaviourCounter } from './behaviour-counts.ts';
import type { ReplayReader } from './replay-reader.ts';
import type { Traffic, Upload } from './traffic.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One look at the behaviour counts: how many acknowledged behaviours ClickHouse and Redis held then. */
interface BehaviourSample {
  readonly at: number;
  readonly stored: number;
  readonly realtime: number;
}

/**
 * Watches a scenario's team from the outside while the scenario runs: when each acknowledged upload became playable
 * (the API lists its session with at least the events acknowledged up to it), and how far ClickHouse and Redis have
 * counted the acknowledged behaviours.
 */
export class CatchUpWatch {
  /** When each upload was first seen playable. */
  readonly playableAt = new Map<Upload, number>();
  private readonly samples: BehaviourSample[] = [];
  private readonly reader: ReplayReader;
  private readonly counter: BehaviourCounter;
  private readonly tenant: number;
  private readonly traffic: Traffic;
  private running = false;
  private loop: Promise<void> | undefined;
  /** Start of the last poll that found everything acknowledged so far caught up. */
  private caughtUpAt: number | undefined;

  constructor(reader: ReplayReader, counter: BehaviourCounter, tenant: number, traffic: Traffic) {
    this.reader = reader;
    this.counter = counter;
    this.tenant = tenant;
    this.traffic = traffic;
  }

  start(intervalMs = 300): void {
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        await this.poll();
        await sleep(intervalMs);
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  /** Resolves true once a poll begun after this call finds everything acknowledged caught up; false after `timeoutMs`. */
  async caughtUp(timeoutMs: number): Promise<boolean> {
    const since = Date.now();
    while (Date.now() - since < timeoutMs) {
      if (this.caughtUpAt !== undefined && this.caughtUpAt >= since) return true;
      await sleep(100);
    }
    return false;
  }

  /**
   * Milliseconds after `since` until the behaviours acknowledged before it were all counted in ClickHouse and
   * Redis; undefined if they never were.
   */
  behavioursCaughtUp(since: number): number | undefined {
    const due = this.traffic.behaviours.filter((b) => b.ackedAt !== undefined && b.ackedAt <= since);
    const count = due.reduce((n, b) => n + b.acked.length, 0);
    const sample = this.samples.find((s) => s.at >= since && s.stored >= count && s.realtime >= count);
    return sample && sample.at - since;
  }

  private async poll(): Promise<void> {
    const at = Date.now();
    const [listed, behaviours] = await Promise.all([
      this.reader.counts(),
      // Not answering yet (the read side restarting, Redis down) is what this watch waits out.
      this.counter.counts(this.tenant).catch(() => undefined),
    ]);
    let playable = listed !== undefined;
    if (listed) {
      const cumulative = new Map<string, number>();
      for (const upload of this.traffic.uploads) {
        if (upload.outcome !== 'acked') continue;
        const due = (cumulative.get(upload.sessionId) ?? 0) + upload.good.length;
        cumulative.set(upload.sessionId, due);
        if (this.playableAt.has(upload) || upload.good.length === 0) continue;
        if ((listed.get(upload.sessionId) ?? 0) >= due) this.playableAt.set(upload, at);
        else playable = false;
      }
    }
    const acked = this.traffic.behaviours.flatMap((b) => b.acked);
    if (behaviours) {
      const stored = acked.filter((id) => behaviours.copies[id] !== undefined).length;
      this.samples.push({ at, stored, realtime: behaviours.realtime });
    }
    const last = this.samples.at(-1);
    const counted = behaviours !== undefined && last!.stored >= acked.length && last!.realtime >= acked.length;
    this.caughtUpAt = playable && counted ? at : undefined;
  }
}
