// Times one fine-tuning step of a pretrained-architecture backbone with the official embedding head:
// forward of N images at 224 px (training mode), the backward pass to every backbone and head
// parameter, and one AdamW step of both (the metric side's work per iteration, without GCA-HNG's
// losses). Random weights and inputs: the work does not depend on the values. The loss is
// Σ z ⊙ R for a fixed R, so the step's cost is the model's alone.
import * as tf from '@tensorflow/tfjs';
import { Random, STREAMS } from '../src/engine/random.ts';
import { backboneSpec } from '../src/models/backbones.ts';
import { embeddingHead } from '../src/models/embedding_head.ts';
import { initEmbeddingHead } from '../src/models/init.ts';
import { StateDict } from '../src/models/state_dict.ts';
import { AdamW } from '../src/optim/adamw.ts';
import { type BenchResult, timeRuns } from './timing.ts';

/** The backbones with a fine-tuning case, and the embedding width their presets use. */
export const FINETUNE_BACKBONES = { 'dino-vits16': 384, resnet50: 512, googlenet: 512 } as const;
export type FinetuneBackbone = keyof typeof FINETUNE_BACKBONES;
export const FINETUNE_SIDE = 224;

export async function benchFinetune(name: FinetuneBackbone, batch: number, runs: number): Promise<BenchResult & { batch: number }> {
  const spec = backboneSpec(name);
  if (spec.input !== 'paper-pipeline') throw new Error(`${name} is not a fine-tuned backbone`);
  const backbone = spec.create({ bnFreeze: true, pooling: true });
  const rng = new Random(0, STREAMS.benchIteration);
  const sd = new StateDict();
  backbone.init(sd, rng);
  initEmbeddingHead(sd, backbone.features, FINETUNE_BACKBONES[name], rng);
  const names = sd.trainable(['feature_extractor.']);
  const opt = new AdamW(sd, [{ params: names, lr: 1e-5, weightDecay: 1e-4 }]);
  const images = tf.randomNormal([batch, FINETUNE_SIDE, FINETUNE_SIDE, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
  const probe = tf.randomNormal([batch, FINETUNE_BACKBONES[name]], 0, 1, 'float32', 2);
  const step = () => {
    opt.zeroGrad();
    const { value, grads } = tf.variableGrads(
      () => tf.sum(tf.mul(embeddingHead(sd, backbone.forward(sd, images, true), true), probe)) as tf.Scalar,
      names.map((n) => sd.get(n)),
    );
    for (const n of names) opt.accumulate(n, grads[sd.get(n).name] as tf.Tensor);
    opt.step();
    value.dataSync();
    tf.dispose([value, ...Object.values(grads)]);
  };
  const result = await timeRuns(`finetune-${name}`, runs, step);
  tf.dispose([images, probe]);
  opt.dispose();
  sd.dispose();
  return { ...result, batch };
}
