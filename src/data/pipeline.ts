// The image pipeline of the benchmarks (docs/algorithm.md §1.3, geometry in src/data/transforms.ts):
//
//   - ImagePool: worker threads (node:worker_threads) that decode and transform images with sharp
//     and write float32 NHWC straight into a batch's SharedArrayBuffer; the images of a batch are
//     shared out between the workers, batches are served in the order they were asked for, and
//     several batches may be in flight (prefetching). The workers are unref'd while idle, so they
//     never keep the process alive. `workers: 0` runs everything on the calling thread instead.
//   - FileSplit: a DatasetSplit over image files whose load() applies the test transform
//     (Resize 256, CenterCrop 224, ImageNet normalisation by default) and whose loadTrain() applies
//     the train transform with one seed per image (the trainer draws the seeds from its own
//     stream, STREAMS.augmentationSeeds, so a resumed run sees exactly the same images).
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { firstLine, UserError } from '../errors.ts';
import {
  checkIndices,
  checkLabels,
  classCounts,
  checkNormalization,
  type DatasetSplit,
  type ImageBatch,
  type ImageShape,
  type Normalization,
} from './dataset.ts';
import {
  type AppliedTransform,
  checkTransform,
  IMAGENET_NORMALIZATION,
  type ImageTransform,
  loadSharp,
  PAPER_TEST_TRANSFORM,
  PAPER_TRAIN_TRANSFORM,
  type TestTransform,
  type TrainTransform,
  transformInto,
} from './transforms.ts';
import { mapConcurrent } from './concurrency.ts';
import { siblingModule, startModuleWorker } from '../engine/worker.ts';

/** A batch request as a worker receives it. */
export interface PipelineJob {
  id: number;
  paths: string[];
  /** One seed per image (ignored by the test transform). */
  seeds: Uint32Array;
  transform: ImageTransform;
  norm: Normalization | null;
  /** paths.length · imageSize floats, in a SharedArrayBuffer. */
  out: Float32Array;
  /** Floats per image. */
  imageSize: number;
  /** [next image to claim], shared by the workers. */
  counter: Int32Array;
  /** Images each worker transforms at once. */
  lanes: number;
}

export type PipelineReply =
  | { kind: 'ready' }
  | { kind: 'done'; id: number; results: { index: number; applied: AppliedTransform }[]; errors: { index: number; message: string }[] }
  | { kind: 'error'; message: string };

/** A transformed batch: float32 NHWC and what was done to each image. */
export interface TransformedBatch extends ImageBatch {
  applied: AppliedTransform[];
}

export interface ImagePoolOptions {
  /** Worker threads; 0 transforms on the calling thread. Default: min(8, available parallelism). */
  workers?: number;
  /** Images each worker (or the calling thread) transforms at once. Default 2. */
  lanes?: number;
}

export function defaultWorkerCount(): number {
  return Math.max(1, Math.min(8, availableParallelism()));
}

function spawn(): Worker {
  return startModuleWorker(siblingModule(import.meta.url, 'pipeline_worker'));
}

interface Pending {
  replies: number;
  results: { index: number; applied: AppliedTransform }[];
  errors: { index: number; message: string }[];
  resolve: () => void;
  reject: (err: Error) => void;
}

export class ImagePool {
  readonly workers: number;
  readonly lanes: number;
  private threads: Worker[] = [];
  private started: Promise<void> | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private dead: Error | null = null;

  constructor(opts: ImagePoolOptions = {}) {
    const workers = opts.workers ?? defaultWorkerCount();
    const lanes = opts.lanes ?? 2;
    if (!Number.isInteger(workers) || workers < 0) throw new UserError(`workers must be an integer ≥ 0, got ${workers}`);
    if (!Number.isInteger(lanes) || lanes < 1) throw new UserError(`lanes must be a positive integer, got ${lanes}`);
    this.workers = workers;
    this.lanes = lanes;
  }

