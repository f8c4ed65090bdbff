// The training configuration: typed, validated where it enters (a YAML file, --set key=value),
// unknown keys refused by name. Official config.py names are given in the comments. The accepted
// names of datasets, backbones, methods and base losses come from their registries
// (src/data/listing.ts, src/models/backbones.ts, src/gca_hng/variants.ts + src/baselines/index.ts,
// src/losses/metric/index.ts); this module only orders them.
//
// Defaults that differ from the official config.py (whose values the official YAMLs, mirrored in
// configs/presets/, override in turn; the defaults here are for the embedded 28×28 dataset):
//   key                     here          config.py
//   train.classesPerBatch   5             TRAIN.NUM_SAMPLED_CLASSES 40
//   train.samplesPerClass   4             TRAIN.NUM_PER_CLASS 2
//   train.epochs            3             TRAIN.EPOCHES 300
//   train.evalEvery         1             TEST.EVAL_EPOCH 10
//   model.backbone          small-cnn     MODEL.BACKBONE '' (Googlenet, Resnet50 or DINO)
//   model.weights           null          MODEL.PRETRAINED True (ImageNet weights)
//   model.pooling           true          MODEL.POOLING False
//   model.embeddingSize     64            MODEL.EMBEDDING_SIZE 512
//   model.gnnLayers         1             MODEL.GNN_LAYER 2
//   model.attentionHeads    2             MODEL.ATT_HEAD 8
//   loss.alpha              4             LOSS.ALPHA 90
//   loss.beta               30            LOSS.BETA 10000
//   loss.softmaxFactor      20            LOSS.SOFTMAX_FACTOR 10000
//   loss.dotWeight          10            LOSS.DOT_WEIGHT 20
//   solver.baseLr           1e-3          SOLVER.BASE_LR 0.1
//   solver.weightDecay      1e-4          SOLVER.WEIGHT_DECAY 0
//   solver.metricGamma      0.5           SOLVER.METRIC_GAMMA 0.1
//   solver.metricDecaySteps 5             SOLVER.METRIC_DECAY_STEPS 10
//   solver.gradClipValue    10            SOLVER.GRAD_L2_CLIP 0.35
//   solver.bnFreeze         true          SOLVER.BN_FREEZE False
//   solver.warmUpEpochs     0             SOLVER.WARM_UP_EPOCH 1
//   dataset.flip            false         always (the training transform's RandomHorizontalFlip)
// The loss weights, weightDecay, metricGamma, gradClipValue and bnFreeze are those of the official
// G_CUB200.yml. The same as config.py: model.normalize (MODEL.NORM False), loss.divWeight (10),
// solver.embeddingRatio (1), gnnLr (3e-4), classifierLr (1e-3), lrPolicy ('step'), gradClip (True).
// Keys with no config.py counterpart default to the official code's fixed behaviour (loss.simMask
// 'reference', loss.edgeDropout 0.1, loss.hardness 'official', solver.classifierWeightDecay 0.01,
// solver.bnAffine 'official';
// solver.proxyLrMultiplier 100 is Proxy-Anchor's official), except eval.semantics: 'textbook' here,
// 'official' in the official evaluation (and the presets).
import { z } from 'zod';
import { GENERATOR_NAMES, NOT_IMPLEMENTED, generatorInfo } from '../baselines/index.ts';
import { PAPER_BENCHMARK_NAMES } from '../data/listing.ts';
import { GCA_METHODS, isGcaMethod } from '../gca_hng/variants.ts';
import { LOSS_NAMES, type LossName, lossInfo } from '../losses/metric/index.ts';
import { DEFAULT_BACKBONE_CHUNK } from '../nn/chunked_backbone.ts';
import { BACKBONE_NAMES, backboneSpec, backbonesTaking } from '../models/backbones.ts';
import { DEFAULT_FEATURE_ENGINE, FEATURE_ENGINES } from '../models/feature_engine.ts';
import { nameList } from '../text.ts';
import { BN_AFFINE_POLICIES } from './freezing.ts';
import { UserError } from '../errors.ts';

/** The official base loss, listed first. */
const OFFICIAL_LOSS: LossName = 'npair';

/** dataset.name: the embedded dataset, an image folder, then the paper's benchmarks. */
export const DATASET_NAMES = ['fashion-mnist', 'folder', ...PAPER_BENCHMARK_NAMES] as const;
/** train.method: GCA-HNG and its ablations, then the baseline registry's generators ('none' first). */
export const TRAIN_METHODS = [...GCA_METHODS, ...GENERATOR_NAMES];
/** loss.base: the loss registry's names, the official one first. */
export const BASE_LOSSES = [OFFICIAL_LOSS, ...LOSS_NAMES.filter((n) => n !== OFFICIAL_LOSS)];

