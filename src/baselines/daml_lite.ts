// daml-lite: DAML's adversarial hard-negative generator (Duan et al., "Deep Adversarial Metric
// Learning", CVPR 2018) moved into the embedding space. It is NOT the paper's method, which is why
// it does not carry the name: DAML's generator works on the backbone's features and its synthetic
// negatives are mapped through the embedding layer, after a metric-only pre-training phase
// (GeDML's DAMLCollector, by the authors' group; no official code is public). Here G maps
// embeddings to an embedding, and there is no pre-training phase (docs/losses_and_baselines.md).
// The objective and weights are the paper's as GeDML reproduces them (λ = λ0 = 1, λ1 = 1,
// λ2 = 50, α = 1). For a triplet (anchor x, positive x⁺, negative x⁻) the generator G produces
//   x̃⁻ = G([x, x⁺, x⁻])                                   (an MLP on the concatenation)
//   J_gen = mean over triplets of  ‖x̃⁻ − x‖² + λ1·‖x̃⁻ − x⁻‖² + λ2·[D(x̃⁻, x)² − D(x⁺, x)² − α]_+
//   J     = J_gen + λ·J_m(x, x⁺, x̃⁻)
// minimised jointly over the generator and the embedding (the paper's Eq. "min_{θg,θf} J").
// Our choices, documented:
//  - G works in the embedding space on the batch's embeddings (the paper feeds CNN features and maps
//    x̃⁻ through the embedding layer); D is the Euclidean distance there.
//  - G sees the embeddings as the base loss's distance does (L2-normalised unless the distance is
//    the raw dot product of the N-pair loss). Where the loss normalises, G's output is
//    L2-normalised too, so x̃⁻ lies where the loss compares embeddings: J_gen's distances are then
//    the ones J_m sees (a point off the sphere would be renormalised by the loss and land elsewhere).
//  - Triplets: every anchor i with its positive = the next same-class sample (cyclic) and every
//    negative j of another class; J_m is the base pair loss on the batch with each anchor's negatives
//    replaced by its x̃⁻ (positives unchanged), so any pair-based loss can be J_m.
//  - G's inputs are detached: J_gen trains only G; J_m trains the embedding (through the real
//    anchors and positives) and G (through x̃⁻), as the joint minimisation says.
//  - G: Linear(3D → h₁) → ReLU → Linear(h₁ → h₂) → ReLU → Linear(h₂ → D), "a three-layer
//    perceptron" (GeDML), hidden sizes default [D, D], PyTorch's default Linear init U(±1/√fan_in),
//    parameters under `daml.generator.{0,2,4}.{weight,bias}` in the StateDict (a storage name,
//    kept from before the method was renamed). The first layer is
//    applied per sample to the three slices of its weight (W·[a;p;n] = W_a·a + W_p·p + W_n·n), so
//    the B² inputs are never materialised.
import * as tf from '@tensorflow/tfjs';
import type { Random } from '../engine/random.ts';
import type { MetricLoss, PairBasedLoss } from '../losses/metric/base.ts';
import { isPairLoss, pairMasks } from '../losses/metric/base.ts';
import type { StateDict } from '../models/state_dict.ts';
import { l2Normalize } from '../losses/metric/distances.ts';
import { linear } from '../nn/linear.ts';
import { detachedCopy } from '../nn/stop_gradient.ts';
import {
  type GeneratorContext,
  type HardNegativeGenerator,
  type Objective,
  tidyObjective,
  anchorCandidateMatrix,
  nextSameClass,
  selectRows,
} from './common.ts';

export interface DamlLiteOptions {
  /** λ, the weight of J_m (default 1). */
  lambda?: number;
  /** λ1, the weight of the regulariser ‖x̃⁻ − x⁻‖² (default 1). */
  lambda1?: number;
  /** λ2, the weight of the adversarial term (default 50). */
  lambda2?: number;
  /** α, the margin of the adversarial term (default 1). */
  alpha?: number;
  /** Hidden layer sizes of G (default [D, D]). */
  hidden?: readonly number[];
  /** StateDict prefix of G's parameters (default 'daml.generator'). */
  prefix?: string;
}

export const DAML_LITE_DEFAULTS = { lambda: 1, lambda1: 1, lambda2: 50, alpha: 1, prefix: 'daml.generator' } as const;

export interface DamlLiteEnv {
  sd: StateDict;
  embeddingSize: number;
  /** Needed when G's parameters are not in the StateDict yet. */
  rng?: Random;
}