  private start(): Promise<void> {
    if (this.started) return this.started;
    this.started = new Promise<void>((resolve, reject) => {
      let ready = 0;
      this.threads = Array.from({ length: this.workers }, spawn);
      for (const w of this.threads) {
        w.on('message', (m: PipelineReply) => {
          if (m.kind === 'ready') {
            if (++ready === this.workers) {
              if (this.pending.size === 0) for (const t of this.threads) t.unref();
              resolve();
            }
          } else if (m.kind === 'done') {
            this.onDone(m);
          } else {
            this.fail(new Error(`image worker: ${m.message}`));
            reject(this.dead as Error);
          }
        });
        w.on('error', (err) => {
          this.fail(err);
          reject(err);
        });
        w.on('exit', (code) => {
          if (!this.dead) this.fail(new Error(`image worker exited with code ${code}`));
          reject(this.dead as Error);
        });
      }
    });
    this.started.catch(() => undefined);
    return this.started;
  }

  private fail(err: Error): void {
    if (this.dead) return;
    this.dead = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    for (const w of this.threads) void w.terminate();
  }

  private onDone(m: Extract<PipelineReply, { kind: 'done' }>): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    p.results.push(...m.results);
    p.errors.push(...m.errors);
    if (--p.replies === 0) {
      this.pending.delete(m.id);
      if (this.pending.size === 0) for (const w of this.threads) w.unref();
      p.resolve();
    }
  }

  /** Transforms the images at `paths` (with `seeds` for a train transform) into one NHWC batch. */
  async run(paths: readonly string[], transform: ImageTransform, norm: Normalization | null, seeds?: ArrayLike<number>): Promise<TransformedBatch> {
    checkTransform(transform);
    const n = paths.length;
    const size = transform.size;
    const imageSize = size * size * 3;
    const seedArray = new Uint32Array(n);
    if (seeds) {
      if (seeds.length !== n) throw new RangeError(`${seeds.length} seeds for ${n} images`);
      seedArray.set(Array.from(seeds, (s) => s >>> 0));
    }
    const shape: [number, number, number, number] = [n, size, size, 3];
    const applied = new Array<AppliedTransform>(n);
    const errors: { index: number; message: string }[] = [];
    let out: Float32Array;
    if (this.workers === 0 || n === 0) {
      const pixels = new Float32Array(n * imageSize);
      out = pixels;
      const sharp = await loadSharp();
      await mapConcurrent(paths, this.lanes, async (path, i) => {
        try {
          applied[i] = await transformInto(sharp, path, transform, seedArray[i] as number, pixels, i * imageSize, norm);
        } catch (err) {
          errors.push({ index: i, message: firstLine(err) });
        }
      });
    } else {
      if (this.dead) throw this.dead;
      await this.start();
      out = new Float32Array(new SharedArrayBuffer(n * imageSize * 4));
      const id = this.nextId++;
      const job: PipelineJob = {
        id,
        paths: [...paths],
        seeds: seedArray,
        transform,
        norm,
        out,
        imageSize,
        counter: new Int32Array(new SharedArrayBuffer(4)),
        lanes: this.lanes,
      };
      const p: Pending = { replies: this.threads.length, results: [], errors, resolve: () => undefined, reject: () => undefined };
      const done = new Promise<void>((resolve, reject) => {
        p.resolve = resolve;
        p.reject = reject;
      });
      this.pending.set(id, p);
      for (const w of this.threads) {
        w.ref();
        w.postMessage(job);
      }
      await done;
      for (const r of p.results) applied[r.index] = r.applied;
    }
    if (errors.length > 0) {
      errors.sort((a, b) => a.index - b.index);
      const first = errors[0] as { index: number; message: string };
      const more = errors.length > 1 ? ` (and ${errors.length - 1} more unreadable image${errors.length > 2 ? 's' : ''})` : '';
      throw new UserError(`${paths[first.index]}: unreadable or corrupt image (${first.message})${more}`);
    }
    return { pixels: out, shape, applied };
  }

  /** Stops the workers; later runs fail. */
  async close(): Promise<void> {
    this.fail(new Error('image pool closed'));
    await Promise.all(this.threads.map((w) => w.terminate()));
  }
}

