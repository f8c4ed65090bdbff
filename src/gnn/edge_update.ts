// Edge update of one GNN layer (the official Messagepasstoedge): each edge (r, c) attends with
// its own feature as the query over two keys/values, its source node and its target node
// (single head, scale √D, dropout on the two weights), then two residual blocks
// N = LayerNorm∘GELU sharing ONE LayerNorm:  t = N(u + A),  A′ = N(FFN(t) + t).
// Keys and values depend only on nodes, so they are projected on the B nodes and broadcast to
// the B² edges: identical to the official per-edge projection, without its 4·E·D² cost.
import * as tf from '@tensorflow/tfjs';
import { gelu } from '../nn/activations.ts';
import { layerNorm } from '../nn/layer_norm.ts';
import { linear } from '../nn/linear.ts';
import type { StateDict } from '../models/state_dict.ts';
import type { Recorder } from './recorder.ts';

export interface DropoutSpec {
  p: number;
  /** Uniform [0,1) source for the keep decisions. */
  random: () => number;
}

function dropoutMask(shape: number[], spec: DropoutSpec): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const m = new Float32Array(n);
  const scale = 1 / (1 - spec.p);
  for (let i = 0; i < n; i++) m[i] = spec.random() < spec.p ? 0 : scale;
  return tf.tensor(m, shape);
}

export function edgeUpdate(
  sd: StateDict,
  prefix: string,
  h: tf.Tensor2D,
  edges: tf.Tensor2D,
  dropout?: DropoutSpec,
  record?: Recorder,
  layerTag = '',
): tf.Tensor2D {
  return tf.tidy(() => {
    const [B, D] = h.shape;
    const p = (n: string) => sd.get(prefix + n);
    const lin = (x: tf.Tensor, n: string) => linear(x, p(`${n}.weight`), p(`${n}.bias`));
    const norm = (x: tf.Tensor) => layerNorm(gelu(x), p('norm.1.weight'), p('norm.1.bias'));

    const f = gelu(lin(h, 'node_to_edge'));
    const q = tf.reshape(lin(edges, 'att.q_linear'), [B, B, D]);
    const key = lin(f, 'att.k_linear');
    const value = lin(f, 'att.v_linear');
    const scale = 1 / Math.sqrt(D);
    const sSource = tf.sum(tf.mul(q, tf.reshape(key, [B, 1, D])), 2, true); // ⟨q_(r,c), k_r⟩
    const sTarget = tf.sum(tf.mul(q, tf.reshape(key, [1, B, D])), 2, true); // ⟨q_(r,c), k_c⟩
    let weights = tf.softmax(tf.mul(tf.concat([sSource, sTarget], 2), scale)); // [B, B, 2]
    if (record) record(`${layerTag}edge_att`, tf.reshape(weights, [B * B, 2]));
    if (dropout && dropout.p > 0) weights = tf.mul(weights, dropoutMask([B, B, 2], dropout));
    const [wSource, wTarget] = tf.split(weights, 2, 2) as [tf.Tensor, tf.Tensor];
    const u = tf.add(tf.mul(wSource, tf.reshape(value, [1 * B, 1, D])), tf.mul(wTarget, tf.reshape(value, [1, B, D])));

    const t = norm(tf.add(tf.reshape(u, [B * B, D]), edges));
    const hidden = layerNorm(gelu(lin(t, 'linear.0')), p('linear.2.weight'), p('linear.2.bias'));
    return norm(tf.add(lin(hidden, 'linear.3'), t)) as tf.Tensor2D;
  });
}
