// The native fast path: TensorFlow.js kernels for the wasm backend that run in the optional
// Node-API addon (native/, OpenBLAS for the matrix products, a thread pool for the rest). They
// read and write the wasm backend's own heap, so tensors never move. Each replaced kernel keeps
// the original as its fallback for the cases it does not cover (other dtypes, odd broadcasts);
// the fused GNN operations (GELU, LayerNorm, edge attention) are added as kernels of their own.
// Without the addon (not built, or HARDNEG_NATIVE=0) nothing is registered and every op runs on
// the stock wasm kernels. When the addon was built with oneDNN (native/build.mjs), the
// convolutions (Conv2D and both of its gradients) run on oneDNN too, unless HARDNEG_DNNL=0.
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs';

type Params = Float64Array;
type Kernel = (heap: Uint8Array, params: Params) => void;

/** The addon's functions; each kernel's params layout is given where it is called below. */
export interface NativeAddon {
  gemm: Kernel;
  binary: Kernel;
  unary: Kernel;
  reduce: Kernel;
  copy: Kernel;
  gelu: Kernel;
  geluGrad: Kernel;
  layerNorm: Kernel;
  layerNormGrad: Kernel;
  geluSumRows: Kernel;
  geluSumRowsGrad: Kernel;
  edgeAttention: Kernel;
  edgeAttentionGrad: Kernel;
  softmaxXent: Kernel;
  softmaxXentGrad: Kernel;
  maxPoolGrad: Kernel;
  scaleShift: Kernel;
  scaleShiftGrad: Kernel;
  scaleShiftParamGrad: Kernel;
  /** Only when built with oneDNN: [kind (0 forward, 1 input gradient, 2 filter gradient), x, filter, y, N, H, W, C, O, OH, OW, KH, KW, strides…, dilations…, pads t l b r]. */
  conv?: Kernel;
  /** The same params: oneDNN's name of the implementation it picks. */
  convImpl?: (heap: Uint8Array, params: Params) => string;
  /** Exact k-NN off the JavaScript thread (native/src/knn.h); params [queryCount, galleryCount, dim, k, symmetric, skipSelf]. */
  knn(
    queries: Float32Array,
    gallery: Float32Array,
    params: Float64Array,
    bias: Float64Array | null,
    queryLabels: Int32Array | null,
    galleryLabels: Int32Array | null,
    outIndices: Int32Array,
    outScores: Float64Array,
  ): Promise<void>;
  setThreads(n: number): number;
  /** dnnl: oneDNN's version when the addon was built with it, else '' (older builds: absent). */
  info(): { blas: string; threads: number; hardwareThreads: number; dnnl?: string };
}

/** Names of the fused kernels this module adds (inputs and attributes in fused.ts). */
export const NATIVE_OPS = {
  gelu: 'HardnegGelu',
  geluGrad: 'HardnegGeluGrad',
  layerNorm: 'HardnegLayerNorm',
  layerNormGrad: 'HardnegLayerNormGrad',
  geluSumRows: 'HardnegGeluSumRows',
  geluSumRowsGrad: 'HardnegGeluSumRowsGrad',
  edgeAttention: 'HardnegEdgeAttention',
  edgeAttentionGrad: 'HardnegEdgeAttentionGrad',
  softmaxCrossEntropy: 'HardnegSoftmaxCrossEntropy',
  softmaxCrossEntropyGrad: 'HardnegSoftmaxCrossEntropyGrad',
  scaleShift: 'HardnegScaleShift',
  scaleShiftGrad: 'HardnegScaleShiftGrad',
  scaleShiftParamGrad: 'HardnegScaleShiftParamGrad',
} as const;

const ADDON = '../../native/build/Release/hardneg_native.node';

let addon: NativeAddon | null | undefined;
let unavailable = '';

/** The addon, or null (with the reason in nativeStatus()) when it is disabled or not built. */
export function loadNativeAddon(): NativeAddon | null {
  if (addon !== undefined) return addon;
  if (process.env.HARDNEG_NATIVE === '0') {
    unavailable = 'disabled by HARDNEG_NATIVE=0';
    return (addon = null);
  }
  try {
    addon = createRequire(import.meta.url)(ADDON) as NativeAddon;
    addon.setThreads(defaultThreads());
  } catch (e) {
    unavailable = `addon not built (${(e as Error).message.split('\n')[0]}); run \`node native/build.mjs\``;
    addon = null;
  }
  return addon;
}

