// LayerNorm over the last axis: (x − mean)/√(biased var + eps)·γ + β.
import * as tf from '@tensorflow/tfjs';

export function layerNorm(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor, eps = 1e-5): tf.Tensor {
  return tf.tidy(() => {
    const axis = x.rank - 1;
    const mean = tf.mean(x, axis, true);
    const centred = tf.sub(x, mean);
    const variance = tf.mean(tf.square(centred), axis, true);
    return tf.add(tf.mul(tf.mul(centred, tf.rsqrt(tf.add(variance, eps))), weight), bias);
  });
}
