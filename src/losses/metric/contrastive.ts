// Contrastive loss (Hadsell, Chopra & LeCun 2006), PML's ContrastiveLoss form and defaults:
//   positive pair: [d − m⁺]_+ ,  negative pair: [m⁻ − d]_+      (pos_margin 0, neg_margin 1)
// over every positive and negative pair of the batch (both orders; no self-pairs), with a
// similarity the directions flip ([m⁺ − s]_+ and [s − m⁻]_+). The two sets are reduced
// separately (default: mean over the non-zero pair losses) and added, as PML does.
import * as tf from '@tensorflow/tfjs';
import { type LossContext, type PairBasedLoss, type PairMatrixInput, checkMatrixInput, pairInput, pairMasks } from './base.ts';
import { type BaseDistance, type DistanceSpec, makeDistance } from './distances.ts';
import { type Reducer, type ReducerSpec, makeReducer } from './reducers.ts';

export interface ContrastiveOptions {
  /** Default 0. */
  posMargin?: number;
  /** Default 1. */
  negMargin?: number;
  /** Default Euclidean distance of L2-normalised embeddings. */
  distance?: DistanceSpec;
  /** Applied to the positive and the negative pair losses separately; default 'avg-non-zero'. */
  reducer?: ReducerSpec;
}

export const CONTRASTIVE_DEFAULTS = { posMargin: 0, negMargin: 1, distance: 'euclidean', reducer: 'avg-non-zero' } as const;

export class ContrastiveLoss implements PairBasedLoss {
  readonly name = 'contrastive';
  readonly kind = 'pair';
  readonly posMargin: number;
  readonly negMargin: number;
  readonly distance: BaseDistance;
  readonly reducer: Reducer;

  constructor(o: ContrastiveOptions = {}) {
    this.posMargin = o.posMargin ?? CONTRASTIVE_DEFAULTS.posMargin;
    this.negMargin = o.negMargin ?? CONTRASTIVE_DEFAULTS.negMargin;
    this.distance = makeDistance(o.distance ?? CONTRASTIVE_DEFAULTS.distance);
    this.reducer = makeReducer(o.reducer ?? CONTRASTIVE_DEFAULTS.reducer);
  }

  compute(embeddings: tf.Tensor2D, labels: readonly number[], ctx?: LossContext): tf.Scalar {
    return tf.tidy(() => this.computeFromMatrix(pairInput('contrastive', this.distance, embeddings, labels, ctx)));
  }

  /** The two terms separately (each already reduced). */
  terms(input: PairMatrixInput): { pos: tf.Scalar; neg: tf.Scalar } {
    checkMatrixInput('contrastive', input);
    const { pos, neg } = pairMasks(input.labels, input.refLabels, input.selfRef);
    return tf.tidy(() => {
      const posLoss = tf.relu(this.distance.margin(input.matrix, this.posMargin));
      const negLoss = tf.relu(this.distance.margin(this.negMargin, input.matrix));
      return { pos: this.reducer.reduce(posLoss, pos), neg: this.reducer.reduce(negLoss, neg) };
    });
  }

  computeFromMatrix(input: PairMatrixInput): tf.Scalar {
    return tf.tidy(() => {
      const t = this.terms(input);
      return tf.add(t.pos, t.neg) as tf.Scalar;
    });
  }
}
