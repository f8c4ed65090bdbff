// The hard-negative generation baselines: a registry (name → factory with typed options) and the
// compatibility rules between a generation method and a base loss, each refusal with a reason a
// person can act on. 'gca-hng' is listed for the rules only (it is built in src/train/).
import { z } from 'zod';
import type { Random } from '../engine/random.ts';
import { type MetricLoss, isPairLoss, isProxyLoss } from '../losses/metric/base.ts';
import { lossInfo } from '../losses/metric/index.ts';
import type { StateDict } from '../models/state_dict.ts';
import { type GeneratorContext, type HardNegativeGenerator, type LossRequirement, type Objective, tidyObjective } from './common.ts';
import { DAML_LITE_DEFAULTS, DamlLite, type DamlLiteOptions } from './daml_lite.ts';
import { EMBEDDING_EXPANSION_DEFAULTS, EmbeddingExpansion, type EmbeddingExpansionOptions } from './embedding_expansion.ts';
import { HDML_LITE_DEFAULTS, HdmlLite, type HdmlLiteOptions } from './hdml_lite.ts';
import { PROXY_SYNTHESIS_DEFAULTS, ProxySynthesis, type ProxySynthesisOptions } from './proxy_synthesis.ts';
import { SYMMETRICAL_SYNTHESIS_DEFAULTS, SymmetricalSynthesis, type SymmetricalSynthesisOptions } from './symmetrical_synthesis.ts';

export type { GeneratorContext, HardNegativeGenerator, LossRequirement, Objective };
export { DamlLite, EmbeddingExpansion, HdmlLite, ProxySynthesis, SymmetricalSynthesis };
export type { DamlLiteOptions, EmbeddingExpansionOptions, HdmlLiteOptions, ProxySynthesisOptions, SymmetricalSynthesisOptions };
export { HDML_INITIAL_J, hdmlCandidates, hdmlFactor, hdmlMatrix } from './hdml_lite.ts';
export { HPHN_MARGIN, embeddingExpansionMatrix, expandEmbeddings } from './embedding_expansion.ts';
export { reflectAboutAxis, symmetricPoints, symmetricalSynthesisMatrix, symmetricalSynthesisNpairMatrix } from './symmetrical_synthesis.ts';
export { proxySynthesis, sampleBeta, sampleGamma } from './proxy_synthesis.ts';
export { damlGenerate, damlGeneratorLoss, initDamlGenerator } from './daml_lite.ts';
export { mineGroups, nextSameClass, pairWithinClass, selectRows, tidyObjective } from './common.ts';

/** The baseline "generator": the base loss on the real batch. */
export class NoGeneration implements HardNegativeGenerator {
  readonly name = 'none';
  readonly requires = 'any';
  readonly parameterPrefixes: readonly string[] = [];
  objective(loss: MetricLoss, ctx: GeneratorContext): Objective {
    return tidyObjective(() => {
      const total = loss.compute(ctx.embeddings, ctx.labels);
      return { total, terms: { J_m: total } };
    });
  }
}

// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export type NoOptions = {};

export interface GeneratorOptionsMap {
  none: NoOptions;
  'hdml-lite': HdmlLiteOptions;
  ee: EmbeddingExpansionOptions;
  symm: SymmetricalSynthesisOptions;
  ps: ProxySynthesisOptions;
  'daml-lite': DamlLiteOptions;
}

export type GeneratorName = keyof GeneratorOptionsMap;
/** Every method the comparison knows, GCA-HNG included. */
export type MethodName = GeneratorName | 'gca-hng';

export interface GeneratorInstanceMap {
  none: NoGeneration;
  'hdml-lite': HdmlLite;
  ee: EmbeddingExpansion;
  symm: SymmetricalSynthesis;
  ps: ProxySynthesis;
  'daml-lite': DamlLite;
}

/** What a generator with parameters needs (daml-lite). */
export interface GeneratorEnv {
  sd?: StateDict;
  embeddingSize?: number;
  /** Seeded stream for initialising parameters not in the StateDict yet. */
  rng?: Random;
}

