// torchvision's GoogLeNet (Inception v1 with BatchNorm) as a Backbone, as the official code runs it
// (docs/algorithm.md §1.3, §2.1): transform_input (x′_c = x_c·σ_c/0.5 + (μ_c − 0.5)/0.5 on ImageNet-
// normalised input), conv1 (7×7/2) → maxpool1 → conv2 (1×1) → conv3 (3×3) → maxpool2 →
// inception3a, 3b → maxpool3 → inception4a..4e → maxpool4 (2×2/2) → inception5a, 5b →
// AdaptiveAvgPool2d(1) → 1024 features; no dropout, no fc, aux heads deleted. Every max-pool uses
// ceil_mode; BasicConv2d = conv (no bias) → BatchNorm2d(eps 1e-3) → ReLU. torchvision's inception
// "5×5" branch is a 3×3 convolution, kept as is. NHWC inside.
//
// Parameters: torchvision's names under 'feature_extractor.backbone.' (the official backbone is
// the torchvision model itself); the unused fc is not kept.
import * as tf from '@tensorflow/tfjs';
import type { Random } from '../engine/random.ts';
import { batchNorm2d } from '../nn/batch_norm2d.ts';
import { conv2d } from '../nn/conv2d_general.ts';
import { globalAvgPool, maxPool2d } from '../nn/pooling.ts';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/transforms.ts';
import type { StateDict } from './state_dict.ts';
import { batchNorm as onnxBatchNorm, convNoBias, globalPool, maxPool as onnxMaxPool } from '../export/onnx_layers.ts';
import type { OnnxGraph } from '../export/onnx_graph.ts';
import { batchNormShapes, batchNormState, initTorchvision, type ParameterShapes, perSampleWhenBnFrozen, type TorchvisionBackbone } from './torchvision.ts';

export const GOOGLENET_PREFIX = 'feature_extractor.backbone.';
const BN_EPS = 1e-3;
/** Feature width n_mid: inception5b's output channels. */
export const GOOGLENET_FEATURES = 1024;

/** Inception(in, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj), torchvision's table. */
const INCEPTION: ReadonlyArray<[name: string, cfg: [number, number, number, number, number, number, number]]> = [
  ['inception3a', [192, 64, 96, 128, 16, 32, 32]],
  ['inception3b', [256, 128, 128, 192, 32, 96, 64]],
  ['inception4a', [480, 192, 96, 208, 16, 48, 64]],
  ['inception4b', [512, 160, 112, 224, 24, 64, 64]],
  ['inception4c', [512, 128, 128, 256, 24, 64, 64]],
  ['inception4d', [512, 112, 144, 288, 32, 64, 64]],
  ['inception4e', [528, 256, 160, 320, 32, 128, 128]],
  ['inception5a', [832, 256, 160, 320, 32, 128, 128]],
  ['inception5b', [832, 384, 192, 384, 48, 128, 128]],
];

export interface GoogLeNetOptions {
  /** BatchNorm2d in evaluation mode during training (official BN_FREEZE); default true. */
  bnFreeze?: boolean;
  /** torchvision's transform_input (true in the official code, which loads pretrained weights); default true. */
  transformInput?: boolean;
}

function basicConvShapes(name: string, cin: number, cout: number, k: number): ParameterShapes {
  return [[`${name}.conv.weight`, [cout, cin, k, k]], ...batchNormShapes(`${name}.bn`, cout)];
}

function googlenetShapes(): ParameterShapes {
  const shapes: ParameterShapes = [...basicConvShapes('conv1', 3, 64, 7), ...basicConvShapes('conv2', 64, 64, 1), ...basicConvShapes('conv3', 64, 192, 3)];
  for (const [name, [cin, c1, c3r, c3, c5r, c5, pp]] of INCEPTION) {
    shapes.push(
      ...basicConvShapes(`${name}.branch1`, cin, c1, 1),
      ...basicConvShapes(`${name}.branch2.0`, cin, c3r, 1),
      ...basicConvShapes(`${name}.branch2.1`, c3r, c3, 3),
      ...basicConvShapes(`${name}.branch3.0`, cin, c5r, 1),
      ...basicConvShapes(`${name}.branch3.1`, c5r, c5, 3),
      ...basicConvShapes(`${name}.branch4.1`, cin, pp, 1),
    );
  }
  return shapes;
}

/** transform_input on NCHW: x·(σ_c/0.5) + (μ_c − 0.5)/0.5 per channel, the float32 constants of the forward. */
function transformInputOnnx(g: OnnxGraph, x: string): string {
  const scale = g.floats(
    IMAGENET_STD.map((s) => s / 0.5),
    [1, 3, 1, 1],
    'transform_scale',
  );
  const shift = g.floats(
    IMAGENET_MEAN.map((m) => (m - 0.5) / 0.5),
    [1, 3, 1, 1],
    'transform_shift',
  );
  return g.node('Add', [g.node('Mul', [x, scale]), shift]);
}

