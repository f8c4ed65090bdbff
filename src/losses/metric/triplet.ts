// Triplet margin loss with three ways of choosing triplets (PML's TripletMarginLoss for the
// formula and defaults: margin 0.05, L2 distance of normalised embeddings, mean over non-zero
// triplets). Working in distance-like units d (similarities negated), a triplet (a, p, n) costs
//   ℓ = [d(a,p) − d(a,n) + margin]_+        (softplus instead of [·]_+ when smooth)
// Mining rules, decided on the host from the detached matrix (ties go to the lowest index):
//  - 'all': every (a, p, n) with y_p = y_a, p ≠ a (self-pairs only when ref is the batch), y_n ≠ y_a.
//  - 'semi-hard' (FaceNet, Schroff et al. 2015, §3.2, as in TensorFlow's triplet_semihard_loss):
//    one triplet per positive pair (a, p): n is the closest negative that is still farther than
//    the positive, argmin{d(a,n) : y_n ≠ y_a, d(a,n) > d(a,p)}; when no negative is farther than
//    the positive, n is the farthest negative, argmax{d(a,n) : y_n ≠ y_a}.
//  - 'batch-hard' (Hermans et al. 2017, "In Defense of the Triplet Loss"): one triplet per anchor,
//    with its farthest positive and its closest negative; anchors lacking either are skipped.
// The selected distances are read out of the differentiable matrix with dense one-hot masks.
import * as tf from '@tensorflow/tfjs';
import { type LossContext, type PairBasedLoss, type PairMatrixInput, checkMatrixInput, pairInput, pairMasks } from './base.ts';
import { type BaseDistance, type DistanceSpec, makeDistance } from './distances.ts';
import { type Reducer, type ReducerSpec, makeReducer } from './reducers.ts';

export type TripletMining = 'all' | 'semi-hard' | 'batch-hard';

export interface TripletOptions {
  /** Default 0.05 (PML). */
  margin?: number;
  /** Default 'all' (PML's triplets_per_anchor = "all"). */
  mining?: TripletMining;
  /** Default Euclidean distance of L2-normalised embeddings. */
  distance?: DistanceSpec;
  /** Default 'avg-non-zero'. */
  reducer?: ReducerSpec;
  /** log(1 + e^violation) instead of the hinge (default false). */
  smooth?: boolean;
}

export const TRIPLET_DEFAULTS = { margin: 0.05, mining: 'all', distance: 'euclidean', reducer: 'avg-non-zero', smooth: false } as const;

export class TripletMarginLoss implements PairBasedLoss {
  readonly name = 'triplet';
  readonly kind = 'pair';
  readonly margin: number;
  readonly mining: TripletMining;
  readonly distance: BaseDistance;
  readonly reducer: Reducer;
  readonly smooth: boolean;

  constructor(o: TripletOptions = {}) {
    this.margin = o.margin ?? TRIPLET_DEFAULTS.margin;
    this.mining = o.mining ?? TRIPLET_DEFAULTS.mining;
    this.distance = makeDistance(o.distance ?? TRIPLET_DEFAULTS.distance);
    this.reducer = makeReducer(o.reducer ?? TRIPLET_DEFAULTS.reducer);
    this.smooth = o.smooth ?? TRIPLET_DEFAULTS.smooth;
    if (!['all', 'semi-hard', 'batch-hard'].includes(this.mining))
      throw new Error(`triplet: unknown mining '${this.mining}' (expected all, semi-hard or batch-hard)`);
  }

  compute(embeddings: tf.Tensor2D, labels: readonly number[], ctx?: LossContext): tf.Scalar {
    return tf.tidy(() => this.computeFromMatrix(pairInput('triplet', this.distance, embeddings, labels, ctx)));
  }

  computeFromMatrix(input: PairMatrixInput): tf.Scalar {
    const { N, M } = checkMatrixInput('triplet', input);
    const { pos, neg } = pairMasks(input.labels, input.refLabels, input.selfRef);
    return tf.tidy(() => {
      const D = this.distance.toDistanceLike(input.matrix);
      const d = D.dataSync();
      let violation: tf.Tensor;
      let mask: Float32Array;
      if (this.mining === 'all') {
        mask = new Float32Array(N * M * M);
        for (let a = 0; a < N; a++) {
          for (let p = 0; p < M; p++) {
            if (!pos[a * M + p]) continue;
            for (let n = 0; n < M; n++) if (neg[a * M + n]) mask[(a * M + p) * M + n] = 1;
          }
        }
        violation = tf.add(tf.sub(tf.expandDims(D, 2), tf.expandDims(D, 1)), this.margin);
      } else if (this.mining === 'batch-hard') {
        const selP = new Float32Array(N * M);
        const selN = new Float32Array(N * M);
        mask = new Float32Array(N);
        for (let a = 0; a < N; a++) {
          let bp = -1;
          let bn = -1;
          for (let j = 0; j < M; j++) {
            const v = d[a * M + j] as number;
            if (pos[a * M + j] && (bp < 0 || v > (d[a * M + bp] as number))) bp = j;
            if (neg[a * M + j] && (bn < 0 || v < (d[a * M + bn] as number))) bn = j;
          }
          if (bp < 0 || bn < 0) continue;
          selP[a * M + bp] = 1;
          selN[a * M + bn] = 1;
          mask[a] = 1;
        }
        const dap = tf.sum(tf.mul(D, tf.tensor2d(selP, [N, M])), 1);
        const dan = tf.sum(tf.mul(D, tf.tensor2d(selN, [N, M])), 1);
        violation = tf.add(tf.sub(dap, dan), this.margin);
      } else {
        const sel = new Float32Array(N * M * M);
        mask = new Float32Array(N * M);
        for (let a = 0; a < N; a++) {
          for (let p = 0; p < M; p++) {
            if (!pos[a * M + p]) continue;
            const dap = d[a * M + p] as number;
            let outside = -1;
            let inside = -1;
            for (let n = 0; n < M; n++) {
              if (!neg[a * M + n]) continue;
              const v = d[a * M + n] as number;
              if (v > dap && (outside < 0 || v < (d[a * M + outside] as number))) outside = n;
              if (inside < 0 || v > (d[a * M + inside] as number)) inside = n;
            }
            const n = outside >= 0 ? outside : inside;
            if (n < 0) continue;
            sel[(a * M + p) * M + n] = 1;
            mask[a * M + p] = 1;
          }
        }
        const dan = tf.sum(tf.mul(tf.expandDims(D, 1), tf.tensor3d(sel, [N, M, M])), 2);
        violation = tf.add(tf.sub(D, dan), this.margin);
      }
      const losses = this.smooth ? tf.softplus(violation) : tf.relu(violation);
      return this.reducer.reduce(losses, mask);
    });
  }
}
