// A finished (or interrupted) run as a model to use: its configuration, its dataset opened as the
// run saw it, and the metric model (backbone → BatchNorm1d → Linear) with the run's weights.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UserError, firstLine } from '../errors.ts';
import { BACKEND_NAMES, type BackendName, initBackend } from '../engine/backend.ts';
import { readSafetensors } from '../io/safetensors.ts';
import { createMetricModel, type MetricModel } from '../models/metric_model.ts';
import type { TrainConfig } from './config.ts';
import { openTrainingData, type TrainingData } from './datasets.ts';
import { RUN_FILES, readRunConfig } from './run_dir.ts';
import type { Backbone } from '../models/backbone.ts';
import { backboneSpec } from '../models/backbones.ts';
import { HEAD_BN } from '../models/embedding_head.ts';
import type { HostTensor } from '../io/host_tensor.ts';

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
  const path = runWeightsPath(runDir, which);
  await initBackend(config.backend);
  const data = await openTrainingData(config, opts.onWarning ?? (() => {}));
  const model = createRunModel(config, data.backbone, path, readSafetensors(path).tensors);
  return { config, data, model };
}

/** The run's weights file of `which` kind; a UserError when the run has none yet. */
export function runWeightsPath(runDir: string, which: RunWeights): string {
  const path = join(runDir, RUN_FILES[which]);
  if (!existsSync(path))
    throw new UserError(
      `${path}: not found (the run has no ${which} weights yet${which === 'final' ? '; an unfinished run has best.safetensors after its first evaluation' : ''})`,
    );
  return path;
}

/** The embedding model (backbone → BatchNorm1d → Linear) of `config` with the tensors of `path`. */
export function createRunModel(config: TrainConfig, backbone: Backbone, path: string, tensors: Map<string, HostTensor>): MetricModel {
  const shape = {
    P: config.train.classesPerBatch,
    K: config.train.samplesPerClass,
    D: config.model.embeddingSize,
    H: config.model.attentionHeads,
    L: config.model.gnnLayers,
    // Only the generator needs the class count, and it is not built here.
    C: 0,
  };
  // Only the embedding model: the generator and classifier are not needed to embed.
  const model = createMetricModel(backbone, shape, config.train.seed, config.model.normalize, false);
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
  return model;
}

/**
 * The run's backbone built from its configuration and weights alone, without opening its dataset
 * (the embedder runs on new images; the dataset may be gone). Small images: 1 channel for
 * fashion-mnist, 3 for folders; frozen features: the width the head was trained on.
 */
export function runBackbone(config: TrainConfig, path: string, tensors: Map<string, HostTensor>): Backbone {
  const spec = backboneSpec(config.model.backbone);
  if (config.model.frozen) {
    // Its head was trained on cached backbone features; embedding new images needs the feature
    // extraction of model.frozen here too, which the embedder does not do yet.
    throw new UserError(
      `${path}: a model.frozen run (${config.model.backbone} features) cannot be loaded for embedding yet; 'hardneg features' gives the backbone's features`,
    );
  }
  switch (spec.input) {
    case 'small-images':
      return spec.create({ channels: config.dataset.name === 'fashion-mnist' ? 1 : 3 });
    case 'paper-pipeline':
      return spec.create({ bnFreeze: config.solver.bnFreeze, pooling: config.model.pooling });
    case 'frozen-features': {
      const w = tensors.get(`${HEAD_BN}.weight`);
      if (!w || w.shape.length !== 1) throw new UserError(`${path}: no 1-D tensor '${HEAD_BN}.weight' (not the weights of a hardneg run)`);
      return spec.create({ width: w.shape[0] as number });
    }
  }
}

export interface RunModel {
  config: TrainConfig;
  /** The embedding model in evaluation mode; dispose with `model.sd.dispose()`. */
  model: MetricModel;
  /** The weights file read. */
  path: string;
  weights: RunWeights;
}

/** A run's embedding model without its dataset (what `hardneg embed` and `export` need). */
export async function loadRunModel(runDir: string, opts: { weights?: RunWeights; backend?: string } = {}): Promise<RunModel> {
  const which = opts.weights ?? 'final';
  const config = readRunConfig(runDir);
  const path = runWeightsPath(runDir, which);
  const backend = opts.backend ?? config.backend;
  if (!(BACKEND_NAMES as readonly string[]).includes(backend)) throw new UserError(`backend '${backend}': expected one of ${BACKEND_NAMES.join(', ')}`);
  await initBackend(backend as BackendName);
  let tensors: Map<string, HostTensor>;
  try {
    tensors = readSafetensors(path).tensors;
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`${path}: not readable safetensors (${firstLine(err)})`);
  }
  const model = createRunModel(config, runBackbone(config, path, tensors), path, tensors);
  return { config, model, path, weights: which };
}
