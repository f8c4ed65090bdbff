// Tolerances for a generator fixture (issue #2's acceptance): relative L2 error at most
// max(1e-4, 10× the fixture's float32-vs-float64 gap) for forward tensors and losses and
// max(1e-3, 10× gap) for gradients; tensors that are mathematically zero within 1e-7 absolute.
import type { Tolerance } from './compare.ts';

export interface GapEntry {
  max_abs_diff: number;
  max_abs_ref: number;
}

export const ZERO_ABS = 1e-7;

/** Gradients that are exactly zero in exact arithmetic, whose reference values are rounding noise. */
export function isMathematicallyZeroGradient(name: string): boolean {
  return /edge_model\.att\.k_linear\.bias$/.test(name) && name.startsWith('grad');
}

export function coreTolerance(name: string, gaps: Record<string, GapEntry> | undefined): Tolerance {
  if (name === 'graph/edge_index' || name === 'const/label_mix' || name.endsWith('num_batches_tracked') || name === 'const/sim_mask') {
    return { rel: 0, abs: 0, exact: true };
  }
  const isGrad = name.startsWith('grad');
  const base = isGrad ? 1e-3 : 1e-4;
  // Its recorded gap is rounding noise over a zero reference: compare absolutely, no gap allowance.
  if (isMathematicallyZeroGradient(name)) return { rel: base, abs: ZERO_ABS };
  const gap = gaps?.[name];
  const gapRel = gap && gap.max_abs_ref > 0 ? gap.max_abs_diff / gap.max_abs_ref : 0;
  return { rel: Math.max(base, 10 * gapRel), abs: ZERO_ABS };
}
