// Eval-mode features of hardneg's own pretrained backbones (the registry's paper-pipeline entries:
// ResNet-50, GoogLeNet) from image batches: the library side of `hardneg features`, and the image
// model of frozen-feature training with model.frozen (src/train/datasets.ts), where it stands in
// for the ONNX model as an ImageFeatureModel of the feature cache (src/data/feature_cache.ts).
// Which backbones qualify, how each is built and how its weights load all come from the backbone
// registry (src/models/backbones.ts), so a new entry there is all a new backbone needs here.
//
// Two engines compute the same features: 'onnxruntime' (the default) writes the backbone as an
// ONNX graph in memory (exportBackboneFeatures) and runs it in onnxruntime-node, which was
// measured faster than our own kernels on ResNet-50 and GoogLeNet (docs/backends.md); 'tfjs' runs
// Backbone.forward on the tfjs backend of the process. Where onnxruntime-node cannot be loaded the
// default quietly falls back to 'tfjs': the features are the same (relative L2 ≤ 1e-4, tested).
import { existsSync, statSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import type * as Ort from 'onnxruntime-node';
import type { ImageBatch } from '../data/dataset.ts';
import { defaultThreads } from '../engine/native_kernels.ts';
import { Random, STREAMS } from '../engine/random.ts';
import { exportBackboneFeatures, FEATURES_OUTPUT } from '../export/backbone_features.ts';
import { INPUT } from '../export/onnx_common.ts';
import { UserError, firstLine } from '../errors.ts';
import type { HostTensor } from '../io/host_tensor.ts';
import { nameList } from '../text.ts';
import { resolveWeights, type WeightsSettings } from '../weights/fetch.ts';
import { type BackboneName, isPretrainedBackbone, type PaperBackboneSpec, PRETRAINED_BACKBONE_NAMES, pretrainedBackboneSpec } from './backbones.ts';
import { DEFAULT_FEATURE_ENGINE, type FeatureEngine } from './feature_engine.ts';
import { type FeatureBatch, type ImageFeatureModel, loadOrt, nhwcToNchw } from './onnx_backbone.ts';
import { StateDict } from './state_dict.ts';
import type { TorchvisionBackbone } from './torchvision.ts';

export { DEFAULT_FEATURE_ENGINE, FEATURE_ENGINES, type FeatureEngine } from './feature_engine.ts';

/**
 * The pooling after the last feature map: 'avg' is torchvision's global average pooling; 'avg+max'
 * adds global max pooling, summed, as the official ResNet configurations do (MODEL.POOLING True).
 */
export const POOLINGS = ['avg', 'avg+max'] as const;
export type Pooling = (typeof POOLINGS)[number];

/** The settings of the command line's `features`, for messages. */
export const FEATURE_FLAGS: WeightsSettings = { weights: '--weights', backbone: '--backbone' };

export interface BackboneFeatureOptions {
  /** A weights file (.pth in either torch.save format, or .safetensors) or a weights registry name (hardneg weights list). */
  weights: string;
  /** Default 'avg'; 'avg+max' only for backbones that offer it (ResNet-50). */
  pooling?: Pooling;
  /** Where the backbone and weights were given, for messages (default: the `features` flags). */
  settings?: WeightsSettings;
  /**
   * Default 'onnxruntime', which falls back to 'tfjs' without a word when onnxruntime-node cannot
   * be loaded (the model's `engine` says which one runs).
   */
  engine?: FeatureEngine;
  /** onnxruntime's intra-op threads (default: HARDNEG_THREADS, else all cores, as our own kernels). */
  threads?: number;
}

/** onnxruntime-node, or null where it cannot be loaded (the quiet fallback to tfjs). */
async function ortOrNull(): Promise<typeof Ort | null> {
  try {
    return await loadOrt();
  } catch {
    return null;
  }
}

/** What runs the features of one model: onnxruntime with its module, or tfjs. */
type Runner = { engine: 'onnxruntime'; ort: typeof Ort; threads: number } | { engine: 'tfjs' };

async function runnerFor(engine: FeatureEngine, threads: number | undefined): Promise<Runner> {
  if (engine === 'tfjs') return { engine };
  const ort = await ortOrNull();
  return ort === null ? { engine: 'tfjs' } : { engine, ort, threads: threads ?? defaultThreads() };
}

/** A pretrained backbone's registry entry by name, or the one-line refusal of an unknown name. */
export function featureBackboneSpec(name: string, setting = FEATURE_FLAGS.backbone): PaperBackboneSpec {
  if (!isPretrainedBackbone(name)) {
    throw new UserError(`${setting} ${name}: expected a backbone with pretrained weights: ${nameList(PRETRAINED_BACKBONE_NAMES)}`);
  }
  return pretrainedBackboneSpec(name as BackboneName);
}

/** Throws unless the backbone offers `pooling` ('avg+max' is ResNet-50's option; the others pool their own way). */
export function checkPooling(name: string, spec: PaperBackboneSpec, pooling: Pooling): void {
  if (pooling === 'avg+max' && !spec.avgMaxPooling) {
    const offering = PRETRAINED_BACKBONE_NAMES.filter((n) => pretrainedBackboneSpec(n).avgMaxPooling);
    throw new UserError(`pooling avg+max: ${name} pools its own way (only ${nameList(offering)} offers average + max pooling)`);
  }
}

/**
 * Loads a weights file into `sd` as the registry entry says; every failure is a one-line UserError
 * that starts with the setting and the file (the readers' own messages start with the path: said once).
 */
export function loadPretrainedWeights(spec: PaperBackboneSpec, sd: StateDict, backbone: TorchvisionBackbone, path: string, setting = 'model.weights'): void {
  try {
    spec.loadWeights(sd, backbone, path);
  } catch (err) {
    const what = firstLine(err);
    const text = what.startsWith(`${path}: `) ? what.slice(path.length + 2) : what;
    if (err instanceof UserError) throw new UserError(`${setting} ${path}: ${text}`);
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== undefined) throw new UserError(`${setting} ${path}: cannot read (${code === 'ENOENT' ? 'no such file' : code})`);
    throw new UserError(`${setting} ${path}: ${text} (expected ${backbone.name} weights under their official names; docs/backbones.md)`);
  }
}

