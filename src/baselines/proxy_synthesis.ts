// Proxy Synthesis (Gu, Ko & Kim, "Proxy Synthesis: Learning with Synthetic Classes for Deep Metric
// Learning", AAAI 2021), after the official code (navervision/proxy-synthesis,
// loss/proxy_losses.py `proxy_synthesis`) and its README's settings (ps_alpha = 0.4, ps_mu = 1.0):
//   x̂ = l2n(x), p̂ = l2n(P);  λ ~ Beta(α, α), one draw per batch;
//   x̃_i = λ·x̂_i + (1 − λ)·x̂_{i−1},   p̃_i = λ·p̂_{y_i} + (1 − λ)·p̂_{y_{i−1}}   (i − 1 cyclic: torch.roll by 1)
//   synthetic sample i gets the new class C + i, whose proxy is p̃_i;
//   the first ⌊μ·B⌋ synthetic samples and proxies are appended, and everything is L2-normalised again.
// Embeddings and proxies are mixed with the same λ; gradients flow into the real embeddings and
// into the proxies. The base loss (a proxy-based one) is then computed on the expanded batch against
// the expanded proxy set. Rows i and i − 1 must belong to different classes (the official sampler
// guarantees it; so does the P×K chunk layout with P ≥ 2).
import * as tf from '@tensorflow/tfjs';
import type { Random } from '../engine/random.ts';
import type { MetricLoss, ProxyBasedLoss } from '../losses/metric/base.ts';
import { isProxyLoss } from '../losses/metric/base.ts';
import { type GeneratorContext, type HardNegativeGenerator, type Objective, tidyObjective, selectRows } from './common.ts';

export interface ProxySynthesisOptions {
  /** α of λ ~ Beta(α, α) (official README: 0.4). */
  alpha?: number;
  /** μ, synthetic samples per real sample (official README: 1.0). */
  mu?: number;
}

export const PROXY_SYNTHESIS_DEFAULTS = { alpha: 0.4, mu: 1.0 } as const;

/** Gamma(shape, 1) by Marsaglia & Tsang (2000), with the U^{1/a} boost for shape < 1. */
export function sampleGamma(rng: Random, shape: number): number {
  if (!(shape > 0)) throw new Error(`gamma: shape must be positive, got ${shape}`);
  if (shape < 1) {
    let u = 0;
    while (u === 0) u = rng.random();
    return sampleGamma(rng, shape + 1) * Math.pow(u, 1 / shape);
  }
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = rng.normal();
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rng.random();
    if (u < 1 - 0.0331 * x ** 4) return d * v;
    if (u > 0 && Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

/** Beta(a, b) = X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b). */
export function sampleBeta(rng: Random, a: number, b: number): number {
  const x = sampleGamma(rng, a);
  const y = sampleGamma(rng, b);
  return x + y === 0 ? 0.5 : x / (x + y);
}

export interface SynthesisResult {
  /** [B + m, D], L2-normalised: the real samples, then the m synthetic ones. */
  embeddings: tf.Tensor2D;
  /** Real labels, then C, C + 1, …, C + m − 1. */
  labels: number[];
  /** [C + m, D], L2-normalised: the real proxies, then the synthetic ones. */
  proxies: tf.Tensor2D;
  /** m = ⌊μ·B⌋. */
  numSynthetic: number;
  lambda: number;
}

function l2n(x: tf.Tensor): tf.Tensor {
  return tf.div(x, tf.maximum(tf.sqrt(tf.sum(tf.square(x), -1, true)), 1e-12));
}

/** Proxy Synthesis for a given λ (draw it with sampleBeta(rng, α, α)). */
export function proxySynthesis(z: tf.Tensor2D, labels: readonly number[], proxies: tf.Tensor2D, lambda: number, mu: number): SynthesisResult {
  const [B, D] = z.shape;
  const C = proxies.shape[0];
  if (labels.length !== B) throw new Error(`proxy synthesis: ${B} embeddings but ${labels.length} labels`);
  if (proxies.shape[1] !== D) throw new Error(`proxy synthesis: proxies [${proxies.shape}] do not match embeddings [${z.shape}]`);
  if (!(mu >= 0)) throw new Error(`proxy synthesis: mu must be ≥ 0, got ${mu}`);
  const m = Math.min(B, Math.floor(B * mu));
  labels.forEach((y, i) => {
    if (!Number.isInteger(y) || y < 0 || y >= C) throw new Error(`proxy synthesis: label ${y} at row ${i} is outside [0, ${C})`);
  });
  for (let i = 0; i < m; i++) {
    const prev = labels[(i - 1 + B) % B];
    if (labels[i] === prev) {
      throw new Error(
        `proxy synthesis: rows ${(i - 1 + B) % B} and ${i} are both class ${prev}; it mixes each row with the previous one, so neighbouring rows must differ in class (use the P×K chunk layout)`,
      );
    }
  }
  const roll = Array.from({ length: B }, (_, i) => (i - 1 + B) % B);
  return tf.tidy(() => {
    const x = l2n(z) as tf.Tensor2D;
    const p = l2n(proxies) as tf.Tensor2D;
    const py = selectRows(p, labels);
    const xAug = tf.add(tf.mul(x, lambda), tf.mul(selectRows(x, roll), 1 - lambda));
    const pAug = tf.add(tf.mul(py, lambda), tf.mul(selectRows(py, roll), 1 - lambda));
    const embeddings = l2n(tf.concat([x, tf.slice(xAug, [0, 0], [m, D])], 0)) as tf.Tensor2D;
    const allProxies = l2n(tf.concat([p, tf.slice(pAug, [0, 0], [m, D])], 0)) as tf.Tensor2D;
    const allLabels = [...labels, ...Array.from({ length: m }, (_, i) => C + i)];
    return { embeddings, labels: allLabels, proxies: allProxies, numSynthetic: m, lambda };
  });
}

export class ProxySynthesis implements HardNegativeGenerator {
  readonly name = 'ps';
  readonly requires = 'proxy';
  readonly parameterPrefixes: readonly string[] = [];
  readonly alpha: number;
  readonly mu: number;

  constructor(o: ProxySynthesisOptions = {}) {
    this.alpha = o.alpha ?? PROXY_SYNTHESIS_DEFAULTS.alpha;
    this.mu = o.mu ?? PROXY_SYNTHESIS_DEFAULTS.mu;
    if (!(this.alpha > 0)) throw new Error(`proxy synthesis: alpha must be positive, got ${this.alpha}`);
  }

  objective(loss: MetricLoss, ctx: GeneratorContext): Objective {
    if (!isProxyLoss(loss)) throw new Error(`proxy synthesis needs a proxy-based loss, got '${loss.name}'`);
    const proxyLoss: ProxyBasedLoss = loss;
    return tidyObjective(() => {
      const lambda = sampleBeta(ctx.rng, this.alpha, this.alpha);
      const s = proxySynthesis(ctx.embeddings, ctx.labels, proxyLoss.proxies() as tf.Tensor as tf.Tensor2D, lambda, this.mu);
      const total = proxyLoss.computeWithProxies(s.embeddings, s.labels, s.proxies);
      return { total, terms: { J_ps: total, lambda: tf.scalar(lambda) } };
    });
  }
}
