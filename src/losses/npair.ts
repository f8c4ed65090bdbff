// The N-pair losses of GCA-HNG (the official NpairLoss), with its l2 term 3e-3·0.25·Σ‖·‖²/n
// (docs/algorithm.md §6.1, §6.2).
import * as tf from '@tensorflow/tfjs';
import { crossEntropy, softCrossEntropy } from './cross_entropy.ts';

export const NPAIR_L2_REG = 3e-3;

/**
 * J_m on real embeddings in chunk layout [K·P, D]: the anchors are chunk 0 only; for each other
 * chunk k the logits are the raw dot products Z₀·Z_kᵀ and the target is chunk 0's row-normalised
 * label-equality matrix (the identity when the P classes are distinct):
 *   J_m = mean_k CE + 3e-3·0.25·Σ_i‖z_i‖²/P.
 */
export function npairLoss(z: tf.Tensor2D, labels: ArrayLike<number>, P: number, K: number): tf.Scalar {
  return tf.tidy(() => {
    const D = z.shape[1];
    const target = new Float32Array(P * P);
    for (let a = 0; a < P; a++) {
      let count = 0;
      for (let b = 0; b < P; b++) if (labels[a] === labels[b]) count++;
      for (let b = 0; b < P; b++) if (labels[a] === labels[b]) target[a * P + b] = 1 / count;
    }
    const t = tf.tensor2d(target, [P, P]);
    const anchors = tf.slice(z, [0, 0], [P, D]);
    let ce: tf.Tensor = tf.scalar(0);
    for (let k = 1; k < K; k++) {
      const logits = tf.matMul(anchors, tf.transpose(tf.slice(z, [k * P, 0], [P, D]))) as tf.Tensor2D;
      ce = tf.add(ce, softCrossEntropy(logits, t));
    }
    const l2 = tf.div(tf.sum(tf.square(z)), P);
    return tf.add(tf.div(ce, K - 1), tf.mul(l2, NPAIR_L2_REG * 0.25)) as tf.Scalar;
  });
}

/**
 * The N-pair loss on synthetic negatives ([K·P·P, D], row k·P² + a·P + n): for anchor chunk k
 * with positives chunk k⁺ = (k+1) mod K, the diagonal n = a is replaced by the real positive,
 * logits[a, n] = ⟨z_k[a], G_k[a, n]⟩ with target a, plus 3e-3·0.25·(Σ‖z_k‖²/P + Σ‖G_k‖²/P²);
 * averaged over k. (Unweighted: J_syn = (1 − e^{−β/J_gen})·this.)
 */
export function npairSyntheticLoss(negatives: tf.Tensor2D, z: tf.Tensor2D, P: number, K: number): tf.Scalar {
  return tf.tidy(() => {
    const D = z.shape[1];
    const eye = new Float32Array(P * P);
    for (let a = 0; a < P; a++) eye[a * P + a] = 1;
    const diag = tf.tensor3d(eye, [P, P, 1]);
    const offDiag = tf.sub(1, diag);
    const targets = Array.from({ length: P }, (_, a) => a);
    let total: tf.Tensor = tf.scalar(0);
    for (let k = 0; k < K; k++) {
      const anchors = tf.slice(z, [k * P, 0], [P, D]);
      const positives = tf.slice(z, [((k + 1) % K) * P, 0], [P, D]);
      const block = tf.reshape(tf.slice(negatives, [k * P * P, 0], [P * P, D]), [P, P, D]);
      const tile = tf.add(tf.mul(block, offDiag), tf.mul(diag, tf.reshape(positives, [P, 1, D])));
      const logits = tf.sum(tf.mul(tf.reshape(anchors, [P, 1, D]), tile), 2) as tf.Tensor2D;
      const l2 = tf.add(tf.div(tf.sum(tf.square(anchors)), P), tf.div(tf.sum(tf.square(tile)), P * P));
      total = tf.add(total, tf.add(crossEntropy(logits, targets), tf.mul(l2, NPAIR_L2_REG * 0.25)));
    }
    return tf.div(total, K) as tf.Scalar;
  });
}
