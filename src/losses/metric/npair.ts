// The N-pair loss of GCA-HNG's official code (src/losses/npair.ts: J_m) as a pair-based loss of
// this registry: on a batch in the P×K chunk layout, anchors are chunk 0 and for each chunk k ≥ 1
// the logits are the raw dot products ⟨z_a, z_{kP+b}⟩ (no normalisation), the target of row a is
// uniform over the columns of a's class, and
//   ℓ = mean_k CE_k + 3e-3 · 0.25 · Σ_i ‖z_i‖² / P.
// computeFromMatrix takes the [B, B] similarity matrix (possibly with mined or synthetic entries) and
// adds the l2 term from `embeddings` when they are given.
import * as tf from '@tensorflow/tfjs';
import { inferChunkLayout } from '../../samplers/chunk_layout.ts';
import { softCrossEntropy } from '../cross_entropy.ts';
import { NPAIR_L2_REG } from '../npair.ts';
import { type LossContext, type PairBasedLoss, type PairMatrixInput, checkMatrixInput, pairInput } from './base.ts';
import { type BaseDistance, DotProductSimilarity } from './distances.ts';

export interface NPairOptions {
  /** Weight of the embedding l2 term (default 3e-3, the official l2_reg; the term is l2Reg·0.25·Σ‖z‖²/P). */
  l2Reg?: number;
}

export const NPAIR_DEFAULTS = { l2Reg: NPAIR_L2_REG } as const;

export class NPairLoss implements PairBasedLoss {
  readonly name = 'npair';
  readonly kind = 'pair';
  readonly distance: BaseDistance = new DotProductSimilarity({ normalizeEmbeddings: false });
  readonly l2Reg: number;

  constructor(o: NPairOptions = {}) {
    this.l2Reg = o.l2Reg ?? NPAIR_DEFAULTS.l2Reg;
  }

  compute(embeddings: tf.Tensor2D, labels: readonly number[], ctx?: LossContext): tf.Scalar {
    if (ctx?.ref !== undefined || ctx?.refLabels !== undefined)
      throw new Error('npair: reference embeddings are not supported (anchors and positives both come from the batch)');
    return tf.tidy(() => this.computeFromMatrix(pairInput('npair', this.distance, embeddings, labels)));
  }

  computeFromMatrix(input: PairMatrixInput): tf.Scalar {
    checkMatrixInput('npair', input);
    if (!input.selfRef) throw new Error('npair: needs the batch against itself (a square, self-referencing matrix)');
    const { P, K } = inferChunkLayout(input.labels);
    return tf.tidy(() => {
      let ce: tf.Tensor = tf.scalar(0);
      for (let k = 1; k < K; k++) {
        const target = new Float32Array(P * P);
        for (let a = 0; a < P; a++) {
          let count = 0;
          for (let b = 0; b < P; b++) if (input.labels[a] === input.refLabels[k * P + b]) count++;
          for (let b = 0; b < P; b++) if (input.labels[a] === input.refLabels[k * P + b]) target[a * P + b] = 1 / count;
        }
        const logits = tf.slice(input.matrix, [0, k * P], [P, P]) as tf.Tensor2D;
        ce = tf.add(ce, softCrossEntropy(logits, tf.tensor2d(target, [P, P])));
      }
      let loss = tf.div(ce, K - 1);
      if (input.embeddings !== undefined && this.l2Reg !== 0) {
        loss = tf.add(loss, tf.mul(tf.div(tf.sum(tf.square(input.embeddings)), P), this.l2Reg * 0.25));
      }
      return loss as tf.Scalar;
    });
  }
}
