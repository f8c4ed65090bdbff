// Embedding Expansion (Ko & Gu, "Embedding Expansion: Augmentation in Embedding Space for Deep
// Metric Learning", CVPR 2020), after the official MXNet code (clovaai/embedding-expansion,
// loss/embedding_aug.py and loss/hphn_triplet.py):
//  1. Generation: each sample i is paired with a same-class partner q (neighbouring samples of a
//     class, 1st↔2nd, 3rd↔4th, …; the official code swaps adjacent rows of its class-grouped batch).
//     n internal points divide the segment from z_i to z_q into n + 1 equal parts,
//       e_k = (k·z_q + (n + 1 − k)·z_i) / (n + 1),  k = 1..n,
//     then L2-normalised (official defaults n_inner_pts = 2, ee_l2norm = True). Gradients flow into
//     both ends of the segment.
//  2. Hard negative pair mining: each sample stands for its group S(i) = {z_i, e_1(i), …, e_n(i)};
//     a negative pair (i, j) takes the hardest value (smallest distance / largest similarity) over
//     S(i) × S(j); a positive pair keeps the original value. The resulting [B, B] matrix is what
//     a pair-based loss consumes. With the triplet loss and batch-hard mining this is exactly the
//     official HPHN triplet loss (hardest positive among the originals, hardest negative over
//     every synthetic/original point of the anchor's group against every point of other classes).
// The expansion runs on L2-normalised embeddings whatever the base loss (`normalizeEmbeddings`,
// default true): the official model L2-normalises its output before EE (model/basenet.py), so the
// internal points interpolate between points on the sphere and the originals and the internal
// points are compared at the same scale. Without it, with the raw dot products of the N-pair loss,
// hard negative pair mining would compare raw originals with unit-norm internal points. The pair
// values are then taken between the points as placed (no second normalisation, which matters only
// with innerPoints left unnormalised).
// The official HPHN margin default is 1e-5 (main.py --margin); use it with the triplet loss to
// reproduce the paper's "EE + HPHN-triplet".
import * as tf from '@tensorflow/tfjs';
import type { MetricLoss } from '../losses/metric/base.ts';
import { isPairLoss } from '../losses/metric/base.ts';
import { type BaseDistance, l2Normalize } from '../losses/metric/distances.ts';
import { type GeneratorContext, type HardNegativeGenerator, type Objective, tidyObjective, mineGroups, pairWithinClass, selectRows } from './common.ts';

export interface EmbeddingExpansionOptions {
  /** n, the number of internal points per pair (official default 2). */
  innerPoints?: number;
  /** L2-normalise the internal points (official default true). */
  l2Normalize?: boolean;
  /**
   * L2-normalise the batch's embeddings before expanding them (default true: the official model's
   * output is normalised); false: expand them as the base loss's distance sees them (raw for N-pair).
   */
  normalizeEmbeddings?: boolean;
}

export const EMBEDDING_EXPANSION_DEFAULTS = { innerPoints: 2, l2Normalize: true, normalizeEmbeddings: true } as const;
/** The official HPHN triplet margin (main.py's --margin default). */
export const HPHN_MARGIN = 1e-5;

export interface ExpandedEmbeddings {
  /** [B, n + 1, D]: slot 0 the original z_i, slot k the k-th internal point towards i's partner. */
  groups: tf.Tensor3D;
  /** [(n + 1)·B, D] in the official order: the originals, then one block of B per k. */
  embeddings: tf.Tensor2D;
  labels: number[];
  partner: number[];
  /** The internal points before normalisation [B, n, D] (they lie on the segments). */
  raw: tf.Tensor3D;
}

