// A finished (or interrupted) run as a model to use: its configuration, its dataset opened as the
// run saw it, and the metric model (backbone → BatchNorm1d → Linear) with the run's weights.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { initBackend } from '../engine/backend.ts';
import { readSafetensors } from '../io/safetensors.ts';
import { createMetricModel, type MetricModel } from '../models/metric_model.ts';
import type { TrainConfig } from './config.ts';
import { openTrainingData, type TrainingData } from './datasets.ts';
import { RUN_FILES, readRunConfig } from './run_dir.ts';

export type RunWeights = 'final' | 'best';

export interface LoadedRun {
  config: TrainConfig;
  /** The run's train and test splits, opened with its configuration. */
  data: TrainingData;
  /** The embedding model in evaluation mode; dispose with `model.sd.dispose()`. */
  model: MetricModel;
}

export interface LoadRunOptions {
  /** model.safetensors (final, default) or best.safetensors (best Recall@1). */
  weights?: RunWeights;
  onWarning?: (message: string) => void;
}

export async function loadRun(runDir: string, opts: LoadRunOptions = {}): Promise<LoadedRun> {
  const which = opts.weights ?? 'final';
  const config = readRunConfig(runDir);
  const path = join(runDir, RUN_FILES[which]);
  if (!existsSync(path))
    throw new UserError(
      `${path}: not found (the run has no ${which} weights yet${which === 'final' ? '; an unfinished run has best.safetensors after its first evaluation' : ''})`,
    );
  await initBackend(config.backend);
  const data = await openTrainingData(config, opts.onWarning ?? (() => {}));
  const shape = {
    P: config.train.classesPerBatch,
    K: config.train.samplesPerClass,
    D: config.model.embeddingSize,
    H: config.model.attentionHeads,
    L: config.model.gnnLayers,
    C: data.train.numClasses,
  };
  // Only the embedding model: the generator and classifier are not needed to embed.
  const model = createMetricModel(data.backbone, shape, config.train.seed, config.model.normalize, false);
  const tensors = readSafetensors(path).tensors;
  try {
    for (const name of model.sd.names()) {
      const t = tensors.get(name);
      if (!t) throw new UserError(`${path}: no tensor '${name}' (not the weights of this run's model)`);
      model.sd.load(name, t);
    }
  } catch (err) {
    model.sd.dispose();
    if (err instanceof UserError) throw err;
    throw new UserError(`${path}: ${(err as Error).message}`);
  }
  return { config, data, model };
}
