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
import { conv2d } from '../nn/conv2d_general.ts';
import { globalAvgPool, globalMaxPool, maxPool2d } from '../nn/pooling.ts';
import type { StateDict } from './state_dict.ts';
import { batchNormShapes, batchNormState, initTorchvision, type ParameterShapes, type TorchvisionBackbone } from './torchvision.ts';

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
}

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

  const bn = (sd: StateDict, x: tf.Tensor4D, name: string, training: boolean): tf.Tensor4D =>
    batchNorm2d(x, batchNormState(sd, P + name), training && !bnFreeze);

  const bottleneck = (sd: StateDict, x: tf.Tensor4D, p: string, stride: number, training: boolean): tf.Tensor4D =>
    tf.tidy(() => {
      let out = tf.relu(bn(sd, conv2d(x, sd.get(`${P}${p}.conv1.weight`), null), `${p}.bn1`, training)) as tf.Tensor4D;
      out = tf.relu(bn(sd, conv2d(out, sd.get(`${P}${p}.conv2.weight`), null, { stride, padding: 1 }), `${p}.bn2`, training)) as tf.Tensor4D;
      out = bn(sd, conv2d(out, sd.get(`${P}${p}.conv3.weight`), null), `${p}.bn3`, training);
      const identity = sd.has(`${P}${p}.downsample.0.weight`)
        ? bn(sd, conv2d(x, sd.get(`${P}${p}.downsample.0.weight`), null, { stride }), `${p}.downsample.1`, training)
        : x;
      return tf.relu(tf.add(out, identity)) as tf.Tensor4D;
    });

  return {
    name: 'resnet50',
    features: RESNET50_FEATURES,
    prefix: P,
    bnFreeze,
    constructorFreezesBnAffine: true,
    parameterShapes: () => shapes.map(([n, s]) => [n, [...s]]),
    batchNormAffineNames: () => shapes.filter(([n, s]) => s.length === 1 && /(^|\.)(bn\d|downsample\.1)\.(weight|bias)$/.test(n)).map(([n]) => P + n),
    init(sd: StateDict, rng: Random) {
      initTorchvision(sd, P, shapes, rng, 'kaiming-fan-out');
    },
    forward(sd: StateDict, images: tf.Tensor4D, training: boolean): tf.Tensor2D {
      if (images.shape[3] !== 3) throw new Error(`resnet50: expected RGB images [n, h, w, 3], got [${images.shape.join(', ')}]`);
      return tf.tidy(() => {
        let x = conv2d(images, sd.get(`${P}conv1.weight`), null, { stride: 2, padding: 3 });
        x = tf.relu(bn(sd, x, 'bn1', training)) as tf.Tensor4D;
        x = maxPool2d(x, 3, { stride: 2, padding: 1 });
        LAYERS.forEach(([blocks, , stride], l) => {
          for (let b = 0; b < blocks; b++) x = bottleneck(sd, x, `layer${l + 1}.${b}`, b === 0 ? stride : 1, training);
        });
        return pooling ? (tf.add(globalAvgPool(x), globalMaxPool(x)) as tf.Tensor2D) : globalAvgPool(x);
      });
    },
  };
}