const positiveInt = z.number().int().positive();
const nonNegative = z.number().nonnegative();
/** A registry entry's options, checked against that entry's own schema once the name is known. */
const registryOptions = z.record(z.string(), z.unknown()).default({});

const ConfigShape = z.strictObject({
  dataset: z
    .strictObject({
      /**
       * 'fashion-mnist' (embedded), 'folder' (DIR/train/<class>/*, DIR/test/<class>/*), or a benchmark
       * as distributed: cub200, cars196, sop, inshop (README, "Benchmark datasets").
       */
      name: z.enum(DATASET_NAMES).default('fashion-mnist'),
      root: z.string().nullable().default(null),
      /** Side of the square images fed to the small CNN (folder datasets are resized to it). */
      imageSize: positiveInt.default(28),
      /** Random horizontal flips in training (seeded); the paper's pipeline always flips. */
      flip: z.boolean().default(false),
      /** The folder dataset: leave out images that cannot be decoded (with a warning) instead of stopping. */
      skipCorrupt: z.boolean().default(false),
    })
    .prefault({}),
  model: z
    .strictObject({
      /**
       * A name of the backbone registry (src/models/backbones.ts, where each says how images reach it):
       * small-cnn (from scratch, small images); resnet50 / googlenet (torchvision layouts) and
       * dino-vits16 (DINO's ViT-S/16), the paper's 224-px pipeline, weights from model.weights;
       * onnx (frozen-feature mode).
       */
      backbone: z.enum(BACKBONE_NAMES).default('small-cnn'),
      /**
       * Backbone weights: a .pth (either torch.save format) or .safetensors file, or a name of
       * 'hardneg weights list' (docs/backbones.md); null trains the backbone from scratch.
       */
      weights: z.string().nullable().default(null),
      /**
       * Frozen-feature mode with a pretrained backbone (resnet50, googlenet, dino-vits16): its eval-mode features
       * of the evaluation transform (and of mirrored images, for flips) are extracted once with
       * model.weights and cached in model.featureCache; only the embedding head and GCA-HNG train.
       * onnx is always frozen; small-cnn cannot be (it has no pretrained weights).
       */
      frozen: z.boolean().default(false),
      /** The ONNX image model of frozen-feature mode. */
      onnx: z.string().nullable().default(null),
      /** Image side the ONNX model takes (evaluation transform: Resize ⌊side·256/224⌉ + CenterCrop side). */
      onnxInputSize: positiveInt.default(224),
      /** Where frozen features are cached (keyed by backbone, model or weights file, dataset listing and transform). */
      featureCache: z.string().default('runs/feature-cache'),
      /**
       * What extracts model.frozen's features: onnxruntime (the backbone exported to ONNX in memory,
       * measured faster; tfjs where onnxruntime-node cannot be loaded) or tfjs. Not part of the
       * cache key: both give the same features (relative L2 ≤ 1e-4).
       */
      featureEngine: z.enum(FEATURE_ENGINES).default(DEFAULT_FEATURE_ENGINE),
      /** MODEL.POOLING (ResNet-50): global average + max pooling; false: average only. */
      pooling: z.boolean().default(true),
      /**
       * Images per chunk of a fine-tuned backbone whose training forward is per sample (resnet50,
       * googlenet under solver.bnFreeze): a larger batch goes through it in chunks and its gradient
       * is summed over them — the same gradient, one more forward pass, memory for the chunk only
       * (docs/backbones.md). No config.py counterpart (PyTorch keeps the whole batch).
       */
      backboneChunk: positiveInt.default(DEFAULT_BACKBONE_CHUNK),
      /** MODEL.EMBEDDING_SIZE */
      embeddingSize: positiveInt.default(64),
      /** MODEL.GNN_LAYER */
      gnnLayers: positiveInt.default(1),
      /** MODEL.ATT_HEAD */
      attentionHeads: positiveInt.default(2),
      /** MODEL.NORM */
      normalize: z.boolean().default(false),
    })
    .prefault({}),
  train: z
    .strictObject({
      /**
       * gca-hng, its ablations (docs/ablations.md), none (the base loss alone), or a baseline
       * generator: hdml-lite, ee, symm, ps, daml-lite (docs/losses_and_baselines.md).
       */
      method: z.enum(TRAIN_METHODS).default('gca-hng'),
      /** TRAIN.NUM_SAMPLED_CLASSES (P) */
      classesPerBatch: positiveInt.min(2).default(5),
      /** TRAIN.NUM_PER_CLASS (K) */
      samplesPerClass: positiveInt.min(2).default(4),
      /** TRAIN.EPOCHES */
      epochs: positiveInt.default(3),
      seed: z.number().int().nonnegative().default(0),
      /** TEST.EVAL_EPOCH */
      evalEvery: positiveInt.default(1),
      /** Write a resumable checkpoint every this many iterations (and at every epoch end). */
      checkpointEvery: positiveInt.default(25),
      /** Cap on iterations per epoch (0: the sampler's ⌈N/B⌉ − 1). */
      maxIterationsPerEpoch: z.number().int().nonnegative().default(0),
    })
    .prefault({}),
  loss: z
    .strictObject({
      /**
       * The base metric loss (official: npair). GCA-HNG also runs on proxy-anchor and
       * multi-similarity, with hardneg's own J_syn (docs/algorithm.md §6.9.1, not the paper's).
       */
      base: z.enum(BASE_LOSSES).default(OFFICIAL_LOSS),
      /** LOSS.ALPHA */
      alpha: nonNegative.default(4),
      /** LOSS.BETA */
      beta: nonNegative.default(30),
      /** LOSS.SOFTMAX_FACTOR */
      softmaxFactor: nonNegative.default(20),
      /** LOSS.DOT_WEIGHT */
      dotWeight: nonNegative.default(10),
      /** LOSS.DIV_WEIGHT */
      divWeight: nonNegative.default(10),
      /** Rows zeroed in J_sim: the official positions (docs/algorithm.md, QUIRK 1) or the same-class rows. */
      simMask: z.enum(['reference', 'same-class']).default('reference'),
      edgeDropout: z.number().min(0).max(0.99).default(0.1),
      /** 'official': φ = exp(−α/J_avg); 'adaptive': α is clamped each epoch so that φ stays in phiRange. */
      hardness: z.enum(['official', 'adaptive']).default('official'),
      phiRange: z.tuple([z.number().gt(0).lt(1), z.number().gt(0).lt(1)]).default([0.3, 0.7]),
      /**
       * Options of the base loss, as its registry entry names them (docs/losses_and_baselines.md),
       * e.g. {margin: 0.2} for triplet, {softmaxScale: 10} for proxy-nca, {l2Reg: 0.002} for npair;
       * {} leaves every default. Not with GCA-HNG on N-pair, whose J_m is the official one.
       */
      options: registryOptions,
    })
    .prefault({}),
  method: z
    .strictObject({
      /**
       * Options of a baseline generator (train.method), as its registry entry names them, e.g.
       * {alpha: 90} for hdml-lite, {innerPoints: 2} for ee, {npairRule: 'paper'} for symm; {}
       * leaves every default. GCA-HNG's settings are the loss.* keys.
       */
      options: registryOptions,
    })
    .prefault({}),
  solver: z
    .strictObject({
      /** SOLVER.BASE_LR */
      baseLr: z.number().positive().default(1e-3),
      /** SOLVER.EMBEDDING_RATIO */
      embeddingRatio: z.number().positive().default(1),
      /** SOLVER.GNN_LR */
      gnnLr: z.number().positive().default(3e-4),
      /** SOLVER.CLASSIFIER_LR */
      classifierLr: z.number().positive().default(1e-3),
      /** SOLVER.WEIGHT_DECAY */
      weightDecay: nonNegative.default(1e-4),
      /** AdamW default of the official softmax-classifier optimizer (not configurable there). */
      classifierWeightDecay: nonNegative.default(0.01),
      /** Learning-rate multiplier of the loss's proxies (Proxy-Anchor's official ×100). */
      proxyLrMultiplier: z.number().positive().default(100),
      /** SOLVER.LR_POLICY for the metric model; the GNN always follows a cosine over the epochs. */
      lrPolicy: z.enum(['step', 'cos', 'exp', 'none']).default('step'),
      /** SOLVER.METRIC_GAMMA */
      metricGamma: z.number().positive().default(0.5),
      /** SOLVER.METRIC_DECAY_STEPS */
      metricDecaySteps: positiveInt.default(5),
      /** SOLVER.GRAD_CLIP */
      gradClip: z.boolean().default(true),
      /** SOLVER.GRAD_L2_CLIP (element-wise clip value, despite the name) */
      gradClipValue: z.number().positive().default(10),
      /** SOLVER.BN_FREEZE: BatchNorm2d layers of a torchvision backbone use and keep their running statistics. */
      bnFreeze: z.boolean().default(true),
      /** SOLVER.WARM_UP_EPOCH: epochs with the backbone frozen. */
      warmUpEpochs: z.number().int().nonnegative().default(0),
      /**
       * The BatchNorm2d weights and biases of a torchvision backbone under bnFreeze (QUIRK 6;
       * src/train/freezing.ts). 'official': ResNet-50's are frozen until the warm-up ends (for the
       * whole run when warmUpEpochs is 0), as the official constructor and warm-up loop leave them;
       * GoogLeNet's train with the backbone. 'frozen' (the correction): frozen for the whole run
       * in either backbone. 'trained': they train whenever the backbone does.
       */
      bnAffine: z.enum(BN_AFFINE_POLICIES).default('official'),
    })
    .prefault({}),
  eval: z
    .strictObject({
      ks: z.array(positiveInt).nonempty().default([1, 2, 4, 8]),
      semantics: z.enum(['textbook', 'official']).default('textbook'),
      nmi: z.boolean().default(true),
    })
    .prefault({}),
  backend: z.enum(['auto', 'wasm', 'cpu', 'tensorflow', 'webgpu']).default('auto'),
});

