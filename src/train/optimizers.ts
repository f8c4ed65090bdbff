// The three AdamW optimizers of GCA-HNG as train.py builds them (docs/algorithm.md §2.3):
// opt_c: [backbone @ BASE_LR, embedding head @ BASE_LR·EMBEDDING_RATIO], WEIGHT_DECAY;
// opt_gnn: gnn.* @ GNN_LR, WEIGHT_DECAY; opt_s: softmax_classifier @ CLASSIFIER_LR, weight decay
// 0.01 (AdamW's default, not configurable in the official code: QUIRK 9). opt_c also holds the
// loss's proxies and a baseline generator's own parameters (the prefixes the generator declares).
import { AdamW } from '../optim/adamw.ts';
import type { StateDict } from '../models/state_dict.ts';

export interface SolverConfig {
  baseLr: number;
  embeddingRatio: number;
  gnnLr: number;
  classifierLr: number;
  weightDecay: number;
  /** Weight decay of the softmax classifier's optimizer (official: AdamW default 0.01). */
  classifierWeightDecay: number;
  /** Learning-rate multiplier of loss proxies (loss.*), in opt_c (Proxy-Anchor's official 100). */
  proxyLrMultiplier?: number;
}

/** opt_c's groups: the two official ones, then loss proxies and baseline generators' parameters. */
export const OPT_C_GROUPS = { backbone: 0, head: 1, proxies: 2, generator: 3 } as const;
export const PROXY_PREFIX = 'loss.';

export const BACKBONE_PREFIX = 'feature_extractor.backbone.';
export const HEAD_PREFIX = 'feature_extractor.fc.';

export interface Optimizers {
  optC: AdamW;
  optGnn: AdamW;
  optS: AdamW;
}

/** What opt_c needs of a baseline generator: the state-dict prefixes of its trainable parameters. */
export interface GeneratorParameters {
  readonly parameterPrefixes: readonly string[];
}

/**
 * The three optimizers over the state dict's trainable parameters. `generator` (a baseline
 * generator, when the run has one) puts its declared parameters in opt_c's generator group; the
 * group exists, empty, without one, so the group indices and the checkpointed state keep one layout.
 */
export function createOptimizers(sd: StateDict, s: SolverConfig, generator?: GeneratorParameters): Optimizers {
  return {
    optC: new AdamW(sd, [
      { params: sd.trainable([BACKBONE_PREFIX]), lr: s.baseLr, weightDecay: s.weightDecay },
      { params: sd.trainable([HEAD_PREFIX]), lr: s.baseLr * s.embeddingRatio, weightDecay: s.weightDecay },
      { params: sd.trainable([PROXY_PREFIX]), lr: s.baseLr * (s.proxyLrMultiplier ?? 100), weightDecay: s.weightDecay },
      { params: sd.trainable(generator?.parameterPrefixes ?? []), lr: s.baseLr, weightDecay: s.weightDecay },
    ]),
    optGnn: new AdamW(sd, [{ params: sd.trainable(['gnn.']), lr: s.gnnLr, weightDecay: s.weightDecay }]),
    optS: new AdamW(sd, [{ params: sd.trainable(['softmax_classifier.']), lr: s.classifierLr, weightDecay: s.classifierWeightDecay }]),
  };
}