/** HARDNEG_THREADS when a positive integer, else all cores: the thread count of every native engine (onnxruntime's feature sessions too). */
export function defaultThreads(): number {
  const fromEnv = Number(process.env.HARDNEG_THREADS);
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : availableParallelism();
}

// ---------------------------------------------------------------------------------------------
// Access to the wasm backend's heap.

interface WasmBackend {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  incRef(dataId: object): void;
}

interface KernelArgs {
  inputs: Record<string, tf.TensorInfo | undefined>;
  backend: WasmBackend;
  attrs: Record<string, unknown>;
}

/** A kernel implementation; returning null hands the call to the stock wasm kernel. */
type Impl = (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[] | null;

const offset = (b: WasmBackend, t: tf.TensorInfo): number => b.dataIdMap.get(t.dataId).memoryOffset;
const sizeOf = (shape: readonly number[]): number => shape.reduce((a, d) => a * d, 1);
const contiguousStrides = (shape: readonly number[]): number[] => {
  const s = new Array<number>(shape.length).fill(1);
  for (let d = shape.length - 2; d >= 0; d--) s[d] = (s[d + 1] as number) * (shape[d + 1] as number);
  return s;
};
const is4Bytes = (t: tf.TensorInfo) => t.dtype === 'float32' || t.dtype === 'int32';

/** Calls an addon kernel; the heap view is read only now, after every output was allocated (allocation can grow it). */
function call(b: WasmBackend, kernel: Kernel, params: number[]): void {
  kernel(b.wasm.HEAPU8, Float64Array.from(params));
}

/**
 * Drops unit dimensions and merges neighbours that every operand walks contiguously, so the
 * addon sees as few dimensions as possible (strides in elements, 0 for broadcast).
 */
export function collapseDims(shape: readonly number[], strides: number[][]): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    const n = shape[d] as number;
    if (n === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && strides.every((s, k) => (outStrides[k] as number[])[last] === (s[d] as number) * n)) {
      outShape[last] = (outShape[last] as number) * n;
      strides.forEach((s, k) => ((outStrides[k] as number[])[last] = s[d] as number));
    } else {
      outShape.push(n);
      strides.forEach((s, k) => (outStrides[k] as number[]).push(s[d] as number));
    }
  }
  if (outShape.length === 0) return { shape: [1], strides: strides.map(() => [0]) };
  return { shape: outShape, strides: outStrides };
}

function broadcastStrides(inShape: readonly number[], outShape: readonly number[]): number[] {
  const own = contiguousStrides(inShape);
  const lead = outShape.length - inShape.length;
  return outShape.map((_, d) => (d < lead || inShape[d - lead] === 1 ? 0 : (own[d - lead] as number)));
}

// ---------------------------------------------------------------------------------------------
// Kernels.

function matMulImpl(native: NativeAddon): Impl {
  return ({ inputs, backend, attrs }) => {
    const { a, b, bias, preluActivationWeights } = inputs as Record<string, tf.TensorInfo>;
    const activation = (attrs.activation as string | undefined) ?? 'linear';
    if (!a || !b || a.dtype !== 'float32' || b.dtype !== 'float32' || preluActivationWeights || activation !== 'linear') return null;
    const tA = Boolean(attrs.transposeA),
      tB = Boolean(attrs.transposeB);
    const ra = a.shape.length,
      rb = b.shape.length;
    const M = a.shape[tA ? ra - 1 : ra - 2] as number,
      K = a.shape[tA ? ra - 2 : ra - 1] as number;
    const N = b.shape[tB ? rb - 2 : rb - 1] as number;
    if ((b.shape[tB ? rb - 1 : rb - 2] as number) !== K) return null;
    const batchA = a.shape.slice(0, -2),
      batchB = b.shape.slice(0, -2);
    const nA = sizeOf(batchA),
      nB = sizeOf(batchB);
    const sameBatch = batchA.length === batchB.length && batchA.every((d, i) => d === batchB[i]);
    if (!sameBatch && nA !== 1 && nB !== 1) return null;
    if (bias && (bias.dtype !== 'float32' || bias.shape.length !== 1 || bias.shape[0] !== N)) return null;
    const batchShape = tf.broadcast_util.assertAndGetBroadcastShape(batchA, batchB);
    const out = backend.makeOutput([...batchShape, M, N], 'float32');
    const batch = Math.max(nA, nB);
    // [transA, transB, M, N, K, alpha, a, b, c, bias, batch, strideA, strideB, strideC]
    call(backend, native.gemm, [
      Number(tA),
      Number(tB),
      M,
      N,
      K,
      1,
      offset(backend, a),
      offset(backend, b),
      offset(backend, out),
      bias ? offset(backend, bias) : -1,
      batch,
      nA === 1 ? 0 : M * K,
      nB === 1 ? 0 : K * N,
      M * N,
    ]);
    return out;
  };
}

