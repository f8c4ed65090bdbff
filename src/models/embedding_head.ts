// The embedding head of the metric model: z = Linear(BatchNorm1d(features)), under the official
// names feature_extractor.fc.0 (BN1d over n_mid) and feature_extractor.fc.1 (Linear n_mid → D).
import * as tf from '@tensorflow/tfjs';
import { batchNorm1d } from '../nn/batch_norm.ts';
import { linear } from '../nn/linear.ts';
import type { StateDict } from './state_dict.ts';

export const HEAD_BN = 'feature_extractor.fc.0';
export const HEAD_LINEAR = 'feature_extractor.fc.1';

export function embeddingHead(sd: StateDict, features: tf.Tensor2D, training: boolean, normalize = false): tf.Tensor2D {
  return tf.tidy(() => {
    const bn = batchNorm1d(
      features,
      {
        weight: sd.get(`${HEAD_BN}.weight`),
        bias: sd.get(`${HEAD_BN}.bias`),
        runningMean: sd.get(`${HEAD_BN}.running_mean`),
        runningVar: sd.get(`${HEAD_BN}.running_var`),
        onTrack: () => sd.increment(`${HEAD_BN}.num_batches_tracked`),
      },
      training,
    );
    const z = linear(bn, sd.get(`${HEAD_LINEAR}.weight`), sd.get(`${HEAD_LINEAR}.bias`)) as tf.Tensor2D;
    // MODEL.NORM (False in every official config): z/√(Σz² + 1e-12).
    return normalize ? (tf.div(z, tf.sqrt(tf.add(tf.sum(tf.square(z), 1, true), 1e-12))) as tf.Tensor2D) : z;
  });
}
