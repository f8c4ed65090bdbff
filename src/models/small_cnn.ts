// A small convolutional backbone for small images trained from scratch (e.g. 28×28 Fashion-MNIST):
// three 3×3 convolutions with ReLU (32, 64, 128 channels), 2×2 max-pooling after the first two,
// then global average pooling → 128 features. Parameters live under feature_extractor.backbone.*.
import * as tf from '@tensorflow/tfjs';
import type { Random } from '../engine/random.ts';
import { conv2d } from '../nn/conv2d_general.ts';
import { maxPool2d } from '../nn/pooling.ts';
import type { StateDict } from './state_dict.ts';
import type { Backbone } from './backbone.ts';

const PREFIX = 'feature_extractor.backbone.';
const CHANNELS = [32, 64, 128];
/** Feature width n_mid: the last convolution's channels. */
export const SMALL_CNN_FEATURES = CHANNELS[CHANNELS.length - 1] as number;

export function smallCnn(inputChannels: number): Backbone {
  return {
    name: 'small-cnn',
    features: SMALL_CNN_FEATURES,
    init(sd: StateDict, rng: Random) {
      let cin = inputChannels;
      CHANNELS.forEach((cout, i) => {
        // PyTorch's default Conv2d init: U(±1/√fan_in) for weights and bias.
        const bound = 1 / Math.sqrt(cin * 9);
        const w = tf.tensor4d(
          Float32Array.from({ length: cout * cin * 9 }, () => (2 * rng.random() - 1) * bound),
          [cout, cin, 3, 3],
        );
        const b = tf.tensor1d(Float32Array.from({ length: cout }, () => (2 * rng.random() - 1) * bound));
        sd.set(`${PREFIX}conv${i + 1}.weight`, w);
        sd.set(`${PREFIX}conv${i + 1}.bias`, b);
        tf.dispose([w, b]);
        cin = cout;
      });
    },
    forward(sd: StateDict, images: tf.Tensor4D) {
      return tf.tidy(() => {
        let x: tf.Tensor4D = images;
        CHANNELS.forEach((_, i) => {
          x = tf.relu(conv2d(x, sd.get(`${PREFIX}conv${i + 1}.weight`), sd.get(`${PREFIX}conv${i + 1}.bias`), { stride: 1, padding: 1 }));
          // Our max-pool, not tf.maxPool: the wasm backend's MaxPoolGrad loses gradient.
          if (i < CHANNELS.length - 1) x = maxPool2d(x, 2, { stride: 2 });
        });
        return tf.mean(x, [1, 2]) as tf.Tensor2D;
      });
    },
    exportOnnx(sd, g, input) {
      // NCHW throughout: ONNX's Conv takes PyTorch's weight layout as it is.
      let x = input;
      CHANNELS.forEach((_, i) => {
        const w = g.weight(sd.get(`${PREFIX}conv${i + 1}.weight`), `conv${i + 1}_w`);
        const b = g.weight(sd.get(`${PREFIX}conv${i + 1}.bias`), `conv${i + 1}_b`);
        x = g.node('Relu', [g.node('Conv', [x, w, b], { kernel_shape: { ints: [3, 3] }, pads: { ints: [1, 1, 1, 1] }, strides: { ints: [1, 1] } })]);
        if (i < CHANNELS.length - 1) x = g.node('MaxPool', [x], { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] } });
      });
      return g.node('Flatten', [g.node('GlobalAveragePool', [x])], { axis: { i: 1 } });
    },
  };
}