export interface GeneratorInfo<N extends GeneratorName = GeneratorName> {
  readonly name: N;
  readonly requires: LossRequirement;
  readonly hasParameters: boolean;
  readonly description: string;
  readonly source: string;
  readonly defaults: Readonly<GeneratorOptionsMap[N]>;
  /** The options a configuration may set (`method.options`); unknown keys are refused; {} is the defaults. */
  readonly optionsSchema: z.ZodType<GeneratorOptionsMap[N]>;
  create(options: GeneratorOptionsMap[N] | undefined, env: GeneratorEnv): GeneratorInstanceMap[N];
}

const REGISTRY: { [N in GeneratorName]: GeneratorInfo<N> } = {
  none: {
    name: 'none',
    requires: 'any',
    hasParameters: false,
    defaults: {},
    optionsSchema: z.strictObject({}),
    description: 'no generation: the base loss on the real batch',
    source: '—',
    create: () => new NoGeneration(),
  },
  'hdml-lite': {
    name: 'hdml-lite',
    requires: 'pair',
    hasParameters: false,
    defaults: HDML_LITE_DEFAULTS,
    optionsSchema: z.strictObject({ alpha: z.number().nonnegative().optional(), synWeight: z.number().nonnegative().optional() }),
    description: "HDML's hardness-aware interpolation of negatives towards the anchor, without HDML's generator network and its losses",
    source: 'simplified from Zheng et al. CVPR 2019; wzzheng/HDML lib/HDML.py Pulling',
    create: (o) => new HdmlLite(o),
  },
  ee: {
    name: 'ee',
    requires: 'pair',
    hasParameters: false,
    defaults: EMBEDDING_EXPANSION_DEFAULTS,
    optionsSchema: z.strictObject({
      innerPoints: z.number().int().positive().optional(),
      l2Normalize: z.boolean().optional(),
      normalizeEmbeddings: z.boolean().optional(),
    }),
    description: 'internal points between same-class pairs, then hard negative pair mining',
    source: 'Ko & Gu CVPR 2020; clovaai/embedding-expansion',
    create: (o) => new EmbeddingExpansion(o),
  },
  symm: {
    name: 'symm',
    requires: 'pair',
    hasParameters: false,
    defaults: SYMMETRICAL_SYNTHESIS_DEFAULTS,
    optionsSchema: z.strictObject({ npairRule: z.enum(['official', 'paper']).optional() }),
    description: "symmetric points of same-class pairs about each other's axis, then hard negative pair mining",
    source: 'Gu & Ko AAAI 2020; clovaai/symmetrical-synthesis (symm_npair_loss with N-pair)',
    create: (o) => new SymmetricalSynthesis(o),
  },
  ps: {
    name: 'ps',
    requires: 'proxy',
    hasParameters: false,
    defaults: PROXY_SYNTHESIS_DEFAULTS,
    optionsSchema: z.strictObject({ alpha: z.number().positive().optional(), mu: z.number().nonnegative().optional() }),
    description: 'synthetic classes by mixing embeddings and their proxies with λ ~ Beta(α, α)',
    source: 'Gu, Ko & Kim AAAI 2021; navervision/proxy-synthesis',
    create: (o) => new ProxySynthesis(o),
  },
  'daml-lite': {
    name: 'daml-lite',
    requires: 'pair',
    hasParameters: true,
    defaults: DAML_LITE_DEFAULTS,
    // The StateDict prefix is a storage name, not a setting: not configurable here.
    optionsSchema: z.strictObject({
      lambda: z.number().nonnegative().optional(),
      lambda1: z.number().nonnegative().optional(),
      lambda2: z.number().nonnegative().optional(),
      alpha: z.number().optional(),
      hidden: z.array(z.number().int().positive()).optional(),
    }),
    description: "DAML's adversarial MLP generator of hard negatives, moved into the embedding space, without pre-training",
    source: "simplified from Duan et al. CVPR 2018 (no official code; weights as in GeDML's DAMLCollector)",
    create: (o, env) => {
      if (!env.sd || env.embeddingSize === undefined)
        throw new Error('daml-lite has parameters: give it a StateDict (sd) and embeddingSize (and an rng to initialise them)');
      return new DamlLite({ sd: env.sd, embeddingSize: env.embeddingSize, rng: env.rng }, o);
    },
  },
};

