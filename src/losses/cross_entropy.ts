// Cross-entropy from logits, averaged over rows.
import * as tf from '@tensorflow/tfjs';
import { NATIVE_OPS, nativeKernelsActive } from '../engine/native_kernels.ts';

function checkLabels(labels: ArrayLike<number>, classes: number): void {
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i] as number;
    if (!Number.isInteger(y) || y < 0 || y >= classes) throw new Error(`label ${y} at row ${i} is outside [0, ${classes})`);
  }
}

/** Σ_c −target[i,c]·log softmax(logits[i])_c per row i. */
function softRowLosses(logits: tf.Tensor2D, target: tf.Tensor2D): tf.Tensor1D {
  return tf.sum(tf.mul(tf.neg(target), tf.logSoftmax(logits)), 1);
}

/** mean_i Σ_c −target[i,c]·log softmax(logits[i])_c. */
export function softCrossEntropy(logits: tf.Tensor2D, target: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => tf.mean(softRowLosses(logits, target)) as tf.Scalar);
}

/**
 * The per-row losses −log softmax(logits[i])_{y_i}, keeping only the logits for the gradient
 * (softmax − one-hot)·dy: no [N, C] intermediates stay alive, which matters for the classifier of
 * the synthetic negatives over thousands of classes. With the native kernels each direction is
 * one kernel; otherwise both are composed from the ops of softCrossEntropy.
 */
function rowLosses(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  const native = nativeKernelsActive();
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    save([x, labels]);
    const C = x.shape[1];
    return {
      value: native
        ? (tf.engine().runKernel(NATIVE_OPS.softmaxCrossEntropy, { logits: x, labels }) as tf.Tensor1D)
        : softRowLosses(x, tf.cast(tf.oneHot(labels, C), 'float32') as tf.Tensor2D),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sLabels] = saved as [tf.Tensor2D, tf.Tensor1D];
        if (native) return tf.engine().runKernel(NATIVE_OPS.softmaxCrossEntropyGrad, { logits: sx, labels: sLabels, dy }) as tf.Tensor;
        return tf.tidy(() => tf.mul(tf.sub(tf.softmax(sx), tf.cast(tf.oneHot(sLabels, C), 'float32')), tf.expandDims(dy, 1)));
      },
    };
  }) as unknown as (x: tf.Tensor2D) => tf.Tensor1D;
  return op(logits);
}

/** mean_i −log softmax(logits[i])_{labels[i]} (PyTorch's F.cross_entropy). */
export function crossEntropy(logits: tf.Tensor2D, labels: ArrayLike<number>): tf.Scalar {
  checkLabels(labels, logits.shape[1]);
  return tf.tidy(() => tf.mean(rowLosses(logits, tf.tensor1d(Int32Array.from(labels), 'int32'))) as tf.Scalar);
}
