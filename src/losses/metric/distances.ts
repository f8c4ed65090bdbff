// Distances and similarities as full [N, M] matrices, after pytorch-metric-learning (PML,
// distances/base_distance.py): optional L_p normalisation of the embeddings, an optional power,
// and the `isInverted` flag (true for similarities, where large means close). Losses written
// against `margin`, `toDistanceLike` and `isInverted` are correct for both directions.
import * as tf from '@tensorflow/tfjs';
import { linear } from '../../nn/linear.ts';

export type DistanceName = 'lp' | 'cosine' | 'dot';

export interface DistanceOptions {
  /** L_p-normalise embeddings before comparing them (PML's default: true). */
  normalizeEmbeddings?: boolean;
  /** The p of the L_p norm used for the distance and for the normalisation (default 2). */
  p?: number;
  /** The matrix is raised to this power (default 1; 2 with p = 2 gives squared Euclidean). */
  power?: number;
}

/**
 * q·rᵀ [N, M] through the project's Linear op, whose gradient transposes explicitly (wasm is very
 * slow on matMul gradients with a transposed operand; see docs/backends.md).
 */
export function innerProducts(q: tf.Tensor2D, r: tf.Tensor2D): tf.Tensor2D {
  return linear(q, r, tf.zeros([r.shape[0]])) as tf.Tensor2D;
}

/** √x with √0 = 0 and a zero gradient at 0 (coincident points), instead of ∞ or NaN. */
export const safeSqrt = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
  const value = tf.sqrt(tf.relu(x));
  save([x]);
  const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
    const sx = saved[0] as tf.Tensor;
    const live = tf.cast(tf.greater(sx, 1e-12), 'float32');
    return [tf.mul(dy, tf.div(tf.mul(live, 0.5), tf.sqrt(tf.maximum(sx, 1e-12))))];
  };
  return { value, gradFunc };
}) as unknown as <T extends tf.Tensor>(x: T) => T;

function shapeError(what: string): Error {
  return new Error(`${what}: embeddings must be a 2-D tensor of shape [batch_size, embedding_size]`);
}

/** x / √max(Σx², 1e-24) along the last axis: F.normalize with p = 2 (the clamp squared, before the root). */
export function l2Normalize<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => tf.div(x, tf.sqrt(tf.maximum(tf.sum(tf.square(x), -1, true), 1e-24))) as T);
}

export abstract class BaseDistance {
  abstract readonly name: DistanceName;
  /** True for similarities (larger = closer), false for distances (smaller = closer). */
  abstract readonly isInverted: boolean;
  readonly normalizeEmbeddings: boolean;
  readonly p: number;
  readonly power: number;

  constructor(o: DistanceOptions = {}) {
    this.normalizeEmbeddings = o.normalizeEmbeddings ?? true;
    this.p = o.p ?? 2;
    this.power = o.power ?? 1;
    if (!(this.p > 0)) throw new Error(`distance: p must be positive, got ${this.p}`);
  }

  /** x / max(‖x‖_p, 1e-12) along the last axis (PyTorch's F.normalize). */
  normalize<T extends tf.Tensor>(x: T): T {
    if (this.p === 2) return l2Normalize(x);
    return tf.tidy(() => tf.div(x, tf.maximum(tf.pow(tf.sum(tf.pow(tf.abs(x), this.p), -1, true), 1 / this.p), 1e-12)) as T);
  }

  maybeNormalize<T extends tf.Tensor>(x: T): T {
    return this.normalizeEmbeddings ? this.normalize(x) : x;
  }

  /**
   * Whether the measure itself ignores scale (the cosine): then `…AsPlaced` still normalises,
   * which changes no value of it.
   */
  protected readonly scaleInvariant: boolean = false;

  /**
   * The matrix between points a generator has already placed in the space the loss compares
   * embeddings in (its synthetic points, and the real ones normalised as the loss would): no
   * normalisation, so a synthetic point off the unit sphere keeps the distance its generator gave it.
   */
  matrixAsPlaced(query: tf.Tensor2D, ref?: tf.Tensor2D): tf.Tensor2D {
    return this.matrixOf(query, ref, this.scaleInvariant);
  }

  /** pairwise() between already placed points (see matrixAsPlaced). */
  pairwiseAsPlaced(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
    return this.pairwiseOf(a, b, this.scaleInvariant);
  }

  /** The [N, M] matrix between query rows and ref rows (ref defaults to the query). */
  matrix(query: tf.Tensor2D, ref?: tf.Tensor2D): tf.Tensor2D {
    return this.matrixOf(query, ref, this.normalizeEmbeddings);
  }

  private matrixOf(query: tf.Tensor2D, ref: tf.Tensor2D | undefined, normalise: boolean): tf.Tensor2D {
    if (query.rank !== 2 || (ref !== undefined && ref.rank !== 2)) throw shapeError(`${this.name} distance`);
    if (ref !== undefined && ref.shape[1] !== query.shape[1]) {
      throw new Error(`${this.name} distance: query has ${query.shape[1]} features, ref has ${ref.shape[1]}`);
    }
    return tf.tidy(() => {
      const q = normalise ? this.normalize(query) : query;
      const r = ref === undefined ? q : normalise ? this.normalize(ref) : ref;
      const m = this.applyPower(this.computeMat(q, r));
      const want = [query.shape[0], (ref ?? query).shape[0]];
      if (m.shape[0] !== want[0] || m.shape[1] !== want[1]) throw new Error(`${this.name} distance: matrix shape [${m.shape}] is not [${want}]`);
      return m;
    });
  }

