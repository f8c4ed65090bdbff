// Deterministic weights for the backbone parity tests: a mirror, bit for bit, of det_uniform /
// det_tensor / det_probe / det_input in scripts/backbones/make_fixtures.py (keep both in step).
// Every value is a function of a tensor's name and element index, so no weights are committed.
import type { HostTensor } from '../../src/io/host_tensor.ts';
import type { TorchvisionBackbone } from '../../src/models/torchvision.ts';

export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(text)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

/** u_i ∈ [0, 1), 24-bit: lowbias32(i·0x9E3779B9 + fnv1a32(name)) >> 8 / 2^24. */
export function detUniform(name: string, n: number, each: (i: number, u: number) => void): void {
  const h = fnv1a32(name);
  for (let i = 0; i < n; i++) {
    let x = (Math.imul(i, 0x9e3779b9) + h) >>> 0;
    x ^= x >>> 16;
    x = Math.imul(x, 0x7feb352d) >>> 0;
    x ^= x >>> 15;
    x = Math.imul(x, 0x846ca68b) >>> 0;
    x ^= x >>> 16;
    each(i, (x >>> 8) / 16777216);
  }
}

export function detTensor(name: string, shape: number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  let f: (u: number) => number;
  if (name.endsWith('running_mean') || name.endsWith('.bias')) f = (u) => (2 * u - 1) * 0.1;
  else if (name.endsWith('running_var')) f = (u) => 0.5 + u;
  else if (shape.length === 1) f = (u) => 0.5 + 0.5 * u;
  else if (shape.length === 4) {
    const bound = Math.sqrt(6 / ((shape[1] as number) * (shape[2] as number) * (shape[3] as number)));
    f = (u) => (2 * u - 1) * bound;
  } else if (shape.length === 2) {
    const s = Math.sqrt(shape[1] as number);
    f = (u) => (2 * u - 1) / s;
  } else if (shape.length === 3)
    f = (u) => (2 * u - 1) * 0.05; // ViT cls_token, pos_embed
  else throw new Error(`${name}: no rule for shape [${shape.join(', ')}]`);
  detUniform(name, n, (i, u) => {
    out[i] = f(u);
  });
  return out;
}

export function detProbe(name: string, n: number): Float64Array {
  const out = new Float64Array(n);
  detUniform(name, n, (i, u) => {
    out[i] = 2 * u - 1;
  });
  return out;
}

/** Generated images: float32 of 2·(2u − 1) (det_input). */
export function detInput(name: string, n: number): Float32Array {
  return Float32Array.from(detProbe(name, n), (v) => 2 * v);
}

/** The generated state dict of a backbone under bare torchvision names. */
export function detStateDict(b: TorchvisionBackbone): Map<string, HostTensor> {
  const m = new Map<string, HostTensor>();
  for (const [name, shape] of b.parameterShapes()) {
    if (name.endsWith('.num_batches_tracked')) m.set(name, { dtype: 'I64', shape: [], data: BigInt64Array.of(0n) });
    else m.set(name, { dtype: 'F32', shape, data: detTensor(name, shape) });
  }
  return m;
}
