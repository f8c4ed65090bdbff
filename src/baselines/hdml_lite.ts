// hdml-lite: HDML's hardness-aware interpolation (Zheng et al., "Hardness-Aware Deep Metric
// Learning", CVPR 2019; the `Pulling` function of the official code, wzzheng/HDML lib/HDML.py)
// used directly as a synthetic-negative loss. It is NOT the official HDML, which is why it does not
// carry the name: the official method also maps every embedding through a generator network
// (z → Linear 512 + BN + ReLU → Linear to the backbone's width) and back through the embedding
// head, trains that generator with J_gen = J_recon + J_soft (reconstruction of the backbone
// features and a softmax classifier on the generated ones), and weights
// J_metric = e^{−β/J_gen}·J_m + (1 − e^{−β/J_gen})·J_syn. None of that is here (docs/losses_and_baselines.md).
//
// What is here: for anchor z with positive z⁺ (d⁺ = ‖z − z⁺‖) and negative z⁻ (d⁻ = ‖z − z⁻‖),
//   ẑ⁻ = z + [d⁺ + (d⁻ − d⁺)·e^{−α/J_avg}]·(z⁻ − z)/d⁻   if d⁻ > d⁺,   else ẑ⁻ = z⁻
// (official α = 90; J_avg = the previous epoch's mean J_m from the trainer, 1e6 in the first), so
// ‖ẑ⁻ − z‖ = d⁺ + (d⁻ − d⁺)·e^{−α/J_avg}, for every (anchor, negative) of the batch (the anchor's
// positive is the next same-class sample, cyclically: with K = 2 the official anchor/positive
// split), and the objective J = J_m + w·J_syn, J_syn being the base loss on the batch with each
// anchor's negatives replaced by its ẑ⁻ (positives unchanged). Gradients flow through the
// interpolation into anchor, positive and negative, as in the official TensorFlow graph (only the
// d⁺ ≥ d⁻ test is a constant).
//
// Geometry. With the raw embeddings of the dot-product N-pair loss (the official setting), ẑ⁻ is
// the point on the segment above. A loss that L2-normalises its embeddings (Euclidean, cosine)
// would put a point of the chord back on the sphere and so change its distance to the anchor;
// there ẑ⁻ is placed on the unit sphere instead, on the great circle from z towards z⁻, at the same
// chord distance from z:
//   ẑ⁻ = cos θ·z + sin θ·u,  u = (z⁻ − ⟨z⁻, z⟩z)/‖z⁻ − ⟨z⁻, z⟩z‖,  θ = 2·asin(t/2),  t = d⁺ + (d⁻ − d⁺)·φ,
// so ‖ẑ⁻ − z‖ = t exactly, the loss's normalisation leaves ẑ⁻ where it is, and φ = 1 gives z⁻.
import * as tf from '@tensorflow/tfjs';
import { hardnessFactor as hdmlFactor } from '../gca_hng/hard_negatives.ts';
import type { MetricLoss, PairBasedLoss } from '../losses/metric/base.ts';
import { isPairLoss } from '../losses/metric/base.ts';
import type { BaseDistance } from '../losses/metric/distances.ts';
import { safeSqrt } from '../losses/metric/distances.ts';
import {
  type GeneratorContext,
  type HardNegativeGenerator,
  type Objective,
  tidyObjective,
  anchorCandidateMatrix,
  nextSameClass,
  selectRows,
} from './common.ts';

export interface HdmlLiteOptions {
  /** α of the pulling factor e^{−α/J_avg} (official default 90). */
  alpha?: number;
  /** w in J_m + w·J_syn (default 1). */
  synWeight?: number;
}

export const HDML_LITE_DEFAULTS = { alpha: 90, synWeight: 1 } as const;
/** J_avg before the first epoch ends (the official initial value). */
export const HDML_INITIAL_J = 1e6;

/** Where the pulled negatives are placed: on the anchor–negative segment, or on the unit sphere. */
export type HdmlGeometry = 'segment' | 'sphere';

export interface HdmlCandidates {
  /** [B, B, D]: for anchor i, the (possibly pulled) version of sample j; j itself when same class or not farther than the positive. */
  candidates: tf.Tensor3D;
  /** Positive of each anchor. */
  partner: number[];
  /** Host [B, B]: 1 where the candidate is an interpolated ẑ⁻. */
  pulled: Float32Array;
}

/** The pulling factor e^{−α/J_avg}: the same hardness factor as GCA-HNG's (which took it from HDML). */
export { hdmlFactor };

/**
 * The candidates of every (anchor, sample) pair. `geometry` 'sphere' expects unit rows in `z` and
 * places the pulled negatives on the sphere (see the file comment); 'segment' is the official rule.
 */
