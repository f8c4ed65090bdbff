// Fresh parameters with the official initialisation (docs/algorithm.md §2.2, §4.1), seeded:
// PyTorch's default Linear init U(±1/√in) for weights and biases; Xavier-uniform weights and zero
// biases for the attention projections of the node layers and the edge layers' q/k/v; LayerNorm
// and BatchNorm weight 1, bias 0; running mean 0, variance 1.
import * as tf from '@tensorflow/tfjs';
import type { Random } from '../engine/random.ts';
import type { GnnShape } from '../gca_hng/gnn/config.ts';
import { gnnParameterShapes } from '../gca_hng/gnn/names.ts';
import { HEAD_BN, HEAD_LINEAR } from './embedding_head.ts';
import { StateDict } from './state_dict.ts';

function uniform(rng: Random, n: number, bound: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (2 * rng.random() - 1) * bound;
  return a;
}

/** LayerNorms and BatchNorms: weight 1, bias 0. */
const NORM_LAYERS = /(\.norm\.1|\.linear\.2|^gnn\.bottleneck[12]\.0|^feature_extractor\.fc\.0)$/;
const XAVIER = /(node_model\.layers\.0\.att\.(q_linear|k_linear|v_linear|out)|edge_model\.att\.(q_linear|k_linear|v_linear))\.(weight|bias)$/;

function initialValue(name: string, shape: number[], rng: Random, fanIn: Map<string, number>): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  if (name.endsWith('.running_var')) return new Float32Array(n).fill(1);
  if (name.endsWith('.running_mean')) return new Float32Array(n);
  const layer = name.replace(/\.(weight|bias)$/, '');
  if (NORM_LAYERS.test(layer)) return name.endsWith('.weight') ? new Float32Array(n).fill(1) : new Float32Array(n);
  if (XAVIER.test(name)) {
    if (name.endsWith('.bias')) return new Float32Array(n);
    return uniform(rng, n, Math.sqrt(6 / ((shape[0] as number) + (shape[1] as number))));
  }
  return uniform(rng, n, 1 / Math.sqrt(fanIn.get(layer) ?? (shape[1] as number)));
}

function fill(sd: StateDict, shapes: Array<[string, number[]]>, rng: Random): void {
  const fanIn = new Map<string, number>();
  for (const [name, shape] of shapes) if (name.endsWith('.weight') && shape.length === 2) fanIn.set(name.replace(/\.weight$/, ''), shape[1] as number);
  for (const [name, shape] of shapes) {
    if (name.endsWith('.num_batches_tracked')) {
      sd.setCounter(name, 0);
      continue;
    }
    const t = tf.tensor(initialValue(name, shape, rng, fanIn), shape);
    sd.set(name, t);
    t.dispose();
  }
}

/** GNN (`gnn.*`) and softmax classifier (`softmax_classifier.*`) of a GCA-HNG model. */
export function initGenerator(sd: StateDict, shape: GnnShape, rng: Random): void {
  fill(sd, [...gnnParameterShapes(shape.D, shape.L, shape.C), ['softmax_classifier.weight', [shape.C, shape.D]], ['softmax_classifier.bias', [shape.C]]], rng);
}

/** The noglobal ablation's per-pair layer gnn.pair_mlp (Linear D→D, PyTorch's default init). */
export function initPairMlp(sd: StateDict, D: number, rng: Random): void {
  fill(
    sd,
    [
      ['gnn.pair_mlp.weight', [D, D]],
      ['gnn.pair_mlp.bias', [D]],
    ],
    rng,
  );
}

/** Embedding head BN1d(n_mid) → Linear(n_mid → D) under feature_extractor.fc.*. */
export function initEmbeddingHead(sd: StateDict, nMid: number, D: number, rng: Random): void {
  fill(
    sd,
    [
      [`${HEAD_BN}.weight`, [nMid]],
      [`${HEAD_BN}.bias`, [nMid]],
      [`${HEAD_BN}.running_mean`, [nMid]],
      [`${HEAD_BN}.running_var`, [nMid]],
      [`${HEAD_BN}.num_batches_tracked`, []],
      [`${HEAD_LINEAR}.weight`, [D, nMid]],
      [`${HEAD_LINEAR}.bias`, [D]],
    ],
    rng,
  );
}

/**
 * torch.nn.init.orthogonal_ (gain 1) of a [rows, cols] matrix from seeded normals: the Q of the QR
 * decomposition of a normal [max, min] matrix, signs fixed so that R's diagonal is positive
 * (modified Gram–Schmidt, float64, gives that R directly), transposed back when rows < cols.
 */
export function orthogonal(rows: number, cols: number, rng: Random): Float32Array {
  const [m, n] = rows >= cols ? [rows, cols] : [cols, rows];
  // Column-major columns of the tall [m, n] matrix.
  const q = Array.from({ length: n }, () => Float64Array.from({ length: m }, () => rng.normal()));
  for (let j = 0; j < n; j++) {
    const cj = q[j] as Float64Array;
    for (let i = 0; i < j; i++) {
      const ci = q[i] as Float64Array;
      let dot = 0;
      for (let r = 0; r < m; r++) dot += (ci[r] as number) * (cj[r] as number);
      for (let r = 0; r < m; r++) cj[r] = (cj[r] as number) - dot * (ci[r] as number);
    }
    let norm = 0;
    for (let r = 0; r < m; r++) norm += (cj[r] as number) ** 2;
    norm = Math.sqrt(norm);
    for (let r = 0; r < m; r++) cj[r] = (cj[r] as number) / norm;
  }
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < m; r++)
    for (let j = 0; j < n; j++) {
      const v = (q[j] as Float64Array)[r] as number;
      if (rows >= cols) out[r * cols + j] = v;
      else out[j * cols + r] = v;
    }
  return out;
}

/** The official DINO head: feature_extractor.fc.1 with an orthogonal weight and a zero bias (scripts/models.py). */
export function initOrthogonalHeadLinear(sd: StateDict, rng: Random): void {
  const [rows, cols] = sd.get(`${HEAD_LINEAR}.weight`).shape as [number, number];
  const w = tf.tensor2d(orthogonal(rows, cols, rng), [rows, cols]);
  const b = tf.zeros([rows]);
  sd.set(`${HEAD_LINEAR}.weight`, w);
  sd.set(`${HEAD_LINEAR}.bias`, b);
  tf.dispose([w, b]);
}

export function newGeneratorState(shape: GnnShape, rng: Random): StateDict {
  const sd = new StateDict();
  initGenerator(sd, shape, rng);
  return sd;
}
