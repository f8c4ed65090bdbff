// Opens the configured dataset for training: its two class-disjoint splits as the trainer's
// ImageSplits, the backbone that fits their images, and the class-balanced sampler.
import * as tf from '@tensorflow/tfjs';
import type { DatasetSplit } from '../data/dataset.ts';
import { loadFashionMnist } from '../data/fashion_mnist.ts';
import { openImageFolder } from '../data/image_folder.ts';
import { BalancedBatchSampler, type SamplerState } from '../samplers/balanced_batch_sampler.ts';
import type { Backbone } from '../models/backbone.ts';
import { smallCnn } from '../models/small_cnn.ts';
import type { TrainConfig } from './config.ts';
import type { ImageSplit } from './image_split.ts';
import type { BatchSampler } from './trainer.ts';

/** Mirrors an NHWC batch left-right where `flips[i]` is set. */
function flipRows(pixels: Float32Array, shape: readonly number[], flips: readonly boolean[]): void {
  const [, h, w, c] = shape as [number, number, number, number];
  flips.forEach((flip, n) => {
    if (!flip) return;
    for (let y = 0; y < h; y++) for (let x = 0; x < w / 2; x++) for (let ch = 0; ch < c; ch++) {
      const a = ((n * h + y) * w + x) * c + ch;
      const b = ((n * h + y) * w + (w - 1 - x)) * c + ch;
      [pixels[a], pixels[b]] = [pixels[b] as number, pixels[a] as number];
    }
  });
}

export function asImageSplit(split: DatasetSplit): ImageSplit {
  return {
    size: split.size,
    labels: split.labels,
    numClasses: split.classNames.length,
    async images(indices, flips) {
      const batch = await split.load(indices);
      if (flips) flipRows(batch.pixels, batch.shape, flips);
      return tf.tensor4d(batch.pixels, batch.shape);
    },
  };
}

export interface TrainingData {
  train: ImageSplit;
  test: ImageSplit;
  backbone: Backbone;
  sampler: (seed: number) => BatchSampler;
}

export async function openTrainingData(c: TrainConfig, warn: (message: string) => void): Promise<TrainingData> {
  const ds = c.dataset.name === 'fashion-mnist'
    ? loadFashionMnist({ normalize: true })
    : await openImageFolder(c.dataset.root as string, { size: c.dataset.imageSize, channels: 3, normalization: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }, onWarning: warn });
  const labels = ds.train.labels;
  const classNames = ds.train.classNames;
  return {
    train: asImageSplit(ds.train),
    test: asImageSplit(ds.test),
    backbone: smallCnn(ds.train.imageShape[2]),
    sampler: (seed) => {
      const s = new BalancedBatchSampler(labels, { P: c.train.classesPerBatch, K: c.train.samplesPerClass, seed, onWarning: warn, classNames });
      return {
        nextBatch: () => Array.from(s.nextBatch()),
        batchesPerEpoch: () => s.batchesPerEpoch(),
        state: () => s.state(),
        restore: (st) => s.restore(st as SamplerState),
      };
    },
  };
}