const BINARY_OPS: Record<string, number> = { Add: 0, Sub: 1, Multiply: 2, RealDiv: 3, Maximum: 4, Minimum: 5, SquaredDifference: 6 };

function binaryImpl(native: NativeAddon, op: number): Impl {
  return ({ inputs, backend }) => {
    const { a, b } = inputs as Record<string, tf.TensorInfo>;
    if (!a || !b || a.dtype !== 'float32' || b.dtype !== 'float32') return null;
    const outShape = tf.broadcast_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const c = collapseDims(outShape, [broadcastStrides(a.shape, outShape), broadcastStrides(b.shape, outShape)]);
    if (c.shape.length > 8) return null;
    const out = backend.makeOutput(outShape, 'float32');
    if (sizeOf(outShape) === 0) return out;
    // [op, out, a, b, ndim, shape…, aStrides…, bStrides…]
    call(backend, native.binary, [op, offset(backend, out), offset(backend, a), offset(backend, b), c.shape.length, ...c.shape, ...c.strides.flat()]);
    return out;
  };
}

const UNARY_OPS: Record<string, number> = { Exp: 0, Erf: 1, Sigmoid: 2, Sqrt: 3, Rsqrt: 4, Square: 5, Neg: 6, Abs: 7, Log: 8, Relu: 9, Reciprocal: 10 };

function unaryImpl(native: NativeAddon, op: number): Impl {
  return ({ inputs, backend }) => {
    const x = inputs.x;
    if (!x || x.dtype !== 'float32') return null;
    const out = backend.makeOutput([...x.shape], 'float32');
    // [op, out, x, n]
    call(backend, native.unary, [op, offset(backend, out), offset(backend, x), sizeOf(x.shape)]);
    return out;
  };
}

const REDUCE_OPS: Record<string, number> = { Sum: 0, Mean: 1, Max: 2, Min: 3 };

function reduceImpl(native: NativeAddon, op: number): Impl {
  return ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    if (!x || x.dtype !== 'float32' || sizeOf(x.shape) === 0) return null;
    const axisAttr = (attrs.axis ?? attrs.reductionIndices) as number | number[] | null;
    const axes = tf.util.parseAxisParam(axisAttr ?? x.shape.map((_, i) => i), x.shape).sort((p, q) => p - q);
    if (axes.length === 0 || axes.some((ax, i) => i > 0 && ax !== (axes[i - 1] as number) + 1)) return null;
    const first = axes[0] as number,
      last = axes[axes.length - 1] as number;
    const outShape = attrs.keepDims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
    const out = backend.makeOutput(outShape, 'float32');
    const outer = sizeOf(x.shape.slice(0, first)),
      mid = sizeOf(x.shape.slice(first, last + 1)),
      inner = sizeOf(x.shape.slice(last + 1));
    // [op, out, x, outer, mid, inner]
    call(backend, native.reduce, [op, offset(backend, out), offset(backend, x), outer, mid, inner]);
    return out;
  };
}

/** out ← x read from `start` (elements) with the given strides: slices and transposes. */
function stridedCopy(native: NativeAddon, backend: WasmBackend, x: tf.TensorInfo, outShape: number[], start: number, strides: number[]): tf.TensorInfo {
  const out = backend.makeOutput(outShape, x.dtype);
  if (sizeOf(outShape) === 0) return out;
  const c = collapseDims(outShape, [contiguousStrides(outShape), strides]);
  // [out, x, ndim, shape…, xStrides…]
  call(backend, native.copy, [offset(backend, out), offset(backend, x) + 4 * start, c.shape.length, ...c.shape, ...(c.strides[1] as number[])]);
  return out;
}

function transposeImpl(native: NativeAddon): Impl {
  return ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    if (!x || !is4Bytes(x)) return null;
    const perm = attrs.perm as number[];
    const own = contiguousStrides(x.shape);
    return stridedCopy(
      native,
      backend,
      x,
      perm.map((p) => x.shape[p] as number),
      0,
      perm.map((p) => own[p] as number),
    );
  };
}

