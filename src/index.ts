// hardneg's public API: what `import … from 'hardneg'` offers. Everything else under src/ is
// internal and may change between versions. The command line (src/cli) is a thin shell over these.

// Engine: the backend every computation runs on (wasm + native kernels by default).
export { initBackend, describeEngine, BACKEND_NAMES, type BackendName } from './engine/backend.ts';
export { Random } from './engine/random.ts';
export { UserError } from './errors.ts';
export { VERSION } from './version.ts';

// Training: a configuration from presets, files and overrides; a run directory; the trainer.
export { resolveConfig, trainRun, presetNames, type ConfigSources, type TrainRunCallbacks } from './train/setup.ts';
export { parseConfig, applyOverrides, type TrainConfig } from './train/config.ts';
export { startRunDir, readRunConfig, isRunDir, RUN_FILES } from './train/run_dir.ts';
export type { TrainResult } from './train/trainer.ts';

// A trained run: load it, embed with it, evaluate it.
export { loadRun, type LoadedRun, type LoadRunOptions, type RunWeights } from './train/load_run.ts';
export { embedSplit, evaluateModel, type EvalRecord } from './train/evaluate_model.ts';
export { embed, createMetricModel, type MetricModel } from './models/metric_model.ts';
export { StateDict } from './models/state_dict.ts';

// Pretrained backbones' eval-mode features of transformed images (hardneg features, model.frozen).
export {
  extractFeatures,
  BackboneFeatureModel,
  POOLINGS,
  type Pooling,
  FEATURE_ENGINES,
  type FeatureEngine,
  type BackboneFeatureOptions,
  type ExtractFeaturesOptions,
} from './models/features.ts';
export { PRETRAINED_BACKBONE_NAMES, BACKBONE_NAMES, type BackboneName } from './models/backbones.ts';
export type { ImageSplit } from './train/image_split.ts';

// GCA-HNG: graph → GNN → pull, the losses and objectives, one training iteration.
export { runGenerator, generationWeights, type GeneratorInput, type GeneratorOutput } from './gca_hng/generator.ts';
export { correlationGraph } from './gca_hng/correlation_graph.ts';
export { gnnForward } from './gca_hng/gnn/gnn_decoder.ts';
export type { GnnShape } from './gca_hng/gnn/config.ts';
export { generateHardNegatives, hardnessFactor, type HardNegatives } from './gca_hng/hard_negatives.ts';
export { diversityLoss, cosineTerm, simMask, labelMix } from './gca_hng/losses.ts';
export { metricObjective, softmaxObjective, generatorObjective, type PassContext } from './gca_hng/objectives.ts';
export { trainIteration } from './gca_hng/iteration.ts';
export { GCA_METHODS, variantOf, type GcaVariant } from './gca_hng/variants.ts';
export { defaultLossConfig, type GcaHngLossConfig } from './gca_hng/config.ts';
export { npairLoss, npairSyntheticLoss } from './losses/npair.ts';

// Baselines and base losses, by registry name.
export { createGenerator, checkCompatibility, GENERATOR_NAMES, type HardNegativeGenerator } from './baselines/index.ts';
export { createLoss, LOSS_NAMES, type MetricLoss } from './losses/metric/index.ts';

// Datasets: the embedded Fashion-MNIST subset, image folders, the four benchmarks as distributed,
// and the glyph dataset rendered from the installed fonts.
export { loadFashionMnist } from './data/fashion_mnist.ts';
export { openImageFolder, inspectImageFolder } from './data/image_folder.ts';
export { openBenchmark, inspectBenchmark, BENCHMARK_NAMES, type BenchmarkName } from './data/benchmarks.ts';
export { buildGlyphSet, type GlyphSetOptions, type GlyphSetManifest, type GlyphSetSummary } from './data/glyphs.ts';

// Metrics: Recall@K, MAP@R, R-Precision (textbook or official), In-Shop, NMI, exact k-NN.
export {
  embeddings,
  evaluateRetrieval,
  evaluateInShop,
  evaluateNmi,
  nearestNeighbours,
  normalizeRows,
  type Embeddings,
  type RetrievalMetrics,
  type RetrievalOptions,
  type Semantics,
} from './metrics/index.ts';

// Files: safetensors (PyTorch's state-dict names), PyTorch checkpoints (torch.save, read as data
// only, never executed) and .npy.
export { readSafetensors, writeSafetensors } from './io/safetensors.ts';
export { readTorchCheckpoint, TorchCheckpointError, type NonTensorEntry, type SelectOptions, type StateDictFile } from './io/pth.ts';
export { readStateDict } from './io/state_dict_file.ts';
export { readNpy, writeNpy } from './io/npy.ts';
export type { HostTensor, HostDType } from './io/host_tensor.ts';

// Inference: a trained run as an embedding function for new images (hardneg embed, export, index).
export {
  loadEmbedder,
  runPreprocessing,
  type Embedder,
  type EmbedderModelRef,
  type EmbedderPreprocessing,
  type EmbedOptions,
  type LoadEmbedderOptions,
} from './inference/embedder.ts';
export { loadRunModel, type RunModel } from './train/load_run.ts';
