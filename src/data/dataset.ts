// The dataset abstraction every trainer and evaluator uses.
//
// A dataset has two class-disjoint splits, `train` and `test` (the retrieval protocol of the field:
// CUB, Cars, SOP train on one half of the classes and retrieve on the other, docs/algorithm.md §8).
// A split is a list of `size` images with one label each:
//
//   - `labels[i]` is a contiguous class index 0..C−1 of the split (C = classNames.length), every
//     class having at least one image; the two splits number their classes independently;
//   - `classNames[c]` is the human-readable name of class c;
//   - `imageShape` is [H, W, C] of every image;
//   - `load(indices)` returns those images, in that order, as float32 NHWC: `pixels` holds
//     indices.length·H·W·C values, `shape` = [indices.length, H, W, C]. Values are in [0, 1]
//     unless the split was opened with a normalisation, in which case they are (x − mean_c)/std_c.
//
// Splits may hold their pixels in memory (`InMemorySplit`, e.g. Fashion-MNIST) or decode files on
// demand (image folders, src/data/image_folder.ts); `load` is asynchronous so both look the same.

export type ImageShape = [height: number, width: number, channels: number];

export interface ImageBatch {
  /** NHWC, row-major, float32. */
  pixels: Float32Array;
  shape: [n: number, height: number, width: number, channels: number];
}

/** Per-channel normalisation applied to values in [0, 1]: x ↦ (x − mean[c]) / std[c]. */
export interface Normalization {
  mean: readonly number[];
  std: readonly number[];
}

export interface DatasetSplit {
  /** 'train' or 'test' (or another name for custom splits). */
  readonly name: string;
  readonly size: number;
  /** Contiguous class indices 0..C−1, one per image. */
  readonly labels: Int32Array;
  readonly classNames: readonly string[];
  readonly imageShape: ImageShape;
  /** Where image i comes from (a file path, or a file and record number), for messages. */
  source(index: number): string;
  /** The images at `indices` (any order, repeats allowed), as float32 NHWC. */
  load(indices: ArrayLike<number>): Promise<ImageBatch>;
}

export interface Dataset {
  readonly name: string;
  readonly train: DatasetSplit;
  readonly test: DatasetSplit;
}

/** Throws unless every index is an integer in [0, size). */
export function checkIndices(indices: ArrayLike<number>, size: number, what = 'split'): void {
  for (let i = 0; i < indices.length; i++) {
    const v = indices[i] as number;
    if (!Number.isInteger(v) || v < 0 || v >= size) throw new RangeError(`${what}: index ${v} (position ${i}) is out of range [0, ${size})`);
  }
}

/** Throws unless the labels are integers in 0..numClasses−1 and every class has an image. */
export function checkLabels(labels: Int32Array, numClasses: number, what = 'split'): void {
  const counts = classCounts(labels, numClasses, what);
  const empty = counts.findIndex((n) => n === 0);
  if (empty >= 0) throw new Error(`${what}: class ${empty} has no image (labels must be contiguous 0..${numClasses - 1})`);
}

/** The number of images of each class 0..numClasses−1. */
export function classCounts(labels: ArrayLike<number>, numClasses: number, what = 'split'): Int32Array {
  const counts = new Int32Array(numClasses);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i] as number;
    if (!Number.isInteger(y) || y < 0 || y >= numClasses) throw new RangeError(`${what}: label ${y} at ${i} is outside 0..${numClasses - 1}`);
    counts[y] = (counts[y] as number) + 1;
  }
  return counts;
}

/** Checks a normalisation against the channel count and returns it as arrays (or null). */
export function checkNormalization(norm: Normalization | null | undefined, channels: number): Normalization | null {
  if (!norm) return null;
  const expand = (v: readonly number[], what: string): number[] => {
    const out = v.length === 1 ? new Array<number>(channels).fill(v[0] as number) : [...v];
    if (out.length !== channels) throw new Error(`normalisation ${what} has ${v.length} values, expected 1 or ${channels} (one per channel)`);
    if (what === 'std' && out.some((s) => !(s > 0))) throw new Error(`normalisation std must be positive, got [${v.join(', ')}]`);
    if (out.some((s) => !Number.isFinite(s))) throw new Error(`normalisation ${what} must be finite, got [${v.join(', ')}]`);
    return out;
  };
  return { mean: expand(norm.mean, 'mean'), std: expand(norm.std, 'std') };
}

