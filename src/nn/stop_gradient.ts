// Identity whose gradient is zero: PyTorch's `.detach()` for a value that is also used on a
// differentiated path (so no upstream work is added by it).
import * as tf from '@tensorflow/tfjs';

export const stopGradient = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const x = args[0] as tf.Tensor;
  return { value: tf.clone(x), gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy) };
}) as unknown as <T extends tf.Tensor>(x: T) => T;

/** A copy of x with no connection to any gradient tape (for detaching a value used elsewhere). */
export function detachedCopy<T extends tf.Tensor>(x: T): T {
  return tf.tensor(x.dataSync(), x.shape, x.dtype) as T;
}