function sliceImpl(native: NativeAddon): Impl {
  return ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    if (!x || !is4Bytes(x)) return null;
    const [begin, size] = tf.slice_util.parseSliceParams(x as tf.Tensor, attrs.begin as number[], attrs.size as number[]) as [number[], number[]];
    const own = contiguousStrides(x.shape);
    const start = begin.reduce((acc, b0, d) => acc + b0 * (own[d] as number), 0);
    return stridedCopy(native, backend, x, size, start, own);
  };
}

/** SplitV as strided copies (the stock kernel goes through a slow generic slice above rank 4). */
function splitImpl(native: NativeAddon): Impl {
  return ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    if (!x || !is4Bytes(x)) return null;
    const axis = tf.util.parseAxisParam(attrs.axis as number, x.shape)[0] as number;
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, attrs.numOrSizeSplits as number[] | number, axis);
    const own = contiguousStrides(x.shape);
    let start = 0;
    return sizes.map((n) => {
      const out = stridedCopy(
        native,
        backend,
        x,
        x.shape.map((d, i) => (i === axis ? n : d)),
        start * (own[axis] as number),
        own,
      );
      start += n;
      return out;
    });
  };
}

/** Identity shares the input's buffer (as Reshape does) instead of copying it. */
const identityImpl: Impl = ({ inputs, backend }) => {
  const x = inputs.x;
  if (!x || x.dtype === 'string' || x.dtype === 'complex64') return null;
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
};

/** A cast to the dtype a tensor already has is an identity (as on the cpu backend); Mul's gradient casts every operand. */
const castImpl: Impl = (args) => (args.inputs.x?.dtype === args.attrs.dtype ? identityImpl(args) : null);

/** Tile that only repeats unit dimensions (a broadcast, as tf.broadcastTo produces): a copy with zero strides. */
function tileImpl(native: NativeAddon): Impl {
  return ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    const reps = attrs.reps as number[];
    if (!x || !is4Bytes(x) || reps.some((r, d) => r !== 1 && x.shape[d] !== 1)) return null;
    const own = contiguousStrides(x.shape);
    return stridedCopy(
      native,
      backend,
      x,
      x.shape.map((n, d) => n * (reps[d] as number)),
      0,
      x.shape.map((n, d) => (n === 1 ? 0 : (own[d] as number))),
    );
  };
}

/** The named inputs of a fused kernel; these kernels exist only natively, so anything else is a bug. */
function floatInputs(inputs: KernelArgs['inputs'], names: string[]): tf.TensorInfo[] {
  return names.map((n) => {
    const t = inputs[n];
    if (!t || t.dtype !== 'float32') throw new Error(`native kernel: input '${n}' must be a float32 tensor`);
    return t;
  });
}