/** A pretrained backbone with its weights, in evaluation mode: NHWC images → [n, width] features. */
export class BackboneFeatureModel implements ImageFeatureModel {
  /**
   * onnxruntime sessions by image side 'HxW': the graph is written for a fixed side (DINO resizes
   * its position embedding to it), so each new side gets its own export; the CNNs' batch axis is
   * dynamic, so one session serves every batch size.
   */
  private readonly sessions = new Map<string, Promise<Ort.InferenceSession>>();

  private constructor(
    /** The weights file (resolved from a registry name if one was given). */
    readonly path: string,
    readonly pooling: Pooling,
    private readonly backbone: TorchvisionBackbone,
    private sd: StateDict | null,
    private readonly runner: Runner,
  ) {}

  /** Resolves the weights (a registry name through the cache), checks them and loads them. */
  static async open(name: string, opts: BackboneFeatureOptions): Promise<BackboneFeatureModel> {
    const settings = opts.settings ?? FEATURE_FLAGS;
    const spec = featureBackboneSpec(name, settings.backbone);
    const pooling = opts.pooling ?? 'avg';
    checkPooling(name, spec, pooling);
    const path = await resolveWeights(opts.weights, name, settings);
    if (!existsSync(path)) throw new UserError(`${settings.weights} ${path}: no such file (a .pth or .safetensors file, or one of 'hardneg weights list')`);
    if (statSync(path).isDirectory()) throw new UserError(`${settings.weights} ${path}: is a folder, expected a weights file`);
    const runner = await runnerFor(opts.engine ?? DEFAULT_FEATURE_ENGINE, opts.threads);
    const backbone = spec.create({ bnFreeze: true, pooling: pooling === 'avg+max' });
    const sd = new StateDict();
    try {
      loadPretrainedWeights(spec, sd, backbone, path, settings.weights);
    } catch (err) {
      sd.dispose();
      throw err;
    }
    return new BackboneFeatureModel(path, pooling, backbone, sd, runner);
  }