const shared = new Map<string, ImagePool>();

/** A pool shared by everything that asks for the same worker and lane counts. */
export function imagePool(opts: ImagePoolOptions = {}): ImagePool {
  const key = `${opts.workers ?? defaultWorkerCount()}/${opts.lanes ?? 2}`;
  let pool = shared.get(key);
  if (!pool) {
    pool = new ImagePool(opts);
    shared.set(key, pool);
  }
  return pool;
}

/** Stops the shared pools (tests; the idle workers never keep the process alive anyway). */
export async function closeImagePools(): Promise<void> {
  const pools = [...shared.values()];
  shared.clear();
  await Promise.all(pools.map((p) => p.close()));
}

// ---------------------------------------------------------------- FileSplit

export interface FileSplitOptions {
  name: string;
  /** Absolute (or cwd-relative) image paths. */
  files: readonly string[];
  /** Contiguous 0..C−1. */
  labels: Int32Array;
  classNames: readonly string[];
  /** The dataset's own identifier of each class (CUB class number, In-Shop item id, …). */
  classIds?: readonly (number | string)[];
  /** The transform of load() (default Resize 256 + CenterCrop 224). */
  transform?: TestTransform;
  /** Default: ImageNet mean and std; null: values in [0, 1]. */
  normalization?: Normalization | null;
  /** Default: the shared pool with default worker counts. */
  pool?: ImagePool;
  /** Allow classes without an image (a numbering shared with another split). Default false. */
  allowEmptyClasses?: boolean;
}

export class FileSplit implements DatasetSplit {
  readonly name: string;
  readonly size: number;
  readonly labels: Int32Array;
  readonly classNames: readonly string[];
  readonly classIds: readonly (number | string)[];
  readonly imageShape: ImageShape;
  readonly transform: TestTransform;
  readonly normalization: Normalization | null;
  readonly files: readonly string[];
  private readonly pool: ImagePool;

  constructor(o: FileSplitOptions) {
    if (o.files.length !== o.labels.length) throw new Error(`${o.name}: ${o.files.length} files for ${o.labels.length} labels`);
    if (o.allowEmptyClasses) classCounts(o.labels, o.classNames.length, o.name);
    else checkLabels(o.labels, o.classNames.length, o.name);
    if (o.classIds && o.classIds.length !== o.classNames.length)
      throw new Error(`${o.name}: ${o.classIds.length} class ids for ${o.classNames.length} classes`);
    this.name = o.name;
    this.files = o.files;
    this.size = o.files.length;
    this.labels = o.labels;
    this.classNames = o.classNames;
    this.classIds = o.classIds ?? o.classNames;
    this.transform = o.transform ?? PAPER_TEST_TRANSFORM;
    checkTransform(this.transform);
    this.imageShape = [this.transform.size, this.transform.size, 3];
    this.normalization = checkNormalization(o.normalization === undefined ? IMAGENET_NORMALIZATION : o.normalization, 3);
    this.pool = o.pool ?? imagePool();
  }

  source(index: number): string {
    return this.files[index] ?? `${this.name}[${index}]`;
  }

  private paths(indices: ArrayLike<number>): string[] {
    checkIndices(indices, this.size, this.name);
    return Array.from(indices, (i) => this.files[i] as string);
  }

  /** The test transform of the images at `indices`. */
  load(indices: ArrayLike<number>): Promise<TransformedBatch> {
    try {
      return this.pool.run(this.paths(indices), this.transform, this.normalization);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** The train transform (default: the paper's) of the images at `indices`, one seed per image. */
  loadTrain(indices: ArrayLike<number>, seeds: ArrayLike<number>, transform: TrainTransform = PAPER_TRAIN_TRANSFORM): Promise<TransformedBatch> {
    try {
      return this.pool.run(this.paths(indices), transform, this.normalization, seeds);
    } catch (err) {
      return Promise.reject(err);
    }
  }
}
