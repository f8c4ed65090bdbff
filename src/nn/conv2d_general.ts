// 2-D convolution with stride and symmetric zero padding (PyTorch's Conv2d, dilation 1, groups 1),
// NHWC activations, weights in PyTorch's [out, in, kh, kw] layout. TensorFlow.js's wasm backend has
// no Conv2DBackpropFilter kernel and only a naive-loop Conv2DBackpropInput (5–10× slower than the
// forward), so both gradients are written here as forward convolutions, which run on XNNPACK:
//
//   - dx: convolutions of dy with the flipped kernel (one per stride phase, see inputGradient);
//   - dw: a dilated convolution of the batch-transposed input with dy as the filter (see
//     weightGradient) — about 10× faster on wasm than k² strided slices and matrix products.
//
// When the native addon's oneDNN kernels are registered (src/engine/native_kernels.ts), Conv2D,
// Conv2DBackpropInput and Conv2DBackpropFilter are all fast, so the convolution is a plain
// tf.conv2d and TensorFlow.js's own gradient runs them (frozen weights get no filter gradient).
import * as tf from '@tensorflow/tfjs';
import { dnnlKernelsActive } from '../engine/native_kernels.ts';

export interface Conv2dOptions {
  /** Stride (one value or [vertical, horizontal]); default 1. */
  stride?: number | readonly [number, number];
  /** Zero padding on each side (one value or [vertical, horizontal]); default 0. */
  padding?: number | readonly [number, number];
}

type Pair = [number, number];