  /**
   * The backbone with deterministic random weights (its own initialisation, seeded): for timing
   * the extraction where no weights file is at hand (bench/features.ts), since the work does not
   * depend on the weights' values. Features of such a model mean nothing.
   */
  static async random(name: string, seed = 0, opts: Pick<BackboneFeatureOptions, 'engine' | 'threads'> = {}): Promise<BackboneFeatureModel> {
    const runner = await runnerFor(opts.engine ?? DEFAULT_FEATURE_ENGINE, opts.threads);
    const backbone = featureBackboneSpec(name).create({ bnFreeze: true, pooling: false });
    const sd = new StateDict();
    backbone.init(sd, new Random(seed, STREAMS.benchIteration));
    return new BackboneFeatureModel(`random:${seed}`, 'avg', backbone, sd, runner);
  }

  get name(): string {
    return this.backbone.name;
  }

  /** The engine that computes the features (the one asked for, or tfjs where onnxruntime-node could not be loaded). */
  get engine(): FeatureEngine {
    return this.runner.engine;
  }

  /** Feature width (ResNet-50 2048, GoogLeNet 1024, DINO ViT-S/16 384). */
  get width(): number {
    return this.backbone.features;
  }

  private weights(): StateDict {
    if (this.sd === null) throw new Error(`${this.backbone.name} feature model: used after close()`);
    return this.sd;
  }

  /** Eval-mode features of an NHWC batch on the tfjs engine, whatever `engine` is; the caller keeps ownership of `images`. */
  featuresOf(images: tf.Tensor4D): Float32Array {
    const sd = this.weights();
    const y = tf.tidy(() => this.backbone.forward(sd, images, false));
    try {
      return y.dataSync() as Float32Array;
    } finally {
      y.dispose();
    }
  }

  private session(ort: typeof Ort, threads: number, h: number, w: number): Promise<Ort.InferenceSession> {
    const key = `${h}x${w}`;
    let session = this.sessions.get(key);
    if (session === undefined) {
      // onnxruntime does not refuse an image too small for the backbone (GoogLeNet's unpadded
      // ceil-mode pools at 8 px): it dies of SIGFPE, taking the process with it. One image of each
      // new side through the tfjs forward first throws its one-line refusal instead; it costs one
      // image's forward per side, not per batch.
      tf.tidy(() => {
        this.featuresOf(tf.zeros([1, h, w, 3]));
      });
      const bytes = exportBackboneFeatures(this.backbone, this.weights(), [3, h, w]);
      session = ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], graphOptimizationLevel: 'all', intraOpNumThreads: threads });
      // A failed creation is not kept: the next batch tries again and reports its own error.
      session.catch(() => this.sessions.delete(key));
      this.sessions.set(key, session);
    }
    return session;
  }

  /** Eval-mode features of `n` NCHW images [n, 3, h, w] (row-major, as PyTorch) on the model's engine. */
  async featuresOfNchw(pixels: Float32Array, [n, c, h, w]: readonly [number, number, number, number]): Promise<Float32Array> {
    if (this.runner.engine === 'tfjs') {
      const x = tf.tidy(() => tf.transpose(tf.tensor4d(pixels, [n, c, h, w]), [0, 2, 3, 1])) as tf.Tensor4D;
      try {
        return this.featuresOf(x);
      } finally {
        x.dispose();
      }
    }
    const { ort, threads } = this.runner;
    const session = await this.session(ort, threads, h, w);
    const result = await session.run({ [INPUT]: new ort.Tensor('float32', pixels, [n, c, h, w]) });
    try {
      const out = result[FEATURES_OUTPUT];
      if (out === undefined) throw new Error(`${this.backbone.name} feature model: onnxruntime returned no '${FEATURES_OUTPUT}'`);
      // A copy: the output's buffer belongs to onnxruntime and goes with dispose().
      return Float32Array.from(out.data as Float32Array);
    } finally {
      for (const t of Object.values(result)) t.dispose();
    }
  }

  async run(batch: ImageBatch): Promise<FeatureBatch> {
    const [n, h, w, c] = batch.shape;
    if (this.runner.engine === 'onnxruntime') {
      return { features: await this.featuresOfNchw(nhwcToNchw(batch.pixels, batch.shape), [n, c, h, w]), n, width: this.width };
    }
    const x = tf.tensor4d(batch.pixels, batch.shape);
    try {
      return { features: this.featuresOf(x), n, width: this.width };
    } finally {
      x.dispose();
    }
  }

  async close(): Promise<void> {
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of await Promise.allSettled(sessions)) if (s.status === 'fulfilled') await s.value.release();
    this.sd?.dispose();
    this.sd = null;
  }
}

