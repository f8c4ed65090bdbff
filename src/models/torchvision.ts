// What the torchvision backbones (ResNet-50, GoogLeNet) share: their state-dict inventory under
// the official names, fresh initialisation, BatchNorm2d state, and loading PyTorch weights from a
// torch.save checkpoint (.pth) or safetensors. DINO's ViT-S/16 (dino_vit.ts) is loaded the same way
// under its own names.
//
// Official names (scripts/models.py, scripts/backbone.py of the reference code): the feature
// extractor's `backbone` is the torchvision GoogLeNet itself (feature_extractor.backbone.conv1…),
// while ResNet-50 sits inside a wrapper as `.model` (feature_extractor.backbone.model.conv1…).
// torchvision's classifier `fc` (and GoogLeNet's deleted aux heads) are not part of the forward
// and are not kept; loading skips them.
import * as tf from '@tensorflow/tfjs';
import type { Random } from '../engine/random.ts';
import type { HostTensor } from '../io/host_tensor.ts';
import { readStateDict } from '../io/state_dict_file.ts';
import type { BatchNormState } from '../nn/batch_norm.ts';
import type { Backbone } from './backbone.ts';
import { isBuffer, type StateDict } from './state_dict.ts';

export type ParameterShapes = Array<[name: string, shape: number[]]>;

export interface TorchvisionBackbone extends Backbone {
  /** Prefix of every tensor in the state dict ('feature_extractor.backbone.' or '…backbone.model.'). */
  readonly prefix: string;
  /** BatchNorm2d in evaluation mode even when training (the official BN_FREEZE). */
  readonly bnFreeze: boolean;
  /** torchvision's state-dict entries used by the forward (bare names, torchvision's order). */
  parameterShapes(): ParameterShapes;
  /** Full names of the BatchNorm2d weights and biases (frozen by the official ResNet BN_FREEZE until warm-up ends). */
  batchNormAffineNames(): string[];
  /**
   * Whether the official constructor sets requires_grad False on those weights and biases under
   * BN_FREEZE: the ResNet-50 wrapper does, GoogLeNet does not (QUIRK 6; src/train/freezing.ts).
   */
  readonly constructorFreezesBnAffine: boolean;
}

export function batchNormShapes(name: string, channels: number): ParameterShapes {
  return [
    [`${name}.weight`, [channels]],
    [`${name}.bias`, [channels]],
    [`${name}.running_mean`, [channels]],
    [`${name}.running_var`, [channels]],
    [`${name}.num_batches_tracked`, []],
  ];
}

/** The BatchNorm state of layer `name` (full name), counting num_batches_tracked in training. */
export function batchNormState(sd: StateDict, name: string): BatchNormState {
  return {
    weight: sd.get(`${name}.weight`),
    bias: sd.get(`${name}.bias`),
    runningMean: sd.get(`${name}.running_mean`),
    runningVar: sd.get(`${name}.running_var`),
    onTrack: () => sd.increment(`${name}.num_batches_tracked`),
  };
}

/**
 * Backbone.perSampleParameters of a CNN whose only batch coupling in training is BatchNorm: with
 * BatchNorm frozen, the full names of its parameters (no buffers); in training mode, null.
 */
export function perSampleWhenBnFrozen(bnFreeze: boolean, prefix: string, shapes: ParameterShapes): string[] | null {
  return bnFreeze ? shapes.filter(([n]) => !isBuffer(n)).map(([n]) => prefix + n) : null;
}

/**
 * torchvision's fresh initialisation, seeded: conv weights Kaiming-normal (fan_out, ReLU gain)
 * for ResNet; for GoogLeNet trunc_normal_(std 0.01, a −2, b 2), whose bounds are absolute (200σ),
 * i.e. a plain normal with σ 0.01; BatchNorm weight 1, bias 0, running mean 0, variance 1.
 * Pretrained weights are normally loaded over these. The normals come from tf.randomNormal
 * seeded once per tensor from `rng` (25 M draws of the BigInt PCG would take minutes).
 */
export function initTorchvision(sd: StateDict, prefix: string, shapes: ParameterShapes, rng: Random, conv: 'kaiming-fan-out' | 'googlenet'): void {
  for (const [name, shape] of shapes) {
    const full = prefix + name;
    if (name.endsWith('.num_batches_tracked')) {
      sd.setCounter(full, 0);
      continue;
    }
    let t: tf.Tensor;
    if (shape.length === 4) {
      const [out, , kh, kw] = shape as [number, number, number, number];
      const std = conv === 'kaiming-fan-out' ? Math.sqrt(2 / (out * kh * kw)) : 0.01;
      t = tf.randomNormal(shape, 0, std, 'float32', rng.nextUint32());
    } else if (name.endsWith('.weight') || name.endsWith('.running_var')) {
      t = tf.ones(shape);
    } else {
      t = tf.zeros(shape);
    }
    sd.set(full, t);
    t.dispose();
  }
}