const ALIASES: Record<string, MethodName> = {
  baseline: 'none',
  embedding_expansion: 'ee',
  'embedding-expansion': 'ee',
  symmetrical_synthesis: 'symm',
  'symmetrical-synthesis': 'symm',
  symmetric: 'symm',
  proxy_synthesis: 'ps',
  'proxy-synthesis': 'ps',
  gca_hng: 'gca-hng',
  gcahng: 'gca-hng',
};

export const GENERATOR_NAMES: readonly GeneratorName[] = Object.keys(REGISTRY) as GeneratorName[];
export const METHOD_NAMES: readonly MethodName[] = [...GENERATOR_NAMES, 'gca-hng'];

/**
 * Names of the authors' methods that hardneg does not implement as published; the simplified
 * versions carry a -lite suffix and a request for the full name says so instead of substituting.
 */
export const NOT_IMPLEMENTED: Readonly<Record<string, string>> = {
  hdml: "the official HDML (its generator network, J_recon, J_soft and the e^(−β/J_gen) weighting) is not implemented; 'hdml-lite' is its interpolation alone (docs/losses_and_baselines.md)",
  daml: "DAML as published (a generator on backbone features, after metric pre-training) is not implemented; 'daml-lite' is a simplified version in the embedding space (docs/losses_and_baselines.md)",
};

export function resolveMethodName(name: string): MethodName {
  const key = name.trim().toLowerCase();
  if ((METHOD_NAMES as readonly string[]).includes(key)) return key as MethodName;
  const alias = ALIASES[key];
  if (alias) return alias;
  const missing = NOT_IMPLEMENTED[key];
  if (missing) throw new Error(`method '${name}': ${missing}`);
  throw new Error(`unknown method '${name}': expected one of ${METHOD_NAMES.join(', ')}`);
}

export function generatorInfo(name: string): GeneratorInfo {
  const m = resolveMethodName(name);
  if (m === 'gca-hng') throw new Error('gca-hng is not a registry generator: it is trained by the GCA-HNG trainer (src/train/)');
  return REGISTRY[m] as unknown as GeneratorInfo;
}

export function createGenerator<N extends GeneratorName>(name: N, options?: GeneratorOptionsMap[N], env?: GeneratorEnv): GeneratorInstanceMap[N];
export function createGenerator(name: string, options?: object, env?: GeneratorEnv): HardNegativeGenerator;
export function createGenerator(name: string, options?: object, env: GeneratorEnv = {}): HardNegativeGenerator {
  return generatorInfo(name).create(options as never, env);
}

/**
 * The base losses GCA-HNG runs on: N-pair (official); Proxy-Anchor and Multi-Similarity with
 * hardneg's own J_syn (docs/algorithm.md §6.9.1), not a formulation from the paper or its code.
 */
export const GCA_HNG_LOSSES: readonly string[] = ['npair', 'proxy-anchor', 'multi-similarity'];

/** What is known of the batch, for the rules that depend on it. */
export interface BatchShape {
  /** Samples per class in a batch (K of the P×K layout). */
  samplesPerClass?: number;
  /** Classes per batch (P). */
  classesPerBatch?: number;
}

export type Compatibility = { ok: true } | { ok: false; reason: string };

