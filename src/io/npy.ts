// NumPy's .npy format (versions 1-3): magic, a Python-dict header giving dtype, order and shape,
// then the raw data. Reads little-endian float32/float64/float16/int32/int64/uint8/bool, C or
// Fortran order. NumPy has no bfloat16, so a BF16 tensor cannot be written as .npy.
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from './atomic_write.ts';
import { bytesOf, bytesPerElement, dataFromBytes, type HostDType, type HostTensor, numel } from './host_tensor.ts';

export class NpyError extends Error {}

const DESCR_TO_DTYPE: Record<string, HostDType> = {
  '<f4': 'F32',
  '<f8': 'F64',
  '<f2': 'F16',
  '<i8': 'I64',
  '<i4': 'I32',
  '|u1': 'U8',
  '|b1': 'BOOL',
};
const DTYPE_TO_DESCR: Partial<Record<HostDType, string>> = {
  F32: '<f4',
  F64: '<f8',
  F16: '<f2',
  I64: '<i8',
  I32: '<i4',
  U8: '|u1',
  BOOL: '|b1',
};

/** Parses a .npy file; anything it declares that its bytes do not hold is a one-line NpyError. */
export function parseNpy(bytes: Uint8Array, source = '.npy data'): HostTensor {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.byteLength < 10 || magic.some((m, i) => bytes[i] !== m)) throw new NpyError(`${source}: not a .npy file (bad magic)`);
  const major = bytes[6] as number;
  if (major < 1 || major > 3) throw new NpyError(`${source}: unsupported .npy version ${major} (expected 1, 2 or 3)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerStart = major === 1 ? 10 : 12;
  if (bytes.byteLength < headerStart) throw new NpyError(`${source}: file is truncated (no header)`);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  if (headerStart + headerLen > bytes.byteLength) throw new NpyError(`${source}: header length ${headerLen} exceeds the file size ${bytes.byteLength}`);
  const header = new TextDecoder('latin1').decode(bytes.subarray(headerStart, headerStart + headerLen));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1] === 'True';
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || shapeText === undefined) throw new NpyError(`${source}: malformed header ${JSON.stringify(header.trim().slice(0, 120))}`);
  const dtype = DESCR_TO_DTYPE[descr];
  if (!dtype) throw new NpyError(`${source}: unsupported dtype '${descr}' (expected float32, float64, float16, int32, int64, uint8 or bool, little-endian)`);
  const parts = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (!parts.every((p) => /^[0-9]+L?$/.test(p))) throw new NpyError(`${source}: shape (${shapeText}) is not a tuple of non-negative integers`);
  const shape = parts.map((p) => Number.parseInt(p, 10));
  const start = headerStart + headerLen;
  const size = numel(shape) * bytesPerElement(dtype);
  if (!Number.isSafeInteger(size) || start + size > bytes.byteLength)
    throw new NpyError(`${source}: file is truncated (needs ${size} data bytes for shape [${shape.join(', ')}], has ${bytes.byteLength - start})`);
  let data = dataFromBytes(dtype, bytes.subarray(start, start + size));
  if (fortran && shape.length > 1) data = fortranToC(data, shape);
  return { dtype, shape, data };
}

function fortranToC<T extends HostTensor['data']>(data: T, shape: number[]): T {
  const out = new (data.constructor as { new (n: number): T })(data.length);
  const n = shape.length;
  const idx = new Array<number>(n).fill(0);
  for (let flatC = 0; flatC < data.length; flatC++) {
    let flatF = 0;
    let stride = 1;
    for (let d = 0; d < n; d++) {
      flatF += (idx[d] as number) * stride;
      stride *= shape[d] as number;
    }
    (out as unknown as { [i: number]: unknown })[flatC] = (data as unknown as { [i: number]: unknown })[flatF];
    for (let d = n - 1; d >= 0; d--) {
      idx[d] = (idx[d] as number) + 1;
      if ((idx[d] as number) < (shape[d] as number)) break;
      idx[d] = 0;
    }
  }
  return out;
}

export function readNpy(path: string): HostTensor {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new NpyError(`${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return parseNpy(bytes, path);
}

export function serializeNpy(t: HostTensor): Uint8Array {
  const descr = DTYPE_TO_DESCR[t.dtype];
  if (descr === undefined) throw new NpyError(`a ${t.dtype} tensor has no .npy dtype (NumPy has no bfloat16; widen it to float32 first)`);
  const shape = t.shape.length === 1 ? `(${t.shape[0]},)` : `(${t.shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + t.data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(bytesOf(t.data), 10 + header.length);
  return out;
}

export function writeNpy(path: string, t: HostTensor): void {
  writeFileAtomic(path, serializeNpy(t));
}