/** Entries of a backbone's state dict that the forward does not use (torchvision's classifier and aux heads, DINO's projection head). */
const UNUSED = /^(fc|aux1|aux2|head)\./;
/**
 * Prefixes under which the names may arrive (official checkpoints, DataParallel, bare; DINO's
 * full checkpoints keep the ViT under 'backbone.' in 'teacher' and 'module.backbone.' in 'student').
 */
const KNOWN_PREFIXES = ['feature_extractor.backbone.model.', 'feature_extractor.backbone.', 'module.', 'model.', 'backbone.'];

function bareName(name: string): string {
  let n = name;
  for (let changed = true; changed;) {
    changed = false;
    for (const p of KNOWN_PREFIXES) {
      if (n.startsWith(p)) {
        n = n.slice(p.length);
        changed = true;
      }
    }
  }
  return n;
}

export interface LoadReport {
  /** Entries loaded into the state dict (full names). */
  loaded: string[];
  /** Entries of the file the backbone does not use (fc, aux heads), as named in the file. */
  ignored: string[];
}

/**
 * Loads a torchvision state dict into `sd` under the backbone's official names. Accepts bare
 * torchvision names (`conv1.weight`), names under `feature_extractor.backbone.` or
 * `feature_extractor.backbone.model.` (official checkpoints; other feature_extractor.* / gnn.*
 * entries are ignored), and `module.` prefixes. Every tensor the forward needs must be present
 * with torchvision's shape; float16 and bfloat16 weights are widened to float32 (exactly).
 */
export function loadTorchvisionWeights(sd: StateDict, backbone: TorchvisionBackbone, tensors: Map<string, HostTensor>, source = 'state dict'): LoadReport {
  const wanted = new Map(backbone.parameterShapes().map(([n, s]) => [n, s]));
  const found = new Map<string, [string, HostTensor]>();
  const ignored: string[] = [];
  for (const [name, t] of tensors) {
    if (name.startsWith('feature_extractor.') && !name.startsWith('feature_extractor.backbone.')) {
      ignored.push(name);
      continue;
    }
    if (name.startsWith('gnn.') || name.startsWith('softmax_classifier.')) {
      ignored.push(name);
      continue;
    }
    const bare = bareName(name);
    if (!wanted.has(bare)) {
      if (UNUSED.test(bare)) {
        ignored.push(name);
        continue;
      }
      throw new Error(
        `${source}: '${name}' is not a ${backbone.name} parameter (expected names such as '${backbone.parameterShapes()[0]?.[0]}', optionally under '${backbone.prefix}')`,
      );
    }
    if (found.has(bare)) throw new Error(`${source}: '${name}' and '${found.get(bare)?.[0]}' are the same ${backbone.name} parameter`);
    found.set(bare, [name, t]);
  }
  const missing = [...wanted.keys()].filter((n) => !found.has(n));
  if (missing.length > 0) {
    throw new Error(
      `${source}: ${missing.length} ${backbone.name} tensor(s) missing, e.g. ${missing
        .slice(0, 5)
        .map((n) => `'${n}'`)
        .join(', ')} — is this a ${backbone.name} state dict?`,
    );
  }
  const loaded: string[] = [];
  for (const [bare, shape] of wanted) {
    const [name, t] = found.get(bare) as [string, HostTensor];
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`${source}: '${name}' has shape [${t.shape.join(', ')}], ${backbone.name} expects [${shape.join(', ')}]`);
    }
    if (!bare.endsWith('.num_batches_tracked') && !['F32', 'F64', 'F16', 'BF16'].includes(t.dtype)) {
      throw new Error(`${source}: '${name}' is ${t.dtype}; expected floating-point weights`);
    }
    sd.load(backbone.prefix + bare, t);
    loaded.push(backbone.prefix + bare);
  }
  return { loaded, ignored };
}

/**
 * Reads a file of torchvision weights, a torch.save checkpoint (.pth, either format) or
 * safetensors, told apart by content, and loads it (see loadTorchvisionWeights).
 */
export function loadTorchvisionFile(sd: StateDict, backbone: TorchvisionBackbone, path: string): LoadReport {
  return loadTorchvisionWeights(sd, backbone, readStateDict(path).tensors, path);
}
