// Proxy-Anchor loss (Kim et al., CVPR 2020), the formula of the official code
// (tjddus9597/Proxy-Anchor-CVPR2020, code/losses.py) and of GCA-HNG's unused Proxy_Anchor
// (scripts/loss.py): with s(x, p) the cosine similarity, P⁺ the proxies with a positive in the batch,
// X_p⁺ / X_p⁻ the batch samples of / not of p's class,
//   ℓ = 1/|P⁺| Σ_{p∈P⁺} log(1 + Σ_{x∈X_p⁺} e^{−α(s(x,p) − δ)}) + 1/C Σ_{p} log(1 + Σ_{x∈X_p⁻} e^{α(s(x,p) + δ)})
// with δ = 0.1, α = 32 and proxies initialised kaiming-normal (fan_out). The sums are computed with a
// stabilised log-sum-exp (PML's form); the values are the official ones.
import * as tf from '@tensorflow/tfjs';
import { type LossContext, type ProxyBasedLoss, checkBatch, logOnePlusSumExp, oneHotMask } from './base.ts';
import { type BaseDistance, CosineSimilarity } from './distances.ts';
import { DEFAULT_PROXY_NAME, type ProxyEnv, ensureProxies } from './proxies.ts';

export interface ProxyAnchorOptions {
  /** δ (default 0.1). */
  margin?: number;
  /** α (default 32). */
  alpha?: number;
}

export const PROXY_ANCHOR_DEFAULTS = { margin: 0.1, alpha: 32 } as const;

export class ProxyAnchorLoss implements ProxyBasedLoss {
  readonly name = 'proxy-anchor';
  readonly kind = 'proxy';
  readonly distance: BaseDistance = new CosineSimilarity();
  readonly margin: number;
  readonly alpha: number;
  readonly numClasses: number;
  readonly proxyName: string;
  private readonly variable: tf.Variable;

  constructor(env: ProxyEnv, o: ProxyAnchorOptions = {}) {
    this.margin = o.margin ?? PROXY_ANCHOR_DEFAULTS.margin;
    this.alpha = o.alpha ?? PROXY_ANCHOR_DEFAULTS.alpha;
    this.numClasses = env.numClasses;
    this.proxyName = env.proxyName ?? DEFAULT_PROXY_NAME;
    this.variable = ensureProxies(env, 'kaiming-normal', 'proxy-anchor');
  }

  proxies(): tf.Variable {
    return this.variable;
  }

  compute(embeddings: tf.Tensor2D, labels: readonly number[], ctx?: LossContext): tf.Scalar {
    if (ctx?.ref !== undefined || ctx?.refLabels !== undefined)
      throw new Error('proxy-anchor: reference embeddings are not supported (the proxies are the reference)');
    return this.computeWithProxies(embeddings, labels, this.variable);
  }

  computeWithProxies(embeddings: tf.Tensor2D, labels: readonly number[], proxies: tf.Tensor): tf.Scalar {
    checkBatch('proxy-anchor', embeddings, labels);
    if (proxies.rank !== 2 || proxies.shape[1] !== embeddings.shape[1])
      throw new Error(`proxy-anchor: proxies [${proxies.shape}] do not match embeddings [${embeddings.shape}]`);
    const C = proxies.shape[0] as number;
    const pos = oneHotMask(labels, C, 'proxy-anchor');
    const neg = pos.map((v) => 1 - v);
    const withPos = new Set(labels).size;
    return tf.tidy(() => {
      const cos = this.distance.matrix(embeddings, proxies as tf.Tensor2D); // [N, C]
      const posExp = tf.mul(this.distance.margin(cos, this.margin), this.alpha) as tf.Tensor2D;
      const negExp = tf.mul(this.distance.margin(-this.margin, cos), this.alpha) as tf.Tensor2D;
      const posTerm = tf.div(tf.sum(logOnePlusSumExp(posExp, pos, 0)), withPos);
      const negTerm = tf.div(tf.sum(logOnePlusSumExp(negExp, neg, 0)), C);
      return tf.add(posTerm, negTerm) as tf.Scalar;
    });
  }
}
