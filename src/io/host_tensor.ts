// A tensor held in host memory: the unit that file formats (safetensors, .npy, torch.save) read and
// write. Half-precision tensors (F16, BF16) keep their raw 16-bit patterns in a Uint16Array, since
// JavaScript has no such number type: files round-trip bit for bit, and widenHalf widens them.

export type HostDType = 'F32' | 'F64' | 'F16' | 'BF16' | 'I64' | 'I32' | 'U8' | 'BOOL';

export type HostData = Float32Array | Float64Array | Uint16Array | BigInt64Array | Int32Array | Uint8Array;

export interface HostTensor {
  dtype: HostDType;
  shape: number[];
  data: HostData;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function f32(data: ArrayLike<number>, shape: number[]): HostTensor {
  return { dtype: 'F32', shape, data: Float32Array.from(data) };
}

export function f64(data: ArrayLike<number>, shape: number[]): HostTensor {
  return { dtype: 'F64', shape, data: Float64Array.from(data) };
}

export function i64(data: ArrayLike<number>, shape: number[]): HostTensor {
  return { dtype: 'I64', shape, data: BigInt64Array.from(Array.from(data, (v) => BigInt(v))) };
}

/** The value of IEEE half-precision bits (exact: every float16 is a float32). */
export function halfToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac === 0 ? sign * Infinity : NaN;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** The value of bfloat16 bits: the upper half of a float32. */
export function bfloat16ToNumber(bits: number): number {
  const f = new Float32Array(1);
  new Uint32Array(f.buffer)[0] = bits << 16;
  return f[0] as number;
}

/** The values as plain numbers (int64 converted exactly while below 2^53). */
export function toNumbers(t: HostTensor): number[] {
  if (t.data instanceof BigInt64Array) return Array.from(t.data, (v) => Number(v));
  if (t.dtype === 'F16') return Array.from(t.data as Uint16Array, halfToNumber);
  if (t.dtype === 'BF16') return Array.from(t.data as Uint16Array, bfloat16ToNumber);
  return Array.from(t.data as ArrayLike<number>);
}

/**
 * A float16 or bfloat16 tensor widened to float32, exactly (bfloat16 by shifting its bits, so NaN
 * payloads survive); any other tensor is returned as it is.
 */
export function widenHalf(t: HostTensor): HostTensor {
  const bits = t.data as Uint16Array;
  if (t.dtype === 'BF16') {
    const words = new Uint32Array(bits.length);
    for (let i = 0; i < bits.length; i++) words[i] = (bits[i] as number) << 16;
    return { dtype: 'F32', shape: [...t.shape], data: new Float32Array(words.buffer) };
  }
  if (t.dtype === 'F16') return { dtype: 'F32', shape: [...t.shape], data: Float32Array.from(bits, halfToNumber) };
  return t;
}

/** The single value of a 0-d (or one-element) tensor. */
export function scalarOf(t: HostTensor, name = 'tensor'): number {
  if (numel(t.shape) !== 1) throw new Error(`${name}: expected a scalar, got shape [${t.shape.join(', ')}]`);
  return toNumbers(t)[0] as number;
}

export function bytesPerElement(dtype: HostDType): number {
  switch (dtype) {
    case 'F64':
    case 'I64':
      return 8;
    case 'F32':
    case 'I32':
      return 4;
    case 'F16':
    case 'BF16':
      return 2;
    case 'U8':
    case 'BOOL':
      return 1;
  }
}

/** Views little-endian bytes as a typed array of `dtype` (copies, so alignment never matters). */
export function dataFromBytes(dtype: HostDType, bytes: Uint8Array): HostData {
  const copy = new Uint8Array(bytes);
  const buf = copy.buffer;
  switch (dtype) {
    case 'F32':
      return new Float32Array(buf);
    case 'F64':
      return new Float64Array(buf);
    case 'F16':
    case 'BF16':
      return new Uint16Array(buf);
    case 'I64':
      return new BigInt64Array(buf);
    case 'I32':
      return new Int32Array(buf);
    case 'U8':
    case 'BOOL':
      return copy;
  }
}

export function bytesOf(data: HostData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
