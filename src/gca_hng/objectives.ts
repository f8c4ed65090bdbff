// The three objectives of one GCA-HNG iteration (docs/algorithm.md §6), as functions of the model's
// current weights. They return scalars on the gradient tape of the caller plus what was made
// on the way (for logging and golden comparisons).
import * as tf from '@tensorflow/tfjs';
import type { GnnShape } from './gnn/config.ts';
import type { DropoutSpec } from './gnn/edge_update.ts';
import type { Recorder } from './gnn/recorder.ts';
import { hardnessFactor } from './hard_negatives.ts';
import { runGenerator } from './generator.ts';
import { crossEntropy } from '../losses/cross_entropy.ts';
import { npairLoss, npairSyntheticLoss } from '../losses/npair.ts';
import { cosineTerm, diversityLoss, labelMix, simMask } from './losses.ts';
import { linear } from '../nn/linear.ts';
import type { MetricLoss } from '../losses/metric/index.ts';
import { detachedCopy } from '../nn/stop_gradient.ts';
import type { StateDict } from '../models/state_dict.ts';
import { type GcaHngLossConfig, OFFICIAL_FIXED } from './config.ts';
import { type GcaVariant, OFFICIAL_VARIANT } from './variants.ts';

export interface PassContext {
  sd: StateDict;
  shape: GnnShape;
  loss: GcaHngLossConfig;
  labels: readonly number[];
  /** J_avg of the previous epoch (1e6 in the first). */
  jAvg: number;
  /** J_gen of the previous epoch (1e6 in the first). */
  jGen: number;
  /** The K(K−1) mixing uniforms of this pass. */
  mixing: readonly number[];
  training: boolean;
  dropout?: DropoutSpec;
  record?: Recorder;
  /** Also produce the per-chunk negative blocks (diagnostics only). */
  withAllNegatives?: boolean;
  /** Hardness factor φ to use instead of exp(−α/J_avg) (the adaptive schedule). */
  phi?: number;
  /** An ablation of the official method (default: the official one). */
  variant?: GcaVariant;
  /**
   * A base loss other than the official N-pair (proxy-anchor, multi-similarity): hardneg's own
   * formulation, not the paper's (docs/algorithm.md §6.9.1). J_m is that loss on z, and J_syn that
   * loss on z together with the synthetic negatives, each labelled with the class of the real
   * negative it was generated from (the class of slot n).
   */
  baseLoss?: MetricLoss;
}

export function classifierLogits(sd: StateDict, x: tf.Tensor2D): tf.Tensor2D {
  return linear(x, sd.get('softmax_classifier.weight'), sd.get('softmax_classifier.bias')) as tf.Tensor2D;
}

/** e_bj = exp(−β/J_gen): J_syn is weighted by 1 − e_bj. */
export function synWeightComplement(beta: number, jGen: number): number {
  return Math.exp(-beta / jGen);
}

/**
 * Pass 1: J_metric = J_m + J_syn + J_gce on z (with its gradient). The GNN's edge weights enter
 * the generation detached, so J_syn trains only the embedding and J_gce trains the GNN (and,
 * through the node inputs and the graph, the embedding too: QUIRK 5).
 */
export function metricObjective(c: PassContext, z: tf.Tensor2D) {
  const { P, K } = c.shape;
  const v = c.variant ?? OFFICIAL_VARIANT;
  const rec = c.record;
  const custom = c.baseLoss;
  const jM = custom ? custom.compute(z, c.labels) : npairLoss(z, c.labels, P, K);
  // The nogce ablation feeds the GNN a detached copy, so J_gce trains the GNN only.
  const gnnInput = v.gceToBackbone ? z : detachedCopy(z);
  const phi = c.phi ?? hardnessFactor(c.loss.alpha, c.jAvg);
  const gen = runGenerator({
    sd: c.sd,
    shape: c.shape,
    nodes: gnnInput,
    anchors: z,
    phi,
    mixing: c.mixing,
    training: c.training,
    dropout: c.dropout,
    variant: v,
    detachWeights: true,
    withAllNegatives: c.withAllNegatives,
    recordGraph: rec ? (edges) => rec('graph/W', edges) : undefined,
    recordGnn: rec ? (n, t) => rec(`gnn/${n}`, t) : undefined,
  });
  const jGce = crossEntropy(gen.nodePred, c.labels);
  const eBj = synWeightComplement(c.loss.beta, c.jGen);
  const jSynRaw = custom
    ? custom.compute(tf.concat([z, gen.negatives]) as tf.Tensor2D, [...c.labels, ...labelMix(c.labels, P, K)])
    : npairSyntheticLoss(gen.negatives, z, P, K);
  const jSyn = tf.mul(jSynRaw, v.syn ? 1 - eBj : 0) as tf.Scalar;
  const jMetric = (v.syn ? tf.add(tf.add(jM, jSyn), jGce) : tf.add(jM, jGce)) as tf.Scalar;
  return {
    jMetric,
    jM,
    jSyn,
    jSynRaw,
    jGce,
    eBj,
    phi,
    nodePred: gen.nodePred,
    edgePara: gen.edgePara,
    negatives: gen.negatives,
    allNegatives: gen.allNegatives,
  };
}

/** J_ce = 10·CE(classifier(sg(z)), y): trains only the softmax classifier. */
export function softmaxObjective(sd: StateDict, z: tf.Tensor2D, labels: readonly number[]) {
  const logits = classifierLogits(sd, z);
  return { jSoftce: tf.mul(crossEntropy(logits, labels), OFFICIAL_FIXED.softmaxCeWeight) as tf.Scalar, logits };
}

/**
 * Pass 2: the generator objective on sg(z), with the GNN's edge weights differentiable:
 * J_gen = 0.5·(SOFTMAX_FACTOR·CE(classifier(G), y_mix) + DOT_WEIGHT·J_sim + DIV_WEIGHT·J_div).
 */
export function generatorObjective(c: PassContext, zDetached: tf.Tensor2D) {
  const { P, K } = c.shape;
  const B = P * K;
  const rec = c.record;
  const v = c.variant ?? OFFICIAL_VARIANT;
  const phi = c.phi ?? hardnessFactor(c.loss.alpha, c.jAvg);
  const gen = runGenerator({
    sd: c.sd,
    shape: c.shape,
    nodes: zDetached,
    phi,
    mixing: c.mixing,
    training: c.training,
    dropout: c.dropout,
    variant: v,
    withAllNegatives: c.withAllNegatives,
    recordGnn: rec ? (n, t) => rec(`gnn2/${n}`, t) : undefined,
  });
  const div = diversityLoss(gen.edgePara, B);
  const logitsMix = classifierLogits(c.sd, gen.negatives);
  const jGence = tf.mul(crossEntropy(logitsMix, labelMix(c.labels, P, K)), c.loss.softmaxFactor) as tf.Scalar;
  const sim = cosineTerm(gen.negatives, zDetached, P, K, simMask(P, K, c.loss.simMask));
  const jGen = tf.mul(
    tf.add(tf.add(jGence, tf.mul(sim.mean, c.loss.dotWeight)), tf.mul(div.value, c.loss.divWeight)),
    OFFICIAL_FIXED.generatorFactor,
  ) as tf.Scalar;
  return {
    jGen,
    jGence,
    jDivRaw: div.raw,
    jDiv: div.value,
    sim,
    logitsMix,
    edgePara: gen.edgePara,
    nodePred: gen.nodePred,
    negatives: gen.negatives,
    allNegatives: gen.allNegatives,
  };
}
