// BatchNorm2d over the channels of an NHWC tensor, with PyTorch's semantics. In evaluation (and
// when frozen, as the official BN_FREEZE: module.eval() on every BatchNorm2d) it applies the
// running statistics, y = (x − μ_run)/√(σ²_run + eps)·γ + β, folded into one scale and one shift
// per channel (γ and β still get gradients). In training it normalises with the batch mean and
// biased variance over (n, h, w), and moves the running statistics by `momentum` towards the batch
// mean and the *unbiased* variance. Written with plain ops, like batch_norm.ts.
import * as tf from '@tensorflow/tfjs';
import { BN_EPS, BN_MOMENTUM, type BatchNormState, updateRunningStats } from './batch_norm.ts';

export type { BatchNormState } from './batch_norm.ts';

export interface BatchNorm2dOptions {
  /** PyTorch's default 1e-5; torchvision's GoogLeNet uses 1e-3. */
  eps?: number;
  momentum?: number;
}

export function batchNorm2d(x: tf.Tensor4D, s: BatchNormState, training: boolean, options: BatchNorm2dOptions = {}): tf.Tensor4D {
  const eps = options.eps ?? BN_EPS;
  const momentum = options.momentum ?? BN_MOMENTUM;
  if (!training) {
    return tf.tidy(() => {
      const scale = tf.mul(s.weight, tf.rsqrt(tf.add(s.runningVar, eps)));
      const shift = tf.sub(s.bias, tf.mul(s.runningMean, scale));
      return tf.add(tf.mul(x, scale), shift) as tf.Tensor4D;
    });
  }
  const [n, h, w] = x.shape;
  const count = n * h * w;
  const out = tf.tidy(() => {
    const mean = tf.mean(x, [0, 1, 2]);
    const centred = tf.sub(x, mean);
    const variance = tf.mean(tf.square(centred), [0, 1, 2]);
    const y = tf.add(tf.mul(centred, tf.mul(tf.rsqrt(tf.add(variance, eps)), s.weight)), s.bias);
    updateRunningStats(s, mean, variance, count, momentum);
    return y as tf.Tensor4D;
  });
  s.onTrack?.();
  return out;
}
