// Which backbone parameters receive no gradient in an epoch (requires_grad False in the official
// train.py), so that AdamW skips them entirely: no moment update, no weight decay, no step count
// (docs/algorithm.md §6.7, QUIRK 6). Two things freeze parameters in the official code:
//  - the warm-up: for e < WARM_UP_EPOCH every feature-extractor parameter but the embedding head is
//    frozen; from e = WARM_UP_EPOCH on the same loop sets requires_grad True on all of them;
//  - the ResNet-50 constructor (scripts/backbone.py, Resnet50) with BN_FREEZE sets requires_grad
//    False on every BatchNorm2d weight and bias. Nothing but the warm-up loop turns them back on,
//    so they train from the end of the warm-up on, and never when WARM_UP_EPOCH is 0. The
//    GoogLeNet constructor freezes nothing.
// The frozen parameters stay in opt_c's backbone group (the official optimizer is built over all
// backbone parameters); unfrozen, they train at that group's learning rate.
import type { Backbone } from '../models/backbone.ts';
import type { TorchvisionBackbone } from '../models/torchvision.ts';

/**
 * solver.bnAffine, what becomes of the BatchNorm2d weights and biases of a torchvision backbone:
 *  - 'official': as the official code (above): with BN_FREEZE, ResNet-50's are frozen until the
 *    warm-up ends (for the whole run without warm-up); GoogLeNet's train with the backbone;
 *  - 'frozen': with BN_FREEZE, frozen for the whole run in either backbone, which is what the
 *    ResNet constructor evidently means (BatchNorm fully frozen: statistics and affine);
 *  - 'trained': they train whenever the rest of the backbone does.
 * Without BN_FREEZE they always train with the backbone.
 */
export type BnAffinePolicy = 'official' | 'frozen' | 'trained';
export const BN_AFFINE_POLICIES: readonly [BnAffinePolicy, ...BnAffinePolicy[]] = ['official', 'frozen', 'trained'];

export interface FreezePlan {
  /** Every trainable backbone parameter (the warm-up freezes them all). */
  backbone: readonly string[];
  /** The BatchNorm2d weights and biases among them (empty for a backbone without BatchNorm2d). */
  bnAffine: readonly string[];
  /** The official constructor freezes bnAffine under BN_FREEZE (ResNet-50 yes, GoogLeNet no). */
  constructorFreezesBnAffine: boolean;
  bnFreeze: boolean;
  warmUpEpochs: number;
  policy: BnAffinePolicy;
}

function isTorchvision(b: Backbone): b is TorchvisionBackbone {
  return typeof (b as Partial<TorchvisionBackbone>).batchNormAffineNames === 'function';
}

/** The plan for a backbone; backbones without BatchNorm2d (small CNN, cached features) have no affine names. */
export function freezePlan(
  backbone: Backbone,
  backboneParams: readonly string[],
  s: { bnFreeze: boolean; warmUpEpochs: number; bnAffine: BnAffinePolicy },
): FreezePlan {
  const tv = isTorchvision(backbone);
  return {
    backbone: backboneParams,
    bnAffine: tv ? backbone.batchNormAffineNames() : [],
    constructorFreezesBnAffine: tv && backbone.constructorFreezesBnAffine,
    bnFreeze: s.bnFreeze,
    warmUpEpochs: s.warmUpEpochs,
    policy: s.bnAffine,
  };
}

/** The parameters frozen throughout epoch e (0-based). */
export function frozenAt(p: FreezePlan, e: number): Set<string> {
  if (e < p.warmUpEpochs) return new Set(p.backbone);
  let affine = false;
  if (p.bnFreeze) {
    if (p.policy === 'frozen') affine = true;
    // The warm-up loop re-enables them at its end; without a warm-up the loop never runs.
    else if (p.policy === 'official') affine = p.constructorFreezesBnAffine && p.warmUpEpochs === 0;
  }
  return new Set(affine ? p.bnAffine : []);
}
