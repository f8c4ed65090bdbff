// Times one fine-tuning step of a backbone (ResNet-50, GoogLeNet, DINO ViT-S/16): forward through the backbone (BatchNorm2d
// frozen, as BN_FREEZE) and the 512-d embedding head, a squared-error loss against a fixed random
// target, the backward pass and an AdamW step over the backbone's convolutions and the head. The
// BatchNorm2d weights stay frozen too (the official policy for ResNet-50; bench/pytorch_finetune.py
// does the same), so both sides do the same work. Weights are deterministic random ones.
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Random, STREAMS } from '../src/engine/random.ts';
import { type MetricModel, backboneChunked, embed } from '../src/models/metric_model.ts';
import { DEFAULT_BACKBONE_CHUNK } from '../src/nn/chunked_backbone.ts';
import { dinoVitS16 } from '../src/models/dino_vit.ts';
import { googlenet } from '../src/models/googlenet.ts';
import { initEmbeddingHead } from '../src/models/init.ts';
import { resnet50 } from '../src/models/resnet50.ts';
import { StateDict } from '../src/models/state_dict.ts';
import type { TorchvisionBackbone } from '../src/models/torchvision.ts';
import { AdamW } from '../src/optim/adamw.ts';
import { type BenchResult, timeRuns } from './timing.ts';

export const FINETUNE_BACKBONES: Record<string, () => TorchvisionBackbone> = {
  resnet50: () => resnet50({ bnFreeze: true }),
  googlenet: () => googlenet({ bnFreeze: true }),
  'dino-vits16': () => dinoVitS16(),
};

/** The embedding width of each backbone's presets (512 for the CNNs, 384 for DINO). */
const EMBEDDING_WIDTH: Record<string, number> = { resnet50: 512, googlenet: 512, 'dino-vits16': 384 };

/** The PyTorch twin of each case: the torchvision script, or the ViT written out for the parity fixtures. */
const PYTORCH_SCRIPT: Record<string, string> = { resnet50: 'pytorch_finetune.py', googlenet: 'pytorch_finetune.py', 'dino-vits16': 'pytorch_finetune_vit.py' };

export const FINETUNE_DEFAULT_BATCH = 16;
const SIDE = 224;

/**
 * The model, optimizer and batch of one step; step() runs one. `chunked`: the batch exceeds
 * `chunk` images and the backbone is per-sample (BatchNorm frozen), so the step sends it through
 * the backbone in chunks (src/nn/chunked_backbone.ts), as the trainer does.
 */
export function prepareFinetune(name: string, batch: number, chunk = DEFAULT_BACKBONE_CHUNK): { step: () => void; dispose: () => void; chunked: boolean } {
  const create = FINETUNE_BACKBONES[name];
  if (!create) throw new Error(`unknown backbone '${name}'; backbones: ${Object.keys(FINETUNE_BACKBONES).join(', ')}`);
  const backbone = create();
  const EMBEDDING = EMBEDDING_WIDTH[name] as number;
  const rng = new Random(0, STREAMS.benchIteration);
  const sd = new StateDict();
  backbone.init(sd, rng);
  initEmbeddingHead(sd, backbone.features, EMBEDDING, rng);
  const frozen = new Set(backbone.batchNormAffineNames());
  const params = sd.trainable([backbone.prefix, 'feature_extractor.fc.']).filter((n) => !frozen.has(n));
  const vars = params.map((n) => sd.get(n));
  const opt = new AdamW(sd, [{ params, lr: 1e-5, weightDecay: 1e-4 }]);
  const images = tf.randomNormal([batch, SIDE, SIDE, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
  const target = tf.randomNormal([batch, EMBEDDING], 0, 1, 'float32', 2);
  const model: MetricModel = { sd, backbone, shape: { P: 1, K: 1, D: EMBEDDING, L: 1, H: 1, C: 1 }, normalize: false, backboneChunk: chunk };
  return {
    chunked: backboneChunked(model, batch, true),
    step: () => {
      // As the trainer's step: a batch over the chunk size goes through the backbone in chunks.
      const { grads } = tf.variableGrads(() => tf.mean(tf.squaredDifference(embed(model, images, true, { frozen }), target)) as tf.Scalar, vars);
      opt.zeroGrad();
      params.forEach((n, i) => opt.accumulate(n, grads[(vars[i] as tf.Variable).name] as tf.Tensor));
      tf.dispose(Object.values(grads));
      opt.step();
    },
    dispose: () => {
      tf.dispose([images, target]);
      opt.dispose();
      sd.dispose();
    },
  };
}

export async function benchFinetune(
  name: string,
  batch: number,
  runs: number,
  chunk = DEFAULT_BACKBONE_CHUNK,
): Promise<BenchResult & { batch: number; ms_per_image: number; chunk: number | null }> {
  const finetune = prepareFinetune(name, batch, chunk);
  const result = await timeRuns(`finetune-${name}`, runs, finetune.step);
  finetune.dispose();
  return { ...result, batch, ms_per_image: Math.round((result.median_ms / batch) * 10) / 10, chunk: finetune.chunked ? chunk : null };
}

// ---------------------------------------------------------------------------------------------
// The cases as bench/run.ts lists them: finetune-<backbone> (ours) and finetune-<backbone>-pytorch
// (bench/pytorch_finetune.py), which run.ts adds after ours so that both are measured together.

export const FINETUNE_CASES = Object.keys(FINETUNE_BACKBONES).map((b) => `finetune-${b}`);
export const FINETUNE_PYTORCH_CASES = FINETUNE_CASES.map((c) => `${c}-pytorch`);

/** The PyTorch side's command line (after the interpreter) for its case name. */
export function pytorchFinetuneArgs(benchDir: string, name: string, batch: number, runs: number, threads: number): string[] {
  const backbone = name.replace(/^finetune-|-pytorch$/g, '');
  const script = PYTORCH_SCRIPT[backbone] as string;
  const which = script === 'pytorch_finetune.py' ? ['--backbone', backbone] : [];
  return [join(benchDir, script), ...which, '--batch', String(batch), '--runs', String(runs), '--threads', String(threads)];
}
