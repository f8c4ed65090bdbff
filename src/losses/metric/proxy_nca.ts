// ProxyNCA (Movshovitz-Attias et al., ICCV 2017) in PML's form (ProxyNCALoss = NCALoss against the
// proxies): with x̂, p̂ the L2-normalised embedding and proxies and d² the squared Euclidean distance,
//   ℓ_i = −log softmax_c(−s·d²(x̂_i, p̂_c))[y_i],   loss = mean_i ℓ_i
// (softmax scale s, PML default 1; the Proxy-Anchor repository runs it with 32, the Proxy Synthesis
// README with 12). Unlike the paper's formula, the positive proxy is part of the softmax denominator
// (PML's choice, also the official Proxy Synthesis code's). Proxies start as N(0, 1) (PML's default).
import * as tf from '@tensorflow/tfjs';
import { softCrossEntropy } from '../cross_entropy.ts';
import { type LossContext, type ProxyBasedLoss, checkBatch, oneHotMask } from './base.ts';
import { type BaseDistance, LpDistance } from './distances.ts';
import { DEFAULT_PROXY_NAME, type ProxyEnv, ensureProxies } from './proxies.ts';

export interface ProxyNcaOptions {
  /** Softmax scale s (default 1). */
  softmaxScale?: number;
}

export const PROXY_NCA_DEFAULTS = { softmaxScale: 1 } as const;

export class ProxyNcaLoss implements ProxyBasedLoss {
  readonly name = 'proxy-nca';
  readonly kind = 'proxy';
  /** Squared Euclidean distance of normalised vectors (PML's LpDistance(power=2)). */
  readonly distance: BaseDistance = new LpDistance({ power: 2 });
  readonly softmaxScale: number;
  readonly numClasses: number;
  readonly proxyName: string;
  private readonly variable: tf.Variable;

  constructor(env: ProxyEnv, o: ProxyNcaOptions = {}) {
    this.softmaxScale = o.softmaxScale ?? PROXY_NCA_DEFAULTS.softmaxScale;
    this.numClasses = env.numClasses;
    this.proxyName = env.proxyName ?? DEFAULT_PROXY_NAME;
    this.variable = ensureProxies(env, 'normal', 'proxy-nca');
  }

  proxies(): tf.Variable {
    return this.variable;
  }

  compute(embeddings: tf.Tensor2D, labels: readonly number[], ctx?: LossContext): tf.Scalar {
    if (ctx?.ref !== undefined || ctx?.refLabels !== undefined)
      throw new Error('proxy-nca: reference embeddings are not supported (the proxies are the reference)');
    return this.computeWithProxies(embeddings, labels, this.variable);
  }

  computeWithProxies(embeddings: tf.Tensor2D, labels: readonly number[], proxies: tf.Tensor): tf.Scalar {
    checkBatch('proxy-nca', embeddings, labels);
    if (proxies.rank !== 2 || proxies.shape[1] !== embeddings.shape[1])
      throw new Error(`proxy-nca: proxies [${proxies.shape}] do not match embeddings [${embeddings.shape}]`);
    const C = proxies.shape[0] as number;
    const target = oneHotMask(labels, C, 'proxy-nca');
    return tf.tidy(() => {
      const mat = this.distance.matrix(embeddings, proxies as tf.Tensor2D);
      const logits = tf.mul(this.distance.isInverted ? mat : tf.neg(mat), this.softmaxScale);
      return softCrossEntropy(logits as tf.Tensor2D, tf.tensor2d(target, [labels.length, C]));
    });
  }
}
