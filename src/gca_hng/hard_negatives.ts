// Channel-adaptive hard negative generation (the official GeneralPulling, docs/algorithm.md §5).
// For anchor chunk k (positive chunk k⁺ = (k+1) mod K), anchor a and every node n of every
// negative chunk m, the negative y is pulled towards the anchor channel by channel:
//   ratio_d = (d⁺ + (d⁻ − d⁺)·φ·Λ[(k,a) → (m,n), d]) / d⁻,   g = x + (y − x) ⊙ ratio
// with φ = exp(−α/J_avg), d(u, v) = ‖u − v + 1e-6‖ (PyTorch's pairwise_distance, QUIRK 12),
// unless the negative is already harder than the positive (d⁺ ≥ d⁻), when it is kept as is.
// The K per-chunk candidates are then mixed sequentially with one uniform u per (k, m) block:
//   S ← ĥ₀;  S ← ĥ_m + u·(S − ĥ_m) for m = 1..K−1   (QUIRK 7).
import * as tf from '@tensorflow/tfjs';
import { stopGradient } from '../nn/stop_gradient.ts';

export const PAIRWISE_EPS = 1e-6;

/** φ = exp(−α/J_avg), computed in float64 as the official code does with numpy. */
export function hardnessFactor(alpha: number, jAvg: number): number {
  return Math.exp(-alpha / jAvg);
}

export interface HardNegativeInput {
  /** Embeddings in chunk layout [B, D]. */
  z: tf.Tensor2D;
  /** Edge weights [B², D] from the GNN (edge e = r·B + c). */
  edgePara: tf.Tensor2D;
  P: number;
  K: number;
  /** Hardness factor φ. */
  phi: number;
  /** K(K−1) uniforms, order (k=0,m=1), (k=0,m=2), …, (k=K−1,m=K−1). */
  mixing: readonly number[];
  /** Also return the per-chunk blocks (the official unused second output). */
  withAllNegatives?: boolean;
}

export interface HardNegatives {
  /** [K·P·P, D]: row k·P² + a·P + n is the negative for anchor (k, a) generated from slot n. */
  negatives: tf.Tensor2D;
  /** [K·K·P·P, D]: block (k, m) holds ĥ₀ for m = 0 and the running mixture after chunk m otherwise. */
  allNegatives?: tf.Tensor2D;
}

function pairwiseDistance(u: tf.Tensor, v: tf.Tensor): tf.Tensor {
  return tf.sqrt(tf.sum(tf.square(tf.add(tf.sub(u, v), PAIRWISE_EPS)), -1, true));
}

export function generateHardNegatives(inp: HardNegativeInput): HardNegatives {
  const { P, K } = inp;
  if (inp.mixing.length !== K * (K - 1)) throw new Error(`mixing needs ${K * (K - 1)} values, got ${inp.mixing.length}`);
  return tf.tidy(() => {
    const D = inp.z.shape[1];
    const B = P * K;
    const chunks = tf.reshape(inp.z, [K, P, D]);
    const anchors = tf.reshape(chunks, [K, P, 1, D]);
    const positives = tf.reshape(tf.concat([tf.slice(chunks, [1, 0, 0], [K - 1, P, D]), tf.slice(chunks, [0, 0, 0], [1, P, D])], 0), [K, P, 1, D]);
    const dPos = pairwiseDistance(anchors, positives); // [K, P, 1, 1]
    // The candidates of every negative chunk m at once: node m·P + n of the batch is y = Z[m, n],
    // pulled with the edge weight Λ[k, a, m·P + n] (the same element-wise operations per m as one
    // chunk at a time, in far fewer ops).
    const y = tf.reshape(inp.z, [1, 1, B, D]);
    const dNeg = pairwiseDistance(anchors, y); // [K, P, B, 1]
    const lambda = tf.mul(tf.reshape(inp.edgePara, [K, P, B, D]), Math.fround(inp.phi));
    const ratio = tf.div(tf.add(dPos, tf.mul(tf.sub(dNeg, dPos), lambda)), dNeg);
    const pulled = tf.add(anchors, tf.mul(tf.sub(y, anchors), ratio));
    const keep = stopGradient(tf.cast(tf.greaterEqual(dPos, dNeg), 'float32'));
    const candidates = tf.add(tf.mul(keep, y), tf.mul(tf.sub(1, keep), pulled)); // [K, P, B, D]
    const perChunk = Array.from({ length: K }, (_, m) => tf.slice(candidates, [0, 0, m * P, 0], [K, P, P, D]));

    let mixed: tf.Tensor | null = null;
    const blocks: tf.Tensor[] = [];
    for (let m = 0; m < K; m++) {
      const candidate = perChunk[m] as tf.Tensor;
      if (mixed === null) {
        mixed = candidate;
      } else {
        const u = new Float32Array(K);
        for (let k = 0; k < K; k++) u[k] = Math.fround(inp.mixing[k * (K - 1) + m - 1] as number);
        mixed = tf.add(candidate, tf.mul(tf.tensor4d(u, [K, 1, 1, 1]), tf.sub(mixed, candidate)));
      }
      if (inp.withAllNegatives) blocks.push(mixed);
    }
    const negatives = tf.reshape(mixed as tf.Tensor, [K * P * P, D]) as tf.Tensor2D;
    if (!inp.withAllNegatives) return { negatives };
    return { negatives, allNegatives: tf.reshape(tf.stack(blocks, 1), [K * K * P * P, D]) as tf.Tensor2D };
  });
}
