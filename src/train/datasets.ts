// Opens the configured dataset and backbone for training: the two class-disjoint splits as the
// trainer's ImageSplits, the backbone that fits their images, and the class-balanced sampler. One
// data path per way images reach a backbone (its `input` in src/models/backbones.ts):
//   small-images (small-cnn) on fashion-mnist / folder: small images in memory, optional seeded flips;
//   paper-pipeline (resnet50, googlenet, dino-vits16): the paper's 224-px pipeline (seeded RandomResizedCrop +
//     flip in training, Resize 256 + CenterCrop 224 for evaluation), torchvision weights from model.weights;
//   frozen-features (onnx), and resnet50 / googlenet with model.frozen: features of the evaluation
//     transform (and of mirrored images, for flips) extracted once, with onnxruntime or with our
//     own backbone in eval mode, and cached; the head and GCA-HNG train on the cache.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Dataset, DatasetSplit } from '../data/dataset.ts';
import { loadFashionMnist } from '../data/fashion_mnist.ts';
import { openImageFolder } from '../data/image_folder.ts';
import { openBenchmark } from '../data/benchmarks.ts';
import type { FileSplit } from '../data/pipeline.ts';
import { IMAGENET_NORMALIZATION, PAPER_TEST_TRANSFORM, type TestTransform } from '../data/transforms.ts';
import { cachedFeatureImageSplit, cachedSplitFeatures, type FeatureCacheOptions } from '../data/feature_cache.ts';
import { BalancedBatchSampler, type SamplerState } from '../samplers/balanced_batch_sampler.ts';
import type { Backbone } from '../models/backbone.ts';
import { backboneSpec, backbonesTaking, pretrainedBackboneSpec } from '../models/backbones.ts';
import { BackboneFeatureModel, loadPretrainedWeights, type Pooling } from '../models/features.ts';
import { featureIdentityBackbone, OnnxModelError } from '../models/onnx_backbone.ts';
import type { StateDict } from '../models/state_dict.ts';
import { UserError } from '../errors.ts';
import { nameList } from '../text.ts';
import type { TrainConfig } from './config.ts';
import type { ImageSplit } from './image_split.ts';
import type { BatchSampler } from './trainer.ts';
import { CONFIG_SETTINGS, resolveWeights } from '../weights/fetch.ts';

/** Mirrors an NHWC batch left-right where `flips[i]` is set. */
function flipRows(pixels: Float32Array, shape: readonly number[], flips: readonly boolean[]): void {
  const [, h, w, c] = shape as [number, number, number, number];
  flips.forEach((flip, n) => {
    if (!flip) return;
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w / 2; x++)
        for (let ch = 0; ch < c; ch++) {
          const a = ((n * h + y) * w + x) * c + ch;
          const b = ((n * h + y) * w + (w - 1 - x)) * c + ch;
          [pixels[a], pixels[b]] = [pixels[b] as number, pixels[a] as number];
        }
  });
}

/** Resize 256 + CenterCrop 224, or the same proportions for a backbone of another input side. */
export function evaluationTransform(c: TrainConfig): TestTransform {
  const size = backboneSpec(c.model.backbone).inputSize({ imageSize: c.dataset.imageSize, onnxInputSize: c.model.onnxInputSize });
  if (size === PAPER_TEST_TRANSFORM.size) return PAPER_TEST_TRANSFORM;
  return { kind: 'test', resize: Math.round((size * PAPER_TEST_TRANSFORM.resize) / PAPER_TEST_TRANSFORM.size), size };
}

/** Small images held in memory: augmentation is a flip for odd seeds. */
function asImageSplit(split: DatasetSplit): ImageSplit {
  return {
    size: split.size,
    labels: split.labels,
    numClasses: split.classNames.length,
    async images(indices, augment) {
      const batch = await split.load(indices);
      if (augment)
        flipRows(
          batch.pixels,
          batch.shape,
          augment.map((s) => (s & 1) === 1),
        );
      return tf.tensor4d(batch.pixels, batch.shape);
    },
  };
}

/** Files through the paper's pipeline: seeded random resized crop + flip in training. */
function pipelineSplit(split: FileSplit, queryCount?: number): ImageSplit {
  return {
    size: split.size,
    labels: split.labels,
    numClasses: split.classNames.length,
    queryCount,
    async images(indices, augment) {
      const batch = augment ? await split.loadTrain(indices, augment) : await split.load(indices);
      return tf.tensor4d(batch.pixels, batch.shape);
    },
  };
}

export interface TrainingData {
  train: ImageSplit;
  test: ImageSplit;
  backbone: Backbone;
  /** Loads pretrained backbone weights into a freshly initialised state dict (if configured). */
  loadWeights?: (sd: StateDict) => void;
  sampler: (seed: number) => BatchSampler;
}

async function openDataset(c: TrainConfig, warn: (m: string) => void, paper: boolean): Promise<{ ds: Dataset; queryCount?: number }> {
  const root = c.dataset.root as string;
  const transform = evaluationTransform(c);
  switch (c.dataset.name) {
    case 'fashion-mnist':
      if (paper)
        throw new UserError(
          `model.backbone ${c.model.backbone} needs 224-px colour images; fashion-mnist is 28×28 grayscale (use ${nameList(backbonesTaking(['small-images']))})`,
        );
      return { ds: loadFashionMnist({ normalize: true }) };
    case 'folder':
      if (paper) return { ds: await openBenchmark('folder', root, { transform, normalization: IMAGENET_NORMALIZATION, onWarning: warn }) };
      return {
        ds: await openImageFolder(root, {
          size: c.dataset.imageSize,
          channels: 3,
          normalization: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
          skipCorrupt: c.dataset.skipCorrupt,
          onWarning: warn,
        }),
      };
    default: {
      if (!paper)
        throw new UserError(
          `dataset ${c.dataset.name} needs a 224-px backbone (${nameList(backbonesTaking(['paper-pipeline', 'frozen-features']))}), not ${c.model.backbone}`,
        );
      const ds = await openBenchmark(c.dataset.name, root, { transform, normalization: IMAGENET_NORMALIZATION, onWarning: warn });
      return { ds, queryCount: ds.query?.size };
    }
  }
}

