// What the trainer needs of a dataset split: labels and batches of images as NHWC float tensors.
import type * as tf from '@tensorflow/tfjs';

export interface ImageSplit {
  size: number;
  /** Contiguous class indices 0..C−1, one per image. */
  labels: Int32Array;
  numClasses: number;
  /**
   * Images at the given indices, [n, H, W, C], normalised for the backbone. With `augment` (one
   * seed per image, training only) each image gets its seeded augmentation: the paper's random
   * resized crop and flip, or just a flip (odd seed) for small images and cached features.
   */
  images(indices: readonly number[], augment?: readonly number[]): Promise<tf.Tensor4D>;
  /** In-Shop: the first `queryCount` images are queries, the rest the gallery. */
  queryCount?: number;
}
