// Linear layer y = x·Wᵀ + b with W stored as PyTorch does ([out, in]).
// The gradient is written out with explicit transposes: TensorFlow.js's wasm backend is
// pathologically slow on matMul with a transposed operand (see BACKENDS.md), and the stock
// gradient of matMul(x, W, false, true) produces exactly such products.
import * as tf from '@tensorflow/tfjs';

const linear2d = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, w, b, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
  save([x, w]);
  const value = tf.add(tf.matMul(x, tf.transpose(w)), b);
  const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
    const [sx, sw] = saved as [tf.Tensor2D, tf.Tensor2D];
    const dy2 = dy as tf.Tensor2D;
    return [tf.matMul(dy2, sw), tf.matMul(tf.transpose(dy2), sx), tf.sum(dy2, 0)];
  };
  return { value, gradFunc };
}) as unknown as (x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D) => tf.Tensor2D;

/** Applies a Linear layer to the last axis of x (any rank ≥ 1). */
export function linear(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  const inDim = x.shape[x.rank - 1] as number;
  const outDim = weight.shape[0] as number;
  if (weight.shape[1] !== inDim) {
    throw new Error(`linear: input has ${inDim} features, weight is [${weight.shape.join(', ')}]`);
  }
  const lead = x.shape.slice(0, -1);
  const y = linear2d(tf.reshape(x, [-1, inDim]) as tf.Tensor2D, weight as tf.Tensor2D, bias as tf.Tensor1D);
  return x.rank === 2 ? y : tf.reshape(y, [...lead, outDim]);
}