/** Adds an issue for every way `options` does not fit `schema`, under `path`, naming the key. */
function checkOptions(ctx: z.core.$RefinementCtx, path: string[], owner: string, schema: z.ZodType, options: Record<string, unknown>): void {
  const r = schema.safeParse(options);
  if (r.success) return;
  for (const issue of r.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      const known = Object.keys((schema as z.ZodObject).shape ?? {});
      for (const key of issue.keys)
        ctx.addIssue({
          code: 'custom',
          path: [...path, key],
          message: `${owner} has no option '${key}'${known.length > 0 ? ` (its options: ${known.join(', ')})` : ' (it takes none)'}`,
        });
    } else {
      ctx.addIssue({ code: 'custom', path: [...path, ...issue.path.map(String)], message: issue.message });
    }
  }
}

export const TrainConfigSchema = ConfigShape.superRefine((c, ctx) => {
  const backbone = backboneSpec(c.model.backbone);
  if (c.model.frozen && backbone.input === 'small-images') {
    ctx.addIssue({
      code: 'custom',
      path: ['model', 'frozen'],
      message: `${c.model.backbone} has no pretrained weights to freeze (it trains from scratch); frozen features come from ${nameList([...backbonesTaking(['paper-pipeline']), ...backbonesTaking(['frozen-features'])])}`,
    });
  }
  if (c.model.frozen && backbone.input === 'paper-pipeline' && c.model.weights === null) {
    ctx.addIssue({
      code: 'custom',
      path: ['model', 'frozen'],
      message: `frozen features of random weights carry nothing to learn from; set model.weights (a .pth or .safetensors file, or a name of 'hardneg weights list')`,
    });
  }
  const gca = isGcaMethod(c.train.method);
  if (gca && c.loss.base === OFFICIAL_LOSS && Object.keys(c.loss.options).length > 0) {
    ctx.addIssue({
      code: 'custom',
      path: ['loss', 'options'],
      message: `${c.train.method} on npair uses the official N-pair J_m with its fixed constants (docs/algorithm.md §6.1); loss options do not apply`,
    });
  } else {
    checkOptions(ctx, ['loss', 'options'], `loss ${c.loss.base}`, lossInfo(c.loss.base).optionsSchema, c.loss.options);
  }
  if (gca) {
    if (Object.keys(c.method.options).length > 0)
      ctx.addIssue({ code: 'custom', path: ['method', 'options'], message: `${c.train.method} takes no method options (its settings are the loss.* keys)` });
  } else {
    checkOptions(ctx, ['method', 'options'], `method ${c.train.method}`, generatorInfo(c.train.method).optionsSchema, c.method.options);
  }
});

