// A trained run as an embedding function for new images: the run's embedding model (backbone →
// BatchNorm1d → Linear, evaluation mode) behind the run's evaluation transform, exactly as the
// trainer's evaluation embeds its test split (src/train/evaluate_model.ts). `hardneg embed`,
// `hardneg export` and the index/search/serve commands are built on it.
//
// The evaluation transform per way images reach the backbone (src/models/backbones.ts):
//   small-images (small-cnn): the image-folder decoding of training (src/data/image_folder.ts):
//     shorter side to dataset.imageSize (bilinear), centre crop, (x/255 − 0.5)/0.5 per channel —
//     or, for fashion-mnist runs, one grey channel normalised with Fashion-MNIST's mean and std;
//   paper-pipeline (resnet50, googlenet) and frozen-features (onnx): torchvision's Resize +
//     CenterCrop (src/data/transforms.ts) with ImageNet normalisation; frozen-feature mode runs the
//     run's ONNX model (model.onnx) on the images, then the trained head on its features.
//
// The metric: the trainer evaluates on L2-normalised rows by cosine similarity (docs/algorithm.md
// §7.1), so `metric` is 'cosine' for every run; an index searching with Euclidean distance on
// normalised rows ranks identically.
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { checkNormalization, type Normalization, uint8ToFloat } from '../data/dataset.ts';
import { FASHION_MNIST_NORMALIZATION } from '../data/fashion_mnist.ts';
import { decodeImage } from '../data/image_folder.ts';
import { mapConcurrent } from '../data/concurrency.ts';
import { imagePool } from '../data/pipeline.ts';
import { IMAGENET_NORMALIZATION, loadSharp, type TestTransform, transformInto } from '../data/transforms.ts';
import { firstLine, UserError } from '../errors.ts';
import { backboneSpec } from '../models/backbones.ts';
import { embed, type MetricModel } from '../models/metric_model.ts';
import { nhwcToNchw, OnnxImageModel, OnnxModelError } from '../models/onnx_backbone.ts';
import type { TrainConfig } from '../train/config.ts';
import { evaluationTransform } from '../train/datasets.ts';
import { loadRunModel, type RunWeights } from '../train/load_run.ts';

/** How an image becomes the model's input: everything another runtime needs to reproduce it. */
export interface EmbedderPreprocessing {
  /**
   * 'torchvision': Resize(resize) with an int (shorter side to `resize`, the longer truncated),
   * CenterCrop(size) — the paper's test transform; 'shorter-side': shorter side to `resize`
   * (rounded, aspect kept), then the centre size×size crop (the image-folder decoding of small-image runs).
   */
  resizePolicy: 'torchvision' | 'shorter-side';
  resize: number;
  size: number;
  /** 3: RGB; 1: grey (fashion-mnist runs). */
  channels: number;
  /** Per channel, applied to x/255: (x/255 − mean)/std. */
  mean: number[];
  std: number[];
  /** Bilinear ('linear' in libvips), antialiased when reducing. */
  interpolation: 'bilinear';
}

export interface EmbedderModelRef {
  runDir: string;
  weights: RunWeights;
  /** The weights file's name inside runDir. */
  file: string;
  sha256: string;
}

