// The stub backbone of the epoch-level reference fixtures (scripts/golden/make_run_fixture.py,
// StubBackbone): images [n, 1, 1, F_in] → 1×1 convolution (no bias) → BatchNorm2d → tanh →
// [n, n_mid] (tanh, not ReLU: see the Python stub, a ReLU would leave the BatchNorm2d bias a
// mathematically zero gradient behind the head's BatchNorm1d). It is small, yet it has what the loop's freezing acts on: convolution weights that the
// warm-up freezes, and a BatchNorm2d that BN_FREEZE keeps in evaluation mode and whose weight and
// bias the official ResNet-50 constructor freezes (QUIRK 6; the stub's Python twin does the same).
// For reference checks only: it is not in the backbone registry, so no configuration can name it.
import * as tf from '@tensorflow/tfjs';
import type { Random } from '../engine/random.ts';
import { batchNorm2d } from '../nn/batch_norm2d.ts';
import { conv2d } from '../nn/conv2d_general.ts';
import type { StateDict } from '../models/state_dict.ts';
import { batchNormShapes, batchNormState, initTorchvision, type ParameterShapes, type TorchvisionBackbone } from '../models/torchvision.ts';

const PREFIX = 'feature_extractor.backbone.';

export function referenceStubBackbone(inputFeatures: number, features: number, bnFreeze: boolean): TorchvisionBackbone {
  const shapes: ParameterShapes = [['conv.weight', [features, inputFeatures, 1, 1]], ...batchNormShapes('bn', features)];
  return {
    name: 'reference-stub',
    features,
    prefix: PREFIX,
    bnFreeze,
    // As the official ResNet-50 wrapper, which the fixture's stub stands in for.
    constructorFreezesBnAffine: true,
    parameterShapes: () => shapes,
    batchNormAffineNames: () => [`${PREFIX}bn.weight`, `${PREFIX}bn.bias`],
    init(sd: StateDict, rng: Random) {
      // A fixture loads its own state over this.
      initTorchvision(sd, PREFIX, shapes, rng, 'kaiming-fan-out');
    },
    forward(sd: StateDict, images: tf.Tensor4D, training: boolean): tf.Tensor2D {
      return tf.tidy(() => {
        const x = conv2d(images, sd.get(`${PREFIX}conv.weight`), null);
        const y = tf.tanh(batchNorm2d(x, batchNormState(sd, `${PREFIX}bn`), training && !bnFreeze));
        return tf.reshape(y, [images.shape[0], features]) as tf.Tensor2D;
      });
    },
  };
}
