// Fused operations with hand-written gradients. TensorFlow.js keeps, for every primitive op on
// the gradient tape, the tensors its gradient needs; a GELU→LayerNorm block over the B²·4D edge
// tensor alone would hold a dozen such tensors. These fused ops keep only their inputs and
// recompute the rest in the backward pass, which is what lets a full-size GCA-HNG iteration fit
// the wasm backend's 4 GB heap. Each one is checked against the composed primitive ops in tests.
// With the native kernels active (src/engine/native_kernels.ts) each forward and backward is one
// multi-threaded kernel; otherwise they are composed from primitive ops, as written below.
import * as tf from '@tensorflow/tfjs';
import { NATIVE_OPS, nativeKernelsActive } from '../engine/native_kernels.ts';

type Args = (tf.Tensor | tf.GradSaveFunc)[];

function runNative<T = tf.Tensor>(name: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, number | boolean> = {}): T {
  return tf.engine().runKernel(name, inputs, attrs) as unknown as T;
}

const LN_EPS = 1e-5;

const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** Exact GELU from primitive ops (no custom gradient). */
export function geluPrimitive(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
}

/** d GELU/dx = Φ(x) + x·φ(x). */
function geluDerivative(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const cdf = tf.mul(tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))), 0.5);
    const pdf = tf.mul(tf.exp(tf.mul(tf.square(x), -0.5)), INV_SQRT_2PI);
    return tf.add(cdf, tf.mul(x, pdf));
  });
}

/** Exact GELU, x·½(1 + erf(x/√2)); keeps only x for the gradient. */
export const gelu = tf.customGrad((...args: Args) => {
  const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
  save([x]);
  const native = nativeKernelsActive();
  return {
    value: native ? runNative(NATIVE_OPS.gelu, { x }) : geluPrimitive(x),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const sx = saved[0] as tf.Tensor;
      return native ? runNative(NATIVE_OPS.geluGrad, { x: sx, dy }) : tf.tidy(() => tf.mul(dy, geluDerivative(sx)));
    },
  };
}) as unknown as (x: tf.Tensor) => tf.Tensor;

/** LayerNorm over the last axis from primitive ops: (x − mean)/√(biased var + eps)·γ + β. */
export function layerNormPrimitive(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps = LN_EPS): tf.Tensor {
  const axis = x.rank - 1;
  const centred = tf.sub(x, tf.mean(x, axis, true));
  const variance = tf.mean(tf.square(centred), axis, true);
  return tf.add(tf.mul(tf.mul(centred, tf.rsqrt(tf.add(variance, eps))), gamma), beta);
}

/** The backward pass of LayerNorm given its input g; returns [dg, dγ, dβ]. */
function layerNormBackward(g: tf.Tensor, gamma: tf.Tensor, dy: tf.Tensor, eps: number): tf.Tensor[] {
  const axis = g.rank - 1;
  const width = g.shape[axis] as number;
  const centred = tf.sub(g, tf.mean(g, axis, true));
  const inv = tf.rsqrt(tf.add(tf.mean(tf.square(centred), axis, true), eps));
  const xhat = tf.mul(centred, inv);
  const lead = g.size / width;
  const dGamma = tf.sum(tf.reshape(tf.mul(dy, xhat), [lead, width]), 0);
  const dBeta = tf.sum(tf.reshape(dy, [lead, width]), 0);
  const dxhat = tf.mul(dy, gamma);
  const dg = tf.mul(inv, tf.sub(tf.sub(dxhat, tf.mean(dxhat, axis, true)), tf.mul(xhat, tf.mean(tf.mul(dxhat, xhat), axis, true))));
  return [dg, dGamma, dBeta];
}

/** LayerNorm, or LayerNorm(GELU(x)), with a gradient that keeps only x. */
function fusedLayerNorm(withGelu: boolean, eps = LN_EPS): (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => tf.Tensor {
  return tf.customGrad((...args: Args) => {
    const [x, gamma, beta, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    save([x, gamma]);
    const native = nativeKernelsActive();
    const attrs = { eps, gelu: withGelu };
    return {
      value: native ? runNative(NATIVE_OPS.layerNorm, { x, gamma, beta }, attrs) : layerNormPrimitive(withGelu ? geluPrimitive(x) : x, gamma, beta, eps),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sGamma] = saved as [tf.Tensor, tf.Tensor];
        if (native) return runNative<tf.Tensor[]>(NATIVE_OPS.layerNormGrad, { x: sx, gamma: sGamma, dy }, attrs);
        if (!withGelu) return tf.tidy(() => layerNormBackward(sx, sGamma, dy, eps));
        return tf.tidy(() => {
          const [dg, dGamma, dBeta] = layerNormBackward(geluPrimitive(sx), sGamma, dy, eps) as [tf.Tensor, tf.Tensor, tf.Tensor];
          return [tf.mul(dg, geluDerivative(sx)), dGamma, dBeta];
        });
      },
    };
  }) as unknown as (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => tf.Tensor;
}

/** LayerNorm with a gradient that keeps only its input. */
export const layerNorm = fusedLayerNorm(false);

/** The same with eps 1e-6, the vision transformers' LayerNorm (DINO's norm_layer). */
export const layerNormEps1e6 = fusedLayerNorm(false, 1e-6);

/** LayerNorm(GELU(x)), the official GNN's `norm` block; keeps only x. */
export const geluLayerNorm = fusedLayerNorm(true);

/** y[r] = Σ_c GELU(x[r, c]) for x [B, B, D] (edge-to-node messages summed by source); keeps only x. */
export const geluSumOverTargets = tf.customGrad((...args: Args) => {
  const [x, save] = args as [tf.Tensor3D, tf.GradSaveFunc];
  save([x]);
  const native = nativeKernelsActive();
  return {
    value: native ? runNative(NATIVE_OPS.geluSumRows, { x }) : tf.sum(geluPrimitive(x), 1),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const sx = saved[0] as tf.Tensor3D;
      return native ? runNative(NATIVE_OPS.geluSumRowsGrad, { x: sx, dy }) : tf.tidy(() => tf.mul(tf.expandDims(dy, 1), geluDerivative(sx)));
    },
  };
}) as unknown as (x: tf.Tensor3D) => tf.Tensor2D;

