// BatchNorm1d over the rows of a [N, C] tensor, with PyTorch's semantics: in training it
// normalises with the batch mean and biased variance and moves the running statistics by
// momentum 0.1 towards the batch mean and the *unbiased* variance; in evaluation it uses them.
// Written with plain ops: tf.batchNorm's gradient without scale/offset is broken (docs/backends.md).
import * as tf from '@tensorflow/tfjs';

export interface BatchNormState {
  weight: tf.Tensor;
  bias: tf.Tensor;
  runningMean: tf.Variable;
  runningVar: tf.Variable;
  /** Called once per training-mode forward (PyTorch's num_batches_tracked += 1). */
  onTrack?: () => void;
}

export const BN_EPS = 1e-5;
export const BN_MOMENTUM = 0.1;

/** Moves the running statistics by `momentum` towards the batch mean and the unbiased variance of `count` values. */
export function updateRunningStats(s: BatchNormState, mean: tf.Tensor, biasedVariance: tf.Tensor, count: number, momentum: number): void {
  tf.tidy(() => {
    const unbiased = tf.mul(biasedVariance, count / Math.max(count - 1, 1));
    s.runningMean.assign(tf.add(tf.mul(s.runningMean, 1 - momentum), tf.mul(mean, momentum)));
    s.runningVar.assign(tf.add(tf.mul(s.runningVar, 1 - momentum), tf.mul(unbiased, momentum)));
  });
}

export function batchNorm1d(x: tf.Tensor2D, s: BatchNormState, training: boolean): tf.Tensor2D {
  if (!training) {
    return tf.tidy(() => {
      const inv = tf.rsqrt(tf.add(s.runningVar, BN_EPS));
      return tf.add(tf.mul(tf.mul(tf.sub(x, s.runningMean), inv), s.weight), s.bias) as tf.Tensor2D;
    });
  }
  const n = x.shape[0];
  const out = tf.tidy(() => {
    const mean = tf.mean(x, 0);
    const centred = tf.sub(x, mean);
    const variance = tf.mean(tf.square(centred), 0);
    const y = tf.add(tf.mul(tf.mul(centred, tf.rsqrt(tf.add(variance, BN_EPS))), s.weight), s.bias);
    // Running statistics: computed from the same batch moments, outside the gradient's concern.
    updateRunningStats(s, mean, variance, n, BN_MOMENTUM);
    return y as tf.Tensor2D;
  });
  s.onTrack?.();
  return out;
}