function layerNames(prefix: string, layers: number): string[] {
  return Array.from({ length: layers }, (_, l) => `${prefix}.${2 * l}`);
}

/** Creates G's parameters (PyTorch's default Linear init) unless the StateDict has them; checks shapes. */
export function initDamlGenerator(env: DamlLiteEnv, hidden: readonly number[], prefix: string = DAML_LITE_DEFAULTS.prefix): void {
  const D = env.embeddingSize;
  const sizes = [3 * D, ...hidden, D];
  layerNames(prefix, sizes.length - 1).forEach((name, l) => {
    const fanIn = sizes[l] as number;
    const out = sizes[l + 1] as number;
    for (const [suffix, shape] of [
      ['weight', [out, fanIn]],
      ['bias', [out]],
    ] as const) {
      const key = `${name}.${suffix}`;
      if (env.sd.has(key)) {
        const v = env.sd.get(key);
        if (v.shape.length !== shape.length || v.shape.some((d, i) => d !== shape[i]))
          throw new Error(`daml-lite: '${key}' is [${v.shape}], expected [${shape}]`);
        continue;
      }
      if (!env.rng) throw new Error(`daml-lite: '${key}' is not in the state dict; pass a seeded rng to initialise the generator`);
      const n = shape.reduce((a, b) => a * b, 1);
      const bound = 1 / Math.sqrt(fanIn);
      const values = new Float32Array(n);
      for (let i = 0; i < n; i++) values[i] = (2 * env.rng.random() - 1) * bound;
      const t = tf.tensor(values, [...shape]);
      env.sd.set(key, t);
      t.dispose();
    }
  });
}

export interface DamlGeneration {
  /** [B, B, D]: x̃⁻ for anchor i and negative j (G's output for every (i, j); use `negatives` to select). */
  synthetic: tf.Tensor3D;
  /** [B, B, D]: the anchor's candidate for j: x̃⁻ when j is a negative, the real z_j otherwise. */
  candidates: tf.Tensor3D;
  partner: number[];
  /** Host [B, B] mask of the negative pairs. */
  negatives: Float32Array;
}

/**
 * G on every (anchor i, its positive, sample j). `zIn` feeds G (detach it for J_gen); `zReal` fills
 * the non-negative candidates; `onSphere` L2-normalises G's output (for a loss that normalises).
 */
export function damlGenerate(
  sd: StateDict,
  zIn: tf.Tensor2D,
  zReal: tf.Tensor2D,
  labels: readonly number[],
  prefix: string = DAML_LITE_DEFAULTS.prefix,
  onSphere = false,
): DamlGeneration {
  const [B, D] = zIn.shape;
  if (labels.length !== B) throw new Error(`daml-lite: ${B} embeddings but ${labels.length} labels`);
  const partner = nextSameClass(labels, 'daml-lite');
  const negatives = pairMasks(labels, labels, true).neg;
  const names: string[] = [];
  for (let l = 0; sd.has(`${prefix}.${2 * l}.weight`); l++) names.push(`${prefix}.${2 * l}`);
  if (names.length < 2) throw new Error(`daml-lite: no generator under '${prefix}' in the state dict (call initDamlGenerator)`);
  return tf.tidy(() => {
    const w0 = sd.get(`${names[0]}.weight`);
    const H = w0.shape[0] as number;
    if (w0.shape[1] !== 3 * D) throw new Error(`daml-lite: generator input is ${w0.shape[1]}, expected 3·${D}`);
    const zero = tf.zeros([H]);
    const part = (k: number) => tf.slice(w0, [0, k * D], [H, D]);
    const ha = linear(zIn, part(0), sd.get(`${names[0]}.bias`)); // [B, H]
    const hp = linear(selectRows(zIn, partner), part(1), zero);
    const hn = linear(zIn, part(2), zero);
    let h: tf.Tensor = tf.relu(tf.add(tf.reshape(tf.add(ha, hp), [B, 1, H]), tf.reshape(hn, [1, B, H])));
    h = tf.reshape(h, [B * B, H]);
    for (let l = 1; l < names.length; l++) {
      h = linear(h, sd.get(`${names[l]}.weight`), sd.get(`${names[l]}.bias`));
      if (l < names.length - 1) h = tf.relu(h);
    }
    const synthetic = (onSphere ? l2Normalize(tf.reshape(h, [B, B, D])) : tf.reshape(h, [B, B, D])) as tf.Tensor3D;
    const neg = tf.tensor3d(negatives, [B, B, 1]);
    const candidates = tf.add(tf.mul(neg, synthetic), tf.mul(tf.sub(1, neg), tf.reshape(zReal, [1, B, D]))) as tf.Tensor3D;
    return { synthetic, candidates, partner, negatives };
  });
}

