// What the report and the hardness diagnostics need, recorded at each evaluation from one fixed
// probe batch of the training split (drawn from its own random stream, so training is unchanged):
// distances of generated negatives against real ones, the learned edge weights' distribution,
// the hardness factor φ and the J_syn weight 1 − e^{−β/J_gen}, and how many negatives are kept.
import * as tf from '@tensorflow/tfjs';
import { hardnessFactor } from './hard_negatives.ts';
import { runGenerator } from './generator.ts';
import { synWeightComplement } from './objectives.ts';
import type { GcaHngLossConfig } from './config.ts';
import { embed, type MetricModel } from '../models/metric_model.ts';
import { type GcaVariant, OFFICIAL_VARIANT } from './variants.ts';

export interface Histogram {
  /** Bin edges (bins + 1 values). */
  edges: number[];
  counts: number[];
}

export interface HardnessDiagnostics {
  /** φ = exp(−α/J_avg) in use during the epoch just finished. */
  phi: number;
  /** Weight of J_syn, 1 − exp(−β/J_gen). */
  syn_weight: number;
  /** Fraction of (anchor, real negative) pairs kept as is because already harder than the positive. */
  kept_fraction: number;
  distances: {
    anchor_positive: number[];
    anchor_real_negative: number[];
    anchor_generated_negative: number[];
  };
  /** Mean over pairs of (d(generated) − d⁺)/(mean d(real) − d⁺): 0 at the positive's distance, 1 at the real negatives'. */
  relative_position: number;
  edge_weights: {
    histogram: Histogram;
    per_channel_mean: number[];
    per_channel_std: number[];
    /** Mean over pairs of the standard deviation across channels of a pair's weights. */
    within_pair_std: number;
    /** Standard deviation across pairs of a pair's mean weight. */
    across_pair_std: number;
  };
}

export function histogram(values: ArrayLike<number>, lo: number, hi: number, bins: number): Histogram {
  const counts = new Array<number>(bins).fill(0);
  const width = (hi - lo) / bins;
  for (let i = 0; i < values.length; i++) {
    const b = Math.min(bins - 1, Math.max(0, Math.floor(((values[i] as number) - lo) / width)));
    counts[b] = (counts[b] as number) + 1;
  }
  return { edges: Array.from({ length: bins + 1 }, (_, i) => lo + i * width), counts };
}

function dist(a: Float32Array, i: number, b: Float32Array, j: number, D: number): number {
  let s = 0;
  for (let d = 0; d < D; d++) s += ((a[i * D + d] as number) - (b[j * D + d] as number)) ** 2;
  return Math.sqrt(s);
}

export function hardnessDiagnostics(
  m: MetricModel,
  images: tf.Tensor4D,
  loss: GcaHngLossConfig,
  jAvg: number,
  jGen: number,
  mixing: number[],
  variant: GcaVariant = OFFICIAL_VARIANT,
): HardnessDiagnostics {
  const { P, K, D } = m.shape;
  const phi = hardnessFactor(loss.alpha, jAvg);
  // The tensors leave the tidy and are read after it: tidy walks whatever its callback returns, and
  // walking a typed array visits every element (seconds for a [B, B, D] edgePara).
  const outs = tf.tidy(() => {
    const zt = embed(m, images, false);
    const { edgePara, negatives } = runGenerator({ sd: m.sd, shape: m.shape, nodes: zt, phi, mixing, variant });
    return [zt, edgePara, negatives];
  });
  const [z, para, neg] = outs.map((t) => t.dataSync() as Float32Array) as [Float32Array, Float32Array, Float32Array];
  tf.dispose(outs);
  const pos: number[] = [],
    real: number[] = [],
    gen: number[] = [];
  let pairs = 0,
    relSum = 0;
  let keptPairs = 0,
    allPairs = 0;
  for (let k = 0; k < K; k++)
    for (let a = 0; a < P; a++) {
      const dp = dist(z, k * P + a, z, ((k + 1) % K) * P + a, D);
      pos.push(dp);
      for (let n = 0; n < P; n++) {
        if (n === a) continue;
        // The real negatives of slot n (one per chunk) and the one generated from them by mixing.
        let drMean = 0;
        for (let mc = 0; mc < K; mc++) {
          const dr = dist(z, k * P + a, z, mc * P + n, D);
          real.push(dr);
          drMean += dr / K;
          if (dp >= dr) keptPairs++;
          allPairs++;
        }
        const dg = dist(z, k * P + a, neg, k * P * P + a * P + n, D);
        gen.push(dg);
        if (drMean - dp > 1e-9) {
          relSum += (dg - dp) / (drMean - dp);
          pairs++;
        }
      }
    }
  const E = para.length / D;
  const chMean = new Array<number>(D).fill(0);
  const chSq = new Array<number>(D).fill(0);
  const pairMeans: number[] = [];
  let withinSum = 0;
  for (let e = 0; e < E; e++) {
    let s = 0,
      s2 = 0;
    for (let d = 0; d < D; d++) {
      const v = para[e * D + d] as number;
      chMean[d] = (chMean[d] as number) + v;
      chSq[d] = (chSq[d] as number) + v * v;
      s += v;
      s2 += v * v;
    }
    pairMeans.push(s / D);
    withinSum += Math.sqrt(Math.max(0, s2 / D - (s / D) ** 2));
  }
  const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / Math.max(a.length, 1);
  const pm = mean(pairMeans);
  return {
    phi,
    syn_weight: 1 - synWeightComplement(loss.beta, jGen),
    kept_fraction: allPairs ? keptPairs / allPairs : 0,
    distances: { anchor_positive: pos, anchor_real_negative: real, anchor_generated_negative: gen },
    relative_position: pairs ? relSum / pairs : 0,
    edge_weights: {
      histogram: histogram(para, 0, 1, 20),
      per_channel_mean: chMean.map((s) => s / E),
      per_channel_std: chSq.map((s2, d) => Math.sqrt(Math.max(0, s2 / E - ((chMean[d] as number) / E) ** 2))),
      within_pair_std: withinSum / E,
      across_pair_std: Math.sqrt(mean(pairMeans.map((v) => (v - pm) ** 2))),
    },
  };
}
