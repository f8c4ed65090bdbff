// HDML's hardness-aware interpolation (Zheng et al., "Hardness-Aware Deep Metric Learning",
// CVPR 2019), the `Pulling` function of the official code (wzzheng/HDML, lib/HDML.py) in the
// N-pair setting: for anchor z with positive z⁺ (d⁺ = ‖z − z⁺‖) and negative z⁻ (d⁻ = ‖z − z⁻‖),
//   ẑ⁻ = z + [d⁺ + (d⁻ − d⁺)·e^{−α/J_avg}]·(z⁻ − z)/d⁻   if d⁻ > d⁺,   else ẑ⁻ = z⁻
// (official: α = 90, FLAGS.alpha; J_avg = the previous epoch's mean J_m, starting at 1e6), so
// ‖ẑ⁻ − z‖ = d⁺ + (d⁻ − d⁺)·e^{−α/J_avg}. Gradients flow through the interpolation into the
// anchor, positive and negative embeddings, as in the official TensorFlow graph (only the
// d⁺ ≥ d⁻ test is a constant).
//
// Included: the interpolation for every (anchor, negative) of the batch (the anchor's positive is
// the next same-class sample, cyclically: with K = 2 samples per class this is the official
// anchor/positive split), the synthetic metric loss J_syn (the base loss on the batch with each
// anchor's negatives replaced by its ẑ⁻, positives unchanged), and the combination
//   J_metric = J_m + w·J_syn (w = synWeight, default 1), or the official
//   J_metric = e^{−β/J_gen}·J_m + (1 − e^{−β/J_gen})·J_syn (β = 1e4) when the caller passes J_gen.
// The interpolation runs on the embeddings as the base loss's distance sees them: raw for the
// dot-product N-pair loss (the official setting), L2-normalised for the Euclidean/cosine defaults.
// NOT included: HDML's generator network (z → feature space → z through the embedding head), its
// label-preserving losses J_recon and J_soft (hence no J_gen of our own), and the l2 term on the
// synthetic N-pair tiles; the synthetic negatives are used directly in the embedding space.
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

export interface HdmlOptions {
  /** α of the pulling factor e^{−α/J_avg} (official default 90). */
  alpha?: number;
  /** w in J_m + w·J_syn when no J_gen is given (default 1). */
  synWeight?: number;
  /** β of the official weighting e^{−β/J_gen} (default 1e4, FLAGS.beta for Cars196). */
  beta?: number;
}

export const HDML_DEFAULTS = { alpha: 90, synWeight: 1, beta: 1e4 } as const;
/** The official initial J_avg and J_gen (nn_Ops.data_collector init). */
export const HDML_INITIAL_J = 1e6;

export interface HdmlCandidates {
  /** [B, B, D]: for anchor i, the (possibly pulled) version of sample j; j itself when same class or not farther than the positive. */
  candidates: tf.Tensor3D;
  /** Positive of each anchor. */
  partner: number[];
  /** Host [B, B]: 1 where the candidate is an interpolated ẑ⁻. */
  pulled: Float32Array;
}

/**
 * J_avg / J_gen as the official code tracks them (nn_Ops.data_collector): the mean of the last
 * complete block of `block` values (64), 1e6 until the first block completes; NaNs are skipped.
 */
export class BlockMean {
  private values: number[] = [];
  private mean: number;
  constructor(
    init = HDML_INITIAL_J,
    private readonly block = 64,
  ) {
    this.mean = init;
  }

  update(v: number): void {
    if (Number.isNaN(v)) return;
    this.values.push(v);
    if (this.values.length >= this.block) {
      this.mean = this.values.reduce((a, b) => a + b, 0) / this.values.length;
      this.values = [];
    }
  }

  read(): number {
    return this.mean;
  }
}

/** The pulling factor e^{−α/J_avg}: the same hardness factor as GCA-HNG's (which took it from HDML). */
export { hdmlFactor };

export function hdmlCandidates(z: tf.Tensor2D, labels: readonly number[], phi: number): HdmlCandidates {
  const [B, D] = z.shape;
  if (labels.length !== B) throw new Error(`hdml: ${B} embeddings but ${labels.length} labels`);
  const partner = nextSameClass(labels, 'hdml');
  const pulled = new Float32Array(B * B);
  const candidates = tf.tidy(() => {
    const zp = selectRows(z, partner);
    const dPos = safeSqrt(tf.sum(tf.square(tf.sub(z, zp)), 1, true)); // [B, 1]
    const anchors = tf.reshape(z, [B, 1, D]);
    const diff = tf.sub(tf.reshape(z, [1, B, D]), anchors); // z_j − z_i
    const dNeg = safeSqrt(tf.sum(tf.square(diff), 2)); // [B, B]
    const dp = dPos.dataSync();
    const dn = dNeg.dataSync();
    for (let i = 0; i < B; i++) for (let j = 0; j < B; j++) if (labels[i] !== labels[j] && (dn[i * B + j] as number) > (dp[i] as number)) pulled[i * B + j] = 1;
    const pm = tf.tensor2d(pulled, [B, B]);
    // Kept entries get a divisor of d⁻ + 1 ≥ 1, so no 0/0 reaches the (discarded) pulled branch.
    const ratio = tf.div(tf.add(dPos, tf.mul(tf.sub(dNeg, dPos), phi)), tf.add(dNeg, tf.sub(1, pm)));
    const pulledPts = tf.add(anchors, tf.mul(tf.expandDims(ratio, 2), diff));
    const keep = tf.expandDims(tf.sub(1, pm), 2);
    return tf.add(tf.mul(keep, tf.reshape(z, [1, B, D])), tf.mul(tf.expandDims(pm, 2), pulledPts)) as tf.Tensor3D;
  });
  return { candidates, partner, pulled };
}

/** The HDML pair matrix [B, B] in the loss's distance units: anchors against their candidates. */
export function hdmlMatrix(z: tf.Tensor2D, labels: readonly number[], distance: BaseDistance, phi: number): tf.Tensor2D {
  return tf.tidy(() => anchorCandidateMatrix(z, hdmlCandidates(z, labels, phi).candidates, distance));
}

export class Hdml implements HardNegativeGenerator {
  readonly name = 'hdml';
  readonly requires = 'pair';
  readonly parameterPrefixes: readonly string[] = [];
  readonly alpha: number;
  readonly synWeight: number;
  readonly beta: number;

  constructor(o: HdmlOptions = {}) {
    this.alpha = o.alpha ?? HDML_DEFAULTS.alpha;
    this.synWeight = o.synWeight ?? HDML_DEFAULTS.synWeight;
    this.beta = o.beta ?? HDML_DEFAULTS.beta;
  }

  objective(loss: MetricLoss, ctx: GeneratorContext): Objective {
    if (!isPairLoss(loss)) throw new Error(`hdml needs a pair-based loss, got '${loss.name}'`);
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
      const wM = ctx.jGen === undefined ? 1 : Math.exp(-this.beta / ctx.jGen);
      const wSyn = ctx.jGen === undefined ? this.synWeight : 1 - wM;
      const total = tf.add(tf.mul(jM, wM), tf.mul(jSyn, wSyn)) as tf.Scalar;
      return { total, terms: { J_m: jM, J_syn: jSyn, phi: tf.scalar(phi) } };
    });
  }
}
