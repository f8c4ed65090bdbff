// The hardness factor φ of an epoch. 'official': φ = exp(−α/J_avg) with the previous epoch's mean
// N-pair loss J_avg (1e6 in the first epoch, so φ ≈ 1). Once J_avg is small, φ collapses towards 0
// (with α = 4 and J_avg < 0.43, φ < 1e-4): λ = φ·Λ vanishes and every generated negative becomes
// the real negative moved to the positive's distance, so the learned per-channel weights no longer
// matter. 'adaptive' (beyond the paper) clamps the effective α to the range that keeps φ within
// [φ_lo, φ_hi]: unchanged while the official value is inside it, bounded away from 0 and 1 otherwise.
// Described in docs/algorithm.md §6.8.

export interface HardnessSchedule {
  kind: 'official' | 'adaptive';
  alpha: number;
  phiRange: readonly [number, number];
}

/** The α actually used for an epoch with previous mean loss jAvg. */
export function effectiveAlpha(s: HardnessSchedule, jAvg: number): number {
  if (s.kind === 'official') return s.alpha;
  const [lo, hi] = [Math.min(...s.phiRange), Math.max(...s.phiRange)];
  // φ = exp(−α/J) ∈ [lo, hi]  ⇔  α ∈ [−ln(hi)·J, −ln(lo)·J]
  return Math.min(Math.max(s.alpha, -Math.log(hi) * jAvg), -Math.log(lo) * jAvg);
}

export function epochPhi(s: HardnessSchedule, jAvg: number): number {
  return Math.exp(-effectiveAlpha(s, jAvg) / jAvg);
}