export function googlenet(options: GoogLeNetOptions = {}): TorchvisionBackbone {
  const bnFreeze = options.bnFreeze ?? true;
  const transformInput = options.transformInput ?? true;
  const P = GOOGLENET_PREFIX;
  const shapes = googlenetShapes();

  const basicConv = (sd: StateDict, x: tf.Tensor4D, name: string, training: boolean, stride = 1): tf.Tensor4D =>
    tf.tidy(() => {
      const w = sd.get(`${P}${name}.conv.weight`);
      const k = w.shape[2] as number;
      const y = conv2d(x, w, null, { stride, padding: (k - 1) / 2 });
      return batchNorm2d(y, batchNormState(sd, `${P}${name}.bn`), training && !bnFreeze, { eps: BN_EPS, relu: true });
    });

  const inception = (sd: StateDict, x: tf.Tensor4D, name: string, training: boolean): tf.Tensor4D =>
    tf.tidy(() => {
      const b1 = basicConv(sd, x, `${name}.branch1`, training);
      const b2 = basicConv(sd, basicConv(sd, x, `${name}.branch2.0`, training), `${name}.branch2.1`, training);
      const b3 = basicConv(sd, basicConv(sd, x, `${name}.branch3.0`, training), `${name}.branch3.1`, training);
      const b4 = basicConv(sd, maxPool2d(x, 3, { stride: 1, padding: 1, ceilMode: true }), `${name}.branch4.1`, training);
      return tf.concat([b1, b2, b3, b4], 3);
    });

  return {
    name: 'googlenet',
    features: GOOGLENET_FEATURES,
    prefix: P,
    bnFreeze,
    constructorFreezesBnAffine: false,
    parameterShapes: () => shapes.map(([n, s]) => [n, [...s]]),
    batchNormAffineNames: () => shapes.filter(([n]) => /\.bn\.(weight|bias)$/.test(n)).map(([n]) => P + n),
    // BatchNorm frozen is the only batch coupling of the training forward (no dropout: torchvision's sits in the fc, not kept).
    perSampleParameters: () => perSampleWhenBnFrozen(bnFreeze, P, shapes),
    init(sd: StateDict, rng: Random) {
      initTorchvision(sd, P, shapes, rng, 'googlenet');
    },
    forward(sd: StateDict, images: tf.Tensor4D, training: boolean): tf.Tensor2D {
      if (images.shape[3] !== 3) throw new Error(`googlenet: expected RGB images [n, h, w, 3], got [${images.shape.join(', ')}]`);
      return tf.tidy(() => {
        let x: tf.Tensor4D = images;
        if (transformInput) {
          const scale = tf.tensor1d(IMAGENET_STD.map((s) => s / 0.5));
          const shift = tf.tensor1d(IMAGENET_MEAN.map((m) => (m - 0.5) / 0.5));
          x = tf.add(tf.mul(x, scale), shift) as tf.Tensor4D;
        }
        const pool = (t: tf.Tensor4D, k = 3) => maxPool2d(t, k, { stride: 2, ceilMode: true });
        x = pool(basicConv(sd, x, 'conv1', training, 2));
        x = pool(basicConv(sd, basicConv(sd, x, 'conv2', training), 'conv3', training));
        x = pool(inception(sd, inception(sd, x, 'inception3a', training), 'inception3b', training));
        for (const name of ['inception4a', 'inception4b', 'inception4c', 'inception4d', 'inception4e']) x = inception(sd, x, name, training);
        x = pool(x, 2);
        x = inception(sd, inception(sd, x, 'inception5a', training), 'inception5b', training);
        return globalAvgPool(x);
      });
    },
    exportOnnx(sd, g, input) {
      // The forward above in NCHW, node for node (evaluation mode: BatchNorm's running statistics, eps 1e-3).
      const basic = (x: string, name: string, stride = 1): string => {
        const w = sd.get(`${P}${name}.conv.weight`);
        const k = w.shape[2] as number;
        return g.node('Relu', [onnxBatchNorm(g, sd, convNoBias(g, x, w, stride, (k - 1) / 2, name), `${P}${name}.bn`, BN_EPS)]);
      };
      const inceptionOnnx = (x: string, name: string): string =>
        g.node(
          'Concat',
          [
            basic(x, `${name}.branch1`),
            basic(basic(x, `${name}.branch2.0`), `${name}.branch2.1`),
            basic(basic(x, `${name}.branch3.0`), `${name}.branch3.1`),
            basic(onnxMaxPool(g, x, 3, 1, 1, true), `${name}.branch4.1`),
          ],
          { axis: { i: 1 } },
        );
      let x = transformInput ? transformInputOnnx(g, input) : input;
      const pool = (t: string, k = 3): string => onnxMaxPool(g, t, k, 2, 0, true);
      x = pool(basic(x, 'conv1', 2));
      x = pool(basic(basic(x, 'conv2'), 'conv3'));
      x = pool(inceptionOnnx(inceptionOnnx(x, 'inception3a'), 'inception3b'));
      for (const name of ['inception4a', 'inception4b', 'inception4c', 'inception4d', 'inception4e']) x = inceptionOnnx(x, name);
      x = pool(x, 2);
      x = inceptionOnnx(inceptionOnnx(x, 'inception5a'), 'inception5b');
      return globalPool(g, x, 'avg');
    },
  };
}
