// What every hard-negative generation baseline shares: the batch it receives, the objective it
// returns, how samples are paired within their class, and how a [B, B] pair matrix is read out of
// candidate groups ("hard negative pair mining") with dense one-hot masks instead of gathers
// (tf.gather has no gradient on the wasm backend).
import * as tf from '@tensorflow/tfjs';
import type { Random } from '../engine/random.ts';
import type { BaseDistance } from '../losses/metric/distances.ts';
import type { MetricLoss } from '../losses/metric/base.ts';

export interface GeneratorContext {
  /** The batch's embeddings [B, D], on the caller's gradient tape. */
  embeddings: tf.Tensor2D;
  labels: readonly number[];
  /** Seeded stream for any randomness (Proxy Synthesis' λ). */
  rng: Random;
  /** hdml-lite: J_avg, the previous epoch's mean metric loss (official initial value 1e6). */
  jAvg?: number;
}

/** The training objective of one batch: `total` to minimise, `terms` for logging (read them inside the gradient function). */
export interface Objective {
  total: tf.Scalar;
  terms: Record<string, tf.Scalar>;
}

/** Runs an objective's computation in tf.tidy, keeping only `total` and `terms`. */
export function tidyObjective(fn: () => Objective): Objective {
  return tf.tidy(() => fn() as unknown as tf.TensorContainer) as unknown as Objective;
}

/** Which base losses a generator works with. */
export type LossRequirement = 'pair' | 'proxy' | 'any';

export interface HardNegativeGenerator {
  readonly name: string;
  readonly requires: LossRequirement;
  /** StateDict prefixes of the generator's own trainable parameters (DAML: 'daml.'), to add to an optimiser. */
  readonly parameterPrefixes: readonly string[];
  objective(loss: MetricLoss, ctx: GeneratorContext): Objective;
}

/** Indices of each class's samples in batch order. */
function byClass(labels: readonly number[]): Map<number, number[]> {
  const m = new Map<number, number[]>();
  labels.forEach((y, i) => {
    const list = m.get(y);
    if (list) list.push(i);
    else m.set(y, [i]);
  });
  return m;
}

/**
 * partner[i] = the next sample of i's class in batch order, cyclically (in the P×K chunk layout
 * with K = 2: chunk 0 ↔ chunk 1, the N-pair anchor/positive split). Every class needs ≥ 2 samples.
 */
export function nextSameClass(labels: readonly number[], what: string): number[] {
  const partner = new Array<number>(labels.length).fill(-1);
  for (const [y, idx] of byClass(labels)) {
    if (idx.length < 2) throw new Error(`${what}: class ${y} has a single sample in the batch; every class needs a positive (≥ 2 samples)`);
    idx.forEach((i, t) => {
      partner[i] = idx[(t + 1) % idx.length] as number;
    });
  }
  return partner;
}

/**
 * Disjoint positive pairs: each class's samples in batch order are paired 1st↔2nd, 3rd↔4th, …
 * (the official EE code pairs neighbouring samples of a class the same way). Every class needs an
 * even number of samples.
 */
export function pairWithinClass(labels: readonly number[], what: string): number[] {
  const partner = new Array<number>(labels.length).fill(-1);
  for (const [y, idx] of byClass(labels)) {
    if (idx.length % 2 !== 0)
      throw new Error(`${what}: class ${y} has ${idx.length} samples in the batch; pairing needs an even number per class (e.g. K = 2 or 4 samples per class)`);
    for (let t = 0; t < idx.length; t += 2) {
      partner[idx[t] as number] = idx[t + 1] as number;
      partner[idx[t + 1] as number] = idx[t] as number;
    }
  }
  return partner;
}

/**
 * rows[i] = x[index[i]] as a one-hot product, differentiable on wasm; the gradient (onehotᵀ·dy)
 * transposes explicitly (wasm matMul is very slow with a transposed operand).
 */
const selectMatMul = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [oh, x, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
  save([oh]);
  return {
    value: tf.matMul(oh, x),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.zerosLike(saved[0] as tf.Tensor), tf.matMul(tf.transpose(saved[0] as tf.Tensor2D), dy as tf.Tensor2D)],
  };
}) as unknown as (oh: tf.Tensor2D, x: tf.Tensor2D) => tf.Tensor2D;

export function selectRows(x: tf.Tensor2D, index: readonly number[]): tf.Tensor2D {
  const R = x.shape[0];
  const oh = new Float32Array(index.length * R);
  index.forEach((j, i) => {
    if (!Number.isInteger(j) || j < 0 || j >= R) throw new Error(`selectRows: index ${j} outside [0, ${R})`);
    oh[i * R + j] = 1;
  });
  return tf.tidy(() => selectMatMul(tf.tensor2d(oh, [index.length, R]), x));
}

/**
 * Hard negative pair mining over candidate groups. `groups` [B, B, G] holds, for anchor (group) i
 * and sample j, the G candidate values (in `distance` units); entry 0 must be the original pair
 * (i, j). For a negative pair (labels differ) the hardest candidate is kept (smallest distance /
 * largest similarity; ties → lowest index); for a positive pair, the original. Returns [B, B].
 */
export function mineGroups(groups: tf.Tensor3D, labels: readonly number[], distance: BaseDistance): tf.Tensor2D {
  const [B, B2, G] = groups.shape;
  if (B !== labels.length || B2 !== labels.length) throw new Error(`mineGroups: groups [${groups.shape}] do not match ${labels.length} labels`);
  return tf.tidy(() => {
    const v = distance.toDistanceLike(groups).dataSync();
    const sel = new Float32Array(B * B * G);
    for (let i = 0; i < B; i++) {
      for (let j = 0; j < B; j++) {
        const base = (i * B + j) * G;
        let best = 0;
        if (labels[i] !== labels[j]) for (let g = 1; g < G; g++) if ((v[base + g] as number) < (v[base + best] as number)) best = g;
        sel[base + best] = 1;
      }
    }
    return tf.sum(tf.mul(groups, tf.tensor3d(sel, [B, B, G])), 2) as tf.Tensor2D;
  });
}

/**
 * The [B, B] matrix between anchor i and its candidate for j (`candidates` [B, B, D]), in the
 * distance's units: how a pair-based loss sees per-anchor synthetic negatives (hdml-lite,
 * daml-lite). Anchors and candidates are taken as placed (the anchors already normalised where
 * the loss normalises): renormalising a synthetic point would move it off the place its
 * generator's rule gave it.
 */
export function anchorCandidateMatrix(anchors: tf.Tensor2D, candidates: tf.Tensor3D, distance: BaseDistance): tf.Tensor2D {
  return tf.tidy(() => distance.pairwiseAsPlaced(tf.expandDims(anchors, 1), candidates) as tf.Tensor2D);
}