/**
 * Frozen-feature mode: the features of the evaluation transform (and, for the training split, of
 * the mirrored images: flips) extracted once, by the ONNX model (model.backbone onnx) or by a
 * pretrained backbone of ours with model.weights (model.frozen), and cached; the head trains on an
 * identity backbone over them.
 */
async function frozenFeatureData(c: TrainConfig, ds: Dataset, warn: (message: string) => void): Promise<Omit<TrainingData, 'sampler'>> {
  const t = evaluationTransform(c);
  const spec = backboneSpec(c.model.backbone);
  let source: Pick<FeatureCacheOptions, 'modelPath' | 'extractor' | 'openModel'>;
  if (spec.input === 'frozen-features') {
    if (!c.model.onnx) throw new UserError('frozen-feature mode needs model.onnx=FILE (an ONNX image model)');
    source = { modelPath: c.model.onnx };
  } else {
    // The schema refuses model.frozen without weights.
    const weights = await resolveWeights(c.model.weights as string, c.model.backbone);
    if (!existsSync(weights)) throw new UserError(`model.weights ${weights}: no such file`);
    const pooling: Pooling = pretrainedBackboneSpec(c.model.backbone).avgMaxPooling && c.model.pooling ? 'avg+max' : 'avg';
    source = {
      modelPath: weights,
      extractor: { name: c.model.backbone, options: { pooling } },
      openModel: () => BackboneFeatureModel.open(c.model.backbone, { weights, pooling, engine: c.model.featureEngine, settings: CONFIG_SETTINGS }),
    };
  }
  const common = {
    ...source,
    cacheDir: c.model.featureCache,
    dataset: { name: c.dataset.name, root: resolve(c.dataset.root ?? '') },
    transform: `resize${t.resize}-centercrop${t.size}-imagenet`,
  };
  const progress = (what: string) => (done: number, total: number) => {
    if (done === total || done % 512 === 0) warn(`extracting ${what} features: ${done}/${total}`);
  };
  let train, test;
  try {
    train = await cachedSplitFeatures({ ...common, split: ds.train, flips: true, onProgress: progress('train') });
    test = await cachedSplitFeatures({ ...common, split: ds.test, onProgress: progress('test') });
  } catch (err) {
    if (err instanceof OnnxModelError)
      throw new UserError(`${err.message}${/expects input/.test(err.message) ? ' (set model.onnxInputSize to its image side)' : ''}`);
    throw err;
  }
  return {
    train: cachedFeatureImageSplit(train),
    test: cachedFeatureImageSplit(test),
    backbone: featureIdentityBackbone(train.width, spec.input === 'frozen-features' ? undefined : `frozen-${c.model.backbone}`),
  };
}

/** The class-balanced sampler as the trainer takes it. */
export function asBatchSampler(s: BalancedBatchSampler): BatchSampler {
  return {
    nextBatch: () => Array.from(s.nextBatch()),
    batchesPerEpoch: () => s.batchesPerEpoch(),
    state: () => s.state(),
    restore: (st) => s.restore(st as SamplerState),
  };
}

export async function openTrainingData(c: TrainConfig, warn: (message: string) => void): Promise<TrainingData> {
  const spec = backboneSpec(c.model.backbone);
  const paper = spec.input !== 'small-images';
  if (paper && !c.dataset.root && c.dataset.name !== 'fashion-mnist') throw new UserError(`dataset ${c.dataset.name} needs --data-root DIR`);
  const { ds, queryCount } = await openDataset(c, warn, paper);
  const sampler = (seed: number): BatchSampler => {
    const s = new BalancedBatchSampler(ds.train.labels, {
      P: c.train.classesPerBatch,
      K: c.train.samplesPerClass,
      seed,
      onWarning: warn,
      classNames: ds.train.classNames,
    });
    return asBatchSampler(s);
  };
  if (spec.input === 'small-images') {
    return { train: asImageSplit(ds.train), test: asImageSplit(ds.test), backbone: spec.create({ channels: ds.train.imageShape[2] }), sampler };
  }
  if (spec.input === 'frozen-features' || c.model.frozen) {
    const frozen = await frozenFeatureData(c, ds, warn);
    return { ...frozen, test: { ...frozen.test, queryCount }, sampler };
  }
  const backbone = spec.create({ bnFreeze: c.solver.bnFreeze, pooling: c.model.pooling });
  const weights = c.model.weights ? await resolveWeights(c.model.weights, c.model.backbone) : null;
  if (!weights) warn(`model.weights is not set: ${c.model.backbone} starts from random weights (the paper fine-tunes ImageNet weights; docs/backbones.md)`);
  return {
    train: pipelineSplit(ds.train as FileSplit),
    test: pipelineSplit(ds.test as FileSplit, queryCount),
    backbone,
    loadWeights: weights ? (sd) => loadPretrainedWeights(spec, sd, backbone, weights) : undefined,
    sampler,
  };
}
