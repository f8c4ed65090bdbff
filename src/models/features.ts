// Eval-mode features of hardneg's own pretrained backbones (the registry's paper-pipeline entries:
// ResNet-50, GoogLeNet) from image batches: the library side of `hardneg features`, and the image
// model of frozen-feature training with model.frozen (src/train/datasets.ts), where it stands in
// for the ONNX model as an ImageFeatureModel of the feature cache (src/data/feature_cache.ts).
// Which backbones qualify, how each is built and how its weights load all come from the backbone
// registry (src/models/backbones.ts), so a new entry there is all a new backbone needs here.
import { existsSync, statSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import type { ImageBatch } from '../data/dataset.ts';
import { Random, STREAMS } from '../engine/random.ts';
import { UserError, firstLine } from '../errors.ts';
import type { HostTensor } from '../io/host_tensor.ts';
import { nameList } from '../text.ts';
import { resolveWeights, type WeightsSettings } from '../weights/fetch.ts';
import { type BackboneName, isPretrainedBackbone, type PaperBackboneSpec, PRETRAINED_BACKBONE_NAMES, pretrainedBackboneSpec } from './backbones.ts';
import type { FeatureBatch, ImageFeatureModel } from './onnx_backbone.ts';
import { StateDict } from './state_dict.ts';
import type { TorchvisionBackbone } from './torchvision.ts';

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
  private constructor(
    /** The weights file (resolved from a registry name if one was given). */
    readonly path: string,
    readonly pooling: Pooling,
    private readonly backbone: TorchvisionBackbone,
    private sd: StateDict | null,
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
    const backbone = spec.create({ bnFreeze: true, pooling: pooling === 'avg+max' });
    const sd = new StateDict();
    try {
      loadPretrainedWeights(spec, sd, backbone, path, settings.weights);
    } catch (err) {
      sd.dispose();
      throw err;
    }
    return new BackboneFeatureModel(path, pooling, backbone, sd);
  }

  /**
   * The backbone with deterministic random weights (its own initialisation, seeded): for timing
   * the extraction where no weights file is at hand (bench/features.ts), since the work does not
   * depend on the weights' values. Features of such a model mean nothing.
   */
  static random(name: string, seed = 0): BackboneFeatureModel {
    const backbone = featureBackboneSpec(name).create({ bnFreeze: true, pooling: false });
    const sd = new StateDict();
    backbone.init(sd, new Random(seed, STREAMS.benchIteration));
    return new BackboneFeatureModel(`random:${seed}`, 'avg', backbone, sd);
  }

  get name(): string {
    return this.backbone.name;
  }

  /** Feature width (ResNet-50 2048, GoogLeNet 1024, DINO ViT-S/16 384). */
  get width(): number {
    return this.backbone.features;
  }

  /** Eval-mode features of an NHWC batch; the caller keeps ownership of `images`. */
  featuresOf(images: tf.Tensor4D): Float32Array {
    if (this.sd === null) throw new Error(`${this.backbone.name} feature model: used after close()`);
    const sd = this.sd;
    const y = tf.tidy(() => this.backbone.forward(sd, images, false));
    try {
      return y.dataSync() as Float32Array;
    } finally {
      y.dispose();
    }
  }

  run(batch: ImageBatch): Promise<FeatureBatch> {
    const x = tf.tensor4d(batch.pixels, batch.shape);
    try {
      return Promise.resolve({ features: this.featuresOf(x), n: batch.shape[0], width: this.width });
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    } finally {
      x.dispose();
    }
  }

  close(): Promise<void> {
    this.sd?.dispose();
    this.sd = null;
    return Promise.resolve();
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
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const pixels = x.data as Float32Array;
  const out = new Float32Array(n * model.width);
  try {
    for (let start = 0; start < n; start += batchSize) {
      const count = Math.min(batchSize, n - start);
      const image = c * h * w;
      const nhwc = tf.tidy(() =>
        tf.transpose(tf.tensor4d(pixels.subarray(start * image, (start + count) * image), [count, c, h, w]), [0, 2, 3, 1]),
      ) as tf.Tensor4D;
      try {
        out.set(model.featuresOf(nhwc), start * model.width);
      } finally {
        nhwc.dispose();
      }
      opts.onProgress?.(start + count, n);
    }
  } finally {
    await model.close();
  }
  return { dtype: 'F32', shape: [n, model.width], data: out };
}
