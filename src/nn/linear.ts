// Linear layer y = x·Wᵀ + b with W stored as PyTorch does ([out, in]).
// Each input's gradient is computed only when the backward pass needs it (no weight gradient for
// a layer whose weights are not being trained, no input gradient for a constant input). With the
// native kernels active the products take their transposes as flags (one OpenBLAS call each, the
// bias added inside the product); on the pure wasm path they are written with explicit
// transposes: TensorFlow.js's wasm matMul is pathologically slow with a transposed operand (see
// docs/backends.md).
import * as tf from '@tensorflow/tfjs';
import { nativeKernelsActive } from '../engine/native_kernels.ts';
import { lazyGradOp } from './checkpoint.ts';

function linear2d(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D): tf.Tensor2D {
  const native = nativeKernelsActive();
  return lazyGradOp(
    [x, w, b],
    (save) => {
      save([x, w]);
      return native ? tf.fused.matMul({ a: x, b: w, transposeB: true, bias: b }) : tf.add(tf.matMul(x, tf.transpose(w)), b);
    },
    (dy, saved) => {
      const [sx, sw] = saved as [tf.Tensor2D, tf.Tensor2D];
      const dy2 = dy as tf.Tensor2D;
      return [
        () => tf.matMul(dy2, sw), // dx = dy·W
        () => (native ? tf.matMul(dy2, sx, true, false) : tf.matMul(tf.transpose(dy2), sx)), // dW = dyᵀ·x
        () => tf.sum(dy2, 0), // db
      ];
    },
  ) as tf.Tensor2D;
}

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
