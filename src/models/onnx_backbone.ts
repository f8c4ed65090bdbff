// Frozen-feature mode, model side: a local .onnx image model run with onnxruntime-node (CPU), and
// the identity "backbone" that the embedding head trains on once features are cached
// (src/data/feature_cache.ts).
//
// The ONNX model takes one float32 NCHW image batch (any batch size when its first axis is
// dynamic) and returns one tensor whose first axis is the batch; everything after it is flattened
// into the feature vector ([n, F], or e.g. [n, F, 1, 1] from a pooled CNN). Images arrive as our
// NHWC batches (src/data/dataset.ts) and are transposed on the host.
import { existsSync, statSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import type * as Ort from 'onnxruntime-node';
import type { ImageBatch } from '../data/dataset.ts';
import type { Backbone } from './backbone.ts';

export class OnnxModelError extends Error {}

export interface OnnxImageModelOptions {
  /** Input to feed (default: the model's only input). */
  inputName?: string;
  /** Output to read (default: the model's first output). */
  outputName?: string;
  /** onnxruntime intra-op threads (default: onnxruntime's choice, all cores). */
  threads?: number;
}

export interface FeatureBatch {
  /** [n, width], row-major. */
  features: Float32Array;
  n: number;
  width: number;
}

/** The part of an image model that feature extraction needs (OnnxImageModel, or a stand-in in tests). */
export interface ImageFeatureModel {
  readonly path: string;
  run(batch: ImageBatch): Promise<FeatureBatch>;
  close(): Promise<void>;
}

/** [n, h, w, c] → [n, c, h, w]. */
export function nhwcToNchw(pixels: Float32Array, shape: readonly [number, number, number, number]): Float32Array {
  const [n, h, w, c] = shape;
  const out = new Float32Array(pixels.length);
  const plane = h * w;
  for (let b = 0; b < n; b++) {
    const base = b * plane * c;
    for (let p = 0; p < plane; p++) {
      const src = base + p * c;
      for (let ch = 0; ch < c; ch++) out[base + ch * plane + p] = pixels[src + ch] as number;
    }
  }
  return out;
}

let ortModule: Promise<typeof Ort> | null = null;

/** onnxruntime-node, imported once; an OnnxModelError when the package cannot be loaded. */
export function loadOrt(): Promise<typeof Ort> {
  ortModule ??= import('onnxruntime-node').catch((err: unknown) => {
    ortModule = null;
    throw new OnnxModelError(`frozen-feature mode needs the onnxruntime-node package, which could not be loaded: ${(err as Error).message}`);
  });
  return ortModule;
}

export class OnnxImageModel implements ImageFeatureModel {
  private constructor(
    readonly path: string,
    private readonly ort: typeof Ort,
    private readonly session: Ort.InferenceSession,
    readonly inputName: string,
    readonly outputName: string,
    /** The declared input shape (numbers for fixed axes, names or null for dynamic ones), when known. */
    readonly inputShape: ReadonlyArray<number | string | null> | null,
  ) {}

  /** Opens a model; a missing, unreadable or invalid file gives an OnnxModelError naming it. */
  static async open(path: string, options: OnnxImageModelOptions = {}): Promise<OnnxImageModel> {
    if (!existsSync(path)) throw new OnnxModelError(`ONNX model '${path}' does not exist`);
    if (!statSync(path).isFile()) throw new OnnxModelError(`ONNX model '${path}' is not a file`);
    const ort = await loadOrt();
    let session: Ort.InferenceSession;
    try {
      const so: Ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], graphOptimizationLevel: 'all' };
      if (options.threads !== undefined) so.intraOpNumThreads = options.threads;
      session = await ort.InferenceSession.create(path, so);
    } catch (err) {
      throw new OnnxModelError(`ONNX model '${path}' could not be loaded (not a valid ONNX file?): ${(err as Error).message}`);
    }
    const pick = (names: readonly string[], wanted: string | undefined, what: string): string => {
      if (wanted !== undefined) {
        if (!names.includes(wanted))
          throw new OnnxModelError(`ONNX model '${path}' has no ${what} '${wanted}' (it has ${names.map((n) => `'${n}'`).join(', ')})`);
        return wanted;
      }
      if (what === 'input' && names.length !== 1) {
        throw new OnnxModelError(`ONNX model '${path}' has ${names.length} inputs (${names.map((n) => `'${n}'`).join(', ')}); say which one takes the images`);
      }
      const first = names[0];
      if (first === undefined) throw new OnnxModelError(`ONNX model '${path}' has no ${what}s`);
      return first;
    };
    const inputName = pick(session.inputNames, options.inputName, 'input');
    const outputName = pick(session.outputNames, options.outputName, 'output');
    const meta = (session as unknown as { inputMetadata?: Array<{ name: string; isTensor: boolean; type?: string; shape?: Array<number | string> }> })
      .inputMetadata;
    const im = meta?.find((m) => m.name === inputName);
    if (im && im.isTensor && im.type !== undefined && im.type !== 'float32') {
      throw new OnnxModelError(`ONNX model '${path}': input '${inputName}' is ${im.type}; frozen-feature mode feeds float32 images`);
    }
    const inputShape = im?.shape ? im.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : typeof d === 'string' ? d : null)) : null;
    if (inputShape && inputShape.length !== 4) {
      throw new OnnxModelError(
        `ONNX model '${path}': input '${inputName}' has rank ${inputShape.length} ([${inputShape.join(', ')}]); expected an NCHW image batch`,
      );
    }
    return new OnnxImageModel(path, ort, session, inputName, outputName, inputShape);
  }

  /** Features of an NHWC batch: [n, F], everything after the batch axis of the output flattened. */
  async run(batch: ImageBatch): Promise<FeatureBatch> {
    const [n, h, w, c] = batch.shape;
    if (this.inputShape) {
      const want = [n, c, h, w];
      const bad = this.inputShape.findIndex((d, i) => typeof d === 'number' && d !== want[i]);
      if (bad >= 0) {
        throw new OnnxModelError(
          `ONNX model '${this.path}' expects input [${this.inputShape.map((d) => d ?? '?').join(', ')}] (NCHW); got a batch of ${n} images ${c}×${h}×${w}${bad === 0 ? ' (its batch size is fixed: use that batch size)' : ''}`,
        );
      }
    }
    const input = new this.ort.Tensor('float32', nhwcToNchw(batch.pixels, batch.shape), [n, c, h, w]);
    let result: Ort.InferenceSession.ReturnType;
    try {
      result = await this.session.run({ [this.inputName]: input });
    } catch (err) {
      throw new OnnxModelError(`ONNX model '${this.path}' failed on a batch of ${n} images ${c}×${h}×${w} (NCHW): ${(err as Error).message}`);
    }
    const out = result[this.outputName];
    if (!out) throw new OnnxModelError(`ONNX model '${this.path}' returned no '${this.outputName}'`);
    if (out.type !== 'float32') throw new OnnxModelError(`ONNX model '${this.path}': output '${this.outputName}' is ${out.type}, expected float32`);
    const dims = out.dims.map(Number);
    if (dims[0] !== n)
      throw new OnnxModelError(`ONNX model '${this.path}': output '${this.outputName}' has shape [${dims.join(', ')}], expected the batch (${n}) first`);
    const width = dims.slice(1).reduce((a, b) => a * b, 1);
    const features = Float32Array.from(out.data as Float32Array);
    for (const t of Object.values(result)) t.dispose?.();
    return { features, n, width };
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

/**
 * The "backbone" of frozen-feature training: an identity on cached features. Its input is a
 * cached-feature batch shaped like images, [n, 1, 1, F] (src/data/feature_cache.ts), or already
 * [n, F] reshaped; its output is [n, F] with F = n_mid. It has no parameters.
 */
export function featureIdentityBackbone(width: number, name = 'cached-features'): Backbone {
  return {
    name,
    features: width,
    init() {
      /* no parameters */
    },
    forward(_sd, images: tf.Tensor4D): tf.Tensor2D {
      const n = images.shape[0];
      if (images.size !== n * width) {
        throw new Error(`${name}: expected cached features [n, 1, 1, ${width}], got [${images.shape.join(', ')}]`);
      }
      return tf.reshape(images, [n, width]);
    },
  };
}
