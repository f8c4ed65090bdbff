// The metric model: backbone → BatchNorm1d → Linear (feature_extractor.*), plus, for GCA-HNG, the
// GNN (gnn.*) and the softmax classifier (softmax_classifier.*), in one state dict.
import * as tf from '@tensorflow/tfjs';
import { Random, STREAMS } from '../engine/random.ts';
import { DEFAULT_BACKBONE_CHUNK, chunkedBackbone } from '../nn/chunked_backbone.ts';
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
  /**
   * Images per chunk of a per-sample backbone's training forward (model.backboneChunk; default
   * DEFAULT_BACKBONE_CHUNK): a larger batch goes through the backbone in chunks, its gradient
   * summed over them (src/nn/chunked_backbone.ts), so that memory follows the chunk.
   */
  backboneChunk?: number;
}

export interface EmbedOptions {
  /** Parameters the step does not update (src/train/freezing.ts): a chunked backbone computes no gradient for them. */
  frozen?: ReadonlySet<string>;
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

/**
 * z = head(backbone(images)); `training` selects batch statistics in the head's BatchNorm. A
 * training batch larger than m.backboneChunk goes through a per-sample backbone in chunks
 * (backboneFeatures); the head always sees the whole batch.
 */
export function embed(m: MetricModel, images: tf.Tensor4D, training: boolean, options: EmbedOptions = {}): tf.Tensor2D {
  return tf.tidy(() => embeddingHead(m.sd, backboneFeatures(m, images, training, options), training, m.normalize));
}

/**
 * Whether a training forward of n images goes through the backbone in chunks: only a per-sample
 * backbone (BatchNorm frozen, no dropout), and only when n exceeds the chunk size.
 */
export function backboneChunked(m: MetricModel, n: number, training: boolean): boolean {
  return chunkedParameters(m, n, training) !== null;
}

/** The per-sample backbone's parameters when a training forward of n images is chunked, else null. */
function chunkedParameters(m: MetricModel, n: number, training: boolean): string[] | null {
  if (!training || n <= (m.backboneChunk ?? DEFAULT_BACKBONE_CHUNK)) return null;
  return m.backbone.perSampleParameters?.() ?? null;
}

/** backbone(images), in chunks where backboneChunked says so (the gradient is the full batch's, up to summation order). */
export function backboneFeatures(m: MetricModel, images: tf.Tensor4D, training: boolean, options: EmbedOptions = {}): tf.Tensor2D {
  const params = chunkedParameters(m, images.shape[0], training);
  if (params === null) return m.backbone.forward(m.sd, images, training);
  // Only weights that can learn are inputs of the chunked op: a buffer or a frozen parameter
  // would cost a gradient nobody reads.
  const names = params.filter((n) => m.sd.get(n).trainable && !options.frozen?.has(n));
  return chunkedBackbone(
    (x) => m.backbone.forward(m.sd, x, true),
    images,
    names.map((n) => m.sd.get(n)),
    m.backboneChunk ?? DEFAULT_BACKBONE_CHUNK,
  );
}