function fusedImpls(native: NativeAddon): Record<string, Impl> {
  return {
    [NATIVE_OPS.gelu]: ({ inputs, backend }) => {
      const [x] = floatInputs(inputs, ['x']) as [tf.TensorInfo];
      const y = backend.makeOutput([...x.shape], 'float32');
      call(backend, native.gelu, [offset(backend, y), offset(backend, x), sizeOf(x.shape)]); // [y, x, n]
      return y;
    },
    [NATIVE_OPS.geluGrad]: ({ inputs, backend }) => {
      const [x, dy] = floatInputs(inputs, ['x', 'dy']) as [tf.TensorInfo, tf.TensorInfo];
      const dx = backend.makeOutput([...x.shape], 'float32');
      call(backend, native.geluGrad, [offset(backend, dx), offset(backend, x), offset(backend, dy), sizeOf(x.shape)]); // [dx, x, dy, n]
      return dx;
    },
    [NATIVE_OPS.layerNorm]: ({ inputs, backend, attrs }) => {
      const [x, gamma, beta] = floatInputs(inputs, ['x', 'gamma', 'beta']) as [tf.TensorInfo, tf.TensorInfo, tf.TensorInfo];
      const width = x.shape[x.shape.length - 1] as number;
      const y = backend.makeOutput([...x.shape], 'float32');
      // [y, x, gamma, beta, rows, width, eps, withGelu]
      call(backend, native.layerNorm, [
        offset(backend, y),
        offset(backend, x),
        offset(backend, gamma),
        offset(backend, beta),
        sizeOf(x.shape) / width,
        width,
        attrs.eps as number,
        Number(attrs.gelu),
      ]);
      return y;
    },
    [NATIVE_OPS.layerNormGrad]: ({ inputs, backend, attrs }) => {
      const [x, gamma, dy] = floatInputs(inputs, ['x', 'gamma', 'dy']) as [tf.TensorInfo, tf.TensorInfo, tf.TensorInfo];
      const width = x.shape[x.shape.length - 1] as number;
      const dx = backend.makeOutput([...x.shape], 'float32');
      const dGamma = backend.makeOutput([width], 'float32');
      const dBeta = backend.makeOutput([width], 'float32');
      // [dx, dgamma, dbeta, x, gamma, dy, rows, width, eps, withGelu]
      call(backend, native.layerNormGrad, [
        offset(backend, dx),
        offset(backend, dGamma),
        offset(backend, dBeta),
        offset(backend, x),
        offset(backend, gamma),
        offset(backend, dy),
        sizeOf(x.shape) / width,
        width,
        attrs.eps as number,
        Number(attrs.gelu),
      ]);
      return [dx, dGamma, dBeta];
    },
    [NATIVE_OPS.geluSumRows]: ({ inputs, backend }) => {
      const [x] = floatInputs(inputs, ['x']) as [tf.TensorInfo];
      const [R, C, D] = x.shape as [number, number, number];
      const y = backend.makeOutput([R, D], 'float32');
      call(backend, native.geluSumRows, [offset(backend, y), offset(backend, x), R, C, D]); // [y, x, R, C, D]
      return y;
    },
    [NATIVE_OPS.geluSumRowsGrad]: ({ inputs, backend }) => {
      const [x, dy] = floatInputs(inputs, ['x', 'dy']) as [tf.TensorInfo, tf.TensorInfo];
      const [R, C, D] = x.shape as [number, number, number];
      const dx = backend.makeOutput([R, C, D], 'float32');
      call(backend, native.geluSumRowsGrad, [offset(backend, dx), offset(backend, x), offset(backend, dy), R, C, D]); // [dx, x, dy, R, C, D]
      return dx;
    },
    [NATIVE_OPS.edgeAttention]: ({ inputs, backend, attrs }) => {
      const [q, k, v, mask] = floatInputs(inputs, ['q', 'k', 'v', 'mask']) as [tf.TensorInfo, tf.TensorInfo, tf.TensorInfo, tf.TensorInfo];
      const [B, , D] = q.shape as [number, number, number];
      const u = backend.makeOutput([B, B, D], 'float32');
      // [u, q, k, v, mask, B, D, scale]
      call(backend, native.edgeAttention, [
        offset(backend, u),
        offset(backend, q),
        offset(backend, k),
        offset(backend, v),
        offset(backend, mask),
        B,
        D,
        attrs.scale as number,
      ]);
      return u;
    },
    [NATIVE_OPS.edgeAttentionGrad]: ({ inputs, backend, attrs }) => {
      const [q, k, v, mask, du] = floatInputs(inputs, ['q', 'k', 'v', 'mask', 'du']) as [
        tf.TensorInfo,
        tf.TensorInfo,
        tf.TensorInfo,
        tf.TensorInfo,
        tf.TensorInfo,
      ];
      const [B, , D] = q.shape as [number, number, number];
      const dq = backend.makeOutput([B, B, D], 'float32');
      const dk = backend.makeOutput([B, D], 'float32');
      const dv = backend.makeOutput([B, D], 'float32');
      // [dq, dk, dv, q, k, v, mask, du, B, D, scale]
      call(backend, native.edgeAttentionGrad, [
        offset(backend, dq),
        offset(backend, dk),
        offset(backend, dv),
        offset(backend, q),
        offset(backend, k),
        offset(backend, v),
        offset(backend, mask),
        offset(backend, du),
        B,
        D,
        attrs.scale as number,
      ]);
      return [dq, dk, dv];
    },
    // Frozen BatchNorm2d (+ residual) (+ ReLU) over the last axis (src/nn/batch_norm2d.ts).
    [NATIVE_OPS.scaleShift]: ({ inputs, backend, attrs }) => {
      const [x, scale, shift] = floatInputs(inputs, ['x', 'scale', 'shift']) as [tf.TensorInfo, tf.TensorInfo, tf.TensorInfo];
      const res = inputs.res ? (floatInputs(inputs, ['res'])[0] as tf.TensorInfo) : null;
      const C = x.shape[x.shape.length - 1] as number;
      const y = backend.makeOutput([...x.shape], 'float32');
      // [y, x, scale, shift, res, rows, C, relu]
      call(backend, native.scaleShift, [
        offset(backend, y),
        offset(backend, x),
        offset(backend, scale),
        offset(backend, shift),
        res ? offset(backend, res) : -1,
        sizeOf(x.shape) / C,
        C,
        Number(attrs.relu),
      ]);
      return y;
    },
    // dx = dy·[y > 0]·scale; without a scale input, the masked dy (the residual's gradient).
    [NATIVE_OPS.scaleShiftGrad]: ({ inputs, backend, attrs }) => {
      const [dy] = floatInputs(inputs, ['dy']) as [tf.TensorInfo];
      const scale = inputs.scale ? (floatInputs(inputs, ['scale'])[0] as tf.TensorInfo) : null;
      const relu = Boolean(attrs.relu);
      const y = relu ? (floatInputs(inputs, ['y'])[0] as tf.TensorInfo) : null;
      const C = dy.shape[dy.shape.length - 1] as number;
      const dx = backend.makeOutput([...dy.shape], 'float32');
      // [dx, g, y, dy, scale, rows, C, relu]
      call(backend, native.scaleShiftGrad, [
        offset(backend, dx),
        -1,
        y ? offset(backend, y) : -1,
        offset(backend, dy),
        scale ? offset(backend, scale) : -1,
        sizeOf(dy.shape) / C,
        C,
        Number(relu),
      ]);
      return dx;
    },
    [NATIVE_OPS.scaleShiftParamGrad]: ({ inputs, backend, attrs }) => {
      const [x, dy] = floatInputs(inputs, ['x', 'dy']) as [tf.TensorInfo, tf.TensorInfo];
      const relu = Boolean(attrs.relu);
      const y = relu ? (floatInputs(inputs, ['y'])[0] as tf.TensorInfo) : null;
      const C = x.shape[x.shape.length - 1] as number;
      const dScale = backend.makeOutput([C], 'float32');
      const dShift = backend.makeOutput([C], 'float32');
      // [dscale, dshift, x, y, dy, rows, C, relu]
      call(backend, native.scaleShiftParamGrad, [
        offset(backend, dScale),
        offset(backend, dShift),
        offset(backend, x),
        y ? offset(backend, y) : -1,
        offset(backend, dy),
        sizeOf(x.shape) / C,
        C,
        Number(relu),
      ]);
      return [dScale, dShift];
    },
    [NATIVE_OPS.softmaxCrossEntropy]: ({ inputs, backend }) => {
      const [logits] = floatInputs(inputs, ['logits']) as [tf.TensorInfo];
      const labels = inputs.labels as tf.TensorInfo;
      const [N, C] = logits.shape as [number, number];
      const loss = backend.makeOutput([N], 'float32');
      call(backend, native.softmaxXent, [offset(backend, loss), offset(backend, logits), offset(backend, labels), N, C]); // [loss, x, labels, N, C]
      return loss;
    },
    [NATIVE_OPS.softmaxCrossEntropyGrad]: ({ inputs, backend }) => {
      const [logits, dy] = floatInputs(inputs, ['logits', 'dy']) as [tf.TensorInfo, tf.TensorInfo];
      const labels = inputs.labels as tf.TensorInfo;
      const [N, C] = logits.shape as [number, number];
      const dx = backend.makeOutput([N, C], 'float32');
      // [dx, x, labels, dy, N, C]
      call(backend, native.softmaxXentGrad, [offset(backend, dx), offset(backend, logits), offset(backend, labels), offset(backend, dy), N, C]);
      return dx;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Convolutions (oneDNN) and the max-pooling gradient.

type Conv2DAttrs = {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat?: 'NHWC' | 'NCHW';
  dilations?: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
};

const CONV = { forward: 0, inputGradient: 1, filterGradient: 2 } as const;

function convInfo(xShape: number[], filterShape: number[], attrs: Conv2DAttrs): tf.backend_util.Conv2DInfo | null {
  if ((attrs.dataFormat ?? 'NHWC') !== 'NHWC') return null;
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
}

function convParams(kind: number, ci: tf.backend_util.Conv2DInfo, x: number, w: number, y: number): number[] {
  const p = ci.padInfo;
  return [
    kind,
    x,
    w,
    y,
    ci.batchSize,
    ci.inHeight,
    ci.inWidth,
    ci.inChannels,
    ci.outChannels,
    ci.outHeight,
    ci.outWidth,
    ci.filterHeight,
    ci.filterWidth,
    ci.strideHeight,
    ci.strideWidth,
    ci.dilationHeight,
    ci.dilationWidth,
    p.top,
    p.left,
    p.bottom,
    p.right,
  ];
}

/** The three convolution kernels on oneDNN; null (the stock kernel) for NCHW or other dtypes. */
function convImpls(conv: Kernel): { forward: Impl; inputGradient: Impl; filterGradient: Impl } {
  return {
    forward: ({ inputs, backend, attrs }) => {
      const { x, filter } = inputs as Record<string, tf.TensorInfo>;
      if (!x || !filter || x.dtype !== 'float32' || filter.dtype !== 'float32') return null;
      const ci = convInfo(x.shape, filter.shape, attrs as Conv2DAttrs);
      if (!ci) return null;
      const y = backend.makeOutput([...ci.outShape], 'float32');
      call(backend, conv, convParams(CONV.forward, ci, offset(backend, x), offset(backend, filter), offset(backend, y)));
      return y;
    },
    inputGradient: ({ inputs, backend, attrs }) => {
      const { dy, filter } = inputs as Record<string, tf.TensorInfo>;
      if (!dy || !filter || dy.dtype !== 'float32' || filter.dtype !== 'float32') return null;
      const inputShape = attrs.inputShape as number[];
      const ci = convInfo(inputShape, filter.shape, attrs as Conv2DAttrs);
      if (!ci) return null;
      const dx = backend.makeOutput([...inputShape], 'float32');
      call(backend, conv, convParams(CONV.inputGradient, ci, offset(backend, dx), offset(backend, filter), offset(backend, dy)));
      return dx;
    },
    filterGradient: ({ inputs, backend, attrs }) => {
      const { x, dy } = inputs as Record<string, tf.TensorInfo>;
      const filterShape = attrs.filterShape as number[];
      // The wasm backend has no Conv2DBackpropFilter to fall back on.
      const ci = x && dy && x.dtype === 'float32' && dy.dtype === 'float32' ? convInfo(x.shape, filterShape, attrs as Conv2DAttrs) : null;
      if (!x || !dy || !ci) throw new Error('Conv2DBackpropFilter: the native kernel takes float32 NHWC tensors only');
      const dw = backend.makeOutput([...filterShape], 'float32');
      call(backend, conv, convParams(CONV.filterGradient, ci, offset(backend, x), offset(backend, dw), offset(backend, dy)));
      return dw;
    },
  };
}

/** MaxPoolGrad done right (the stock wasm kernel loses gradient): each dy goes to the first maximum of its window. */
function maxPoolGradImpl(native: NativeAddon): Impl {
  return ({ inputs, backend, attrs }) => {
    const { dy, input } = inputs as Record<string, tf.TensorInfo>;
    if (!dy || !input || dy.dtype !== 'float32' || input.dtype !== 'float32') return null;
    const pi = tf.backend_util.computePool2DInfo(
      input.shape as [number, number, number, number],
      attrs.filterSize as number | [number, number],
      attrs.strides as number | [number, number],
      1,
      attrs.pad as 'valid' | 'same' | number,
      attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
    );
    const dx = backend.makeOutput([...input.shape], 'float32');
    // [dx, x, dy, N, H, W, C, OH, OW, KH, KW, strideH, strideW, padTop, padLeft]
    call(backend, native.maxPoolGrad, [
      offset(backend, dx),
      offset(backend, input),
      offset(backend, dy),
      pi.batchSize,
      pi.inHeight,
      pi.inWidth,
      pi.inChannels,
      pi.outHeight,
      pi.outWidth,
      pi.filterHeight,
      pi.filterWidth,
      pi.strideHeight,
      pi.strideWidth,
      pi.padInfo.top,
      pi.padInfo.left,
    ]);
    return dx;
  };
}

// ---------------------------------------------------------------------------------------------
// Registration.

const originals = new Map<string, tf.KernelConfig>();
const added: string[] = [];

function override(name: string, impl: Impl): void {
  const original = tf.getKernel(name, 'wasm');
  if (!original || originals.has(name)) return;
  originals.set(name, original);
  tf.unregisterKernel(name, 'wasm');
  tf.registerKernel({
    kernelName: name,
    backendName: 'wasm',
    kernelFunc: ((args: KernelArgs) => impl(args) ?? original.kernelFunc(args as never)) as unknown as tf.KernelFunc,
  });
}

function add(name: string, impl: Impl): void {
  if (tf.getKernel(name, 'wasm')) tf.unregisterKernel(name, 'wasm');
  tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc: impl as unknown as tf.KernelFunc });
  added.push(name);
}

/** True while oneDNN's convolutions are registered (conv2d_general.ts then lets Conv2D's own gradients run on them). */
export function dnnlKernelsActive(): boolean {
  return originals.has('Conv2D') && tf.getBackend() === 'wasm';
}

/** True while the corrected MaxPoolGrad kernel is registered (pooling.ts then uses it). */
export function nativeMaxPoolGradActive(): boolean {
  return originals.has('MaxPoolGrad') && tf.getBackend() === 'wasm';
}

/** True while the native kernels are registered (fused.ts and linear.ts pick their form by it). */
export function nativeKernelsActive(): boolean {
  return originals.size > 0 && tf.getBackend() === 'wasm';
}

/**
 * Registers the native kernels for the wasm backend when the addon is available; called by
 * initBackend once wasm is set. Returns whether they are active.
 */
export function enableNativeKernels(): boolean {
  if (originals.size > 0) return true;
  const native = loadNativeAddon();
  if (!native) return false;
  override('BatchMatMul', matMulImpl(native));
  override('_FusedMatMul', matMulImpl(native));
  for (const [name, op] of Object.entries(BINARY_OPS)) override(name, binaryImpl(native, op));
  for (const [name, op] of Object.entries(UNARY_OPS)) override(name, unaryImpl(native, op));
  for (const [name, op] of Object.entries(REDUCE_OPS)) override(name, reduceImpl(native, op));
  override('Transpose', transposeImpl(native));
  override('Slice', sliceImpl(native));
  override('SplitV', splitImpl(native));
  override('Identity', identityImpl);
  override('Cast', castImpl);
  override('Tile', tileImpl(native));
  override('MaxPoolGrad', maxPoolGradImpl(native));
  // HARDNEG_DNNL=0 keeps the stock convolutions (CI runs the backbone tests both ways).
  if (native.conv && process.env.HARDNEG_DNNL !== '0') {
    const conv = convImpls(native.conv);
    override('Conv2D', conv.forward);
    override('Conv2DBackpropInput', conv.inputGradient);
    add('Conv2DBackpropFilter', conv.filterGradient);
  }
  overrideReductionGradients();
  for (const [name, impl] of Object.entries(fusedImpls(native))) add(name, impl);
  return true;
}

// Sum's and Mean's stock gradients multiply dy by tf.ones(x.shape), an array the size of x built
// in JavaScript and copied into the heap at every call; broadcasting dy gives the same values.
const originalGradients: tf.GradConfig[] = [];

function reductionGradient(kernelName: 'Sum' | 'Mean'): tf.GradConfig {
  return {
    kernelName,
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const x = (saved as tf.Tensor[])[0] as tf.Tensor;
      const axes = tf.util.parseAxisParam((attrs as { axis: number | number[] }).axis, x.shape);
      const expanded = x.shape.map((n, d) => (axes.includes(d) ? 1 : n));
      const dx = () => {
        const broadcast = tf.broadcastTo(tf.reshape(dy as tf.Tensor, expanded), x.shape);
        return kernelName === 'Mean' ? tf.div(broadcast, sizeOf(axes.map((d) => x.shape[d] as number))) : broadcast;
      };
      return { x: dx };
    },
  };
}

