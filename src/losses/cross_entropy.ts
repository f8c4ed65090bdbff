// Cross-entropy from logits, averaged over rows.
import * as tf from '@tensorflow/tfjs';

export function oneHot(labels: ArrayLike<number>, classes: number): tf.Tensor2D {
  const m = new Float32Array(labels.length * classes);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i] as number;
    if (!Number.isInteger(y) || y < 0 || y >= classes) throw new Error(`label ${y} at row ${i} is outside [0, ${classes})`);
    m[i * classes + y] = 1;
  }
  return tf.tensor2d(m, [labels.length, classes]);
}

/** mean_i Σ_c −target[i,c]·log softmax(logits[i])_c. */
export function softCrossEntropy(logits: tf.Tensor2D, target: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.sum(tf.mul(tf.neg(target), tf.logSoftmax(logits)), 1)) as tf.Scalar);
}

/** mean_i −log softmax(logits[i])_{labels[i]} (PyTorch's F.cross_entropy). */
export function crossEntropy(logits: tf.Tensor2D, labels: ArrayLike<number>): tf.Scalar {
  return tf.tidy(() => softCrossEntropy(logits, oneHot(labels, logits.shape[1])));
}
