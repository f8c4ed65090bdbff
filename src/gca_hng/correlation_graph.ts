// The correlation graph over a batch (GraphGenerator with threshold 'no'): every ordered pair of
// samples is an edge, self-loops included, ordered source-major (edge e = r·B + c). The edge
// feature is the channel-wise product of the two samples' centred, L2-normalised embeddings:
// W[r,c,d] = x_r[d]·x_c[d] / (‖x_r‖‖x_c‖), x_i = z_i − mean_d z_i.
// The GNN's node input is the raw z, not the centred x (official behaviour, QUIRK 2).
// Described in docs/algorithm.md §3; QUIRK n is entry n of its §11.
import * as tf from '@tensorflow/tfjs';

export interface CorrelationGraph {
  /** Edge features [B·B, D], row e = r·B + c. */
  edges: tf.Tensor2D;
}

function normalisedCentred(z: tf.Tensor2D): tf.Tensor2D {
  const x = tf.sub(z, tf.mean(z, 1, true));
  // No epsilon on the norm, as in the official code.
  return tf.div(x, tf.sqrt(tf.sum(tf.square(x), 1, true))) as tf.Tensor2D;
}

export function correlationGraph(z: tf.Tensor2D): CorrelationGraph {
  return tf.tidy(() => {
    const [b, d] = z.shape;
    const xn = normalisedCentred(z);
    const w = tf.mul(tf.reshape(xn, [b, 1, d]), tf.reshape(xn, [1, b, d]));
    return { edges: tf.reshape(w, [b * b, d]) as tf.Tensor2D };
  });
}

/** The scalar Pearson correlation ρ[r,c] = Σ_d W[r,c,d] (computed but unused by the official code). */
export function correlationMatrix(z: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const xn = normalisedCentred(z);
    return tf.matMul(xn, tf.transpose(xn)) as tf.Tensor2D;
  });
}

/** Edge index table [(r, c)] for e = r·B + c. */
export function edgeIndex(b: number): Int32Array {
  const out = new Int32Array(b * b * 2);
  for (let r = 0; r < b; r++)
    for (let c = 0; c < b; c++) {
      out[2 * (r * b + c)] = r;
      out[2 * (r * b + c) + 1] = c;
    }
  return out;
}

/**
 * Threshold pruning (the official code's unused `thresh` path): keeps edges with ρ > τ. The
 * official GNN assumes all B² edges, so the pruned edge list is offered for analysis only.
 */
export function prunedEdges(rho: Float32Array, b: number, threshold: number): Array<[number, number]> {
  const kept: Array<[number, number]> = [];
  for (let r = 0; r < b; r++) for (let c = 0; c < b; c++) if ((rho[r * b + c] as number) > threshold) kept.push([r, c]);
  return kept;
}
