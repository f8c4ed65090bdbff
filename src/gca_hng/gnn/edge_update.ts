// Edge update of one GNN layer (the official Messagepasstoedge): each edge (r, c) attends with
// its own feature as the query over two keys/values, its source node and its target node
// (single head, scale √D, dropout on the two weights), then two residual blocks
// N = LayerNorm∘GELU sharing ONE LayerNorm:  t = N(u + A),  A′ = N(FFN(t) + t).
// Keys and values depend only on nodes, so they are projected on the B nodes and broadcast to
// the B² edges: identical to the official per-edge projection, without its 4·E·D² cost
// (docs/algorithm.md §4.3, §12.4).
import * as tf from '@tensorflow/tfjs';
import { edgeAttention, edgeAttentionWeights, gelu, geluLayerNorm } from '../../nn/fused.ts';
import { linear } from '../../nn/linear.ts';
import type { LayerParams } from './node_update.ts';
import type { Recorder } from './recorder.ts';

export interface DropoutSpec {
  p: number;
  /** Uniform [0,1) source for the keep decisions. */
  random: () => number;
}

/** The (scaled) keep mask of the edge attention's dropout, [B, B, 2]; all ones without dropout. */
export function dropoutMask(shape: number[], spec: DropoutSpec | undefined): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (!spec || spec.p <= 0) return tf.ones(shape);
  const m = new Float32Array(n);
  const scale = 1 / (1 - spec.p);
  for (let i = 0; i < n; i++) m[i] = spec.random() < spec.p ? 0 : scale;
  return tf.tensor(m, shape);
}

/** Parameter names of an edge layer (suffixes after `gnn.gnn.ℓ.edge_model.`). */
export const EDGE_LAYER_PARAMS = [
  'att.q_linear.weight',
  'att.q_linear.bias',
  'att.k_linear.weight',
  'att.k_linear.bias',
  'att.v_linear.weight',
  'att.v_linear.bias',
  'node_to_edge.weight',
  'node_to_edge.bias',
  'norm.1.weight',
  'norm.1.bias',
  'linear.0.weight',
  'linear.0.bias',
  'linear.2.weight',
  'linear.2.bias',
  'linear.3.weight',
  'linear.3.bias',
] as const;

export function edgeUpdate(params: LayerParams, h: tf.Tensor2D, edges: tf.Tensor2D, mask: tf.Tensor3D, record?: Recorder, layerTag = ''): tf.Tensor2D {
  return tf.tidy(() => {
    const [B, D] = h.shape;
    const p = (n: string) => params[n] as tf.Tensor;
    const lin = (x: tf.Tensor, n: string) => linear(x, p(`${n}.weight`), p(`${n}.bias`));
    const norm = (x: tf.Tensor) => geluLayerNorm(x, p('norm.1.weight'), p('norm.1.bias'));

    const f = gelu(lin(h, 'node_to_edge'));
    const q = tf.reshape(lin(edges, 'att.q_linear'), [B, B, D]) as tf.Tensor3D;
    const key = lin(f, 'att.k_linear') as tf.Tensor2D;
    const value = lin(f, 'att.v_linear') as tf.Tensor2D;
    const scale = 1 / Math.sqrt(D);
    if (record) record(`${layerTag}edge_att`, tf.reshape(edgeAttentionWeights(q, key, scale), [B * B, 2]));
    const u = edgeAttention(q, key, value, mask, scale);

    const t = norm(tf.add(tf.reshape(u, [B * B, D]), edges));
    const hidden = geluLayerNorm(lin(t, 'linear.0'), p('linear.2.weight'), p('linear.2.bias'));
    return norm(tf.add(lin(hidden, 'linear.3'), t)) as tf.Tensor2D;
  });
}