/**
 * Whether `method` can run with base loss `loss` (and the batch shape, when given). Refusals say why:
 *  - none: any loss.
 *  - hdml-lite, daml-lite: pair-based losses only (they replace an anchor's negatives in its pairs; a proxy
 *    loss has no anchor–negative pairs); ≥ 2 samples per class (each anchor needs a positive).
 *  - ee, symm: pair-based losses only (their hard negative pair mining works on sample pairs);
 *    an even number of samples per class (they pair samples within a class).
 *  - ps: proxy-based losses only (it mixes class proxies); ≥ 2 classes per batch (it mixes
 *    neighbouring rows of different classes).
 *  - gca-hng: npair, proxy-anchor or multi-similarity; ≥ 2 samples and ≥ 2 classes per batch.
 */
export function checkCompatibility(method: string, loss: string, batch: BatchShape = {}): Compatibility {
  let m: MethodName;
  let info;
  try {
    m = resolveMethodName(method);
    info = lossInfo(loss);
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
  const K = batch.samplesPerClass;
  const P = batch.classesPerBatch;
  const lossKind = info.isPairBased ? 'pair-based' : 'proxy-based';
  if (m === 'gca-hng') {
    if (!GCA_HNG_LOSSES.includes(info.name))
      return { ok: false, reason: `GCA-HNG is built on ${GCA_HNG_LOSSES.join(', ')}; '${info.name}' is not one of them` };
    if (K !== undefined && K < 2) return { ok: false, reason: 'GCA-HNG needs at least 2 samples per class (its positives come from the next chunk)' };
    if (P !== undefined && P < 2) return { ok: false, reason: 'GCA-HNG needs at least 2 classes per batch (its negatives come from the other classes)' };
    return { ok: true };
  }
  const g = REGISTRY[m];
  if (g.requires === 'pair' && !info.isPairBased) {
    const why =
      m === 'ee' || m === 'symm'
        ? "its hard negative pair mining selects the hardest pair between two classes' synthetic and real samples"
        : "it replaces each anchor's negatives inside its anchor–negative pairs";
    return {
      ok: false,
      reason: `${m} needs a pair-based loss: ${why}, and '${info.name}' is ${lossKind} (it compares samples with class proxies, not with each other)`,
    };
  }
  if (g.requires === 'proxy' && !info.isProxyBased) {
    return {
      ok: false,
      reason: `ps (Proxy Synthesis) needs a proxy-based loss: it synthesises classes by mixing class proxies, and '${info.name}' is ${lossKind} (it has no proxies)`,
    };
  }
  if ((m === 'ee' || m === 'symm') && K !== undefined && K % 2 !== 0) {
    return { ok: false, reason: `${m} pairs the samples of each class, so it needs an even number of samples per class; the batch has ${K}` };
  }
  if ((m === 'hdml-lite' || m === 'daml-lite') && K !== undefined && K < 2) {
    return { ok: false, reason: `${m} needs at least 2 samples per class (each anchor needs a positive)` };
  }
  if (m === 'ps' && P !== undefined && P < 2) {
    return { ok: false, reason: 'ps mixes each sample with the previous row, which must be of another class: it needs at least 2 classes per batch' };
  }
  if (info.needsChunkLayout && K !== undefined && K < 2) {
    return { ok: false, reason: 'the N-pair loss needs at least 2 samples per class' };
  }
  return { ok: true };
}

/** Throws the refusal reason when the combination makes no sense. */
export function assertCompatible(method: string, loss: string, batch?: BatchShape): void {
  const c = checkCompatibility(method, loss, batch);
  if (!c.ok) throw new Error(`${method} + ${loss}: ${c.reason}`);
}

/** The method's objective on one batch, after checking the method against the loss instance. */
export function generatorObjective(gen: HardNegativeGenerator, loss: MetricLoss, ctx: GeneratorContext): Objective {
  if (gen.requires === 'pair' && !isPairLoss(loss)) throw new Error(`${gen.name} needs a pair-based loss, got '${loss.name}'`);
  if (gen.requires === 'proxy' && !isProxyLoss(loss)) throw new Error(`${gen.name} needs a proxy-based loss, got '${loss.name}'`);
  return gen.objective(loss, ctx);
}
