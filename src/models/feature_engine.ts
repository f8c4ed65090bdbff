// The engines of frozen-feature extraction (BackboneFeatureModel, src/models/features.ts), apart
// from it so that the configuration schema can name them without loading tfjs or onnxruntime.

/** What computes the features: onnxruntime-node on an in-memory ONNX export (default), or tfjs. */
export const FEATURE_ENGINES = ['onnxruntime', 'tfjs'] as const;
export type FeatureEngine = (typeof FEATURE_ENGINES)[number];
/** onnxruntime: measured faster than our own kernels on ResNet-50 and GoogLeNet (docs/backends.md). */
export const DEFAULT_FEATURE_ENGINE: FeatureEngine = 'onnxruntime';
