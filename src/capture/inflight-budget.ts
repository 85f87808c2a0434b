import { ReplayError } from '../errors/index.ts';

/**
 * The bytes capture holds for request bodies at once (`CAPTURE_MAX_INFLIGHT_BYTES`): what is being read off the
 * socket and what it decodes to. Each request takes a `BudgetLease`, grows it as it reads and inflates (a declared
 * Content-Length is taken whole before the first byte is read), and gives it all back when it is answered. A request
 * whose bytes do not fit is refused with 503 `capture_overloaded` (retriable), so a flood of large bodies costs a
 * bounded amount of memory instead of taking the process down. A request alone is always let in, whatever its size
 * (its own limits still hold), so a budget smaller than one large body slows capture down but never locks it out.
 *
 * The last eighth of the budget is kept for small requests (a lease of at most `SMALL_LEASE_BYTES`, which is what
 * posthog-js sends almost always): large uploads, say a flood of 25 MB bodies with made-up tokens, can fill the
 * budget only to seven eighths, and ordinary uploads still find room next to them.
 */
export const SMALL_LEASE_BYTES = 4 * 1024 * 1024;

export class InflightBudget {
  private used = 0;
  readonly limit: number;
  /** What leases over `SMALL_LEASE_BYTES` may fill the budget up to. */
  private readonly largeCeiling: number;
  private readonly onChange: ((used: number) => void) | undefined;

  constructor(limit: number, onChange?: (used: number) => void) {
    this.limit = limit;
    this.largeCeiling = limit - Math.floor(limit / 8);
    this.onChange = onChange;
  }

  /** Bytes held by all leases. */
  get inUse(): number {
    return this.used;
  }

  lease(): BudgetLease {
    return new BudgetLease(this);
  }

  /** @internal Takes `bytes` for `lease` if they fit. */
  grant(lease: BudgetLease, bytes: number): boolean {
    const others = this.used - lease.held;
    const ceiling = lease.held + bytes <= SMALL_LEASE_BYTES ? this.limit : this.largeCeiling;
    if (others > 0 && this.used + bytes > ceiling) return false;
    this.used += bytes;
    this.onChange?.(this.used);
    return true;
  }

  /** @internal */
  giveBack(bytes: number): void {
    this.used -= bytes;
    this.onChange?.(this.used);
  }
}

/** One request's share of the budget. */
export class BudgetLease {
  held = 0;
  private readonly budget: InflightBudget;

  constructor(budget: InflightBudget) {
    this.budget = budget;
  }

  /** Takes `bytes` more, or throws `capture_overloaded`. */
  take(bytes: number): void {
    if (bytes <= 0) return;
    if (!this.budget.grant(this, bytes)) {
      throw new ReplayError(
        'capture_overloaded',
        `capture holds its limit of ${this.budget.limit} request bytes in flight; retry later`,
      );
    }
    this.held += bytes;
  }

  /** Gives everything back (idempotent). */
  release(): void {
    if (this.held === 0) return;
    this.budget.giveBack(this.held);
    this.held = 0;
  }
}