/**
 * Writes `count` uint8 HWC images starting at image `from` of `src` to `out` at image `to`,
 * as x/255, then normalised if `norm` is given (channel = position mod `channels`).
 */
export function uint8ToFloat(
  src: Uint8Array,
  from: number,
  out: Float32Array,
  to: number,
  imageSize: number,
  channels: number,
  norm: Normalization | null,
  count = 1,
): void {
  const s0 = from * imageSize;
  const d0 = to * imageSize;
  const n = count * imageSize;
  if (!norm) {
    for (let j = 0; j < n; j++) out[d0 + j] = (src[s0 + j] as number) / 255;
    return;
  }
  const scale = norm.std.map((s) => 1 / (255 * s));
  const shift = norm.mean.map((m, c) => m / (norm.std[c] as number));
  for (let j = 0; j < n; j++) {
    const c = j % channels;
    out[d0 + j] = (src[s0 + j] as number) * (scale[c] as number) - (shift[c] as number);
  }
}

export interface InMemorySplitOptions {
  name: string;
  classNames: readonly string[];
  labels: Int32Array;
  /** size·H·W·C bytes, HWC per image. */
  pixels: Uint8Array;
  imageShape: ImageShape;
  normalization?: Normalization | null;
  /** Source description of image i (defaults to `${name}[i]`). */
  source?: (index: number) => string;
}

/** A split whose images are all held in memory as uint8 HWC. */
export class InMemorySplit implements DatasetSplit {
  readonly name: string;
  readonly size: number;
  readonly labels: Int32Array;
  readonly classNames: readonly string[];
  readonly imageShape: ImageShape;
  readonly normalization: Normalization | null;
  private readonly pixels: Uint8Array;
  private readonly sourceOf: (index: number) => string;

  constructor(o: InMemorySplitOptions) {
    const [h, w, c] = o.imageShape;
    const per = h * w * c;
    if (o.pixels.length !== o.labels.length * per) {
      throw new Error(
        `${o.name}: ${o.pixels.length} pixel bytes for ${o.labels.length} images of shape [${o.imageShape.join(', ')}] (expected ${o.labels.length * per})`,
      );
    }
    checkLabels(o.labels, o.classNames.length, o.name);
    this.name = o.name;
    this.size = o.labels.length;
    this.labels = o.labels;
    this.classNames = o.classNames;
    this.imageShape = o.imageShape;
    this.pixels = o.pixels;
    this.normalization = checkNormalization(o.normalization, c);
    this.sourceOf = o.source ?? ((i) => `${o.name}[${i}]`);
  }

  source(index: number): string {
    return this.sourceOf(index);
  }

  /** The raw uint8 HWC bytes of image i (a view, not a copy). */
  raw(index: number): Uint8Array {
    checkIndices([index], this.size, this.name);
    const per = this.imageShape[0] * this.imageShape[1] * this.imageShape[2];
    return this.pixels.subarray(index * per, (index + 1) * per);
  }

  loadSync(indices: ArrayLike<number>): ImageBatch {
    checkIndices(indices, this.size, this.name);
    const [h, w, c] = this.imageShape;
    const per = h * w * c;
    const out = new Float32Array(indices.length * per);
    for (let i = 0; i < indices.length; i++) uint8ToFloat(this.pixels, indices[i] as number, out, i, per, c, this.normalization);
    return { pixels: out, shape: [indices.length, h, w, c] };
  }

  load(indices: ArrayLike<number>): Promise<ImageBatch> {
    try {
      return Promise.resolve(this.loadSync(indices));
    } catch (err) {
      return Promise.reject(err);
    }
  }
}