  /** Row-wise values along the last axis of a and b (broadcast against each other). */
  pairwise(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
    return this.pairwiseOf(a, b, this.normalizeEmbeddings);
  }

  private pairwiseOf(a: tf.Tensor, b: tf.Tensor, normalise: boolean): tf.Tensor {
    if (a.shape[a.rank - 1] !== b.shape[b.rank - 1])
      throw new Error(`${this.name} distance: feature sizes ${a.shape[a.rank - 1]} and ${b.shape[b.rank - 1]} differ`);
    const n = <T extends tf.Tensor>(x: T): T => (normalise ? this.normalize(x) : x);
    return tf.tidy(() => this.applyPower(this.computePairwise(n(a), n(b))));
  }

  /** The margin between x and y in the "x is farther than y" direction: x − y, or y − x for similarities. */
  margin(x: tf.Tensor | number, y: tf.Tensor | number): tf.Tensor {
    return this.isInverted ? tf.sub(y, x) : tf.sub(x, y);
  }

  /** The matrix as distance-like values (smaller = closer): negated for similarities. */
  toDistanceLike<T extends tf.Tensor>(m: T): T {
    return this.isInverted ? tf.neg(m) : m;
  }

  protected applyPower<T extends tf.Tensor>(m: T): T {
    return this.power === 1 ? m : tf.pow(m, this.power);
  }

  protected abstract computeMat(q: tf.Tensor2D, r: tf.Tensor2D): tf.Tensor2D;
  protected abstract computePairwise(a: tf.Tensor, b: tf.Tensor): tf.Tensor;
}

/** L_p distance (PML's LpDistance); p = 2 is the Euclidean distance. */
export class LpDistance extends BaseDistance {
  readonly name = 'lp';
  readonly isInverted = false;

  /** ‖q‖² + ‖r‖² − 2 q·r, clipped at 0 (p = 2 only). */
  private squaredEuclidean(q: tf.Tensor2D, r: tf.Tensor2D): tf.Tensor2D {
    const qq = tf.sum(tf.square(q), 1, true);
    const rr = tf.reshape(tf.sum(tf.square(r), 1), [1, -1]);
    return tf.relu(tf.sub(tf.add(qq, rr), tf.mul(innerProducts(q, r), 2))) as tf.Tensor2D;
  }

  protected override applyPower<T extends tf.Tensor>(m: T): T {
    // p = 2, power = 2 is computed directly as the squared distance (see computeMat).
    return this.p === 2 && this.power === 2 ? m : super.applyPower(m);
  }

  protected computeMat(q: tf.Tensor2D, r: tf.Tensor2D): tf.Tensor2D {
    if (this.p === 2) {
      const sq = this.squaredEuclidean(q, r);
      return this.power === 2 ? sq : safeSqrt(sq);
    }
    const diff = tf.sub(tf.expandDims(q, 1), tf.expandDims(r, 0));
    return this.root(tf.sum(tf.pow(tf.abs(diff), this.p), 2)) as tf.Tensor2D;
  }

  protected computePairwise(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
    const diff = tf.sub(a, b);
    if (this.p === 2) {
      const sq = tf.sum(tf.square(diff), -1);
      return this.power === 2 ? sq : safeSqrt(sq);
    }
    return this.root(tf.sum(tf.pow(tf.abs(diff), this.p), -1));
  }

  private root(s: tf.Tensor): tf.Tensor {
    return this.p === 1 ? s : tf.pow(tf.maximum(s, 1e-30), 1 / this.p);
  }
}

/** Dot product of (optionally normalised) embeddings (PML's DotProductSimilarity; normalises by default as PML does). */
export class DotProductSimilarity extends BaseDistance {
  readonly name: DistanceName = 'dot';
  readonly isInverted = true;

  protected computeMat(q: tf.Tensor2D, r: tf.Tensor2D): tf.Tensor2D {
    return innerProducts(q, r);
  }

  protected computePairwise(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
    return tf.sum(tf.mul(a, b), -1);
  }
}

/** Cosine similarity: the dot product with normalisation forced on (PML's CosineSimilarity). */
export class CosineSimilarity extends DotProductSimilarity {
  override readonly name = 'cosine';
  protected override readonly scaleInvariant = true;

  constructor(o: Omit<DistanceOptions, 'normalizeEmbeddings'> & { normalizeEmbeddings?: true } = {}) {
    if ((o as DistanceOptions).normalizeEmbeddings === false) throw new Error('cosine similarity always normalises the embeddings');
    super({ ...o, normalizeEmbeddings: true });
  }
}

/** A distance given by name, as in loss options ('euclidean' = L2, 'squared-euclidean' = L2 squared). */
export type DistanceSpec = BaseDistance | 'euclidean' | 'squared-euclidean' | 'cosine' | 'dot';

export function makeDistance(spec: DistanceSpec, o: DistanceOptions = {}): BaseDistance {
  if (spec instanceof BaseDistance) return spec;
  switch (spec) {
    case 'euclidean':
      return new LpDistance({ ...o, p: 2 });
    case 'squared-euclidean':
      return new LpDistance({ ...o, p: 2, power: 2 });
    case 'cosine':
      return new CosineSimilarity({ p: o.p, power: o.power });
    case 'dot':
      return new DotProductSimilarity(o);
    default:
      throw new Error(`unknown distance '${String(spec)}' (expected euclidean, squared-euclidean, cosine or dot)`);
  }
}
