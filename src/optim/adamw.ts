// AdamW with PyTorch's semantics (torch.optim.AdamW, no amsgrad; docs/algorithm.md §2.4),
// including its gradient-buffer rules (QUIRK 8 of docs/algorithm.md §11): a parameter's gradient buffer comes into existence with its first gradient;
// zeroGrad() zeroes existing buffers but never removes them; step() skips a parameter without a
// buffer (no weight decay, no state) but steps one whose buffer is all zeros.
import * as tf from '@tensorflow/tfjs';
import type { HostTensor } from '../io/host_tensor.ts';
import type { StateDict } from '../models/state_dict.ts';

export interface ParamGroup {
  params: string[];
  lr: number;
  weightDecay: number;
}

export interface AdamWOptions {
  betas?: [number, number];
  eps?: number;
}

interface Moments {
  step: number;
  expAvg: tf.Tensor;
  expAvgSq: tf.Tensor;
}

export class AdamW {
  readonly groups: ParamGroup[];
  private readonly grads = new Map<string, tf.Tensor>();
  private readonly moments = new Map<string, Moments>();
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly eps: number;

  constructor(
    private readonly sd: StateDict,
    groups: ParamGroup[],
    opts: AdamWOptions = {},
  ) {
    this.groups = groups.map((g) => ({ ...g, params: [...g.params] }));
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
  }

  params(): string[] {
    return this.groups.flatMap((g) => g.params);
  }

  owns(name: string): boolean {
    return this.groups.some((g) => g.params.includes(name));
  }

  hasGrad(name: string): boolean {
    return this.grads.has(name);
  }

  grad(name: string): tf.Tensor | undefined {
    return this.grads.get(name);
  }

  /** Adds a gradient into the parameter's buffer (creating the buffer on first use), as backward() does. */
  accumulate(name: string, g: tf.Tensor): void {
    const prev = this.grads.get(name);
    this.grads.set(name, tf.keep(prev ? tf.add(prev, g) : tf.clone(g)));
    prev?.dispose();
  }

  zeroGrad(): void {
    for (const [name, g] of this.grads) {
      this.grads.set(name, tf.keep(tf.zerosLike(g)));
      g.dispose();
    }
  }

  /** Element-wise clipping of every existing gradient to [−c, c] (clip_grad_value_). */
  clipGradValue(c: number): void {
    for (const [name, g] of this.grads) {
      this.grads.set(name, tf.keep(tf.clipByValue(g, -c, c)));
      g.dispose();
    }
  }

  setLearningRate(groupIndex: number, lr: number): void {
    const g = this.groups[groupIndex];
    if (!g) throw new Error(`no parameter group ${groupIndex}`);
    g.lr = lr;
  }

  step(): void {
    const { beta1, beta2, eps } = this;
    for (const group of this.groups) {
      for (const name of group.params) {
        const grad = this.grads.get(name);
        if (!grad) continue;
        const param = this.sd.get(name);
        const state = this.moments.get(name) ?? { step: 0, expAvg: tf.keep(tf.zerosLike(param)), expAvgSq: tf.keep(tf.zerosLike(param)) };
        state.step += 1;
        const bias1 = 1 - beta1 ** state.step;
        const bias2Sqrt = Math.sqrt(1 - beta2 ** state.step);
        const stepSize = group.lr / bias1;
        const [expAvg, expAvgSq] = tf.tidy(() => {
          const decayed = tf.mul(param, 1 - group.lr * group.weightDecay);
          const m = tf.add(tf.mul(state.expAvg, beta1), tf.mul(grad, 1 - beta1));
          const v = tf.add(tf.mul(state.expAvgSq, beta2), tf.mul(tf.mul(grad, grad), 1 - beta2));
          const denom = tf.add(tf.div(tf.sqrt(v), bias2Sqrt), eps);
          param.assign(tf.sub(decayed, tf.mul(tf.div(m, denom), stepSize)));
          return [tf.keep(m), tf.keep(v)];
        }) as [tf.Tensor, tf.Tensor];
        state.expAvg.dispose();
        state.expAvgSq.dispose();
        this.moments.set(name, { step: state.step, expAvg, expAvgSq });
      }
    }
  }

  stepCount(name: string): number | undefined {
    return this.moments.get(name)?.step;
  }

  /** The optimizer state as host tensors: `<param>/exp_avg`, `<param>/exp_avg_sq`, `<param>/step`. */
  async stateToHost(): Promise<Map<string, HostTensor>> {
    const out = new Map<string, HostTensor>();
    for (const [name, s] of this.moments) {
      out.set(`${name}/exp_avg`, { dtype: 'F32', shape: [...s.expAvg.shape], data: (await s.expAvg.data()) as Float32Array });
      out.set(`${name}/exp_avg_sq`, { dtype: 'F32', shape: [...s.expAvgSq.shape], data: (await s.expAvgSq.data()) as Float32Array });
      out.set(`${name}/step`, { dtype: 'I64', shape: [], data: BigInt64Array.of(BigInt(s.step)) });
    }
    return out;
  }

  /** Restores moments and which gradient buffers exist (their values are zero at an iteration boundary). */
  loadState(tensors: Map<string, HostTensor>, gradBuffers: readonly string[]): void {
    this.disposeState();
    for (const name of this.params()) {
      const m = tensors.get(`${name}/exp_avg`);
      const v = tensors.get(`${name}/exp_avg_sq`);
      const s = tensors.get(`${name}/step`);
      if (!m || !v || !s) continue;
      this.moments.set(name, {
        step: Number((s.data as BigInt64Array)[0]),
        expAvg: tf.keep(tf.tensor(m.data as Float32Array, m.shape)),
        expAvgSq: tf.keep(tf.tensor(v.data as Float32Array, v.shape)),
      });
    }
    for (const name of gradBuffers) this.grads.set(name, tf.keep(tf.zerosLike(this.sd.get(name))));
  }

  gradBufferNames(): string[] {
    return [...this.grads.keys()];
  }

  private disposeState(): void {
    for (const s of this.moments.values()) {
      s.expAvg.dispose();
      s.expAvgSq.dispose();
    }
    this.moments.clear();
    for (const g of this.grads.values()) g.dispose();
    this.grads.clear();
  }

  dispose(): void {
    this.disposeState();
  }
}
