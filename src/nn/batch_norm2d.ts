// BatchNorm2d over the channels of an NHWC tensor, with PyTorch's semantics. In evaluation (and
// when frozen, as the official BN_FREEZE: module.eval() on every BatchNorm2d) it applies the
// running statistics, y = (x − μ_run)/√(σ²_run + eps)·γ + β, folded into one scale and one shift
// per channel (γ and β still get gradients). In training it normalises with the batch mean and
// biased variance over (n, h, w), and moves the running statistics by `momentum` towards the batch
// mean and the *unbiased* variance. Written with plain ops, like batch_norm.ts.
//
// The options `residual` and `relu` give ReLU(BN(x) + residual), the end of every ResNet block and
// of every conv-BN-ReLU unit. In evaluation form with the native kernels this is one pass forward
// and one backward (src/engine/native_kernels.ts, HardnegScaleShift): three to five element-wise
// passes and their temporaries less per BatchNorm, which matters next to the oneDNN convolutions.
import * as tf from '@tensorflow/tfjs';
import { NATIVE_OPS, nativeKernelsActive } from '../engine/native_kernels.ts';
import { BN_EPS, BN_MOMENTUM, type BatchNormState, updateRunningStats } from './batch_norm.ts';
import { lazyGradOp } from './checkpoint.ts';

export type { BatchNormState } from './batch_norm.ts';

export interface BatchNorm2dOptions {
  /** PyTorch's default 1e-5; torchvision's GoogLeNet uses 1e-3. */
  eps?: number;
  momentum?: number;
  /** Added to the normalised x (before the ReLU), of x's shape. */
  residual?: tf.Tensor4D;
  /** A ReLU on the result. */
  relu?: boolean;
}

const runNative = (name: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, number | boolean>) =>
  tf.engine().runKernel(name, inputs, attrs) as unknown as tf.Tensor | tf.Tensor[];

/** ReLU?(x·scale + shift + residual?) in one native pass; each gradient is computed only when asked for. */
function scaleShiftNative(x: tf.Tensor4D, scale: tf.Tensor, shift: tf.Tensor, residual: tf.Tensor4D | undefined, relu: boolean): tf.Tensor4D {
  const inputs = residual ? [x, scale, shift, residual] : [x, scale, shift];
  return lazyGradOp(
    inputs,
    (save) => {
      const y = runNative(NATIVE_OPS.scaleShift, { x, scale, shift, ...(residual ? { res: residual } : {}) }, { relu }) as tf.Tensor;
      save([x, y, scale]);
      return y;
    },
    (dy, saved) => {
      const [sx, sy, sScale] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
      const masked: Record<string, tf.Tensor> = relu ? { y: sy, dy } : { dy };
      const params = (k: number) => () => (runNative(NATIVE_OPS.scaleShiftParamGrad, { x: sx, ...masked }, { relu }) as tf.Tensor[])[k] as tf.Tensor;
      const grads = [
        () => runNative(NATIVE_OPS.scaleShiftGrad, { ...masked, scale: sScale }, { relu }) as tf.Tensor,
        // Σ g·x and Σ g over all but the channel axis, shaped as scale and shift.
        params(0),
        params(1),
      ];
      if (residual) grads.push(() => (relu ? (runNative(NATIVE_OPS.scaleShiftGrad, masked, { relu }) as tf.Tensor) : dy));
      return grads;
    },
  ) as tf.Tensor4D;
}

export function batchNorm2d(x: tf.Tensor4D, s: BatchNormState, training: boolean, options: BatchNorm2dOptions = {}): tf.Tensor4D {
  const eps = options.eps ?? BN_EPS;
  const momentum = options.momentum ?? BN_MOMENTUM;
  const { residual, relu = false } = options;
  const finish = (y: tf.Tensor4D): tf.Tensor4D => {
    const z = residual ? (tf.add(y, residual) as tf.Tensor4D) : y;
    return relu ? (tf.relu(z) as tf.Tensor4D) : z;
  };
  if (!training) {
    return tf.tidy(() => {
      const scale = tf.mul(s.weight, tf.rsqrt(tf.add(s.runningVar, eps)));
      const shift = tf.sub(s.bias, tf.mul(s.runningMean, scale));
      if (nativeKernelsActive() && x.dtype === 'float32') return scaleShiftNative(x, scale, shift, residual, relu);
      return finish(tf.add(tf.mul(x, scale), shift) as tf.Tensor4D);
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
    return finish(y as tf.Tensor4D);
  });
  s.onTrack?.();
  return out;
}
