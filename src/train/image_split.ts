// What the trainer needs of a dataset split: labels and batches of images as NHWC float tensors.
import type * as tf from '@tensorflow/tfjs';

export interface ImageSplit {
  size: number;
  /** Contiguous class indices 0..C−1, one per image. */
  labels: Int32Array;
  numClasses: number;
  /** Images at the given indices, [n, H, W, C], normalised for the backbone. */
  images(indices: readonly number[], flips?: readonly boolean[]): Promise<tf.Tensor4D>;
}