export type TrainConfig = z.infer<typeof TrainConfigSchema>;

/** A configuration the schema refuses (a user's mistake: exit 2, one line naming the key). */
export class ConfigError extends UserError {}

function describe(issue: z.core.$ZodIssue): string {
  const key = issue.path.join('.');
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => (key ? `${key}.${k}` : k));
    return `unknown configuration key${keys.length > 1 ? 's' : ''} ${keys.map((k) => `'${k}'`).join(', ')}`;
  }
  return `'${key}': ${issue.message}`;
}

export function parseConfig(raw: unknown, source: string): TrainConfig {
  // The authors' name of a method implemented only simplified: say so rather than list the names.
  const method = (raw as { train?: { method?: unknown } } | null)?.train?.method;
  if (typeof method === 'string' && NOT_IMPLEMENTED[method]) throw new ConfigError(`${source}: 'train.method': ${NOT_IMPLEMENTED[method]}`);
  const r = TrainConfigSchema.safeParse(raw ?? {});
  if (!r.success) throw new ConfigError(`${source}: ${r.error.issues.map(describe).join('; ')}`);
  return r.data;
}

/** Applies `a.b.c=value` overrides (values parsed as JSON when they can be, else as strings). */
export function applyOverrides(raw: Record<string, unknown>, overrides: readonly string[]): Record<string, unknown> {
  const out = structuredClone(raw);
  for (const o of overrides) {
    const eq = o.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--set ${o}: expected key=value, e.g. train.epochs=3`);
    const path = o.slice(0, eq).split('.');
    const text = o.slice(eq + 1);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = text;
    }
    let node = out as Record<string, unknown>;
    for (const key of path.slice(0, -1)) {
      if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    node[path[path.length - 1] as string] = value;
  }
  return out;
}
