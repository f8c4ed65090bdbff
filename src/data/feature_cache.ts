// Frozen-feature mode, data side: the features of a dataset split under an image model (an ONNX
// model, or one of hardneg's own pretrained backbones with its weights: src/models/features.ts),
// extracted once and cached on disk, then served as a split whose "images" are feature vectors.
//
// Cache key: what extracts (the extractor's name: 'onnx' or a backbone name, and its options such
// as the pooling), sha256 of the model file (the .onnx, or the backbone's weights file), the dataset
// (name, resolved root, split name, size, a hash of its labels and a hash of its listing — every
// image's source, in order) and a description of the image transform (resize, crop, normalisation
// — whatever split.load applies; the caller describes it) with the image shape it yields. A change
// of any of them is another key, so a stale cache is never read. Layout, one directory per key
// under `cacheDir`:
//
//   <key16>-<dataset>-<split>/features.npy          float32 [N, F]
//                             features_flipped.npy  float32 [N, F] (only with `flips`: each image
//                                                   mirrored left-right, for flip augmentation)
//                             labels.npy            int32 [N]
//                             manifest.json         what the files are and the full key
//
// Every file is written atomically (temporary file, fsync, rename) and the manifest last, so a
// directory without a manifest is an interrupted extraction and is recomputed; a manifest whose key
// or shapes disagree is never used.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { writeFileAtomic } from '../io/atomic_write.ts';
import { readNpy, writeNpy } from '../io/npy.ts';
import { type ImageFeatureModel, OnnxImageModel, OnnxModelError, type OnnxImageModelOptions } from '../models/onnx_backbone.ts';
import type { ImageSplit } from '../train/image_split.ts';
import type { DatasetSplit, ImageBatch, ImageShape } from './dataset.ts';
import { checkIndices } from './dataset.ts';

export const FEATURE_CACHE_FORMAT = 'hardneg-feature-cache/2';

export interface FeatureCacheOptions {
  /** Directory holding one sub-directory per cached (model, dataset, split, transform). */
  cacheDir: string;
  /** The file that holds the model: the .onnx image model, or a backbone's weights. Its SHA-256 is part of the key. */
  modelPath: string;
  /** What turns images into features with that file (default { name: 'onnx' }). Part of the key. */
  extractor?: FeatureExtractorIdentity;
  modelOptions?: OnnxImageModelOptions;
  /** Identifies the dataset: e.g. { name: 'cub200', root: '/data/CUB_200_2011' }. */
  dataset: { name: string; root: string };
  split: DatasetSplit;
  /** How split.load prepares the images, e.g. 'resize256-centercrop224-imagenet-norm'. Part of the key. */
  transform: string;
  /** Images per model call (default 32). */
  batchSize?: number;
  /** Also cache the features of the left-right mirrored images (default false). */
  flips?: boolean;
  /** Called after every batch with (images done, total) while extracting. */
  onProgress?: (done: number, total: number) => void;
  /** Opens the model (default OnnxImageModel.open); only called when the cache misses. */
  openModel?: (path: string, options?: OnnxImageModelOptions) => Promise<ImageFeatureModel>;
}

/** 'onnx', or a backbone registry name with the options that change its features (e.g. { pooling: 'avg+max' }). */
export interface FeatureExtractorIdentity {
  name: string;
  options?: Record<string, string | number | boolean>;
}

const ONNX_EXTRACTOR: FeatureExtractorIdentity = { name: 'onnx' };

/** The model file as messages name it. */
function modelLabel(e: FeatureExtractorIdentity): string {
  return e.name === 'onnx' ? 'ONNX model' : `${e.name} weights`;
}

export interface FeatureManifest {
  format: typeof FEATURE_CACHE_FORMAT;
  key: string;
  model: { path: string; sha256: string; bytes: number; extractor: FeatureExtractorIdentity };
  dataset: { name: string; root: string; split: string; size: number; classes: number; labelsSha256: string; listingSha256: string };
  transform: string;
  imageShape: ImageShape;
  features: { file: string; shape: [number, number]; flippedFile: string | null };
  labelsFile: string;
  created: string;
}

export interface FeatureCache {
  dir: string;
  manifest: FeatureManifest;
  /** [size, width], row-major. */
  features: Float32Array;
  /** Features of the mirrored images, when extracted with `flips`. */
  flipped: Float32Array | null;
  labels: Int32Array;
  classNames: readonly string[];
  size: number;
  width: number;
  /** True when read from disk, false when just extracted. */
  fromCache: boolean;
}

// A run keys the train and the test cache on the same model: hash it once while it is unchanged.
const modelHashes = new Map<string, { stamp: string; sha256: string; bytes: number }>();