function pair(v: number | readonly [number, number] | undefined, dflt: number): Pair {
  if (v === undefined) return [dflt, dflt];
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

/** PyTorch's output size of a convolution (floor mode, dilation 1). */
export function convOutputSize(size: number, kernel: number, stride: number, padding: number): number {
  return Math.floor((size + 2 * padding - kernel) / stride) + 1;
}

function paddingArg(p: Pair): 'valid' | [[number, number], [number, number], [number, number], [number, number]] {
  return p[0] === 0 && p[1] === 0
    ? 'valid'
    : [
        [0, 0],
        [p[0], p[0]],
        [p[1], p[1]],
        [0, 0],
      ];
}

type Pad4 = [[number, number], [number, number], [number, number], [number, number]];

/** The kernel taps phase, phase + s, … below k, in descending order (a flipped sub-kernel). */
function phaseTaps(k: number, phase: number, s: number): number[] {
  const taps: number[] = [];
  for (let i = phase; i < k; i += s) taps.unshift(i);
  return taps;
}

/**
 * HWIO filter of the transposed convolution for one stride phase: the taps (fh, fh + s, …) ×
 * (fw, fw + s, …) of [out, in, kh, kw], flipped in both spatial axes, as [th, tw, out, in]. The
 * taps are picked by a 0/1 selection matrix (exact), because tf.reverse, tf.gather and
 * tf.stridedSlice are slow element loops on wasm while matrix products run on XNNPACK.
 */
function flippedFilter(w: tf.Tensor4D, s: Pair = [1, 1], phase: Pair = [0, 0]): tf.Tensor4D {
  const [cout, cin, kh, kw] = w.shape;
  if (kh === 1 && kw === 1) return tf.reshape(w, [1, 1, cout, cin]);
  const rows = phaseTaps(kh, phase[0], s[0]);
  const cols = phaseTaps(kw, phase[1], s[1]);
  const [th, tw] = [rows.length, cols.length];
  const sel = new Float32Array(kh * kw * th * tw);
  rows.forEach((r, a) =>
    cols.forEach((c, b) => {
      sel[(r * kw + c) * th * tw + a * tw + b] = 1;
    }),
  );
  const picked = tf.matMul(tf.reshape(w, [cout * cin, kh * kw]), tf.tensor2d(sel, [kh * kw, th * tw]));
  return tf.transpose(tf.reshape(picked, [cout, cin, th, tw]), [2, 3, 0, 1]) as tf.Tensor4D;
}

/**
 * dx of the convolution. Stride 1: one convolution of dy with the flipped kernel, padded k−1−p.
 * Stride s: dx_pad[q·s + φ] = Σ_m dy[q − m]·w[φ + m·s], i.e. for each of the s² phases φ a
 * stride-1 "full" convolution of dy with the sub-kernel w[φ::s]; the phase planes are then
 * interleaved (one 6-D transpose) and the padding cropped. No zero-dilated dy is ever built.
 */
function inputGradient(dy: tf.Tensor4D, w: tf.Tensor4D, xShape: number[], s: Pair, p: Pair): tf.Tensor4D {
  const [n, H, W, cin] = xShape as [number, number, number, number];
  const [, ho, wo] = dy.shape;
  const [cout, , kh, kw] = w.shape;
  if (isPointwise(kh, kw, s, p)) {
    return tf.reshape(tf.matMul(tf.reshape(dy, [n * ho * wo, cout]), tf.reshape(w, [cout, cin])), [n, H, W, cin]);
  }
  if (s[0] === 1 && s[1] === 1) {
    return tf.conv2d(dy, flippedFilter(w), 1, [
      [0, 0],
      [kh - 1 - p[0], kh - 1 - p[0]],
      [kw - 1 - p[1], kw - 1 - p[1]],
      [0, 0],
    ]);
  }
  const Q = Math.ceil((H + 2 * p[0]) / s[0]);
  const R = Math.ceil((W + 2 * p[1]) / s[1]);
  const planes: tf.Tensor[] = [];
  for (let fh = 0; fh < s[0]; fh++) {
    for (let fw = 0; fw < s[1]; fw++) {
      const th = Math.max(0, Math.ceil((kh - fh) / s[0]));
      const tw = Math.max(0, Math.ceil((kw - fw) / s[1]));
      if (th === 0 || tw === 0) {
        planes.push(tf.zeros([n, Q, R, cin]));
        continue;
      }
      const pad: Pad4 = [
        [0, 0],
        [th - 1, Q - ho],
        [tw - 1, R - wo],
        [0, 0],
      ];
      planes.push(tf.conv2d(dy, flippedFilter(w, s, [fh, fw]), 1, pad)); // [n, Q, R, in]
    }
  }
  const interleaved = tf.reshape(tf.transpose(tf.reshape(tf.stack(planes), [s[0], s[1], n, Q, R, cin]), [2, 3, 0, 4, 1, 5]), [n, Q * s[0], R * s[1], cin]);
  return tf.slice(interleaved, [0, p[0], p[1], 0], [n, H, W, cin]) as tf.Tensor4D;
}

/** A 1×1 convolution with stride 1 and no padding: a matrix product over all pixels. */
function isPointwise(kh: number, kw: number, s: Pair, p: Pair): boolean {
  return kh === 1 && kw === 1 && s[0] === 1 && s[1] === 1 && p[0] === 0 && p[1] === 0;
}

/**
 * dw as a convolution (what Conv2DBackpropFilter computes): the input with batch and channels
 * swapped, [in, h, w, n], convolved with dy as the filter, [ho, wo, n, out], dilated by the stride:
 * out[c, i, j, o] = Σ_{y,x,n} xpad[n, y·s + i, x·s + j, c]·dy[n, y, x, o]. The windows need only
 * the first k rows of output, so the trailing r = (H + 2p − k) mod s rows are not padded (or are
 * cropped). A 1×1 stride-1 kernel is a single matrix product.
 */
function weightGradient(dy: tf.Tensor4D, x: tf.Tensor4D, w: tf.Tensor4D, s: Pair, p: Pair): tf.Tensor4D {
  const [n, H, W, cin] = x.shape;
  const [, ho, wo, cout] = dy.shape;
  const [, , kh, kw] = w.shape;
  if (isPointwise(kh, kw, s, p)) {
    const g = tf.matMul(tf.reshape(dy, [n * ho * wo, cout]), tf.reshape(x, [n * H * W, cin]), true, false);
    return tf.reshape(g, [cout, cin, 1, 1]);
  }
  const bottom = p[0] - ((H + 2 * p[0] - kh) % s[0]);
  const right = p[1] - ((W + 2 * p[1] - kw) % s[1]);
  let xt = tf.transpose(x, [3, 1, 2, 0]) as tf.Tensor4D; // [in, H, W, n]
  if (bottom < 0 || right < 0) xt = tf.slice(xt, [0, 0, 0, 0], [cin, H + Math.min(bottom, 0), W + Math.min(right, 0), n]);
  const filter = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D; // [ho, wo, n, out]
  const pad: Pad4 = [
    [0, 0],
    [p[0], Math.max(bottom, 0)],
    [p[1], Math.max(right, 0)],
    [0, 0],
  ];
  const g = tf.conv2d(xt, filter, 1, pad, 'NHWC', s); // [in, kh, kw, out]
  return tf.transpose(g, [3, 0, 1, 2]) as tf.Tensor4D;
}

type ConvFn = (x: tf.Tensor4D, w: tf.Tensor4D) => tf.Tensor4D;
const kernels = new Map<string, ConvFn>();

function convFor(s: Pair, p: Pair): ConvFn {
  const key = `${s[0]},${s[1]},${p[0]},${p[1]}`;
  let fn = kernels.get(key);
  if (!fn) {
    fn = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [x, w, save] = args as [tf.Tensor4D, tf.Tensor4D, tf.GradSaveFunc];
      save([x, w]);
      const [n, h, wd, cin] = x.shape;
      const [cout, , kh, kw] = w.shape;
      const value = isPointwise(kh, kw, s, p)
        ? (tf.reshape(tf.matMul(tf.reshape(x, [n * h * wd, cin]), tf.reshape(w, [cout, cin]), false, true), [n, h, wd, cout]) as tf.Tensor4D)
        : tf.conv2d(x, tf.transpose(w, [2, 3, 1, 0]) as tf.Tensor4D, s, paddingArg(p));
      return {
        value,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
          tf.tidy(() => {
            const [sx, sw] = saved as [tf.Tensor4D, tf.Tensor4D];
            const dy4 = dy as tf.Tensor4D;
            return [inputGradient(dy4, sw, sx.shape, s, p), weightGradient(dy4, sx, sw, s, p)];
          }),
      };
    }) as unknown as ConvFn;
    kernels.set(key, fn);
  }
  return fn;
}

