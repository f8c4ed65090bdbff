// The safetensors format: an 8-byte little-endian header length N, N bytes of JSON naming each
// tensor's dtype, shape and byte range, then the raw little-endian C-order data. F16 and BF16 are
// kept as their raw 16-bit patterns (host_tensor.ts).
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from './atomic_write.ts';
import { bytesOf, bytesPerElement, dataFromBytes, type HostDType, type HostTensor, numel } from './host_tensor.ts';

const DTYPES: readonly HostDType[] = ['F32', 'F64', 'F16', 'BF16', 'I64', 'I32', 'U8', 'BOOL'];

export interface SafetensorsFile {
  tensors: Map<string, HostTensor>;
  metadata: Record<string, string>;
}

export class SafetensorsError extends Error {}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * Parses a safetensors file, checking everything it declares against what it holds: a header that
 * is a JSON object, entries with a known dtype, a shape of non-negative integers and a byte range
 * inside the data that matches dtype × shape. Anything else is a one-line SafetensorsError.
 */
export function parseSafetensors(bytes: Uint8Array, source = 'safetensors data'): SafetensorsFile {
  if (bytes.byteLength < 8) throw new SafetensorsError(`${source}: too short to be a safetensors file`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const declared = view.getBigUint64(0, true);
  if (declared > BigInt(bytes.byteLength - 8)) {
    throw new SafetensorsError(`${source}: header length ${declared} exceeds the file size ${bytes.byteLength} (not a safetensors file, or truncated)`);
  }
  const headerLen = Number(declared);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen)));
  } catch {
    throw new SafetensorsError(`${source}: the header is not valid JSON`);
  }
  if (!isObject(header))
    throw new SafetensorsError(
      `${source}: the header is ${header === null ? 'null' : Array.isArray(header) ? 'a list' : `a ${typeof header}`}, expected a JSON object of tensors`,
    );
  const dataStart = 8 + headerLen;
  const dataLength = bytes.byteLength - dataStart;
  const tensors = new Map<string, HostTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (entry !== null && (!isObject(entry) || Object.values(entry).some((v) => typeof v !== 'string'))) {
        throw new SafetensorsError(`${source}: __metadata__ must be an object of strings`);
      }
      metadata = (entry ?? {}) as Record<string, string>;
      continue;
    }
    const what = `${source}: tensor '${name}'`;
    if (!isObject(entry))
      throw new SafetensorsError(
        `${what} is ${entry === null ? 'null' : `a ${Array.isArray(entry) ? 'list' : typeof entry}`}, expected {dtype, shape, data_offsets}`,
      );
    const { dtype, shape, data_offsets: offsets } = entry;
    if (typeof dtype !== 'string' || !DTYPES.includes(dtype as HostDType)) {
      throw new SafetensorsError(`${what} has unsupported dtype ${JSON.stringify(dtype)} (expected one of ${DTYPES.join(', ')})`);
    }
    if (!Array.isArray(shape) || !shape.every(isCount))
      throw new SafetensorsError(`${what}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
      throw new SafetensorsError(`${what}: data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    const dims = shape as number[];
    const expected = numel(dims) * bytesPerElement(dtype as HostDType);
    if (begin > end || end > dataLength || end - begin !== expected) {
      throw new SafetensorsError(
        `${what} has byte range [${begin}, ${end}) inconsistent with ${dtype}[${dims.join(', ')}] (${expected} bytes) and the ${dataLength} data bytes of the file`,
      );
    }
    tensors.set(name, {
      dtype: dtype as HostDType,
      shape: [...dims],
      data: dataFromBytes(dtype as HostDType, bytes.subarray(dataStart + begin, dataStart + end)),
    });
  }
  return { tensors, metadata };
}

export function readSafetensors(path: string): SafetensorsFile {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new SafetensorsError(`${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return parseSafetensors(bytes, path);
}

export function serializeSafetensors(tensors: Map<string, HostTensor> | Record<string, HostTensor>, metadata?: Record<string, string>): Uint8Array {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of entries) {
    const n = numel(t.shape) * bytesPerElement(t.dtype);
    if (t.data.byteLength !== n)
      throw new SafetensorsError(`tensor '${name}': data has ${t.data.byteLength} bytes, ${t.dtype}[${t.shape.join(', ')}] needs ${n}`);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  let json = JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.byteLength;
  for (const [, t] of entries) {
    out.set(bytesOf(t.data), pos);
    pos += t.data.byteLength;
  }
  return out;
}

/** Writes atomically (temporary file, then rename), so a crash never leaves a half-written file. */
export function writeSafetensors(path: string, tensors: Map<string, HostTensor> | Record<string, HostTensor>, metadata?: Record<string, string>): void {
  writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}
