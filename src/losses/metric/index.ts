// The metric-loss registry: name → factory with typed options, plus the two capability flags a
// caller (a trainer, the compare command, a generator's compatibility check) needs to refuse a
// combination that makes no sense. Pair-based losses compare batch samples with each other (and
// accept mined/synthetic pair matrices); proxy-based losses compare samples with class proxies
// kept in the StateDict.
import { z } from 'zod';
import type { Random } from '../../engine/random.ts';
import type { StateDict } from '../../models/state_dict.ts';
import type { MetricLoss } from './base.ts';
import { CONTRASTIVE_DEFAULTS, ContrastiveLoss, type ContrastiveOptions } from './contrastive.ts';
import { MULTI_SIMILARITY_DEFAULTS, MultiSimilarityLoss, type MultiSimilarityOptions } from './multi_similarity.ts';
import { NPAIR_DEFAULTS, NPairLoss, type NPairOptions } from './npair.ts';
import { PROXY_ANCHOR_DEFAULTS, ProxyAnchorLoss, type ProxyAnchorOptions } from './proxy_anchor.ts';
import { PROXY_NCA_DEFAULTS, ProxyNcaLoss, type ProxyNcaOptions } from './proxy_nca.ts';
import { TRIPLET_DEFAULTS, TripletMarginLoss, type TripletMining, type TripletOptions } from './triplet.ts';

export * from './base.ts';
export * from './distances.ts';
export * from './reducers.ts';
export { ContrastiveLoss, MultiSimilarityLoss, NPairLoss, ProxyAnchorLoss, ProxyNcaLoss, TripletMarginLoss };
export type { ContrastiveOptions, MultiSimilarityOptions, NPairOptions, ProxyAnchorOptions, ProxyNcaOptions, TripletMining, TripletOptions };
export { DEFAULT_PROXY_NAME, type ProxyEnv } from './proxies.ts';

export interface LossOptionsMap {
  triplet: TripletOptions;
  contrastive: ContrastiveOptions;
  'multi-similarity': MultiSimilarityOptions;
  npair: NPairOptions;
  'proxy-anchor': ProxyAnchorOptions;
  'proxy-nca': ProxyNcaOptions;
}

export type LossName = keyof LossOptionsMap;

export interface LossInstanceMap {
  triplet: TripletMarginLoss;
  contrastive: ContrastiveLoss;
  'multi-similarity': MultiSimilarityLoss;
  npair: NPairLoss;
  'proxy-anchor': ProxyAnchorLoss;
  'proxy-nca': ProxyNcaLoss;
}

/** What a proxy-based loss needs besides its options (ignored by pair-based losses). */
export interface LossEnv {
  sd?: StateDict;
  numClasses?: number;
  embeddingSize?: number;
  /** Seeded stream for initialising proxies that are not in the StateDict yet. */
  rng?: Random;
  /** StateDict name of the proxies (default 'loss.proxies'). */
  proxyName?: string;
}

export interface LossInfo<N extends LossName = LossName> {
  readonly name: N;
  readonly isPairBased: boolean;
  readonly isProxyBased: boolean;
  /** Needs batches in the P×K chunk layout (row k·P + p = k-th sample of class slot p). */
  readonly needsChunkLayout: boolean;
  readonly description: string;
  readonly source: string;
  readonly defaults: Readonly<Required<LossOptionsMap[N]>> | Readonly<LossOptionsMap[N]>;
  /**
   * The options a configuration may set (`loss.options`), in their JSON form (distances and
   * reducers by name); unknown keys are refused. Every key is optional: {} is the defaults.
   */
  readonly optionsSchema: z.ZodType<LossOptionsMap[N]>;
  create(options: LossOptionsMap[N] | undefined, env: LossEnv): LossInstanceMap[N];
}

// The JSON forms of the options that also accept objects in code.
const distanceName = z.enum(['euclidean', 'squared-euclidean', 'cosine', 'dot']);
const reducerName = z.enum(['mean', 'avg-non-zero', 'sum']);
const nonNegative = z.number().nonnegative();

function proxyEnv(name: string, env: LossEnv) {
  if (!env.sd || env.numClasses === undefined || env.embeddingSize === undefined) {
    throw new Error(`${name} is proxy-based: give it a StateDict (sd), numClasses and embeddingSize (and an rng to initialise new proxies)`);
  }
  return { sd: env.sd, numClasses: env.numClasses, embeddingSize: env.embeddingSize, rng: env.rng, proxyName: env.proxyName };
}

