// The model's tensors under the official PyTorch state-dict names, so checkpoints travel both
// ways. Float tensors are tf.Variables (parameters and BatchNorm running statistics);
// `num_batches_tracked` counters are plain integers.
import * as tf from '@tensorflow/tfjs';
import { type HostTensor, numel, toNumbers, widenHalf } from '../io/host_tensor.ts';

/** BatchNorm bottleneck biases of the GNN are frozen in the official code (requires_grad False). */
export function isFrozenParameter(name: string): boolean {
  return /^gnn\.bottleneck[12]\.0\.bias$/.test(name);
}

export function isBuffer(name: string): boolean {
  return name.endsWith('.running_mean') || name.endsWith('.running_var') || name.endsWith('.num_batches_tracked');
}

export class StateDict {
  private readonly vars = new Map<string, tf.Variable>();
  private readonly counters = new Map<string, number>();
  private readonly byVarName = new Map<string, string>();

  /** Adds (or replaces) a float tensor; parameters are trainable unless frozen or a buffer. */
  set(name: string, value: tf.Tensor): void {
    this.vars.get(name)?.dispose();
    const trainable = !isBuffer(name) && !isFrozenParameter(name);
    const v = tf.variable(value, trainable);
    this.vars.set(name, v);
    this.byVarName.set(v.name, name);
  }

  setCounter(name: string, value: number): void {
    this.counters.set(name, value);
  }

  has(name: string): boolean {
    return this.vars.has(name) || this.counters.has(name);
  }

  get(name: string): tf.Variable {
    const v = this.vars.get(name);
    if (!v) throw new Error(`state dict has no tensor '${name}'`);
    return v;
  }

  counter(name: string): number {
    const c = this.counters.get(name);
    if (c === undefined) throw new Error(`state dict has no counter '${name}'`);
    return c;
  }

  increment(name: string): void {
    this.counters.set(name, this.counter(name) + 1);
  }

  /** Official name of a variable (for mapping tf.variableGrads results back). */
  nameOf(v: tf.Variable): string | undefined {
    return this.byVarName.get(v.name);
  }

  names(): string[] {
    return [...this.vars.keys(), ...this.counters.keys()];
  }

  /** Trainable parameters whose names start with one of the prefixes, in insertion order. */
  trainable(prefixes: readonly string[]): string[] {
    return [...this.vars.entries()].filter(([n, v]) => v.trainable && prefixes.some((p) => n.startsWith(p))).map(([n]) => n);
  }

  static fromHost(tensors: Map<string, HostTensor>): StateDict {
    const sd = new StateDict();
    for (const [name, t] of tensors) sd.load(name, t);
    return sd;
  }

  /** Loads one entry; shapes must match when the entry already exists. */
  load(name: string, t: HostTensor): void {
    if (name.endsWith('.num_batches_tracked')) {
      this.setCounter(name, toNumbers(t)[0] ?? 0);
      return;
    }
    const existing = this.vars.get(name);
    if (existing && (existing.shape.length !== t.shape.length || existing.shape.some((d, i) => d !== t.shape[i]))) {
      throw new Error(`'${name}': shape [${t.shape.join(', ')}] does not match the model's [${existing.shape.join(', ')}]`);
    }
    // Half-precision weights (a float16 .pth) widen exactly; the model computes in float32.
    const w = widenHalf(t);
    if (w.dtype !== 'F32' && w.dtype !== 'F64') throw new Error(`'${name}': expected a float tensor, got ${t.dtype}`);
    const value = tf.tensor(Float32Array.from(w.data as Float32Array | Float64Array), w.shape, 'float32');
    this.set(name, value);
    value.dispose();
  }

  /** Everything as host tensors, counters as int64 0-d tensors (PyTorch's layout). */
  async toHost(prefix = ''): Promise<Map<string, HostTensor>> {
    const out = new Map<string, HostTensor>();
    for (const [name, v] of this.vars) {
      if (!name.startsWith(prefix)) continue;
      out.set(name, { dtype: 'F32', shape: [...v.shape], data: (await v.data()) as Float32Array });
    }
    for (const [name, c] of this.counters) {
      if (!name.startsWith(prefix)) continue;
      out.set(name, { dtype: 'I64', shape: [], data: BigInt64Array.of(BigInt(c)) });
    }
    return out;
  }

  numParameters(prefix = ''): number {
    let n = 0;
    for (const [name, v] of this.vars) if (name.startsWith(prefix) && v.trainable) n += numel(v.shape);
    return n;
  }

  /** A deep copy (new variables, same values). */
  clone(): StateDict {
    const sd = new StateDict();
    for (const [name, v] of this.vars) sd.set(name, v);
    for (const [name, c] of this.counters) sd.setCounter(name, c);
    return sd;
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
    this.byVarName.clear();
  }
}
