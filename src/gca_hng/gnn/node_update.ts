// Node update of one GNN layer (the official DotAttentionLayer, docs/algorithm.md §4.2):
//  (a) masked multi-head attention of each target node over the source nodes of *other* class
//      slots (r mod P ≠ c mod P), with an implicit extra logit 0 in the softmax (QUIRK 3);
//  (b) h₁ = N(h + att);  (c) h₂ = N(h₁ + Σ_c GELU(edge_to_node(A))[r,c]) (sum over edges by source);
//  (d) h₃ = N(h₂ + FFN(h₂)),  where N = LayerNorm∘GELU with ONE LayerNorm shared by all three.
import * as tf from '@tensorflow/tfjs';
import { gelu, geluLayerNorm, geluSumOverTargets } from '../../nn/fused.ts';
import { linear } from '../../nn/linear.ts';
import { stopGradient } from '../../nn/stop_gradient.ts';
import type { Recorder } from './recorder.ts';

/** allowed[c, r] = 1 when source r may send to target c (different class slot), else 0. */
export function crossClassMask(P: number, B: number): tf.Tensor2D {
  const m = new Float32Array(B * B);
  for (let c = 0; c < B; c++) for (let r = 0; r < B; r++) m[c * B + r] = r % P !== c % P ? 1 : 0;
  return tf.tensor2d(m, [B, B]);
}

/**
 * Softmax over the allowed sources of each target with an extra implicit logit 0:
 * α = exp(s − m)/(Σ_allowed exp(s′ − m) + exp(−m)), m = max(0, max_allowed s) held constant.
 * scores [H, B(target), B(source)], allowed [B, B] → weights of the same shape (0 where masked).
 */
export function nullLogitSoftmax(scores: tf.Tensor3D, allowed: tf.Tensor2D): tf.Tensor3D {
  return tf.tidy(() => {
    const masked = tf.where(tf.cast(allowed, 'bool'), scores, tf.fill(scores.shape, -Infinity));
    const m = stopGradient(tf.maximum(tf.max(masked, 2, true), 0));
    const e = tf.exp(tf.sub(masked, m));
    const denom = tf.add(tf.sum(e, 2, true), tf.exp(tf.neg(m)));
    return tf.div(e, denom) as tf.Tensor3D;
  });
}

/** Parameter names of a node layer (suffixes after `gnn.gnn.ℓ.node_model.layers.0.`), update_node excluded (never used). */
export const NODE_LAYER_PARAMS = [
  'att.q_linear.weight',
  'att.q_linear.bias',
  'att.k_linear.weight',
  'att.k_linear.bias',
  'att.v_linear.weight',
  'att.v_linear.bias',
  'att.out.weight',
  'att.out.bias',
  'edge_to_node.weight',
  'edge_to_node.bias',
  'linear1.weight',
  'linear1.bias',
  'linear2.weight',
  'linear2.bias',
  'norm.1.weight',
  'norm.1.bias',
] as const;

export type LayerParams = Record<string, tf.Tensor>;

export function nodeUpdate(params: LayerParams, h: tf.Tensor2D, edges: tf.Tensor2D, P: number, heads: number, record?: Recorder, layerTag = ''): tf.Tensor2D {
  return tf.tidy(() => {
    const [B, D] = h.shape;
    const dh = D / heads;
    const p = (n: string) => params[n] as tf.Tensor;
    const lin = (x: tf.Tensor, n: string) => linear(x, p(`${n}.weight`), p(`${n}.bias`));
    const norm = (x: tf.Tensor) => geluLayerNorm(x, p('norm.1.weight'), p('norm.1.bias'));
    const split = (x: tf.Tensor) => tf.transpose(tf.reshape(x, [B, heads, dh]), [1, 0, 2]) as tf.Tensor3D; // [H,B,dh]

    const q = split(lin(h, 'att.q_linear'));
    const k = split(lin(h, 'att.k_linear'));
    const v = split(lin(h, 'att.v_linear'));
    // scores[h, c, r] = ⟨q[c], k[r]⟩/√dh: the target's query against the source's key.
    const scores = tf.mul(tf.matMul(q, tf.transpose(k, [0, 2, 1])), 1 / Math.sqrt(dh)) as tf.Tensor3D;
    const alpha = nullLogitSoftmax(scores, crossClassMask(P, B));
    if (record) record(`${layerTag}node_att`, tf.reshape(tf.transpose(alpha, [0, 2, 1]), [heads, B * B]));
    const gathered = tf.matMul(alpha, v); // [H, B(target), dh]
    const att = lin(tf.reshape(tf.transpose(gathered, [1, 0, 2]), [B, D]), 'att.out');
    const h1 = norm(tf.add(h, att));

    // Σ_c GELU(edge_to_node(A))[(r, c)]: summed over the targets of each source r.
    const msg = geluSumOverTargets(tf.reshape(lin(edges, 'edge_to_node'), [B, B, D]) as tf.Tensor3D);
    const h2 = norm(tf.add(h1, msg));

    const ffn = lin(gelu(lin(h2, 'linear1')), 'linear2');
    return norm(tf.add(h2, ffn)) as tf.Tensor2D;
  });
}