const REGISTRY: { [N in LossName]: LossInfo<N> } = {
  triplet: {
    name: 'triplet',
    isPairBased: true,
    isProxyBased: false,
    needsChunkLayout: false,
    description: 'triplet margin loss with all / semi-hard (FaceNet) / batch-hard (Hermans et al.) triplets',
    source: 'Schroff et al. 2015; Hermans et al. 2017; PML TripletMarginLoss',
    defaults: TRIPLET_DEFAULTS,
    optionsSchema: z.strictObject({
      margin: z.number().optional(),
      mining: z.enum(['all', 'semi-hard', 'batch-hard']).optional(),
      distance: distanceName.optional(),
      reducer: reducerName.optional(),
      smooth: z.boolean().optional(),
    }),
    create: (o) => new TripletMarginLoss(o),
  },
  contrastive: {
    name: 'contrastive',
    isPairBased: true,
    isProxyBased: false,
    needsChunkLayout: false,
    description: 'contrastive loss with positive and negative margins',
    source: 'Hadsell et al. 2006; PML ContrastiveLoss',
    defaults: CONTRASTIVE_DEFAULTS,
    optionsSchema: z.strictObject({
      posMargin: z.number().optional(),
      negMargin: z.number().optional(),
      distance: distanceName.optional(),
      reducer: reducerName.optional(),
    }),
    create: (o) => new ContrastiveLoss(o),
  },
  'multi-similarity': {
    name: 'multi-similarity',
    isPairBased: true,
    isProxyBased: false,
    needsChunkLayout: false,
    description: 'Multi-Similarity loss with its pair mining',
    source: 'Wang et al. CVPR 2019; MalongTech/research-ms-loss; PML MultiSimilarityLoss/Miner',
    defaults: MULTI_SIMILARITY_DEFAULTS,
    optionsSchema: z.strictObject({
      alpha: nonNegative.optional(),
      beta: nonNegative.optional(),
      base: z.number().optional(),
      epsilon: nonNegative.optional(),
      mining: z.boolean().optional(),
      distance: distanceName.optional(),
      reducer: reducerName.optional(),
    }),
    create: (o) => new MultiSimilarityLoss(o),
  },
  npair: {
    name: 'npair',
    isPairBased: true,
    isProxyBased: false,
    needsChunkLayout: true,
    description: "GCA-HNG's official N-pair loss (dot products, soft targets, l2 term)",
    source: 'Sohn 2016; PWenJay/GCA-HNG scripts/loss.py NpairLoss',
    defaults: NPAIR_DEFAULTS,
    optionsSchema: z.strictObject({ l2Reg: nonNegative.optional() }),
    create: (o) => new NPairLoss(o),
  },
  'proxy-anchor': {
    name: 'proxy-anchor',
    isPairBased: false,
    isProxyBased: true,
    needsChunkLayout: false,
    description: 'Proxy-Anchor loss (cosine, margin δ, scale α)',
    source: 'Kim et al. CVPR 2020; tjddus9597/Proxy-Anchor-CVPR2020 code/losses.py',
    defaults: PROXY_ANCHOR_DEFAULTS,
    optionsSchema: z.strictObject({ margin: z.number().optional(), alpha: z.number().positive().optional() }),
    create: (o, env) => new ProxyAnchorLoss(proxyEnv('proxy-anchor', env), o),
  },
  'proxy-nca': {
    name: 'proxy-nca',
    isPairBased: false,
    isProxyBased: true,
    needsChunkLayout: false,
    description: 'ProxyNCA with a softmax scale (PML form)',
    source: 'Movshovitz-Attias et al. ICCV 2017; PML ProxyNCALoss',
    defaults: PROXY_NCA_DEFAULTS,
    optionsSchema: z.strictObject({ softmaxScale: z.number().positive().optional() }),
    create: (o, env) => new ProxyNcaLoss(proxyEnv('proxy-nca', env), o),
  },
};

/** Accepted spellings besides the canonical names (the compare command's `ms`, underscores…). */
const ALIASES: Record<string, LossName> = {
  ms: 'multi-similarity',
  multi_similarity: 'multi-similarity',
  multisimilarity: 'multi-similarity',
  proxy_anchor: 'proxy-anchor',
  proxyanchor: 'proxy-anchor',
  pa: 'proxy-anchor',
  proxy_nca: 'proxy-nca',
  proxynca: 'proxy-nca',
  'n-pair': 'npair',
  n_pair: 'npair',
  npairs: 'npair',
};

export const LOSS_NAMES: readonly LossName[] = Object.keys(REGISTRY) as LossName[];

/** The canonical name of a loss, or an error listing the valid ones. */
export function resolveLossName(name: string): LossName {
  const key = name.trim().toLowerCase();
  if (key in REGISTRY) return key as LossName;
  const alias = ALIASES[key];
  if (alias) return alias;
  throw new Error(`unknown loss '${name}': expected one of ${LOSS_NAMES.join(', ')} (aliases: ${Object.keys(ALIASES).join(', ')})`);
}

export function lossInfo(name: string): LossInfo {
  return REGISTRY[resolveLossName(name)] as unknown as LossInfo;
}

export function createLoss<N extends LossName>(name: N, options?: LossOptionsMap[N], env?: LossEnv): LossInstanceMap[N];
export function createLoss(name: string, options?: object, env?: LossEnv): MetricLoss;
export function createLoss(name: string, options?: object, env: LossEnv = {}): MetricLoss {
  const info = REGISTRY[resolveLossName(name)] as unknown as LossInfo;
  return info.create(options as never, env);
}

export function isPairBased(name: string): boolean {
  return lossInfo(name).isPairBased;
}

export function isProxyBased(name: string): boolean {
  return lossInfo(name).isProxyBased;
}
