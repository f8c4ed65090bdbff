// Times one full GCA-HNG training iteration of the generator part: both GNN passes, the
// generation, every loss, the backward passes and the three optimizer steps. The metric model is
// a D→D embedding head over given features, so the embeddings are a leaf with a gradient.
import * as tf from '@tensorflow/tfjs';
import { Random, STREAMS } from '../src/engine/random.ts';
import type { GnnShape } from '../src/gca_hng/gnn/config.ts';
import { embeddingHead } from '../src/models/embedding_head.ts';
import { initEmbeddingHead, newGeneratorState } from '../src/models/init.ts';
import { defaultLossConfig } from '../src/gca_hng/config.ts';
import { trainIteration } from '../src/gca_hng/iteration.ts';
import { createOptimizers } from '../src/train/optimizers.ts';
import { type BenchResult, timeRuns } from './timing.ts';

export const ITERATION_SHAPES: Record<string, GnnShape> = {
  cub: { P: 27, K: 3, D: 512, L: 2, H: 4, C: 100 },
  sop: { P: 40, K: 2, D: 512, L: 1, H: 2, C: 11318 },
  small: { P: 10, K: 4, D: 128, L: 1, H: 2, C: 10 },
};

/** The model, optimizers and batch of one iteration at `shape`; step() runs one iteration. */
export function prepareIteration(shape: GnnShape): { step: () => void; dispose: () => void } {
  const rng = new Random(0, STREAMS.benchIteration);
  const sd = newGeneratorState(shape, rng);
  initEmbeddingHead(sd, shape.D, shape.D, rng);
  const opts = createOptimizers(sd, { baseLr: 1e-4, embeddingRatio: 1, gnnLr: 3e-4, classifierLr: 1e-3, weightDecay: 1e-4, classifierWeightDecay: 0.01 });
  const B = shape.P * shape.K;
  const x = tf.randomNormal([B, shape.D], 0, 1, 'float32', 1);
  const labels = Array.from({ length: B }, (_, i) => i % shape.P);
  const mixing = () => Array.from({ length: shape.K * (shape.K - 1) }, () => rng.random());
  const dropoutRng = new Random(1, STREAMS.benchDropout);
  return {
    step: () => {
      trainIteration(
        { sd, shape, loss: defaultLossConfig(), embed: (input) => embeddingHead(sd, input as tf.Tensor2D, true), ...opts, clip: 10 },
        { input: x, labels, jAvg: 2, jGen: 20, mixingMetric: mixing(), mixingGenerator: mixing(), dropout: { p: 0.1, random: () => dropoutRng.random() } },
      );
    },
    dispose: () => {
      x.dispose();
      opts.optC.dispose();
      opts.optGnn.dispose();
      opts.optS.dispose();
      sd.dispose();
    },
  };
}

export async function benchIteration(name: string, runs: number): Promise<BenchResult> {
  const shape = ITERATION_SHAPES[name];
  if (!shape) throw new Error(`unknown iteration shape '${name}'`);
  const iteration = prepareIteration(shape);
  const result = await timeRuns(`iteration-${name}`, runs, iteration.step);
  iteration.dispose();
  return result;
}
