// The metric model: backbone → BatchNorm1d → Linear (feature_extractor.*), plus, for GCA-HNG, the
// GNN (gnn.*) and the softmax classifier (softmax_classifier.*), in one state dict.
import * as tf from '@tensorflow/tfjs';
import { Random, STREAMS } from '../engine/random.ts';
import type { Backbone } from './backbone.ts';
import { embeddingHead } from './embedding_head.ts';
import { initEmbeddingHead, initGenerator, initOrthogonalHeadLinear, initPairMlp } from './init.ts';
import { StateDict } from './state_dict.ts';
import type { GnnShape } from '../gca_hng/gnn/config.ts';

export interface MetricModel {
  sd: StateDict;
  backbone: Backbone;
  shape: GnnShape;
  normalize: boolean;
}

export function createMetricModel(backbone: Backbone, shape: GnnShape, seed: number, normalize: boolean, withGenerator: boolean, pairMlp = false): MetricModel {
  const sd = new StateDict();
  const rng = new Random(seed, STREAMS.init);
  backbone.init(sd, rng);
  initEmbeddingHead(sd, backbone.features, shape.D, rng);
  if (backbone.headInit === 'orthogonal') initOrthogonalHeadLinear(sd, rng);
  if (withGenerator) initGenerator(sd, shape, rng);
  if (withGenerator && pairMlp) initPairMlp(sd, shape.D, rng);
  return { sd, backbone, shape, normalize };
}

/** z = head(backbone(images)); `training` selects batch statistics in the head's BatchNorm. */
export function embed(m: MetricModel, images: tf.Tensor4D, training: boolean): tf.Tensor2D {
  return tf.tidy(() => embeddingHead(m.sd, m.backbone.forward(m.sd, images, training), training, m.normalize));
}