function sha256File(path: string, what: string): { sha256: string; bytes: number } {
  if (!existsSync(path)) throw new OnnxModelError(`${what} '${path}' does not exist`);
  const st = statSync(path);
  const stamp = `${st.size}:${st.mtimeMs}:${st.ctimeMs}:${st.ino}`;
  const known = modelHashes.get(resolve(path));
  if (known?.stamp === stamp) return { sha256: known.sha256, bytes: known.bytes };
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(1 << 20);
  let bytes = 0;
  try {
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) {
      hash.update(buf.subarray(0, n));
      bytes += n;
    }
  } finally {
    closeSync(fd);
  }
  const sha256 = hash.digest('hex');
  modelHashes.set(resolve(path), { stamp, sha256, bytes });
  return { sha256, bytes };
}

function safe(text: string): string {
  return text.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 40) || '_';
}

/** The cache key and directory of a (model, dataset, split, transform); hashes the model file. */
export function featureCacheKey(o: Pick<FeatureCacheOptions, 'cacheDir' | 'modelPath' | 'extractor' | 'dataset' | 'split' | 'transform' | 'flips'>): {
  key: string;
  dir: string;
  identity: Omit<FeatureManifest, 'features' | 'labelsFile' | 'created' | 'key' | 'format'>;
} {
  const extractor = o.extractor ?? ONNX_EXTRACTOR;
  const model = { path: resolve(o.modelPath), ...sha256File(o.modelPath, modelLabel(extractor)), extractor };
  const labelsSha256 = createHash('sha256')
    .update(new Uint8Array(o.split.labels.buffer, o.split.labels.byteOffset, o.split.labels.byteLength))
    .digest('hex');
  // The listing: a file renamed, replaced by another name or moved between classes is another dataset.
  const listing = createHash('sha256');
  for (let i = 0; i < o.split.size; i++) listing.update(`${o.split.source(i)}\n`);
  const identity = {
    model,
    dataset: {
      name: o.dataset.name,
      root: resolve(o.dataset.root),
      split: o.split.name,
      size: o.split.size,
      classes: o.split.classNames.length,
      labelsSha256,
      listingSha256: listing.digest('hex'),
    },
    transform: o.transform,
    imageShape: [...o.split.imageShape] as ImageShape,
  };
  const key = createHash('sha256')
    .update(
      JSON.stringify({
        format: FEATURE_CACHE_FORMAT,
        model: model.sha256,
        extractor,
        dataset: identity.dataset,
        transform: o.transform,
        imageShape: identity.imageShape,
        flips: o.flips ?? false,
      }),
    )
    .digest('hex');
  return { key, dir: join(o.cacheDir, `${key.slice(0, 16)}-${safe(o.dataset.name)}-${safe(o.split.name)}`), identity };
}

/** Reads and checks a cache directory; null when it is absent, incomplete or not for `key`. */
export function readFeatureCache(dir: string, key?: string, classNames: readonly string[] = []): FeatureCache | null {
  const manifestPath = join(dir, 'manifest.json');
  if (!existsSync(manifestPath)) return null;
  let manifest: FeatureManifest;
  try {
    manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as FeatureManifest;
  } catch {
    return null;
  }
  if (manifest.format !== FEATURE_CACHE_FORMAT || (key !== undefined && manifest.key !== key)) return null;
  try {
    const [size, width] = manifest.features.shape;
    const f = readNpy(join(dir, manifest.features.file));
    const l = readNpy(join(dir, manifest.labelsFile));
    const fl = manifest.features.flippedFile ? readNpy(join(dir, manifest.features.flippedFile)) : null;
    const okShape = (t: { dtype: string; shape: number[] }) => t.dtype === 'F32' && t.shape.length === 2 && t.shape[0] === size && t.shape[1] === width;
    if (!okShape(f) || (fl && !okShape(fl)) || l.dtype !== 'I32' || l.shape.length !== 1 || l.shape[0] !== size) return null;
    return {
      dir,
      manifest,
      features: f.data as Float32Array,
      flipped: fl ? (fl.data as Float32Array) : null,
      labels: l.data as Int32Array,
      classNames: classNames.length > 0 ? classNames : Array.from({ length: manifest.dataset.classes }, (_, i) => String(i)),
      size,
      width,
      fromCache: true,
    };
  } catch {
    return null;
  }
}

function mirror(batch: ImageBatch): ImageBatch {
  const [n, h, w, c] = batch.shape;
  const out = new Float32Array(batch.pixels.length);
  for (let b = 0; b < n; b++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const src = ((b * h + y) * w + x) * c;
        const dst = ((b * h + y) * w + (w - 1 - x)) * c;
        for (let ch = 0; ch < c; ch++) out[dst + ch] = batch.pixels[src + ch] as number;
      }
  return { pixels: out, shape: batch.shape };
}

/**
 * The split's features under the model: read from the cache when present, otherwise extracted
 * (the model runs over the split once, in order, `batchSize` images at a time) and cached.
 */