/**
 * Throws a one-line UserError unless `x` is a float32 batch [N, 3, H, W] (NCHW, as PyTorch) of
 * finite values; `source` names it in the message.
 */
export function checkImageBatch(x: HostTensor, source = 'input'): void {
  const shape = `${x.dtype} [${x.shape.join(', ')}]`;
  const want = 'expected float32 images [N, 3, H, W] (NCHW, as PyTorch), already transformed';
  if (x.dtype !== 'F32') throw new UserError(`${source}: is ${shape}; ${want}`);
  if (x.shape.length !== 4) throw new UserError(`${source}: has rank ${x.shape.length} (${shape}); ${want}`);
  const [n, c, h, w] = x.shape as [number, number, number, number];
  if (c !== 3) throw new UserError(`${source}: has ${c} channel${c === 1 ? '' : 's'} on axis 1 (${shape}); ${want}`);
  if (n === 0 || h === 0 || w === 0) throw new UserError(`${source}: is empty (${shape}); ${want}`);
  const data = x.data as Float32Array;
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) throw new UserError(`${source}: holds ${data[i]} at flat index ${i}; expected finite pixel values`);
  }
}

export interface ExtractFeaturesOptions extends BackboneFeatureOptions {
  /** Images per forward (default 16). */
  batchSize?: number;
  /** Called after every batch with (images done, total). */
  onProgress?: (done: number, total: number) => void;
  /** Names the input in messages (default 'input'). */
  source?: string;
  /** Called once the model is open with the engine that computes the features. */
  onEngine?: (engine: FeatureEngine) => void;
}

/**
 * The eval-mode features of a batch of images already transformed (resized, cropped, normalised):
 * `x` float32 [N, 3, H, W] (NCHW, as PyTorch) → float32 [N, width]. `backbone` is a name of the
 * backbone registry that has pretrained weights (resnet50, googlenet, dino-vits16).
 */
export async function extractFeatures(backbone: string, x: HostTensor, opts: ExtractFeaturesOptions): Promise<HostTensor> {
  checkImageBatch(x, opts.source);
  const batchSize = opts.batchSize ?? 16;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new UserError(`batch size: expected a positive integer, got ${batchSize}`);
  const model = await BackboneFeatureModel.open(backbone, opts);
  opts.onEngine?.(model.engine);
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const pixels = x.data as Float32Array;
  const out = new Float32Array(n * model.width);
  const image = c * h * w;
  try {
    for (let start = 0; start < n; start += batchSize) {
      const count = Math.min(batchSize, n - start);
      out.set(await model.featuresOfNchw(pixels.subarray(start * image, (start + count) * image), [count, c, h, w]), start * model.width);
      opts.onProgress?.(start + count, n);
    }
  } finally {
    await model.close();
  }
  return { dtype: 'F32', shape: [n, model.width], data: out };
}
