// torchvision's ResNet-50 as a Backbone (docs/algorithm.md §2.1): conv1 (7×7, stride 2, pad 3) → bn1 →
// ReLU → maxpool (3×3, stride 2, pad 1) → layer1..layer4 of Bottleneck v1.5 blocks (1×1 → 3×3
// with the stride → 1×1 ×4, a 1×1 strided projection on the first block of each layer), then
// global average pool + global max pool, summed (POOLING True, every RES config) or the average
// pool alone: 2048 features. BatchNorm eps 1e-5. NHWC inside; images are ImageNet-normalised.
//
// Parameters: torchvision's names under 'feature_extractor.backbone.model.' (the official
// Resnet50 wrapper keeps the torchvision model as `.model`); torchvision's unused fc is not kept.
import * as tf from '@tensorflow/tfjs';
import type { Random } from '../engine/random.ts';
import { batchNorm2d } from '../nn/batch_norm2d.ts';
import { checkpoint } from '../nn/checkpoint.ts';
import { conv2d } from '../nn/conv2d_general.ts';
import { globalAvgPool, globalMaxPool, maxPool2d } from '../nn/pooling.ts';
import type { StateDict } from './state_dict.ts';
import { batchNorm as onnxBatchNorm, convNoBias, globalPool, maxPool as onnxMaxPool } from '../export/onnx_layers.ts';
import { batchNormShapes, batchNormState, initTorchvision, type ParameterShapes, perSampleWhenBnFrozen, type TorchvisionBackbone } from './torchvision.ts';

export const RESNET50_PREFIX = 'feature_extractor.backbone.model.';
const LAYERS: ReadonlyArray<[blocks: number, planes: number, stride: number]> = [
  [3, 64, 1],
  [4, 128, 2],
  [6, 256, 2],
  [3, 512, 2],
];
const EXPANSION = 4;
/** Feature width n_mid: layer4's output channels (average and max pooling are summed, not concatenated). */
export const RESNET50_FEATURES = 512 * EXPANSION;

export interface ResNet50Options {
  /** BatchNorm2d in evaluation mode during training (official BN_FREEZE); default true. */
  bnFreeze?: boolean;
  /** Global average + max pooling, summed (official POOLING True); false: average only. Default true. */
  pooling?: boolean;
  /**
   * Recompute each bottleneck (and the stem) in the backward pass instead of keeping its
   * activations, with BatchNorm frozen: one more forward pass, but only the block inputs stay
   * alive, which is what lets the official batch (81 images at 224 px) fit the 4 GB wasm heap.
   * 'auto' (default): for batches of at least CHECKPOINT_MIN_IMAGES 224-px images.
   */
  checkpoint?: boolean | 'auto';
}

/** From this many 224-px images on (in pixels: n·h·w), 'auto' recomputes the blocks. */
export const CHECKPOINT_MIN_IMAGES = 48;

function resnet50Shapes(): ParameterShapes {
  const shapes: ParameterShapes = [['conv1.weight', [64, 3, 7, 7]], ...batchNormShapes('bn1', 64)];
  let inplanes = 64;
  LAYERS.forEach(([blocks, planes, stride], l) => {
    for (let b = 0; b < blocks; b++) {
      const p = `layer${l + 1}.${b}`;
      shapes.push(
        [`${p}.conv1.weight`, [planes, inplanes, 1, 1]],
        ...batchNormShapes(`${p}.bn1`, planes),
        [`${p}.conv2.weight`, [planes, planes, 3, 3]],
        ...batchNormShapes(`${p}.bn2`, planes),
        [`${p}.conv3.weight`, [planes * EXPANSION, planes, 1, 1]],
        ...batchNormShapes(`${p}.bn3`, planes * EXPANSION),
      );
      if (b === 0 && (stride !== 1 || inplanes !== planes * EXPANSION)) {
        shapes.push([`${p}.downsample.0.weight`, [planes * EXPANSION, inplanes, 1, 1]], ...batchNormShapes(`${p}.downsample.1`, planes * EXPANSION));
      }
      inplanes = planes * EXPANSION;
    }
  });
  return shapes;
}

