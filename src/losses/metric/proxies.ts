// Class proxies [C, D] of the proxy-based losses, kept as a trainable tf.Variable in the model's
// StateDict (so the optimiser updates them and checkpoints carry them), created once with a
// seeded initialisation and reused (with a shape check) when the StateDict already has them.
import * as tf from '@tensorflow/tfjs';
import type { Random } from '../../engine/random.ts';
import type { StateDict } from '../../models/state_dict.ts';

export const DEFAULT_PROXY_NAME = 'loss.proxies';

/**
 * - 'kaiming-normal': N(0, 2/C), PyTorch's kaiming_normal_(mode='fan_out') on a [C, D] tensor
 *   (fan_out = C, gain √2), as the official Proxy-Anchor code and PML's ProxyAnchorLoss do.
 * - 'normal': N(0, 1), PML's default for ProxyNCALoss (torch.nn.init.normal_).
 */
export type ProxyInit = 'kaiming-normal' | 'normal';

export interface ProxyEnv {
  /** Where the proxies live (created there under `proxyName` when absent). */
  sd: StateDict;
  numClasses: number;
  embeddingSize: number;
  /** Seeded stream for the initial values (only used when the proxies are created). */
  rng?: Random;
  /** Default 'loss.proxies'. */
  proxyName?: string;
}

export function ensureProxies(env: ProxyEnv, init: ProxyInit, what: string): tf.Variable {
  const name = env.proxyName ?? DEFAULT_PROXY_NAME;
  const { numClasses: C, embeddingSize: D } = env;
  if (!Number.isInteger(C) || C < 1 || !Number.isInteger(D) || D < 1)
    throw new Error(`${what}: numClasses and embeddingSize must be positive integers, got ${C} and ${D}`);
  if (env.sd.has(name)) {
    const v = env.sd.get(name);
    if (v.rank !== 2 || v.shape[0] !== C || v.shape[1] !== D) throw new Error(`${what}: '${name}' in the state dict is [${v.shape}], expected [${C}, ${D}]`);
    return v;
  }
  if (!env.rng) throw new Error(`${what}: '${name}' is not in the state dict; pass a seeded rng to initialise it`);
  const std = init === 'kaiming-normal' ? Math.sqrt(2 / C) : 1;
  const values = new Float32Array(C * D);
  for (let i = 0; i < values.length; i++) values[i] = env.rng.normal() * std;
  const t = tf.tensor2d(values, [C, D]);
  env.sd.set(name, t);
  t.dispose();
  return env.sd.get(name);
}
