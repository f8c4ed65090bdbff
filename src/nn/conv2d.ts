// 2-D convolution (stride 1, 'same' zero padding, odd square kernels), weights in PyTorch's
// [out, in, kh, kw] layout. The forward pass is tf.conv2d (XNNPACK on wasm). TensorFlow.js's wasm
// backend has no Conv2DBackpropFilter kernel, so the weight gradient is computed here as
// patchesᵀ·dy, the patches being the k×k shifted views of the input (slice + concat).
import * as tf from '@tensorflow/tfjs';

function patches(x: tf.Tensor4D, k: number): tf.Tensor2D {
  const [n, h, w, c] = x.shape;
  const pad = (k - 1) / 2;
  const padded = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]]);
  const views: tf.Tensor[] = [];
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) views.push(tf.slice(padded, [0, i, j, 0], [n, h, w, c]));
  // column (i·k + j)·c + ch  ↔  weight[o, ch, i, j]
  return tf.reshape(tf.concat(views, 3), [n * h * w, k * k * c]);
}

const conv = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, weight, bias, save] = args as [tf.Tensor4D, tf.Tensor4D, tf.Tensor1D, tf.GradSaveFunc];
  save([x, weight]);
  const hwio = tf.transpose(weight, [2, 3, 1, 0]) as tf.Tensor4D;
  return {
    value: tf.add(tf.conv2d(x, hwio, 1, 'same'), bias),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.tidy(() => {
      const [sx, sw] = saved as [tf.Tensor4D, tf.Tensor4D];
      const [cout, cin, k] = sw.shape as [number, number, number, number];
      const dy4 = dy as tf.Tensor4D;
      const dx = tf.conv2dTranspose(dy4, tf.transpose(sw, [2, 3, 1, 0]) as tf.Tensor4D, sx.shape, 1, 'same');
      const dyFlat = tf.reshape(dy4, [-1, cout]);
      const dwFlat = tf.matMul(tf.transpose(dyFlat), patches(sx, k)); // [cout, k·k·cin]
      const dw = tf.transpose(tf.reshape(dwFlat, [cout, k, k, cin]), [0, 3, 1, 2]);
      return [dx, dw, tf.sum(dyFlat, 0)];
    }),
  };
}) as unknown as (x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D) => tf.Tensor4D;

export function conv2dSame(x: tf.Tensor4D, weight: tf.Tensor, bias: tf.Tensor): tf.Tensor4D {
  const [, cin, kh, kw] = weight.shape as [number, number, number, number];
  if (cin !== x.shape[3]) throw new Error(`conv2d: input has ${x.shape[3]} channels, weight expects ${cin}`);
  if (kh !== kw || kh % 2 !== 1) throw new Error(`conv2d: expected an odd square kernel, got ${kh}×${kw}`);
  return conv(x, weight as tf.Tensor4D, bias as tf.Tensor1D);
}

/** The same convolution from primitive ops only (patches × matrix), for tests. */
export function conv2dByPatches(x: tf.Tensor4D, weight: tf.Tensor, bias: tf.Tensor): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, w] = x.shape;
    const [cout, cin, k] = weight.shape as [number, number, number, number];
    const w2 = tf.reshape(tf.transpose(weight, [0, 2, 3, 1]), [cout, k * k * cin]);
    return tf.reshape(tf.add(tf.matMul(patches(x, k), tf.transpose(w2)), bias), [n, h, w, cout]) as tf.Tensor4D;
  });
}
