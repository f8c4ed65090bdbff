// The shared shape of the metric losses (PML's BaseMetricLossFunction / GenericPairLoss, typed):
// every loss takes embeddings [N, D] on the caller's gradient tape and labels, and returns a
// scalar. Pair-based losses also accept a precomputed [N, M] matrix in their own distance's
// units, which is how the hard-negative generators (src/baselines/) hand them mined or
// synthetic pairs. Proxy-based losses keep their proxies in a StateDict and accept an explicit
// proxy matrix (Proxy Synthesis appends synthetic classes to it).
import * as tf from '@tensorflow/tfjs';
import type { BaseDistance } from './distances.ts';
import { detachedCopy } from '../../nn/stop_gradient.ts';

export interface LossContext {
  /** Reference embeddings [M, D] (default: the query embeddings themselves). */
  ref?: tf.Tensor2D;
  /** Labels of the reference embeddings (required with ref). */
  refLabels?: readonly number[];
}

/** A precomputed pair matrix for a pair-based loss. */
export interface PairMatrixInput {
  /** [N, M] values in the loss's distance units (distances, or similarities when isInverted). */
  matrix: tf.Tensor2D;
  labels: readonly number[];
  refLabels: readonly number[];
  /** The reference set is the query set: pairs (i, i) are not pairs. */
  selfRef: boolean;
  /** The query embeddings the rows come from, for embedding regularisers (N-pair's l2 term). */
  embeddings?: tf.Tensor2D;
}

export interface MetricLoss {
  readonly name: string;
  readonly kind: 'pair' | 'proxy';
  readonly distance: BaseDistance;
  compute(embeddings: tf.Tensor2D, labels: readonly number[], ctx?: LossContext): tf.Scalar;
}

export interface PairBasedLoss extends MetricLoss {
  readonly kind: 'pair';
  computeFromMatrix(input: PairMatrixInput): tf.Scalar;
}

export interface ProxyBasedLoss extends MetricLoss {
  readonly kind: 'proxy';
  readonly numClasses: number;
  /** The StateDict name of the proxies [C, D] (default 'loss.proxies'). */
  readonly proxyName: string;
  /** The proxies variable (trainable, checkpointed with the model). */
  proxies(): tf.Variable;
  /** The loss against explicit proxies [C', D]; labels index their rows (C' > C for synthetic classes). */
  computeWithProxies(embeddings: tf.Tensor2D, labels: readonly number[], proxies: tf.Tensor): tf.Scalar;
}

export function isPairLoss(loss: MetricLoss): loss is PairBasedLoss {
  return loss.kind === 'pair';
}

export function isProxyLoss(loss: MetricLoss): loss is ProxyBasedLoss {
  return loss.kind === 'proxy';
}

export function checkBatch(what: string, embeddings: tf.Tensor, labels: readonly number[]): void {
  if (embeddings.rank !== 2) throw new Error(`${what}: embeddings must be a 2-D tensor [batch_size, embedding_size], got rank ${embeddings.rank}`);
  if (embeddings.shape[0] !== labels.length) throw new Error(`${what}: ${embeddings.shape[0]} embeddings but ${labels.length} labels`);
}

/** Turns compute()'s arguments into a pair matrix input with the loss's distance. */
export function pairInput(what: string, distance: BaseDistance, embeddings: tf.Tensor2D, labels: readonly number[], ctx?: LossContext): PairMatrixInput {
  checkBatch(what, embeddings, labels);
  if (ctx?.ref !== undefined) {
    if (ctx.refLabels === undefined) throw new Error(`${what}: ref embeddings need refLabels`);
    checkBatch(`${what} (ref)`, ctx.ref, ctx.refLabels);
    return { matrix: distance.matrix(embeddings, ctx.ref), labels, refLabels: ctx.refLabels, selfRef: false, embeddings };
  }
  if (ctx?.refLabels !== undefined) throw new Error(`${what}: refLabels given without ref embeddings`);
  return { matrix: distance.matrix(embeddings), labels, refLabels: labels, selfRef: true, embeddings };
}

export function checkMatrixInput(what: string, m: PairMatrixInput): { N: number; M: number } {
  const [N, M] = m.matrix.shape;
  if (m.matrix.rank !== 2 || N !== m.labels.length || M !== m.refLabels.length) {
    throw new Error(`${what}: matrix [${m.matrix.shape}] does not match ${m.labels.length} labels × ${m.refLabels.length} ref labels`);
  }
  if (m.selfRef && N !== M) throw new Error(`${what}: a self-referencing matrix must be square, got [${N}, ${M}]`);
  return { N, M };
}

/**
 * Host masks over an [N, M] pair matrix (row-major): pos[i,j] = 1 when labels agree and (i, j) is
 * not a self-pair; neg[i,j] = 1 when labels differ (PML's get_all_pairs_indices).
 */
export function pairMasks(labels: readonly number[], refLabels: readonly number[], selfRef: boolean): { pos: Float32Array; neg: Float32Array } {
  const N = labels.length;
  const M = refLabels.length;
  const pos = new Float32Array(N * M);
  const neg = new Float32Array(N * M);
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < M; j++) {
      if (labels[i] === refLabels[j]) pos[i * M + j] = selfRef && i === j ? 0 : 1;
      else neg[i * M + j] = 1;
    }
  }
  return { pos, neg };
}

/**
 * log(1 + Σ_{mask} exp(x)) along `axis` of a 2-D x, stabilised, with rows (or columns) whose
 * mask is empty giving exactly 0 (PML's lmu.logsumexp with add_one=True and a keep mask).
 * Masked-out entries neither contribute nor receive gradient.
 */
export function logOnePlusSumExp(x: tf.Tensor2D, mask: Float32Array, axis: 0 | 1): tf.Tensor1D {
  return tf.tidy(() => {
    const m = tf.tensor2d(mask, x.shape);
    // Masked entries are replaced by a large negative constant (exp → 0, no gradient through them).
    const xm = tf.add(tf.mul(x, m), tf.mul(tf.sub(1, m), -1e9));
    const shift = tf.maximum(tf.max(xm, axis, true), 0);
    const fixed = detachedCopy(shift); // a constant: the result does not depend on it
    const s = tf.add(tf.sum(tf.exp(tf.sub(xm, fixed)), axis, true), tf.exp(tf.neg(fixed)));
    return tf.reshape(tf.add(tf.log(s), fixed), [-1]) as tf.Tensor1D;
  });
}

/** One-hot [N, C] of integer labels in [0, C) (a host constant: dense masks instead of gathers). */
export function oneHotMask(labels: readonly number[], C: number, what: string): Float32Array {
  const m = new Float32Array(labels.length * C);
  labels.forEach((y, i) => {
    if (!Number.isInteger(y) || y < 0 || y >= C) throw new Error(`${what}: label ${y} at row ${i} is outside [0, ${C})`);
    m[i * C + y] = 1;
  });
  return m;
}