export async function cachedSplitFeatures(o: FeatureCacheOptions): Promise<FeatureCache> {
  const { key, dir, identity } = featureCacheKey(o);
  const cached = readFeatureCache(dir, key, o.split.classNames);
  if (cached) return cached;

  const batchSize = o.batchSize ?? 32;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`feature extraction: batch size must be a positive integer, got ${batchSize}`);
  const model = await (o.openModel ?? OnnxImageModel.open)(o.modelPath, o.modelOptions);
  const size = o.split.size;
  let features: Float32Array | null = null;
  let flipped: Float32Array | null = null;
  let width = 0;
  try {
    for (let start = 0; start < size; start += batchSize) {
      const indices = Array.from({ length: Math.min(batchSize, size - start) }, (_, i) => start + i);
      const batch = await o.split.load(indices);
      const runs: Array<[ImageBatch, 'plain' | 'flipped']> = [[batch, 'plain']];
      if (o.flips) runs.push([mirror(batch), 'flipped']);
      for (const [b, kind] of runs) {
        const r = await model.run(b);
        if (features === null) {
          width = r.width;
          features = new Float32Array(size * width);
          if (o.flips) flipped = new Float32Array(size * width);
        }
        if (r.width !== width || r.n !== indices.length)
          throw new OnnxModelError(
            `${modelLabel(o.extractor ?? ONNX_EXTRACTOR)} '${o.modelPath}': a batch gave [${r.n}, ${r.width}] features, expected [${indices.length}, ${width}]`,
          );
        (kind === 'plain' ? features : (flipped as Float32Array)).set(r.features, start * width);
      }
      o.onProgress?.(start + indices.length, size);
    }
  } finally {
    await model.close();
  }
  if (features === null) throw new Error(`feature extraction: split '${o.split.name}' of ${o.dataset.name} is empty`);

  mkdirSync(dir, { recursive: true });
  writeNpy(join(dir, 'features.npy'), { dtype: 'F32', shape: [size, width], data: features });
  if (flipped) writeNpy(join(dir, 'features_flipped.npy'), { dtype: 'F32', shape: [size, width], data: flipped });
  const labels = Int32Array.from(o.split.labels);
  writeNpy(join(dir, 'labels.npy'), { dtype: 'I32', shape: [size], data: labels });
  const manifest: FeatureManifest = {
    format: FEATURE_CACHE_FORMAT,
    key,
    ...identity,
    features: { file: 'features.npy', shape: [size, width], flippedFile: flipped ? 'features_flipped.npy' : null },
    labelsFile: 'labels.npy',
    created: new Date().toISOString(),
  };
  writeFileAtomic(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return { dir, manifest, features, flipped, labels, classNames: o.split.classNames, size, width, fromCache: false };
}

/**
 * Cached features as a DatasetSplit whose "images" are [1, 1, F] feature vectors, so everything
 * that consumes splits (samplers, the trainer, evaluation) runs unchanged on top of
 * featureIdentityBackbone (src/models/onnx_backbone.ts).
 */
export class CachedFeatureSplit implements DatasetSplit {
  readonly name: string;
  readonly size: number;
  readonly labels: Int32Array;
  readonly classNames: readonly string[];
  readonly imageShape: ImageShape;

  constructor(
    readonly cache: FeatureCache,
    name = cache.manifest.dataset.split,
  ) {
    this.name = name;
    this.size = cache.size;
    this.labels = cache.labels;
    this.classNames = cache.classNames;
    this.imageShape = [1, 1, cache.width];
  }

  source(index: number): string {
    return `${this.cache.dir}/${this.cache.manifest.features.file}[${index}]`;
  }

  /** Rows `indices` of the features (or, where `flipped[i]`, of the mirrored images' features). */
  loadSync(indices: ArrayLike<number>, flipped?: ArrayLike<boolean>): ImageBatch {
    checkIndices(indices, this.size, this.name);
    const w = this.cache.width;
    const out = new Float32Array(indices.length * w);
    for (let i = 0; i < indices.length; i++) {
      const row = indices[i] as number;
      const src = flipped?.[i] && this.cache.flipped ? this.cache.flipped : this.cache.features;
      out.set(src.subarray(row * w, (row + 1) * w), i * w);
    }
    return { pixels: out, shape: [indices.length, 1, 1, w] };
  }

  load(indices: ArrayLike<number>): Promise<ImageBatch> {
    try {
      return Promise.resolve(this.loadSync(indices));
    } catch (err) {
      return Promise.reject(err);
    }
  }
}

/** The trainer's view of cached features: flips pick the mirrored images' features when cached. */
export function cachedFeatureImageSplit(cache: FeatureCache): ImageSplit {
  const split = new CachedFeatureSplit(cache);
  return {
    size: split.size,
    labels: split.labels,
    numClasses: split.classNames.length,
    images(indices, augment) {
      // Augmentation of cached features: an odd seed selects the mirrored image's features.
      const b = split.loadSync(
        indices,
        augment?.map((seed) => (seed & 1) === 1),
      );
      return Promise.resolve(tf.tensor4d(b.pixels, b.shape));
    },
  };
}