/** The n internal points of each segment (raw, and as used), and each row's partner (not in a tidy). */
function innerPoints(z: tf.Tensor2D, labels: readonly number[], o: EmbeddingExpansionOptions): { partner: number[]; raw: tf.Tensor[]; inner: tf.Tensor[] } {
  const n = o.innerPoints ?? EMBEDDING_EXPANSION_DEFAULTS.innerPoints;
  const norm = o.l2Normalize ?? EMBEDDING_EXPANSION_DEFAULTS.l2Normalize;
  if (!Number.isInteger(n) || n < 1) throw new Error(`embedding expansion: innerPoints must be a positive integer, got ${n}`);
  const B = z.shape[0];
  if (labels.length !== B) throw new Error(`embedding expansion: ${B} embeddings but ${labels.length} labels`);
  const partner = pairWithinClass(labels, 'embedding expansion');
  const zq = selectRows(z, partner);
  const raw: tf.Tensor[] = [];
  for (let k = 1; k <= n; k++) raw.push(tf.div(tf.add(tf.mul(zq, k), tf.mul(z, n + 1 - k)), n + 1));
  return { partner, raw, inner: raw.map((e) => (norm ? l2Normalize(e) : e)) };
}

export function expandEmbeddings(z: tf.Tensor2D, labels: readonly number[], o: EmbeddingExpansionOptions = {}): ExpandedEmbeddings {
  return tf.tidy(() => {
    const { partner, raw, inner } = innerPoints(z, labels, o);
    const B = z.shape[0];
    const groups = tf.stack([z, ...inner], 1) as tf.Tensor3D;
    const embeddings = tf.concat([z, ...inner], 0) as tf.Tensor2D;
    const allLabels = Array.from({ length: (inner.length + 1) * B }, (_, r) => labels[r % B] as number);
    return { groups, embeddings, labels: allLabels, partner, raw: tf.stack(raw, 1) as tf.Tensor3D };
  });
}

/** The mined [B, B] pair matrix of EE in `distance` units, between the points as given (`z` normalised by the caller). */
export function embeddingExpansionMatrix(z: tf.Tensor2D, labels: readonly number[], distance: BaseDistance, o: EmbeddingExpansionOptions = {}): tf.Tensor2D {
  return tf.tidy(() => {
    const groups = tf.stack([z, ...innerPoints(z, labels, o).inner], 1) as tf.Tensor3D;
    const [B, G, D] = groups.shape;
    const E = distance.matrixAsPlaced(tf.reshape(groups, [B * G, D]) as tf.Tensor2D); // row i·G + a
    const cube = tf.reshape(tf.transpose(tf.reshape(E, [B, G, B, G]), [0, 2, 1, 3]), [B, B, G * G]) as tf.Tensor3D;
    return mineGroups(cube, labels, distance); // candidate 0 = (original i, original j)
  });
}

export class EmbeddingExpansion implements HardNegativeGenerator {
  readonly name = 'ee';
  readonly requires = 'pair';
  readonly parameterPrefixes: readonly string[] = [];
  readonly options: Required<EmbeddingExpansionOptions>;

  constructor(o: EmbeddingExpansionOptions = {}) {
    this.options = {
      innerPoints: o.innerPoints ?? EMBEDDING_EXPANSION_DEFAULTS.innerPoints,
      l2Normalize: o.l2Normalize ?? EMBEDDING_EXPANSION_DEFAULTS.l2Normalize,
      normalizeEmbeddings: o.normalizeEmbeddings ?? EMBEDDING_EXPANSION_DEFAULTS.normalizeEmbeddings,
    };
  }

  objective(loss: MetricLoss, ctx: GeneratorContext): Objective {
    if (!isPairLoss(loss)) throw new Error(`embedding expansion needs a pair-based loss, got '${loss.name}'`);
    return tidyObjective(() => {
      const z = ctx.embeddings;
      const originals = this.options.normalizeEmbeddings ? l2Normalize(z) : loss.distance.maybeNormalize(z);
      const total = loss.computeFromMatrix({
        matrix: embeddingExpansionMatrix(originals, ctx.labels, loss.distance, this.options),
        labels: ctx.labels,
        refLabels: ctx.labels,
        selfRef: true,
        embeddings: z,
      });
      return { total, terms: { J_ee: total } };
    });
  }
}
