// Pooling with PyTorch's semantics on NHWC tensors.
//
// MaxPool2d(kernel, stride, padding, ceil_mode): implicit −∞ padding; with ceil_mode the output
// size rounds up, except that the last window must start inside the input or its left padding
// (torch's pooling_output_shape). Implemented as an explicit −∞ pad (and crop) to exactly the rows
// and columns the windows cover, then a 'valid' tf.maxPool. The gradient is our own: the wasm
// backend's MaxPoolGrad loses gradient (tfjs-backend-wasm 4.22: an 8×8 input pooled 2×2/2 returns
// 28 of the 32 units of a sum's gradient), so it is rebuilt from the k² strided views of the input,
// routing each output's gradient to the first maximum of its window in row-major order (PyTorch's
// choice among ties). With the native addon the same rule runs as one corrected MaxPoolGrad
// kernel (src/engine/native_kernels.ts) instead of the k² views.
import * as tf from '@tensorflow/tfjs';
import { nativeMaxPoolGradActive } from '../engine/native_kernels.ts';

/** torch.nn.functional's pooling output size (dilation 1). */
export function poolOutputSize(size: number, kernel: number, stride: number, padding = 0, ceilMode = false): number {
  const span = size + 2 * padding - kernel;
  let out = (ceilMode ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
  if (ceilMode && (out - 1) * stride >= size + padding) out -= 1;
  return out;
}

function fitAxis(size: number, kernel: number, stride: number, padding: number, ceilMode: boolean): { before: number; after: number; keep: number } {
  const out = poolOutputSize(size, kernel, stride, padding, ceilMode);
  if (out < 1) throw new Error(`maxPool2d: an input of size ${size} is too small for kernel ${kernel} with padding ${padding}`);
  const needed = (out - 1) * stride + kernel; // rows the windows cover, from the top padding on
  return { before: padding, after: Math.max(0, needed - size - padding), keep: needed };
}

type PoolFn = (x: tf.Tensor4D) => tf.Tensor4D;
const validPools = new Map<string, PoolFn>();

/**
 * dx of a 'valid' k×k/s max-pool. The input is split once into its s² stride phases
 * ([s, s, n, ⌈h/s⌉, ⌈w/s⌉, c]), so the window tap (i, j) of every output is a plain slice of phase
 * (i mod s, j mod s); each output's gradient goes to the first tap (row-major) equal to the
 * maximum, accumulated per phase and interleaved back at the end. (tf.stridedSlice and a dilating
 * tf.pad would do the same with slow element loops on wasm.)
 */
function maxPoolGradient(dy: tf.Tensor4D, x: tf.Tensor4D, y: tf.Tensor4D, k: number, s: number): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const [, oh, ow] = y.shape;
  const hs = Math.ceil(h / s);
  const ws = Math.ceil(w / s);
  let phases: tf.Tensor = x;
  if (s > 1) {
    const full =
      hs * s === h && ws * s === w
        ? x
        : tf.pad(
            x,
            [
              [0, 0],
              [0, hs * s - h],
              [0, ws * s - w],
              [0, 0],
            ],
            -Infinity,
          );
    phases = tf.transpose(tf.reshape(full, [n, hs, s, ws, s, c]), [2, 4, 0, 1, 3, 5]); // [s, s, n, hs, ws, c]
  }
  const acc = new Map<number, tf.Tensor>();
  let taken: tf.Tensor = tf.zeros(y.shape, 'bool');
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      const [pi, pj, qi, qj] = [i % s, j % s, Math.floor(i / s), Math.floor(j / s)];
      const phase = pi * s + pj;
      const [nextTaken, nextAcc] = tf.tidy(() => {
        const view =
          s > 1
            ? tf.reshape(tf.slice(phases, [pi, pj, 0, qi, qj, 0], [1, 1, n, oh, ow, c]), [n, oh, ow, c])
            : tf.slice(phases as tf.Tensor4D, [0, qi, qj, 0], [n, oh, ow, c]);
        const hit = tf.logicalAnd(tf.equal(view, y), tf.logicalNot(taken));
        const routed = tf.where(hit, dy, tf.zerosLike(dy));
        const placed = tf.pad(routed, [
          [0, 0],
          [qi, hs - oh - qi],
          [qj, ws - ow - qj],
          [0, 0],
        ]);
        const prev = acc.get(phase);
        return [tf.logicalOr(taken, hit), prev ? tf.add(prev, placed) : placed];
      });
      taken.dispose();
      acc.get(phase)?.dispose();
      taken = nextTaken;
      acc.set(phase, nextAcc);
    }
  }
  if (s === 1) return acc.get(0) as tf.Tensor4D;
  const planes = Array.from({ length: s * s }, (_, ph) => acc.get(ph) ?? tf.zeros([n, hs, ws, c]));
  const interleaved = tf.reshape(tf.transpose(tf.reshape(tf.stack(planes), [s, s, n, hs, ws, c]), [2, 3, 0, 4, 1, 5]), [n, hs * s, ws * s, c]);
  return tf.slice(interleaved, [0, 0, 0, 0], [n, h, w, c]) as tf.Tensor4D;
}

