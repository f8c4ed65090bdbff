// A tensor held in host memory: the unit that file formats (safetensors, .npy) read and write.

export type HostDType = 'F32' | 'F64' | 'I64' | 'I32' | 'U8' | 'BOOL';

export type HostData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;

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

/** The values as plain numbers (int64 converted exactly while below 2^53). */
export function toNumbers(t: HostTensor): number[] {
  if (t.data instanceof BigInt64Array) return Array.from(t.data, (v) => Number(v));
  return Array.from(t.data as ArrayLike<number>);
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
