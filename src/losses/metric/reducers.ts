// Reducers turn per-element losses (per pair, triplet, anchor or proxy) into one scalar, after
// PML's reducers/. Losses here are dense tensors (a [N, M] pair matrix, a [N, M, M] triplet
// cube…) with a host-side 0/1 mask saying which elements exist; a reducer only ever sees the
// elements whose mask is 1. Whether a loss value is "non-zero" is decided on the host from its
// value, so no comparison op enters the gradient tape. With nothing left to average, a reducer
// returns a zero that is still connected to the graph (0·Σ losses), as PML's zero_loss does.
import * as tf from '@tensorflow/tfjs';

export type ReducerName = 'mean' | 'avg-non-zero' | 'sum' | 'threshold' | 'divisor';

export interface Reducer {
  readonly name: ReducerName;
  /** Reduces `losses` over the elements where `mask` (same size, row-major) is non-zero; no mask = all. */
  reduce(losses: tf.Tensor, mask?: ArrayLike<number> | null): tf.Scalar;
}

function checkMask(losses: tf.Tensor, mask: ArrayLike<number> | null | undefined): Float32Array {
  if (mask == null) return new Float32Array(losses.size).fill(1);
  if (mask.length !== losses.size) throw new Error(`reducer: mask has ${mask.length} entries for ${losses.size} losses`);
  return Float32Array.from(mask, (m) => (m ? 1 : 0));
}

/** Σ losses·keep / divisor, or the graph-connected zero when divisor is 0. */
function weightedSum(losses: tf.Tensor, keep: Float32Array, divisor: number): tf.Scalar {
  return tf.tidy(() => {
    const s = tf.sum(tf.mul(losses, tf.tensor(keep, losses.shape)));
    return (divisor === 0 ? tf.mul(s, 0) : tf.div(s, divisor)) as tf.Scalar;
  });
}

function count(keep: Float32Array): number {
  let n = 0;
  for (let i = 0; i < keep.length; i++) n += keep[i] as number;
  return n;
}

/** Mean over the existing elements (PML's MeanReducer). */
export class MeanReducer implements Reducer {
  readonly name: ReducerName = 'mean';
  reduce(losses: tf.Tensor, mask?: ArrayLike<number> | null): tf.Scalar {
    const keep = checkMask(losses, mask);
    return weightedSum(losses, keep, count(keep));
  }
}

/** Σ over the existing elements. */
export class SumReducer implements Reducer {
  readonly name: ReducerName = 'sum';
  reduce(losses: tf.Tensor, mask?: ArrayLike<number> | null): tf.Scalar {
    return weightedSum(losses, checkMask(losses, mask), 1);
  }
}

/** Mean over the existing elements with low < loss < high (PML's ThresholdReducer; either bound optional). */
export class ThresholdReducer implements Reducer {
  readonly name: ReducerName = 'threshold';
  constructor(
    readonly low?: number,
    readonly high?: number,
  ) {
    if (low === undefined && high === undefined) throw new Error('threshold reducer: give low, high or both');
  }

  reduce(losses: tf.Tensor, mask?: ArrayLike<number> | null): tf.Scalar {
    const keep = checkMask(losses, mask);
    const v = losses.dataSync();
    for (let i = 0; i < keep.length; i++) {
      const x = v[i] as number;
      if ((this.low !== undefined && !(x > this.low)) || (this.high !== undefined && !(x < this.high))) keep[i] = 0;
    }
    return weightedSum(losses, keep, count(keep));
  }
}

/** Mean over the existing elements whose loss is > 0 (PML's AvgNonZeroReducer = threshold with low 0). */
export class AvgNonZeroReducer extends ThresholdReducer {
  override readonly name: ReducerName = 'avg-non-zero';
  constructor() {
    super(0);
  }
}

/** Σ over the existing elements / a fixed divisor (PML's DivisorReducer; Proxy-Anchor uses it). */
export class DivisorReducer implements Reducer {
  readonly name: ReducerName = 'divisor';
  constructor(readonly divisor: number) {}
  reduce(losses: tf.Tensor, mask?: ArrayLike<number> | null): tf.Scalar {
    return weightedSum(losses, checkMask(losses, mask), this.divisor);
  }
}

export type ReducerSpec = Reducer | 'mean' | 'avg-non-zero' | 'sum';

export function makeReducer(spec: ReducerSpec): Reducer {
  if (typeof spec !== 'string') return spec;
  switch (spec) {
    case 'mean':
      return new MeanReducer();
    case 'avg-non-zero':
      return new AvgNonZeroReducer();
    case 'sum':
      return new SumReducer();
    default:
      throw new Error(`unknown reducer '${String(spec)}' (expected mean, avg-non-zero or sum)`);
  }
}
