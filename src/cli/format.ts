// Human-readable renderings of results.
import type { EvalRecord } from '../train/evaluate_model.ts';

export function formatEval(r: EvalRecord): string {
  const recall = Object.entries(r.recall).map(([k, v]) => `R@${k} ${(100 * v).toFixed(2)}`).join('  ');
  const nmi = r.nmi === null ? '' : `  NMI ${(100 * r.nmi).toFixed(2)}`;
  return `epoch ${r.epoch}: ${recall}  MAP@R ${(100 * r.map_at_r).toFixed(2)}  RP ${(100 * r.r_precision).toFixed(2)}${nmi}`;
}
