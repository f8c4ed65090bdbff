// The GNN of GCA-HNG (the official GNNDecoder): dim_red, then L layers of node update followed
// by edge update (the edge update sees the new node features), then two heads:
//   edge_para = σ(fc(BN₁(A)))  ∈ (0,1)^{E×D}: per-edge, per-channel interpolation weights;
//   node_pred = cls(BN₂(h))    ∈ ℝ^{B×C}: node classification logits.
// Described in docs/algorithm.md §4.
import * as tf from '@tensorflow/tfjs';
import { batchNorm1d } from '../../nn/batch_norm.ts';
import { linear } from '../../nn/linear.ts';
import type { StateDict } from '../../models/state_dict.ts';
import type { GnnShape } from './config.ts';
import { edgeLayer, nodeLayer } from './names.ts';
import { type LayerParams, NODE_LAYER_PARAMS, nodeUpdate } from './node_update.ts';
import { type DropoutSpec, EDGE_LAYER_PARAMS, dropoutMask, edgeUpdate } from './edge_update.ts';
import { checkpoint, segment } from '../../nn/checkpoint.ts';
import { nativeKernelsActive } from '../../engine/native_kernels.ts';
import { gelu } from '../../nn/fused.ts';

/** The noglobal ablation's per-pair layer (not part of the official state dict). */
export const PAIR_MLP = 'gnn.pair_mlp';
import type { Recorder } from './recorder.ts';

export interface GnnOptions {
  /** Training mode: BatchNorm with batch statistics (and running-stat updates), dropout on. */
  training: boolean;
  /** Edge-attention dropout (official p = 0.1 in training). */
  dropout?: DropoutSpec;
  record?: Recorder;
  /** The noglobal ablation: edges pass through a per-pair MLP layer instead of message passing. */
  pairMlp?: boolean;
}

export interface GnnOutput {
  nodePred: tf.Tensor2D;
  edgePara: tf.Tensor2D;
}

function bottleneck(sd: StateDict, name: string, x: tf.Tensor2D, training: boolean): tf.Tensor2D {
  return batchNorm1d(
    x,
    {
      weight: sd.get(`${name}.weight`),
      bias: sd.get(`${name}.bias`),
      runningMean: sd.get(`${name}.running_mean`),
      runningVar: sd.get(`${name}.running_var`),
      onTrack: () => sd.increment(`${name}.num_batches_tracked`),
    },
    training,
  );
}

function layerParams(sd: StateDict, prefix: string, names: readonly string[]): tf.Tensor[] {
  return names.map((n) => sd.get(prefix + n));
}

function asParams(names: readonly string[], tensors: tf.Tensor[]): LayerParams {
  return Object.fromEntries(names.map((n, i) => [n, tensors[i] as tf.Tensor]));
}

export function gnnForward(sd: StateDict, shape: GnnShape, z: tf.Tensor2D, edges0: tf.Tensor2D, opts: GnnOptions): GnnOutput {
  return tf.tidy(() => {
    const B = shape.P * shape.K;
    const rec = opts.record;
    let h = linear(z, sd.get('gnn.dim_red.weight'), sd.get('gnn.dim_red.bias')) as tf.Tensor2D;
    rec?.('inter/dim_red', h);
    let edges = edges0;
    // Each layer is one node of the caller's gradient tape: a segment (activations kept,
    // intermediate gradients freed layer by layer), except on the pure wasm path, whose heap is
    // capped at 4 GB: there a checkpoint (only the inputs kept, the layer recomputed for its
    // gradient). Both give the same gradients.
    const layerOp = tf.getBackend() === 'wasm' && !nativeKernelsActive() ? checkpoint : segment;
    for (let l = 0; l < shape.L; l++) {
      const tag = `inter/layer${l}/`;
      const nodeParams = layerParams(sd, nodeLayer(l), NODE_LAYER_PARAMS);
      h = layerOp(
        (hIn, eIn, ...ps) => nodeUpdate(asParams(NODE_LAYER_PARAMS, ps), hIn as tf.Tensor2D, eIn as tf.Tensor2D, shape.P, shape.H, rec, tag),
        [h, edges, ...nodeParams],
      ) as tf.Tensor2D;
      rec?.(`${tag}feats`, h);
      const mask = dropoutMask([B, B, 2], opts.training ? opts.dropout : undefined) as tf.Tensor3D;
      const edgeParams = layerParams(sd, edgeLayer(l), EDGE_LAYER_PARAMS);
      edges = layerOp(
        (hIn, eIn, mIn, ...ps) => edgeUpdate(asParams(EDGE_LAYER_PARAMS, ps), hIn as tf.Tensor2D, eIn as tf.Tensor2D, mIn as tf.Tensor3D, rec, tag),
        [h, edges, mask, ...edgeParams],
      ) as tf.Tensor2D;
      rec?.(`${tag}edge_attr`, edges);
    }
    if (opts.pairMlp) edges = gelu(linear(edges, sd.get(`${PAIR_MLP}.weight`), sd.get(`${PAIR_MLP}.bias`))) as tf.Tensor2D;
    const b1 = bottleneck(sd, 'gnn.bottleneck1.0', edges, opts.training);
    const b2 = bottleneck(sd, 'gnn.bottleneck2.0', h, opts.training);
    rec?.('inter/bottleneck1', b1);
    rec?.('inter/bottleneck2', b2);
    const edgePara = tf.sigmoid(linear(b1, sd.get('gnn.fc.0.weight'), sd.get('gnn.fc.0.bias'))) as tf.Tensor2D;
    const nodePred = linear(b2, sd.get('gnn.cls.0.weight'), sd.get('gnn.cls.0.bias')) as tf.Tensor2D;
    return { nodePred, edgePara };
  });
}