export function hdmlCandidates(z: tf.Tensor2D, labels: readonly number[], phi: number, geometry: HdmlGeometry = 'segment'): HdmlCandidates {
  const [B, D] = z.shape;
  if (labels.length !== B) throw new Error(`hdml-lite: ${B} embeddings but ${labels.length} labels`);
  const partner = nextSameClass(labels, 'hdml-lite');
  const pulled = new Float32Array(B * B);
  const candidates = tf.tidy(() => {
    const zp = selectRows(z, partner);
    const dPos = safeSqrt(tf.sum(tf.square(tf.sub(z, zp)), 1, true)); // [B, 1]
    const anchors = tf.reshape(z, [B, 1, D]);
    const others = tf.reshape(z, [1, B, D]);
    const diff = tf.sub(others, anchors); // z_j − z_i
    const dNeg = safeSqrt(tf.sum(tf.square(diff), 2)); // [B, B]
    const dp = dPos.dataSync();
    const dn = dNeg.dataSync();
    for (let i = 0; i < B; i++) for (let j = 0; j < B; j++) if (labels[i] !== labels[j] && (dn[i * B + j] as number) > (dp[i] as number)) pulled[i * B + j] = 1;
    const pm = tf.tensor2d(pulled, [B, B]);
    const target = tf.add(dPos, tf.mul(tf.sub(dNeg, dPos), phi)); // t = ‖ẑ⁻ − z‖ [B, B]
    let pulledPts: tf.Tensor;
    if (geometry === 'segment') {
      // Kept entries get a divisor of d⁻ + 1 ≥ 1, so no 0/0 reaches the (discarded) pulled branch.
      pulledPts = tf.add(anchors, tf.mul(tf.expandDims(tf.div(target, tf.add(dNeg, tf.sub(1, pm))), 2), diff));
    } else {
      // θ = 2·asin(t/2), t/2 kept below 1 so that asin stays differentiable; the tangent direction
      // u has a floored norm, so a sample coinciding with its anchor (self pairs, discarded) gives 0.
      const theta = tf.mul(tf.asin(tf.minimum(tf.div(target, 2), 1 - 1e-6)), 2);
      const along = tf.sum(tf.mul(others, anchors), 2, true); // ⟨z_j, z_i⟩ [B, B, 1]
      const tangent = tf.sub(others, tf.mul(along, anchors));
      const u = tf.div(tangent, tf.sqrt(tf.maximum(tf.sum(tf.square(tangent), 2, true), 1e-24)));
      pulledPts = tf.add(tf.mul(tf.expandDims(tf.cos(theta), 2), anchors), tf.mul(tf.expandDims(tf.sin(theta), 2), u));
    }
    const keep = tf.expandDims(tf.sub(1, pm), 2);
    return tf.add(tf.mul(keep, others), tf.mul(tf.expandDims(pm, 2), pulledPts)) as tf.Tensor3D;
  });
  return { candidates, partner, pulled };
}

/**
 * The pair matrix [B, B] in the loss's distance units: anchors against their candidates, between
 * the points as placed. `z` is what the loss compares (normalised by the caller when the loss
 * normalises); the geometry follows the distance.
 */
export function hdmlMatrix(z: tf.Tensor2D, labels: readonly number[], distance: BaseDistance, phi: number): tf.Tensor2D {
  return tf.tidy(() => anchorCandidateMatrix(z, hdmlCandidates(z, labels, phi, distance.normalizeEmbeddings ? 'sphere' : 'segment').candidates, distance));
}

export class HdmlLite implements HardNegativeGenerator {
  readonly name = 'hdml-lite';
  readonly requires = 'pair';
  readonly parameterPrefixes: readonly string[] = [];
  readonly alpha: number;
  readonly synWeight: number;

  constructor(o: HdmlLiteOptions = {}) {
    this.alpha = o.alpha ?? HDML_LITE_DEFAULTS.alpha;
    this.synWeight = o.synWeight ?? HDML_LITE_DEFAULTS.synWeight;
  }

  objective(loss: MetricLoss, ctx: GeneratorContext): Objective {
    if (!isPairLoss(loss)) throw new Error(`hdml-lite needs a pair-based loss, got '${loss.name}'`);
    const pairLoss: PairBasedLoss = loss;
    return tidyObjective(() => {
      const z = ctx.embeddings;
      const phi = hdmlFactor(this.alpha, ctx.jAvg ?? HDML_INITIAL_J);
      const jM = pairLoss.compute(z, ctx.labels);
      const jSyn = pairLoss.computeFromMatrix({
        matrix: hdmlMatrix(pairLoss.distance.maybeNormalize(z), ctx.labels, pairLoss.distance, phi),
        labels: ctx.labels,
        refLabels: ctx.labels,
        selfRef: true,
        embeddings: z,
      });
      const total = tf.add(jM, tf.mul(jSyn, this.synWeight)) as tf.Scalar;
      return { total, terms: { J_m: jM, J_syn: jSyn, phi: tf.scalar(phi) } };
    });
  }
}