/** 'valid' max-pooling with our own gradient (the wasm MaxPoolGrad kernel is wrong). */
function validMaxPool(kernel: number, stride: number): PoolFn {
  const key = `${kernel},${stride}`;
  let fn = validPools.get(key);
  if (!fn) {
    fn = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [x, save] = args as [tf.Tensor4D, tf.GradSaveFunc];
      const y = tf.maxPool(x, kernel, stride, 'valid');
      save([x, y]);
      return {
        value: y,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
          tf.tidy(() => {
            const [sx, sy] = saved as [tf.Tensor4D, tf.Tensor4D];
            if (nativeMaxPoolGradActive()) {
              const attrs = { filterSize: kernel, strides: stride, pad: 'valid' };
              return [tf.engine().runKernel('MaxPoolGrad', { dy, input: sx, output: sy }, attrs) as tf.Tensor4D];
            }
            return [maxPoolGradient(dy as tf.Tensor4D, sx, sy, kernel, stride)];
          }),
      };
    }) as unknown as PoolFn;
    validPools.set(key, fn);
  }
  return fn;
}

export interface MaxPoolOptions {
  stride?: number;
  padding?: number;
  ceilMode?: boolean;
}

/** torch.nn.MaxPool2d(kernel, stride = kernel, padding = 0, ceil_mode = false) on [n, h, w, c]. */
export function maxPool2d(x: tf.Tensor4D, kernel: number, options: MaxPoolOptions = {}): tf.Tensor4D {
  const stride = options.stride ?? kernel;
  const padding = options.padding ?? 0;
  const ceilMode = options.ceilMode ?? false;
  if (padding > kernel / 2) throw new Error(`maxPool2d: padding ${padding} must be at most half the kernel ${kernel}`);
  const [n, h, w, c] = x.shape;
  const ah = fitAxis(h, kernel, stride, padding, ceilMode);
  const aw = fitAxis(w, kernel, stride, padding, ceilMode);
  return tf.tidy(() => {
    let xp: tf.Tensor4D = x;
    if (ah.before + ah.after + aw.before + aw.after > 0) {
      xp = tf.pad(
        x,
        [
          [0, 0],
          [ah.before, ah.after],
          [aw.before, aw.after],
          [0, 0],
        ],
        -Infinity,
      );
    }
    if (xp.shape[1] !== ah.keep || xp.shape[2] !== aw.keep) xp = tf.slice(xp, [0, 0, 0, 0], [n, ah.keep, aw.keep, c]);
    return validMaxPool(kernel, stride)(xp);
  });
}

/** AdaptiveAvgPool2d(1) + flatten: [n, h, w, c] → [n, c]. */
export function globalAvgPool(x: tf.Tensor4D): tf.Tensor2D {
  return tf.mean(x, [1, 2]) as tf.Tensor2D;
}

/** AdaptiveMaxPool2d(1) + flatten: [n, h, w, c] → [n, c]. */
export function globalMaxPool(x: tf.Tensor4D): tf.Tensor2D {
  return tf.max(x, [1, 2]) as tf.Tensor2D;
}