/**
 * The edge model's two-key attention: for edge (r, c) with query q[r,c] ([B,B,D]) and node keys
 * and values k, v ([B,D]): (a₁, a₂) = softmax(⟨q, k_r⟩·s, ⟨q, k_c⟩·s); u = m₁a₁·v_r + m₂a₂·v_c,
 * with m the (scaled) dropout mask [B,B,2]. Keeps q, k, v and the mask.
 */
export function edgeAttentionWeights(q: tf.Tensor3D, key: tf.Tensor2D, scale: number): tf.Tensor3D {
  return tf.tidy(() => {
    const [B, , D] = q.shape;
    const sSource = tf.sum(tf.mul(q, tf.reshape(key, [B, 1, D])), 2, true);
    const sTarget = tf.sum(tf.mul(q, tf.reshape(key, [1, B, D])), 2, true);
    return tf.softmax(tf.mul(tf.concat([sSource, sTarget], 2), scale)) as tf.Tensor3D;
  });
}

export function edgeAttention(q: tf.Tensor3D, key: tf.Tensor2D, value: tf.Tensor2D, mask: tf.Tensor3D, scale: number): tf.Tensor3D {
  const op = tf.customGrad((...args: Args) => {
    const [sq, sk, sv, sm, save] = args as [tf.Tensor3D, tf.Tensor2D, tf.Tensor2D, tf.Tensor3D, tf.GradSaveFunc];
    save([sq, sk, sv, sm]);
    if (nativeKernelsActive()) {
      return {
        value: runNative(NATIVE_OPS.edgeAttention, { q: sq, k: sk, v: sv, mask: sm }, { scale }) as tf.Tensor3D,
        gradFunc: (du: tf.Tensor, saved: tf.Tensor[]) => {
          const [xq, xk, xv, xm] = saved as [tf.Tensor3D, tf.Tensor2D, tf.Tensor2D, tf.Tensor3D];
          return [...runNative<tf.Tensor[]>(NATIVE_OPS.edgeAttentionGrad, { q: xq, k: xk, v: xv, mask: xm, du }, { scale }), tf.zerosLike(xm)];
        },
      };
    }
    const [B, , D] = sq.shape;
    const w = tf.mul(edgeAttentionWeights(sq, sk, scale), sm);
    const [w1, w2] = tf.split(w, 2, 2) as [tf.Tensor, tf.Tensor];
    const value3 = tf.add(tf.mul(w1, tf.reshape(sv, [B, 1, D])), tf.mul(w2, tf.reshape(sv, [1, B, D])));
    return {
      value: value3 as tf.Tensor3D,
      // In a tidy: TensorFlow.js would keep every temporary of a gradient until the pass ends.
      gradFunc: (du: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [xq, xk, xv, xm] = saved as [tf.Tensor3D, tf.Tensor2D, tf.Tensor2D, tf.Tensor3D];
          const a = edgeAttentionWeights(xq, xk, scale);
          const [a1, a2] = tf.split(a, 2, 2) as [tf.Tensor3D, tf.Tensor3D];
          const [m1, m2] = tf.split(xm, 2, 2) as [tf.Tensor3D, tf.Tensor3D];
          const vSource = tf.reshape(xv, [B, 1, D]);
          const vTarget = tf.reshape(xv, [1, B, D]);
          const da1 = tf.mul(tf.sum(tf.mul(du, vSource), 2, true), m1);
          const da2 = tf.mul(tf.sum(tf.mul(du, vTarget), 2, true), m2);
          const dot = tf.add(tf.mul(a1, da1), tf.mul(a2, da2));
          const ds1 = tf.mul(tf.mul(a1, tf.sub(da1, dot)), scale);
          const ds2 = tf.mul(tf.mul(a2, tf.sub(da2, dot)), scale);
          const w1b = tf.mul(a1, m1);
          const w2b = tf.mul(a2, m2);
          // Values: Σ_c w₁[r,c]·du[r,c] lands on node r, Σ_r w₂[r,c]·du[r,c] on node c.
          const dv = tf.add(tf.sum(tf.mul(w1b, du), 1), tf.sum(tf.mul(w2b, du), 0));
          const dq = tf.add(tf.mul(ds1, tf.reshape(xk, [B, 1, D])), tf.mul(ds2, tf.reshape(xk, [1, B, D])));
          const dk = tf.add(tf.sum(tf.mul(ds1, xq), 1), tf.sum(tf.mul(ds2, xq), 0));
          return [dq, dk, dv, tf.zerosLike(xm)];
        }),
    };
  }) as unknown as (q: tf.Tensor3D, k: tf.Tensor2D, v: tf.Tensor2D, m: tf.Tensor3D) => tf.Tensor3D;
  return op(q, key, value, mask);
}