function overrideReductionGradients(): void {
  for (const name of ['Sum', 'Mean'] as const) {
    const original = tf.getGradient(name);
    if (!original) continue;
    originalGradients.push(original);
    registerGradientQuietly(reductionGradient(name));
  }
}

/** tf.registerGradient, without its warning about replacing a registered gradient. */
function registerGradientQuietly(config: tf.GradConfig): void {
  const warn = console.warn;
  console.warn = () => {};
  try {
    tf.registerGradient(config);
  } finally {
    console.warn = warn;
  }
}

/** Restores the stock wasm kernels (tests compare both; the addon stays loaded). */
export function disableNativeKernels(): void {
  for (const config of originalGradients.splice(0)) registerGradientQuietly(config);
  for (const [name, config] of originals) {
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel(config);
  }
  originals.clear();
  for (const name of added.splice(0)) tf.unregisterKernel(name, 'wasm');
}

/** What is in use, for logs, benches and tests. */
export function nativeStatus(): { active: boolean; reason: string; threads: number; blas: string; dnnl: { built: string; active: boolean } } {
  const native = loadNativeAddon();
  const info = native?.info();
  return {
    active: nativeKernelsActive(),
    reason: native ? (nativeKernelsActive() ? 'native kernels registered for wasm' : 'addon loaded; the wasm backend is not in use') : unavailable,
    threads: info?.threads ?? 1,
    blas: info?.blas ?? '',
    // built: oneDNN's version the addon was built with ('' without); active: its convolutions are registered.
    dnnl: { built: info?.dnnl ?? '', active: dnnlKernelsActive() },
  };
}