/**
 * PyTorch's Conv2d forward on NHWC input: x [n, h, w, in], weight [out, in, kh, kw], optional
 * bias [out] → [n, h', w', out] with h' = ⌊(h + 2p − kh)/s⌋ + 1. Differentiable on every backend.
 */
export function conv2d(x: tf.Tensor4D, weight: tf.Tensor, bias: tf.Tensor | null, options: Conv2dOptions = {}): tf.Tensor4D {
  const s = pair(options.stride, 1);
  const p = pair(options.padding, 0);
  if (weight.rank !== 4) throw new Error(`conv2d: weight must be [out, in, kh, kw], got [${weight.shape.join(', ')}]`);
  const [cout, cin, kh, kw] = weight.shape as [number, number, number, number];
  if (cin !== x.shape[3]) throw new Error(`conv2d: input has ${x.shape[3]} channels, weight [${weight.shape.join(', ')}] expects ${cin}`);
  if (s.some((v) => !Number.isInteger(v) || v < 1)) throw new Error(`conv2d: stride must be a positive integer, got [${s.join(', ')}]`);
  if (p.some((v) => !Number.isInteger(v) || v < 0) || p[0] > kh - 1 || p[1] > kw - 1) {
    throw new Error(`conv2d: padding [${p.join(', ')}] must be an integer in [0, k−1] for a ${kh}×${kw} kernel`);
  }
  if (convOutputSize(x.shape[1], kh, s[0], p[0]) < 1 || convOutputSize(x.shape[2], kw, s[1], p[1]) < 1) {
    throw new Error(`conv2d: a ${x.shape[1]}×${x.shape[2]} input is too small for a ${kh}×${kw} kernel with padding [${p.join(', ')}]`);
  }
  if (bias !== null && (bias.rank !== 1 || bias.shape[0] !== cout)) throw new Error(`conv2d: bias must be [${cout}], got [${bias.shape.join(', ')}]`);
  if (dnnlKernelsActive()) {
    return tf.tidy(() => {
      const y = tf.conv2d(x, tf.transpose(weight, [2, 3, 1, 0]) as tf.Tensor4D, [s[0], s[1]], paddingArg(p));
      return bias === null ? y : (tf.add(y, bias) as tf.Tensor4D);
    });
  }
  const conv = convFor(s, p);
  if (bias === null) return conv(x, weight as tf.Tensor4D);
  return tf.tidy(() => tf.add(conv(x, weight as tf.Tensor4D), bias) as tf.Tensor4D);
}
