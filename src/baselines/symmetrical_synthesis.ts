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
//  2'. With the N-pair loss, the official code's rule instead (symm_npair_loss, the method's only
//     published N-pair form; `npairRule: 'official'`, the default): for anchor a and the positive
//     column of class b, the value is the largest of the six products ⟨X_a, Y_b⟩ over the ordered
//     pairs (X, Y) of itertools.combinations([anchor, positive, sym1, sym2], 2), where sym1 is the
//     positive reflected about its anchor's axis and sym2 the anchor reflected about its positive's
//     axis; the positive pair (a = b) takes that maximum too. In the chunk layout the row's sample
//     plays the anchor and its partner the positive, the column's sample the positive and its
//     partner the anchor; with K = 2 this is the official anchor/positive split exactly, and with
//     K = 4 the same rule for each pair of chunks the N-pair loss compares. The official l2 term is
//     0.25·0.002·(mean‖a‖² + mean‖p‖²): the N-pair loss's l2Reg 0.002 (GCA-HNG's default is 3e-3).
//     `npairRule: 'paper'` applies rule 2 with N-pair too.
// Synthesis runs on the embeddings as the loss's distance sees them (normalised or not); the official
// N-pair setting uses raw embeddings (l2_norm=False), which is what the dot-product N-pair loss sees.
// With other losses there is no official code (it has N-pair and angular losses only); rule 2 is
// the paper's.
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

/**
 * The official symm_npair_loss's matrix [B, B] in `distance` units (rule 2' above): for every row i
 * and column j, the hardest of the six ordered products between i's (anchor, positive, sym1) and
 * j's (positive, sym1, sym2), positive pairs included; ties go to the lowest index.
 */
export function symmetricalSynthesisNpairMatrix(z: tf.Tensor2D, labels: readonly number[], distance: BaseDistance): tf.Tensor2D {
  return tf.tidy(() => {
    const [B] = z.shape;
    const { partner, synthetic } = symmetricPoints(z, labels);
    // Row i as the anchor of its pair: anchor z_i, positive z_π(i), sym1 = z_π(i) reflected about z_i.
    const anchorRow = z;
    const posRow = selectRows(z, partner);
    const sym1Row = selectRows(synthetic, partner);
    // Column j as the positive of its pair: positive z_j, sym1 = z_j reflected about z_π(j),
    // sym2 = z_π(j) reflected about z_j.
    const posCol = z;
    const sym1Col = synthetic;
    const sym2Col = selectRows(synthetic, partner);
    const m = (x: tf.Tensor2D, y: tf.Tensor2D) => distance.matrixAsPlaced(x, y);
    const cands = tf.stack(
      [m(anchorRow, posCol), m(anchorRow, sym1Col), m(anchorRow, sym2Col), m(posRow, sym1Col), m(posRow, sym2Col), m(sym1Row, sym2Col)],
      2,
    ) as tf.Tensor3D;
    const v = distance.toDistanceLike(cands).dataSync();
    const G = 6;
    const sel = new Float32Array(B * B * G);
    for (let e = 0; e < B * B; e++) {
      let best = 0;
      for (let g = 1; g < G; g++) if ((v[e * G + g] as number) < (v[e * G + best] as number)) best = g;
      sel[e * G + best] = 1;
    }
    return tf.sum(tf.mul(cands, tf.tensor3d(sel, [B, B, G])), 2) as tf.Tensor2D;
  });
}

/** The mined [B, B] pair matrix of Symm in `distance` units (the paper's rule). */
export function symmetricalSynthesisMatrix(z: tf.Tensor2D, labels: readonly number[], distance: BaseDistance): tf.Tensor2D {
  return tf.tidy(() => {
    const [B, D] = z.shape;
    const { partner, synthetic } = symmetricPoints(z, labels);
    const candidates = tf.stack([z, selectRows(z, partner), synthetic, selectRows(synthetic, partner)], 1); // [B, 4, D]
    const E = distance.matrix(z, tf.reshape(candidates, [4 * B, D]) as tf.Tensor2D); // column j·4 + c
    return mineGroups(tf.reshape(E, [B, B, 4]) as tf.Tensor3D, labels, distance);
  });
}

export interface SymmetricalSynthesisOptions {
  /** With the N-pair loss: 'official' (default) the official symm_npair_loss's rule, 'paper' the paper's rule. */
  npairRule?: 'official' | 'paper';
}

export const SYMMETRICAL_SYNTHESIS_DEFAULTS = { npairRule: 'official' } as const;

export class SymmetricalSynthesis implements HardNegativeGenerator {
  readonly name = 'symm';
  readonly requires = 'pair';
  readonly parameterPrefixes: readonly string[] = [];
  readonly npairRule: 'official' | 'paper';

  constructor(o: SymmetricalSynthesisOptions = {}) {
    this.npairRule = o.npairRule ?? SYMMETRICAL_SYNTHESIS_DEFAULTS.npairRule;
  }

  objective(loss: MetricLoss, ctx: GeneratorContext): Objective {
    if (!isPairLoss(loss)) throw new Error(`symmetrical synthesis needs a pair-based loss, got '${loss.name}'`);
    return tidyObjective(() => {
      const z = ctx.embeddings;
      const official = loss.name === 'npair' && this.npairRule === 'official';
      const rule = official ? symmetricalSynthesisNpairMatrix : symmetricalSynthesisMatrix;
      const total = loss.computeFromMatrix({
        matrix: rule(loss.distance.maybeNormalize(z), ctx.labels, loss.distance),
        labels: ctx.labels,
        refLabels: ctx.labels,
        selfRef: true,
        embeddings: z,
      });
      return { total, terms: { J_symm: total } };
    });
  }
}
