// Learning-rate schedules, stepped once per epoch after evaluation (docs/algorithm.md §2.3), in closed
// form of the number of completed epochs e.

export type LrPolicy = 'step' | 'cos' | 'exp' | 'none';

/** opt_c: step → base·γ^⌊e/steps⌋; cos → cosine annealing over `steps` epochs; exp → base·0.9^e. */
export function metricLr(policy: LrPolicy, base: number, e: number, gamma: number, steps: number): number {
  switch (policy) {
    case 'step':
      return base * gamma ** Math.floor(e / steps);
    case 'cos':
      return (base * (1 + Math.cos((Math.PI * e) / steps))) / 2;
    case 'exp':
      return base * 0.9 ** e;
    case 'none':
      return base;
  }
}

/** opt_gnn: always cosine annealing over all epochs, eta_min 0 (QUIRK 9). */
export function gnnLr(base: number, e: number, epochs: number): number {
  return (base * (1 + Math.cos((Math.PI * e) / epochs))) / 2;
}
