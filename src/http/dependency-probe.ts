import type { Logger } from '../logging/logger.ts';

/**
 * Readiness of a service that only serves reads: its dependencies answered their last probe. Probes run every
 * `intervalMs` (default 5 s) on an unref'd timer, one at a time, and a change is logged once.
 */
export class DependencyProbe {
  private readonly probes: Readonly<Record<string, () => Promise<void>>>;
  private readonly log: Logger;
  private readonly timer: NodeJS.Timeout;
  private readonly failing = new Set<string>();
  private running = false;

  constructor(probes: Readonly<Record<string, () => Promise<void>>>, log: Logger, intervalMs = 5000) {
    this.probes = probes;
    this.log = log;
    this.timer = setInterval(() => void this.check(), intervalMs).unref();
  }

  get ready(): boolean {
    return this.failing.size === 0;
  }

  async check(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (const [name, probe] of Object.entries(this.probes)) {
        try {
          await probe();
          if (this.failing.delete(name)) this.log.info('dependency answers again', { dependency: name });
        } catch (error) {
          if (!this.failing.has(name))
            this.log.warn('dependency not answering', { dependency: name, error: String(error) });
          this.failing.add(name);
        }
      }
    } finally {
      this.running = false;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
