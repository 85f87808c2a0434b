/**
 * The two-proportion z-test the experiments page reports, as pure functions (no dependency: the normal tail needs
 * only erfc).
 */

/** The 0.975 quantile of the standard normal: a two-sided 95 % interval is ± this many standard errors. */
export const Z_95 = 1.959963984540054;

export interface Proportion {
  /** Trials (users exposed). */
  readonly users: number;
  /** Successes (users converted), 0..users. */
  readonly converted: number;
}

export interface ProportionComparison {
  /** Treatment rate − control rate. */
  readonly difference: number;
  /** difference / control rate; null when the control rate is 0. */
  readonly lift: number | null;
  /** 95 % interval of the difference, unpooled (Wald) standard error. */
  readonly ci95: { readonly low: number; readonly high: number };
  /** difference / pooled standard error; null when that error is 0 (both rates 0, or both 1). */
  readonly z: number | null;
  /** Two-sided: 2·(1 − Φ(|z|)) = erfc(|z|/√2); null with z. */
  readonly pValue: number | null;
}

/**
 * Treatment against control. z uses the pooled rate p = (c₁ + c₂)/(n₁ + n₂): SE₀ = √(p(1−p)(1/n₁ + 1/n₂)), the
 * error under the null hypothesis of equal rates; the interval uses each group's own rate: SE = √(p₁(1−p₁)/n₁ +
 * p₂(1−p₂)/n₂), difference ± 1.96·SE. Both groups need at least one user.
 */
export function compareProportions(control: Proportion, treatment: Proportion): ProportionComparison {
  for (const g of [control, treatment]) {
    if (!(g.users > 0) || !(g.converted >= 0) || g.converted > g.users) {
      throw new RangeError('a group needs users > 0 and 0 ≤ converted ≤ users');
    }
  }
  const p1 = control.converted / control.users;
  const p2 = treatment.converted / treatment.users;
  const difference = p2 - p1;
  const pooled = (control.converted + treatment.converted) / (control.users + treatment.users);
  const se0 = Math.sqrt(pooled * (1 - pooled) * (1 / control.users + 1 / treatment.users));
  const se = Math.sqrt((p1 * (1 - p1)) / control.users + (p2 * (1 - p2)) / treatment.users);
  const z = se0 > 0 ? difference / se0 : null;
  return {
    difference,
    lift: p1 > 0 ? difference / p1 : null,
    ci95: { low: difference - Z_95 * se, high: difference + Z_95 * se },
    z,
    pValue: z === null ? null : Math.min(1, erfc(Math.abs(z) / Math.SQRT2)),
  };
}

/**
 * The complementary error function to full double precision: for x < 2 the everywhere-positive series
 * erf(x) = 2/√π · e^(−x²) · Σ (2x²)ⁿ·x / (1·3·…·(2n+1)) (no cancellation), for x ≥ 2 the continued fraction
 * erfc(x) = e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))), evaluated with Lentz's method.
 */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x < 2) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 200; n++) {
      term *= (2 * x * x) / (2 * n + 1);
      sum += term;
      if (term < sum * 1e-17) break;
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x) * sum;
  }
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 500; n++) {
    const a = n / 2;
    d = x + a * d;
    d = Math.abs(d) < tiny ? 1 / tiny : 1 / d;
    c = x + a / c;
    if (Math.abs(c) < tiny) c = tiny;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / (Math.sqrt(Math.PI) * f);
}