export function resnet50(options: ResNet50Options = {}): TorchvisionBackbone {
  const bnFreeze = options.bnFreeze ?? true;
  const pooling = options.pooling ?? true;
  const P = RESNET50_PREFIX;
  const shapes = resnet50Shapes();

  /** A parameter by its name under the prefix; a recomputed block reads its own copies (`given`). */
  type Get = (name: string) => tf.Tensor;

  // BatchNorm with the ReLU (and the residual) that follows it, fused where the kernels allow.
  const bn = (sd: StateDict, get: Get, x: tf.Tensor4D, name: string, training: boolean, relu = false, residual?: tf.Tensor4D): tf.Tensor4D =>
    batchNorm2d(x, { ...batchNormState(sd, P + name), weight: get(`${name}.weight`), bias: get(`${name}.bias`) }, training && !bnFreeze, {
      relu,
      ...(residual ? { residual } : {}),
    });

  const bottleneck = (sd: StateDict, get: Get, x: tf.Tensor4D, p: string, stride: number, training: boolean): tf.Tensor4D =>
    tf.tidy(() => {
      let out = bn(sd, get, conv2d(x, get(`${p}.conv1.weight`), null), `${p}.bn1`, training, true);
      out = bn(sd, get, conv2d(out, get(`${p}.conv2.weight`), null, { stride, padding: 1 }), `${p}.bn2`, training, true);
      const identity = sd.has(`${P}${p}.downsample.0.weight`)
        ? bn(sd, get, conv2d(x, get(`${p}.downsample.0.weight`), null, { stride }), `${p}.downsample.1`, training)
        : x;
      return bn(sd, get, conv2d(out, get(`${p}.conv3.weight`), null), `${p}.bn3`, training, true, identity);
    });

  const stem = (sd: StateDict, get: Get, images: tf.Tensor4D, training: boolean): tf.Tensor4D =>
    tf.tidy(() => {
      const x = conv2d(images, get('conv1.weight'), null, { stride: 2, padding: 3 });
      return maxPool2d(bn(sd, get, x, 'bn1', training, true), 3, { stride: 2, padding: 1 });
    });

  /**
   * block(x) as one recomputed node: its parameters (the names under the `scopes`) are inputs of the
   * node, so that they get their gradients from the recomputation.
   */
  const recomputed = (sd: StateDict, scopes: string[], x: tf.Tensor4D, block: (get: Get, x: tf.Tensor4D) => tf.Tensor4D): tf.Tensor4D => {
    const names = shapes.map(([n]) => n).filter((n) => scopes.some((s) => n.startsWith(s)) && !/\.(running_mean|running_var|num_batches_tracked)$/.test(n));
    return checkpoint(
      (xin, ...params) => {
        const own = new Map(names.map((n, i) => [n, params[i] as tf.Tensor]));
        return block((n) => own.get(n) ?? sd.get(P + n), xin as tf.Tensor4D);
      },
      [x, ...names.map((n) => sd.get(P + n))],
    ) as tf.Tensor4D;
  };

  return {
    name: 'resnet50',
    features: RESNET50_FEATURES,
    prefix: P,
    bnFreeze,
    constructorFreezesBnAffine: true,
    parameterShapes: () => shapes.map(([n, s]) => [n, [...s]]),
    batchNormAffineNames: () => shapes.filter(([n, s]) => s.length === 1 && /(^|\.)(bn\d|downsample\.1)\.(weight|bias)$/.test(n)).map(([n]) => P + n),
    // BatchNorm frozen is the only batch coupling of the training forward (there is no dropout).
    perSampleParameters: () => perSampleWhenBnFrozen(bnFreeze, P, shapes),
    init(sd: StateDict, rng: Random) {
      initTorchvision(sd, P, shapes, rng, 'kaiming-fan-out');
    },
    forward(sd: StateDict, images: tf.Tensor4D, training: boolean): tf.Tensor2D {
      if (images.shape[3] !== 3) throw new Error(`resnet50: expected RGB images [n, h, w, 3], got [${images.shape.join(', ')}]`);
      const [n, h, w] = images.shape;
      // Only with BatchNorm frozen: a recomputation must not move the running statistics twice.
      const recompute =
        training && bnFreeze && (options.checkpoint === true || ((options.checkpoint ?? 'auto') === 'auto' && n * h * w >= CHECKPOINT_MIN_IMAGES * 224 * 224));
      const get: Get = (name) => sd.get(P + name);
      return tf.tidy(() => {
        let x = recompute ? recomputed(sd, ['conv1.', 'bn1.'], images, (g, xin) => stem(sd, g, xin, training)) : stem(sd, get, images, training);
        LAYERS.forEach(([blocks, , stride], l) => {
          for (let b = 0; b < blocks; b++) {
            const p = `layer${l + 1}.${b}`;
            const s = b === 0 ? stride : 1;
            x = recompute ? recomputed(sd, [`${p}.`], x, (g, xin) => bottleneck(sd, g, xin, p, s, training)) : bottleneck(sd, get, x, p, s, training);
          }
        });
        return pooling ? (tf.add(globalAvgPool(x), globalMaxPool(x)) as tf.Tensor2D) : globalAvgPool(x);
      });
    },
    exportOnnx(sd, g, input) {
      // The evaluation-mode forward in NCHW: BatchNorm with its running statistics (eps 1e-5, as
      // batchNorm2d's default), the same strides and paddings; ONNX Conv takes the OIHW weights as they are.
      const convBn = (x: string, conv: string, bnName: string, stride: number, padding: number): string =>
        onnxBatchNorm(g, sd, convNoBias(g, x, sd.get(`${P}${conv}`), stride, padding, conv), P + bnName, 1e-5);
      let x = onnxMaxPool(g, g.node('Relu', [convBn(input, 'conv1.weight', 'bn1', 2, 3)]), 3, 2, 1);
      LAYERS.forEach(([blocks, , stride], l) => {
        for (let b = 0; b < blocks; b++) {
          const p = `layer${l + 1}.${b}`;
          const s = b === 0 ? stride : 1;
          let out = g.node('Relu', [convBn(x, `${p}.conv1.weight`, `${p}.bn1`, 1, 0)]);
          out = g.node('Relu', [convBn(out, `${p}.conv2.weight`, `${p}.bn2`, s, 1)]);
          const identity = sd.has(`${P}${p}.downsample.0.weight`) ? convBn(x, `${p}.downsample.0.weight`, `${p}.downsample.1`, s, 0) : x;
          x = g.node('Relu', [g.node('Add', [convBn(out, `${p}.conv3.weight`, `${p}.bn3`, 1, 0), identity])]);
        }
      });
      return pooling ? g.node('Add', [globalPool(g, x, 'avg'), globalPool(g, x, 'max')]) : globalPool(g, x, 'avg');
    },
  };
}
