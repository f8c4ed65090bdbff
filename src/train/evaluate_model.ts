// Evaluation of a metric model on a test split: embeddings in evaluation mode (BatchNorm running
// statistics), then Recall@k, MAP@R, R-Precision and NMI.
import * as tf from '@tensorflow/tfjs';
import { embeddings as asEmbeddings, evaluateInShop, evaluateNmi, evaluateRetrieval, type Semantics } from '../metrics/index.ts';
import { embed, type MetricModel } from '../models/metric_model.ts';
import type { ImageSplit } from './image_split.ts';

export interface EvalRecord {
  epoch: number;
  recall: Record<string, number>;
  map_at_r: number;
  r_precision: number;
  nmi: number | null;
}

export async function embedSplit(m: MetricModel, split: ImageSplit, batchSize = 256): Promise<Float32Array> {
  const D = m.shape.D;
  const out = new Float32Array(split.size * D);
  for (let start = 0; start < split.size; start += batchSize) {
    const idx = Array.from({ length: Math.min(batchSize, split.size - start) }, (_, i) => start + i);
    const images = await split.images(idx);
    const z = embed(m, images, false);
    out.set(z.dataSync() as Float32Array, start * D);
    tf.dispose([images, z]);
  }
  return out;
}

export async function evaluateModel(
  m: MetricModel,
  split: ImageSplit,
  epoch: number,
  opts: { ks: number[]; semantics: Semantics; nmi: boolean; seed: number },
): Promise<{ record: EvalRecord; embeddings: Float32Array }> {
  const data = await embedSplit(m, split);
  const D = m.shape.D;
  const x = asEmbeddings(data, split.size, D);
  const q = split.queryCount;
  // In-Shop: queries against the gallery (the official protocol); otherwise the set against itself.
  const r =
    q !== undefined
      ? await evaluateInShop(
          asEmbeddings(data.subarray(0, q * D), q, D),
          split.labels.subarray(0, q),
          asEmbeddings(data.subarray(q * D), split.size - q, D),
          split.labels.subarray(q),
          { ks: opts.ks, semantics: opts.semantics },
        )
      : await evaluateRetrieval(x, split.labels, { ks: opts.ks, semantics: opts.semantics });
  const nmi = opts.nmi ? await evaluateNmi(x, split.labels, { seed: opts.seed }) : null;
  return { record: { epoch, recall: r.recall, map_at_r: r.mapAtR, r_precision: r.rPrecision, nmi }, embeddings: data };
}
