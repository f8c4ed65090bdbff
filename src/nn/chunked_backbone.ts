// A backbone forward whose batch goes through in chunks, with the gradient computed chunk by chunk.
//
// A fine-tuning step on the official batch (81 images at 224 px) keeps ResNet-50's activations
// for all 81 images on the tape: more than the wasm backend's 4 GB heap. When the backbone is a
// per-sample function in training (BatchNorm frozen, i.e. in inference form; no dropout; nothing
// else mixes images), the batch loss's gradient w.r.t. its weights is the sum over chunks of
// vjp(backbone on the chunk, dL/dfeatures of the chunk). So `chunkedBackbone`:
//  (a) runs the forward chunk by chunk as ONE op on the caller's tape, keeping no activation, and
//      returns the full batch's features — what comes after (the embedding head, whose BatchNorm1d
//      does use batch statistics, the GCA-HNG objectives) sees the whole batch as before;
//  (b) the caller's backward pass reaches this op with dL/dfeatures of the whole batch;
//  (c) its gradient recomputes each chunk's forward on a tape of its own, back-propagates that
//      chunk's rows of dL/dfeatures, and sums the weight gradients over the chunks.
// The result equals the full-batch gradient up to float summation order; the cost is one more
// forward pass, and the peak memory follows the chunk, not the batch.
//
// The caller must only use it for a per-sample forward: a chunked BatchNorm in training mode
// would normalise each chunk with its own statistics (and move the running statistics once per
// chunk, twice counting the recomputation) — a different function. Backbones say whether they
// qualify (Backbone.perSampleParameters).
import * as tf from '@tensorflow/tfjs';
import { lazyGradOp, withinBackward } from './checkpoint.ts';

/** Images per chunk when the configuration does not say (model.backboneChunk): ResNet-50's step at 16 images fits the wasm heap with room. */
export const DEFAULT_BACKBONE_CHUNK = 16;

/**
 * Chunk sizes for n images, at most `chunk` each, as even as possible (81 by 16: 6 chunks of 14
 * or 13, not 5 of 16 and one of 1): the peak memory follows the largest chunk.
 */
export function chunkSizes(n: number, chunk: number): number[] {
  if (!Number.isInteger(chunk) || chunk < 1) throw new Error(`chunk size must be a positive integer, got ${chunk}`);
  const k = Math.ceil(n / chunk);
  return Array.from({ length: k }, (_, i) => Math.floor(n / k) + (i < n % k ? 1 : 0));
}

/**
 * features = forward(images), computed in chunks of the given sizes (chunkSizes(n, chunk) for a
 * number), one op on the caller's tape whose inputs are the images and `params`.
 *
 * `forward` must be per-sample (see above) and read its weights as the tensors in `params` (the
 * state dict's variables); its result is [chunk, features]. In the backward pass every param
 * gets its gradient (the sum over chunks); those the caller's gradient does not ask for are
 * disposed with the rest of that pass. The images get none: they are data, not weights.
 */
export function chunkedBackbone(
  forward: (images: tf.Tensor4D) => tf.Tensor2D,
  images: tf.Tensor4D,
  params: readonly tf.Tensor[],
  chunk: number | readonly number[],
): tf.Tensor2D {
  const n = images.shape[0];
  const sizes = typeof chunk === 'number' ? chunkSizes(n, chunk) : [...chunk];
  if (sizes.reduce((a, b) => a + b, 0) !== n || sizes.some((s) => !Number.isInteger(s) || s < 1)) {
    throw new Error(`chunk sizes [${sizes.join(', ')}] do not split a batch of ${n}`);
  }
  const starts = sizes.map((_, i) => sizes.slice(0, i).reduce((a, b) => a + b, 0));
  const slice = (x: tf.Tensor4D, i: number) => tf.slice(x, [starts[i] as number, 0, 0, 0], [sizes[i] as number, -1, -1, -1]);

  return lazyGradOp(
    [images, ...params],
    // Inside an op's forward the engine records nothing: each chunk's activations are freed as
    // soon as its features exist.
    (save) => {
      save([images]);
      const parts = sizes.map((_, i) => tf.tidy(() => forward(slice(images, i))));
      const features = tf.concat(parts);
      tf.dispose(parts);
      return features;
    },
    (dy, saved) => {
      const x = saved[0] as tf.Tensor4D;
      // Computed here, outside the thunks: the caller's gradient pass disposes those it does not use.
      const grads = withinBackward(() => chunkGradients(forward, x, params, dy as tf.Tensor2D, sizes, starts, slice));
      return [() => tf.zerosLike(x), ...grads.map((g) => () => g)];
    },
  ) as tf.Tensor2D;
}

/** Σ over chunks of vjp(forward on the chunk, dy's rows of the chunk) w.r.t. each param. */
function chunkGradients(
  forward: (images: tf.Tensor4D) => tf.Tensor2D,
  images: tf.Tensor4D,
  params: readonly tf.Tensor[],
  dy: tf.Tensor2D,
  sizes: readonly number[],
  starts: readonly number[],
  slice: (x: tf.Tensor4D, i: number) => tf.Tensor,
): tf.Tensor[] {
  let sums: tf.Tensor[] | null = null;
  sizes.forEach((size, i) => {
    const g = tf.tidy(() => {
      const x = slice(images, i) as tf.Tensor4D;
      const dyChunk = tf.slice(dy, [starts[i] as number, 0], [size, -1]);
      // The params are the tensors forward reads, so tf.grads finds them on this chunk's tape.
      return tf.grads(() => forward(x))([...params], dyChunk);
    });
    if (sums === null) {
      sums = g;
      return;
    }
    const prev: tf.Tensor[] = sums;
    sums = prev.map((s, k) => tf.add(s, g[k] as tf.Tensor));
    tf.dispose([...prev, ...g]);
  });
  return sums ?? [];
}