/** J_gen = mean over negative pairs (i, j) of ‖x̃ − x_i‖² + λ1‖x̃ − x_j‖² + λ2[‖x̃ − x_i‖² − ‖x⁺_i − x_i‖² − α]_+. */
export function damlGeneratorLoss(
  z: tf.Tensor2D,
  gen: DamlGeneration,
  o: { lambda1: number; lambda2: number; alpha: number },
): { total: tf.Scalar; hard: tf.Scalar; reg: tf.Scalar; adv: tf.Scalar } {
  const [B, D] = z.shape;
  let count = 0;
  for (const v of gen.negatives) count += v;
  if (count === 0) throw new Error('daml-lite: the batch has no negative pairs (one class only)');
  return tf.tidy(() => {
    const neg = tf.tensor2d(gen.negatives, [B, B]);
    const a = tf.reshape(z, [B, 1, D]);
    const dHard = tf.sum(tf.square(tf.sub(gen.synthetic, a)), 2); // ‖x̃ − x‖²  [B, B]
    const dReg = tf.sum(tf.square(tf.sub(gen.synthetic, tf.reshape(z, [1, B, D]))), 2); // ‖x̃ − x⁻‖²
    const dPos = tf.sum(tf.square(tf.sub(selectRows(z, gen.partner), z)), 1, true); // ‖x⁺ − x‖²  [B, 1]
    const adv = tf.relu(tf.sub(tf.sub(dHard, dPos), o.alpha));
    const mean = (t: tf.Tensor) => tf.div(tf.sum(tf.mul(t, neg)), count) as tf.Scalar;
    const hard = mean(dHard);
    const reg = mean(dReg);
    const advM = mean(adv);
    const total = tf.add(tf.add(hard, tf.mul(reg, o.lambda1)), tf.mul(advM, o.lambda2)) as tf.Scalar;
    return { total, hard, reg, adv: advM };
  });
}

export class DamlLite implements HardNegativeGenerator {
  readonly name = 'daml-lite';
  readonly requires = 'pair';
  readonly parameterPrefixes: readonly string[];
  readonly lambda: number;
  readonly lambda1: number;
  readonly lambda2: number;
  readonly alpha: number;
  readonly prefix: string;
  private readonly sd: StateDict;

  constructor(env: DamlLiteEnv, o: DamlLiteOptions = {}) {
    this.lambda = o.lambda ?? DAML_LITE_DEFAULTS.lambda;
    this.lambda1 = o.lambda1 ?? DAML_LITE_DEFAULTS.lambda1;
    this.lambda2 = o.lambda2 ?? DAML_LITE_DEFAULTS.lambda2;
    this.alpha = o.alpha ?? DAML_LITE_DEFAULTS.alpha;
    this.prefix = o.prefix ?? DAML_LITE_DEFAULTS.prefix;
    this.parameterPrefixes = [`${this.prefix}.`];
    this.sd = env.sd;
    initDamlGenerator(env, o.hidden ?? [env.embeddingSize, env.embeddingSize], this.prefix);
  }

  objective(loss: MetricLoss, ctx: GeneratorContext): Objective {
    if (!isPairLoss(loss)) throw new Error(`daml-lite needs a pair-based loss, got '${loss.name}'`);
    const pairLoss: PairBasedLoss = loss;
    return tidyObjective(() => {
      const z = ctx.embeddings;
      const zs = pairLoss.distance.maybeNormalize(z);
      const zIn = detachedCopy(zs);
      const gen = damlGenerate(this.sd, zIn, zs, ctx.labels, this.prefix, pairLoss.distance.normalizeEmbeddings);
      const g = damlGeneratorLoss(zIn, gen, this);
      const jM = pairLoss.computeFromMatrix({
        matrix: anchorCandidateMatrix(zs, gen.candidates, pairLoss.distance),
        labels: ctx.labels,
        refLabels: ctx.labels,
        selfRef: true,
        embeddings: z,
      });
      const total = tf.add(g.total, tf.mul(jM, this.lambda)) as tf.Scalar;
      return { total, terms: { J_gen: g.total, J_hard: g.hard, J_reg: g.reg, J_adv: g.adv, J_m: jM } };
    });
  }
}
