// Child process of test/dnnl.test.ts: filter gradients of 1x1 convolutions with stride 2 and fewer
// input channels than oneDNN's channel block, the shapes whose unit-stride copy overran oneDNN's
// scratchpad with 2 threads. Run under glibc's checking allocator, an overrun aborts the process.
import './backend.ts';
import * as tf from '@tensorflow/tfjs';

for (const [n, h, w, c, o] of [
  [1, 12, 10, 1, 3],
  [2, 10, 8, 3, 4],
  [2, 16, 16, 12, 8],
  [1, 9, 7, 15, 5],
] as const) {
  for (let repeat = 0; repeat < 3; repeat++) {
    const x = tf.randomNormal<tf.Rank.R4>([n, h, w, c], 0, 1, 'float32', 1);
    const f = tf.randomNormal<tf.Rank.R4>([1, 1, c, o], 0, 1, 'float32', 2);
    const dw = tf.grad((filter) => tf.conv2d(x, filter as tf.Tensor4D, 2, 'valid').sum())(f);
    dw.dataSync();
    tf.dispose([x, f, dw]);
  }
}
console.log('ok');
