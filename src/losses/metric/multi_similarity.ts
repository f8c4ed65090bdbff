// Multi-Similarity loss with its pair mining (Wang et al., CVPR 2019). For anchor i with cosine
// similarities S_ij, positive set P_i and negative set N_i:
//   mining   (ε = 0.1):  N_i' = {j ∈ N_i : S_ij + ε > min_{k∈P_i} S_ik}
//                        P_i' = {j ∈ P_i : S_ij − ε < max_{k∈N_i} S_ik}
//   weighting:           ℓ_i = 1/α · log(1 + Σ_{P_i'} e^{−α(S_ij − λ)}) + 1/β · log(1 + Σ_{N_i'} e^{β(S_ij − λ)})
//   loss = Σ_i ℓ_i / N, where an anchor with an empty P_i, N_i, P_i' or N_i' contributes 0.
// Mining and skipping follow the official code (MalongTech/research-ms-loss, ms_loss.py), whose
// inequalities PML's MultiSimilarityMiner also uses; α = 2, β = 50, λ = 0.5 are PML's defaults
// (the official code has β = 40; the paper's λ is PML's `base`). With mining off the loss is PML's
// MultiSimilarityLoss over all pairs (an anchor without positives keeps its negative term).
// For a distance instead of a similarity the directions flip, as in PML (distance.margin).
import * as tf from '@tensorflow/tfjs';
import { type LossContext, type PairBasedLoss, type PairMatrixInput, checkMatrixInput, logOnePlusSumExp, pairInput, pairMasks } from './base.ts';
import { type BaseDistance, type DistanceSpec, makeDistance } from './distances.ts';
import { type Reducer, type ReducerSpec, makeReducer } from './reducers.ts';

export interface MultiSimilarityOptions {
  /** Positive scale α (default 2). */
  alpha?: number;
  /** Negative scale β (default 50). */
  beta?: number;
  /** The similarity offset λ (PML's `base`; default 0.5). */
  base?: number;
  /** The mining margin ε (default 0.1). */
  epsilon?: number;
  /** Mine pairs before weighting (default true). */
  mining?: boolean;
  /** Default cosine similarity. */
  distance?: DistanceSpec;
  /** Over the per-anchor losses; default 'mean' (Σ_i ℓ_i / N). */
  reducer?: ReducerSpec;
}

export const MULTI_SIMILARITY_DEFAULTS = { alpha: 2, beta: 50, base: 0.5, epsilon: 0.1, mining: true, distance: 'cosine', reducer: 'mean' } as const;

/** The mined positive and negative masks [N, M] (host), or all pairs when mining is off. */
export function multiSimilarityMine(
  distanceLike: ArrayLike<number>,
  pos: Float32Array,
  neg: Float32Array,
  N: number,
  M: number,
  epsilon: number,
): { pos: Float32Array; neg: Float32Array } {
  const mp = new Float32Array(N * M);
  const mn = new Float32Array(N * M);
  for (let i = 0; i < N; i++) {
    let maxPos = -Infinity;
    let minNeg = Infinity;
    for (let j = 0; j < M; j++) {
      const v = distanceLike[i * M + j] as number;
      if (pos[i * M + j]) maxPos = Math.max(maxPos, v);
      if (neg[i * M + j]) minNeg = Math.min(minNeg, v);
    }
    if (maxPos === -Infinity || minNeg === Infinity) continue;
    let np = 0;
    let nn = 0;
    for (let j = 0; j < M; j++) {
      const v = distanceLike[i * M + j] as number;
      if (pos[i * M + j] && v + epsilon > minNeg) {
        mp[i * M + j] = 1;
        np++;
      }
      if (neg[i * M + j] && v - epsilon < maxPos) {
        mn[i * M + j] = 1;
        nn++;
      }
    }
    if (np === 0 || nn === 0) {
      mp.fill(0, i * M, (i + 1) * M);
      mn.fill(0, i * M, (i + 1) * M);
    }
  }
  return { pos: mp, neg: mn };
}

export class MultiSimilarityLoss implements PairBasedLoss {
  readonly name = 'multi-similarity';
  readonly kind = 'pair';
  readonly alpha: number;
  readonly beta: number;
  readonly base: number;
  readonly epsilon: number;
  readonly mining: boolean;
  readonly distance: BaseDistance;
  readonly reducer: Reducer;

  constructor(o: MultiSimilarityOptions = {}) {
    this.alpha = o.alpha ?? MULTI_SIMILARITY_DEFAULTS.alpha;
    this.beta = o.beta ?? MULTI_SIMILARITY_DEFAULTS.beta;
    this.base = o.base ?? MULTI_SIMILARITY_DEFAULTS.base;
    this.epsilon = o.epsilon ?? MULTI_SIMILARITY_DEFAULTS.epsilon;
    this.mining = o.mining ?? MULTI_SIMILARITY_DEFAULTS.mining;
    this.distance = makeDistance(o.distance ?? MULTI_SIMILARITY_DEFAULTS.distance);
    this.reducer = makeReducer(o.reducer ?? MULTI_SIMILARITY_DEFAULTS.reducer);
  }

  compute(embeddings: tf.Tensor2D, labels: readonly number[], ctx?: LossContext): tf.Scalar {
    return tf.tidy(() => this.computeFromMatrix(pairInput('multi-similarity', this.distance, embeddings, labels, ctx)));
  }

  computeFromMatrix(input: PairMatrixInput): tf.Scalar {
    const { N, M } = checkMatrixInput('multi-similarity', input);
    const all = pairMasks(input.labels, input.refLabels, input.selfRef);
    return tf.tidy(() => {
      const S = input.matrix;
      const masks = this.mining ? multiSimilarityMine(this.distance.toDistanceLike(S).dataSync(), all.pos, all.neg, N, M, this.epsilon) : all;
      const posExp = tf.mul(this.distance.margin(S, this.base), this.alpha) as tf.Tensor2D;
      const negExp = tf.mul(this.distance.margin(this.base, S), this.beta) as tf.Tensor2D;
      const posTerm = tf.div(logOnePlusSumExp(posExp, masks.pos, 1), this.alpha);
      const negTerm = tf.div(logOnePlusSumExp(negExp, masks.neg, 1), this.beta);
      return this.reducer.reduce(tf.add(posTerm, negTerm));
    });
  }
}
