// Symmetrical Synthesis (Gu & Ko, "Symmetrical Synthesis for Deep Metric Learning", AAAI 2020),
// hyper-parameter free, after the paper and the official TensorFlow code
// (clovaai/symmetrical-synthesis, losses.py tf_get_symmetric_point with its defaults
// symm_ratio = 2, symm_norm_ratio = 1, symm_norm = False):
//  1. Generation: each sample x_k is paired with a same-class partner x_l (neighbouring samples of
//     a class, as in Embedding Expansion). Each point is reflected about the axis through the
//     origin and its partner ("with each other as an axis of symmetry"):
//       x'_k = 2⟨x_k, û_l⟩û_l − x_k,   û_l = x_l/‖x_l‖      (and x'_l likewise about x_k)
//     so ‖x'_k‖ = ‖x_k‖ and ⟨x'_k, x_l⟩ = ⟨x_k, x_l⟩. Gradients flow into both points.
//  2. Hard negative pair mining (the paper's rule): for anchor i and a sample j of another class,
//     the negative is the hardest of j's four points {x_j, x_partner(j), x'_j, x'_partner(j)}
//     (smallest distance / largest similarity to x_i); positive pairs keep the original value.
//     The resulting [B, B] matrix is what a pair-based loss consumes.
// Synthesis runs on the embeddings as the loss's distance sees them (normalised or not); the official
// N-pair setting uses raw embeddings (l2_norm=False), which is what the dot-product N-pair loss sees.
// Not reproduced: the official N-pair code's variant, which also maxes over the anchor side
// (six set-to-set combinations of {anchor, positive, sym1, sym2}), positives included.
import * as tf from '@tensorflow/tfjs';
import type { MetricLoss } from '../losses/metric/base.ts';
import { isPairLoss } from '../losses/metric/base.ts';
import { type BaseDistance, l2Normalize } from '../losses/metric/distances.ts';
import { type GeneratorContext, type HardNegativeGenerator, type Objective, tidyObjective, mineGroups, pairWithinClass, selectRows } from './common.ts';

/** x reflected about the axis through the origin and `axis`: 2⟨x, û⟩û − x. */
export function reflectAboutAxis(x: tf.Tensor2D, axis: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const u = l2Normalize(axis);
    return tf.sub(tf.mul(tf.mul(tf.sum(tf.mul(x, u), 1, true), u), 2), x) as tf.Tensor2D;
  });
}

export interface SymmetricPoints {
  partner: number[];
  /** Row i: x_i reflected about the axis of x_partner(i). */
  synthetic: tf.Tensor2D;
}

export function symmetricPoints(z: tf.Tensor2D, labels: readonly number[]): SymmetricPoints {
  if (labels.length !== z.shape[0]) throw new Error(`symmetrical synthesis: ${z.shape[0]} embeddings but ${labels.length} labels`);
  const partner = pairWithinClass(labels, 'symmetrical synthesis');
  return { partner, synthetic: tf.tidy(() => reflectAboutAxis(z, selectRows(z, partner))) };
}

/** The mined [B, B] pair matrix of Symm in `distance` units. */
export function symmetricalSynthesisMatrix(z: tf.Tensor2D, labels: readonly number[], distance: BaseDistance): tf.Tensor2D {
  return tf.tidy(() => {
    const [B, D] = z.shape;
    const { partner, synthetic } = symmetricPoints(z, labels);
    const candidates = tf.stack([z, selectRows(z, partner), synthetic, selectRows(synthetic, partner)], 1); // [B, 4, D]
    const E = distance.matrix(z, tf.reshape(candidates, [4 * B, D]) as tf.Tensor2D); // column j·4 + c
    return mineGroups(tf.reshape(E, [B, B, 4]) as tf.Tensor3D, labels, distance);
  });
}

export class SymmetricalSynthesis implements HardNegativeGenerator {
  readonly name = 'symm';
  readonly requires = 'pair';
  readonly parameterPrefixes: readonly string[] = [];

  objective(loss: MetricLoss, ctx: GeneratorContext): Objective {
    if (!isPairLoss(loss)) throw new Error(`symmetrical synthesis needs a pair-based loss, got '${loss.name}'`);
    return tidyObjective(() => {
      const z = ctx.embeddings;
      const total = loss.computeFromMatrix({
        matrix: symmetricalSynthesisMatrix(loss.distance.maybeNormalize(z), ctx.labels, loss.distance),
        labels: ctx.labels,
        refLabels: ctx.labels,
        selfRef: true,
        embeddings: z,
      });
      return { total, terms: { J_symm: total } };
    });
  }
}
