// Times frozen-feature extraction (inference only) of `images` images of 224 px by one of four
// arms, each in a process of its own (bench/run.ts spawns them):
//   hardneg      hardneg's own ResNet-50/GoogLeNet in evaluation mode on the tfjs engine
//                (BackboneFeatureModel with engine 'tfjs') on the backend of the run;
//   dnnl         the same with HARDNEG_DNNL=1 (oneDNN convolutions, the default; the hardneg arm sets HARDNEG_DNNL=0), set by run.ts;
//   default      BackboneFeatureModel as `hardneg features` and model.frozen open it: its default
//                engine (onnxruntime on hardneg's own in-memory ONNX export, or tfjs where
//                onnxruntime-node cannot be loaded; the result's `engine` says which ran);
//   onnxruntime  the torchvision twin exported to ONNX (bench/export_features_onnx.py) in
//                onnxruntime-node (OnnxImageModel, what model.backbone=onnx uses).
// Both sides take the same NHWC batches through ImageFeatureModel.run, so each pays for its own
// layout change (tf.transpose inside the graph, or the host transpose before onnxruntime). With
// the exported .pth present, hardneg loads the very weights inside the .onnx, and each arm reports
// a checksum of its features so that run.ts can say whether the two computed the same thing.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Random, STREAMS } from '../src/engine/random.ts';
import { BackboneFeatureModel, type FeatureEngine } from '../src/models/features.ts';
import { OnnxImageModel, type ImageFeatureModel } from '../src/models/onnx_backbone.ts';
import { type BenchResult, timeRuns } from './timing.ts';

export const FEATURES_BACKBONES = ['resnet50', 'googlenet'] as const;
export const FEATURES_CASES = FEATURES_BACKBONES.map((b) => `features-${b}`);
export const FEATURES_ARMS = ['hardneg', 'dnnl', 'default', 'onnxruntime'] as const;
export type FeaturesArm = (typeof FEATURES_ARMS)[number];
export const FEATURES_DEFAULT_IMAGES = 32;
/** Images per forward: `hardneg features`' default batch size. */
export const FEATURES_BATCH = 16;
const SIDE = 224;

/** Where bench/export_features_onnx.py writes (git-ignored). */
export function featuresFiles(benchDir: string, backbone: string): { onnx: string; pth: string } {
  return { onnx: join(benchDir, 'out', `features-${backbone}.onnx`), pth: join(benchDir, 'out', `features-${backbone}.pth`) };
}

export const FEATURES_EXPORT_HINT = '/usr/bin/python3 bench/export_features_onnx.py (needs python3-torch and python3-torchvision)';

export interface FeaturesResult extends BenchResult {
  arm: FeaturesArm;
  images: number;
  batch: number;
  ms_per_image: number;
  width: number;
  /** What computed the features: tfjs (hardneg, dnnl), the default engine as it loaded (default), or onnxruntime. */
  engine: FeatureEngine;
  /** Which weights: the exported .pth (same as the .onnx) or deterministic random ones. */
  weights: 'exported' | 'random';
  /** Σ features and Σ|features| of the last run, to compare arms that share weights. */
  sum: number;
  abs_sum: number;
}

async function openArm(
  arm: FeaturesArm,
  backbone: string,
  benchDir: string,
  threads: number,
): Promise<{ model: ImageFeatureModel; weights: 'exported' | 'random'; engine: FeatureEngine }> {
  const files = featuresFiles(benchDir, backbone);
  if (arm === 'onnxruntime') {
    if (!existsSync(files.onnx)) throw new Error(`${files.onnx} is missing; make it with ${FEATURES_EXPORT_HINT}`);
    return { model: await OnnxImageModel.open(files.onnx, { threads }), weights: 'exported', engine: 'onnxruntime' };
  }
  // The default arm leaves the engine to BackboneFeatureModel, as the command line does.
  const opts = arm === 'default' ? { threads } : { engine: 'tfjs' as const, threads };
  const model = existsSync(files.pth)
    ? await BackboneFeatureModel.open(backbone, { weights: files.pth, ...opts })
    : // Without the export, the timing still holds: the work does not depend on the weights' values.
      await BackboneFeatureModel.random(backbone, 0, opts);
  return { model, weights: existsSync(files.pth) ? 'exported' : 'random', engine: model.engine };
}

export async function benchFeatures(
  arm: FeaturesArm,
  backbone: string,
  images: number,
  runs: number,
  benchDir: string,
  threads: number,
): Promise<FeaturesResult> {
  const { model, weights, engine } = await openArm(arm, backbone, benchDir, threads);
  // The same deterministic pixels for every arm: normalised-image-like values in about [-2, 2].
  const rng = new Random(0, STREAMS.benchIteration);
  const pixels = new Float32Array(images * SIDE * SIDE * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = rng.random() * 4 - 2;
  const batches: Array<{ pixels: Float32Array; shape: [number, number, number, number] }> = [];
  for (let start = 0; start < images; start += FEATURES_BATCH) {
    const n = Math.min(FEATURES_BATCH, images - start);
    batches.push({ pixels: pixels.subarray(start * SIDE * SIDE * 3, (start + n) * SIDE * SIDE * 3), shape: [n, SIDE, SIDE, 3] });
  }
  let sum = 0;
  let absSum = 0;
  let width = 0;
  try {
    const result = await timeRuns(`features-${backbone}`, runs, async () => {
      sum = 0;
      absSum = 0;
      for (const batch of batches) {
        const f = await model.run(batch);
        width = f.width;
        for (const v of f.features) {
          sum += v;
          absSum += Math.abs(v);
        }
      }
    });
    return {
      ...result,
      arm,
      images,
      batch: FEATURES_BATCH,
      ms_per_image: Math.round((result.median_ms / images) * 100) / 100,
      width,
      engine,
      weights,
      sum,
      abs_sum: absSum,
    };
  } finally {
    await model.close();
  }
}