export interface EmbedOptions {
  /** Images per forward pass (default 32). */
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface Embedder {
  /** Embedding width D. */
  readonly dim: number;
  /** The metric the run was evaluated with: cosine on L2-normalised rows (see the header). */
  readonly metric: 'l2' | 'cosine';
  /** [C, H, W] of the evaluation transform's output (C = 3, or 1 for fashion-mnist runs). */
  readonly inputShape: [number, number, number];
  readonly model: EmbedderModelRef;
  readonly preprocessing: EmbedderPreprocessing;
  /** The run's configuration (backbone, ONNX model of frozen-feature mode, …). */
  readonly config: TrainConfig;
  /** The loaded model (for the exporter); owned by the embedder. */
  readonly metricModel: MetricModel;
  /** Image files through the evaluation transform → [N·D]. */
  embedImageFiles(paths: string[], opts?: EmbedOptions): Promise<Float32Array>;
  /** Encoded images (PNG, JPEG, WebP, … what sharp reads) → [N·D]; a UserError for bytes that are not an image. */
  embedImageBuffers(images: Buffer[]): Promise<Float32Array>;
  /** Image files through the evaluation transform alone: float32 NCHW [N, C, H, W], what embedTensor and the exported ONNX model take. */
  preprocessImageFiles(paths: string[]): Promise<Float32Array>;
  /** Already-transformed float32 NCHW [n, C, H, W] → [n·D]. */
  embedTensor(x: Float32Array, n: number): Promise<Float32Array>;
  dispose(): void;
}

export interface LoadEmbedderOptions {
  /** 'final' (model.safetensors, default) or 'best' (best.safetensors). */
  weights?: RunWeights;
  /** Overrides the run's configured backend (e.g. 'cpu'). */
  backend?: string;
}

function sha256File(path: string): string {
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(1 << 20);
  try {
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** [n, c, h, w] → [n, h, w, c]. */
export function nchwToNhwc(x: Float32Array, n: number, c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(x.length);
  const plane = h * w;
  for (let b = 0; b < n; b++) {
    const base = b * plane * c;
    for (let ch = 0; ch < c; ch++) {
      const src = base + ch * plane;
      for (let p = 0; p < plane; p++) out[base + p * c + ch] = x[src + p] as number;
    }
  }
  return out;
}

/** The evaluation transform of a run, as data (see EmbedderPreprocessing). */
export function runPreprocessing(config: TrainConfig): EmbedderPreprocessing {
  const spec = backboneSpec(config.model.backbone);
  if (spec.input === 'small-images') {
    const grey = config.dataset.name === 'fashion-mnist';
    const size = grey ? 28 : config.dataset.imageSize;
    const norm = checkNormalization(grey ? FASHION_MNIST_NORMALIZATION : { mean: [0.5], std: [0.5] }, grey ? 1 : 3) as Normalization;
    return { resizePolicy: 'shorter-side', resize: size, size, channels: grey ? 1 : 3, mean: [...norm.mean], std: [...norm.std], interpolation: 'bilinear' };
  }
  const t: TestTransform = evaluationTransform(config);
  return {
    resizePolicy: 'torchvision',
    resize: t.resize,
    size: t.size,
    channels: 3,
    mean: [...IMAGENET_NORMALIZATION.mean],
    std: [...IMAGENET_NORMALIZATION.std],
    interpolation: 'bilinear',
  };
}

function positiveBatch(b: number | undefined): number {
  const batch = b ?? 32;
  if (!Number.isInteger(batch) || batch < 1) throw new UserError(`batch size must be a positive integer, got ${batch}`);
  return batch;
}

export async function loadEmbedder(runDir: string, opts: LoadEmbedderOptions = {}): Promise<Embedder> {
  const run = await loadRunModel(runDir, { weights: opts.weights, backend: opts.backend });
  const { config, model } = run;
  let onnx = null as OnnxImageModel | null;
  try {
    const prep = runPreprocessing(config);
    const spec = backboneSpec(config.model.backbone);
    if (spec.input === 'frozen-features') {
      if (!config.model.onnx) throw new UserError(`${run.path}: the run is in frozen-feature mode but its configuration names no model.onnx`);
      try {
        onnx = await OnnxImageModel.open(config.model.onnx);
      } catch (err) {
        if (err instanceof OnnxModelError) throw new UserError(`${err.message} (the frozen ONNX backbone of this run, model.onnx)`);
        throw err;
      }
    }
    return makeEmbedder(run.model, config, prep, onnx, {
      runDir: resolve(runDir),
      weights: run.weights,
      file: basename(run.path),
      sha256: sha256File(run.path),
    });
  } catch (err) {
    model.sd.dispose();
    await onnx?.close();
    throw err;
  }
}

function makeEmbedder(model: MetricModel, config: TrainConfig, prep: EmbedderPreprocessing, onnx: OnnxImageModel | null, ref: EmbedderModelRef): Embedder {
  const D = model.shape.D;
  const { size, channels: C } = prep;
  const perImage = size * size * C;
  const norm: Normalization = { mean: prep.mean, std: prep.std };
  const transform: TestTransform = { kind: 'test', resize: prep.resize, size };
  let disposed = false;

  /** NHWC pixels of n images → [n·D], as embedSplit computes them. */
  const forward = async (pixels: Float32Array, n: number): Promise<Float32Array> => {
    if (disposed) throw new Error('embedder: used after dispose()');
    if (n === 0) return new Float32Array(0);
    let input: tf.Tensor4D;
    if (onnx) {
      const f = await onnx.run({ pixels, shape: [n, size, size, C] });
      // Cached-feature batches are [n, 1, 1, F] (src/data/feature_cache.ts): the identity backbone's input.
      input = tf.tensor4d(f.features, [n, 1, 1, f.width]);
    } else {
      input = tf.tensor4d(pixels, [n, size, size, C]);
    }
    const z = embed(model, input, false);
    try {
      return Float32Array.from((await z.data()) as Float32Array);
    } finally {
      tf.dispose([input, z]);
    }
  };

  /** Decodes and transforms one image (a file or its bytes) into out[i·perImage…]. */
  const decodeInto = async (source: string | Buffer, out: Float32Array, i: number): Promise<void> => {
    if (prep.resizePolicy === 'shorter-side') {
      const bytes = await decodeImage(source, { size, resize: prep.resize, channels: C as 1 | 3 });
      uint8ToFloat(bytes, 0, out, i, perImage, C, norm);
    } else {
      await transformInto(await loadSharp(), source, transform, 0, out, i * perImage, norm);
    }
  };

  const loadFiles = async (paths: readonly string[]): Promise<Float32Array> => {
    if (prep.resizePolicy === 'torchvision') return (await imagePool().run(paths, transform, norm)).pixels;
    const out = new Float32Array(paths.length * perImage);
    await mapConcurrent([...paths], 4, async (p, i) => {
      try {
        await decodeInto(p, out, i);
      } catch (err) {
        throw new UserError(`${p}: unreadable or corrupt image (${firstLine(err)})`);
      }
    });
    return out;
  };

  return {
    dim: D,
    metric: 'cosine',
    inputShape: [C, size, size],
    model: ref,
    preprocessing: prep,
    config,
    metricModel: model,
    async embedImageFiles(paths, opts = {}) {
      const batch = positiveBatch(opts.batchSize);
      const out = new Float32Array(paths.length * D);
      for (let start = 0; start < paths.length; start += batch) {
        const chunk = paths.slice(start, start + batch);
        out.set(await forward(await loadFiles(chunk), chunk.length), start * D);
        opts.onProgress?.(start + chunk.length, paths.length);
      }
      return out;
    },
    async embedImageBuffers(images) {
      const pixels = new Float32Array(images.length * perImage);
      for (const [i, b] of images.entries()) {
        try {
          await decodeInto(b, pixels, i);
        } catch (err) {
          throw new UserError(`image ${i + 1} of ${images.length}: not a readable image (${firstLine(err)})`);
        }
      }
      return forward(pixels, images.length);
    },
    async preprocessImageFiles(paths) {
      return nhwcToNchw(await loadFiles(paths), [paths.length, size, size, C]);
    },
    async embedTensor(x, n) {
      if (!Number.isInteger(n) || n < 0) throw new UserError(`embedTensor: n must be a non-negative integer, got ${n}`);
      if (x.length !== n * perImage)
        throw new UserError(`expected float32 [${n}, ${C}, ${size}, ${size}] (NCHW, ${n * perImage} values), got ${x.length} values`);
      return forward(nchwToNhwc(x, n, C, size, size), n);
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      model.sd.dispose();
      void onnx?.close();
    },
  };
}
