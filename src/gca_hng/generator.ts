// The GCA-HNG generator end to end, the one place where graph → GNN → pull is written: the
// correlation graph over the batch, the GNN's message passing on it, and the channel-adaptive
// pulling of every negative towards its anchor with the learned per-edge, per-channel weights.
// The training objectives, the diagnostics and the generate and demo commands all call it.
import * as tf from '@tensorflow/tfjs';
import type { StateDict } from '../models/state_dict.ts';
import { detachedCopy } from '../nn/stop_gradient.ts';
import { correlationGraph } from './correlation_graph.ts';
import type { GnnShape } from './gnn/config.ts';
import type { DropoutSpec } from './gnn/edge_update.ts';
import { gnnForward } from './gnn/gnn_decoder.ts';
import type { Recorder } from './gnn/recorder.ts';
import { generateHardNegatives } from './hard_negatives.ts';
import { type GcaVariant, OFFICIAL_VARIANT } from './variants.ts';

export interface GeneratorInput {
  sd: StateDict;
  shape: GnnShape;
  /** The embeddings the graph is built over and the GNN sees, [B, D] in chunk layout. */
  nodes: tf.Tensor2D;
  /** The embeddings that are pulled (default: `nodes`); pass 1 pulls z while the GNN may see sg(z). */
  anchors?: tf.Tensor2D;
  /** Hardness factor φ. */
  phi: number;
  /** The K(K−1) mixing uniforms. */
  mixing: readonly number[];
  /** Training mode of the GNN (batch statistics, dropout); default evaluation mode. */
  training?: boolean;
  dropout?: DropoutSpec;
  /** An ablation of the official method (default: the official one). */
  variant?: GcaVariant;
  /** The edge weights enter the pulling detached (pass 1: J_syn must not train the GNN). */
  detachWeights?: boolean;
  /** Also return the per-chunk negative blocks (diagnostics only). */
  withAllNegatives?: boolean;
  /** Receives the graph's edge features W [B², D]. */
  recordGraph?: (edges: tf.Tensor) => void;
  /** Receives the GNN's intermediates under their names. */
  recordGnn?: Recorder;
}

export interface GeneratorOutput {
  /** Node classification logits [B, C] (for J_gce). */
  nodePred: tf.Tensor2D;
  /** The learned interpolation weights Λ [B², D]. */
  edgePara: tf.Tensor2D;
  /** [K·P·P, D]: row k·P² + a·P + n is the negative for anchor (k, a) generated from slot n. */
  negatives: tf.Tensor2D;
  allNegatives?: tf.Tensor2D;
}

/** The edge weights the pulling uses: per channel, or (flat ablation) each pair's mean over channels. */
export function generationWeights(edgePara: tf.Tensor2D, v: GcaVariant): tf.Tensor2D {
  if (!v.flat) return edgePara;
  return tf.tidy(() => tf.mul(tf.mean(edgePara, 1, true), tf.onesLike(edgePara)) as tf.Tensor2D);
}

export function runGenerator(g: GeneratorInput): GeneratorOutput {
  const v = g.variant ?? OFFICIAL_VARIANT;
  const graph = correlationGraph(g.nodes);
  g.recordGraph?.(graph.edges);
  const gnn = gnnForward(g.sd, g.shape, g.nodes, graph.edges, { training: g.training ?? false, dropout: g.dropout, pairMlp: !v.global, record: g.recordGnn });
  const weights = generationWeights(g.detachWeights ? detachedCopy(gnn.edgePara) : gnn.edgePara, v);
  const gen = generateHardNegatives({
    z: g.anchors ?? g.nodes,
    edgePara: weights,
    P: g.shape.P,
    K: g.shape.K,
    phi: g.phi,
    mixing: g.mixing,
    withAllNegatives: g.withAllNegatives,
  });
  return { nodePred: gnn.nodePred, edgePara: gnn.edgePara, negatives: gen.negatives, allNegatives: gen.allNegatives };
}
