// The generator's objective terms (pass 2 of a GCA-HNG iteration, docs/algorithm.md §6.5).
import * as tf from '@tensorflow/tfjs';

export const DIVERSITY_FACTOR = 0.01;

/**
 * J_div = 0.01·(1 − √(Σ_{r,c,d}(Λ[r,c,d] − μ[r,d])² / E)),  μ[r,d] = mean_c Λ[r,c,d]:
 * the spread of each source's edge weights; the sum over channels is divided by E, not E·D.
 */
export function diversityLoss(edgePara: tf.Tensor2D, B: number): { raw: tf.Scalar; value: tf.Scalar } {
  return tf.tidy(() => {
    const D = edgePara.shape[1];
    const lam = tf.reshape(edgePara, [B, B, D]);
    const dev = tf.sub(lam, tf.mean(lam, 1, true));
    const raw = tf.sub(1, tf.sqrt(tf.div(tf.sum(tf.square(dev)), B * B))) as tf.Scalar;
    return { raw, value: tf.mul(raw, DIVERSITY_FACTOR) as tf.Scalar };
  });
}

/** Which rows of the cosine term are zeroed. */
export type SimMaskKind = 'reference' | 'same-class';

/**
 * The J_sim mask over rows k·P² + a·P + n (1 kept, 0 zeroed). 'reference' zeroes the official
 * rows a·B + k·P + a (QUIRK 1); 'same-class' zeroes the same-class rows k·P² + a·P + a.
 */
export function simMask(P: number, K: number, kind: SimMaskKind): Float32Array {
  const B = P * K;
  const m = new Float32Array(K * P * P).fill(1);
  for (let k = 0; k < K; k++) for (let a = 0; a < P; a++) m[kind === 'reference' ? a * B + k * P + a : k * P * P + a * P + a] = 0;
  return m;
}

/** Labels of the synthetic negatives: row k·P² + a·P + n gets the class of slot n. */
export function labelMix(labels: ArrayLike<number>, P: number, K: number): number[] {
  return Array.from({ length: K * P * P }, (_, j) => labels[j % P] as number);
}

function l2Normalise(x: tf.Tensor2D): tf.Tensor2D {
  return tf.div(x, tf.sqrt(tf.add(tf.sum(tf.square(x), 1, true), 1e-12))) as tf.Tensor2D;
}

/**
 * s_j = 1 − cos(l2n(z_k[a]), l2n(G[j])) for row j = k·P² + a·P + n, masked and averaged over all
 * K·P² rows (zeros included). Returns the unmasked vector, the masked one and the mean.
 */
export function cosineTerm(negatives: tf.Tensor2D, z: tf.Tensor2D, P: number, K: number, mask: Float32Array) {
  return tf.tidy(() => {
    const D = z.shape[1];
    const a = tf.reshape(l2Normalise(z), [K, P, 1, D]);
    const g = tf.reshape(l2Normalise(negatives), [K, P, P, D]);
    const dot = tf.sum(tf.mul(a, g), 3);
    // PyTorch's cosine_similarity: x·y / √max(‖x‖²‖y‖², eps²), eps = 1e-8.
    const denom = tf.sqrt(tf.maximum(tf.mul(tf.sum(tf.square(a), 3), tf.sum(tf.square(g), 3)), 1e-16));
    const unmasked = tf.reshape(tf.sub(1, tf.div(dot, denom)), [K * P * P]) as tf.Tensor1D;
    const vec = tf.mul(unmasked, tf.tensor1d(mask)) as tf.Tensor1D;
    return { unmasked, vec, mean: tf.mean(vec) as tf.Scalar };
  });
}
