// The loss hyper-parameters of GCA-HNG (official names in comments) and the named options that
// correct the official code's quirks (off by default: the default is the official behaviour).
// QUIRK n refers to entry n of docs/algorithm.md §11.
import type { SimMaskKind } from './losses.ts';

export interface GcaHngLossConfig {
  /** LOSS.ALPHA: hardness factor φ = exp(−α/J_avg). */
  alpha: number;
  /** LOSS.BETA: J_syn weight 1 − exp(−β/J_gen). */
  beta: number;
  /** LOSS.SOFTMAX_FACTOR: weight of the classifier loss on synthetic negatives. */
  softmaxFactor: number;
  /** LOSS.DOT_WEIGHT: weight of the cosine term. */
  dotWeight: number;
  /** LOSS.DIV_WEIGHT: weight of the diversity term. */
  divWeight: number;
  /** Rows zeroed in the cosine term: 'reference' (official, QUIRK 1) or 'same-class'. */
  simMask: SimMaskKind;
  /** Edge-attention dropout of the GNN in training (official 0.1). */
  edgeDropout: number;
}

export const OFFICIAL_FIXED = {
  /** J_ce = 10·CE(classifier(sg(z)), y). */
  softmaxCeWeight: 10,
  /** J_gen = 0.5·(…). */
  generatorFactor: 0.5,
} as const;

export function defaultLossConfig(): GcaHngLossConfig {
  // The G_CUB200 configuration's loss weights.
  return { alpha: 4, beta: 30, softmaxFactor: 20, dotWeight: 10, divWeight: 10, simMask: 'reference', edgeDropout: 0.1 };
}
