import type { Team } from '../teams/team-store.ts';

export interface TeamCacheOptions {
  /** How long a found team is trusted before it is read again (default 60 s). */
  readonly ttlMs?: number;
  /** How long "no such token" is remembered, so a flood of bad tokens costs no queries (default 30 s). */
  readonly negativeTtlMs?: number;
  /** Entries kept at most; the oldest go first (default 100 000). */
  readonly maxEntries?: number;
  readonly now?: () => number;
}

/**
 * Token → team with a TTL cache, negative caching and request coalescing: concurrent lookups of one token share
 * one query. A failed lookup is not cached (the caller answers 503 and the client retries).
 */
export class TeamCache {
  private readonly entries = new Map<string, { team: Team | undefined; expiresAt: number }>();
  private readonly inFlight = new Map<string, Promise<Team | undefined>>();
  private readonly ttlMs: number;
  private readonly negativeTtlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  private readonly load: (token: string) => Promise<Team | undefined>;

  constructor(load: (token: string) => Promise<Team | undefined>, options: TeamCacheOptions = {}) {
    this.load = load;
    this.ttlMs = options.ttlMs ?? 60_000;
    this.negativeTtlMs = options.negativeTtlMs ?? 30_000;
    this.maxEntries = options.maxEntries ?? 100_000;
    this.now = options.now ?? Date.now;
  }

  async get(token: string): Promise<Team | undefined> {
    const cached = this.entries.get(token);
    if (cached && cached.expiresAt > this.now()) return cached.team;
    const pending = this.inFlight.get(token);
    if (pending) return pending;
    const lookup = this.load(token)
      .then((team) => {
        this.remember(token, team);
        return team;
      })
      .finally(() => this.inFlight.delete(token));
    this.inFlight.set(token, lookup);
    return lookup;
  }

  private remember(token: string, team: Team | undefined): void {
    this.entries.delete(token);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(token, { team, expiresAt: this.now() + (team ? this.ttlMs : this.negativeTtlMs) });
  }
}
