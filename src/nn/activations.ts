// Elementwise activations used by the GNN.
import * as tf from '@tensorflow/tfjs';

/** Exact GELU, x·½(1 + erf(x/√2)), as PyTorch's nn.GELU() default. */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))));
}
