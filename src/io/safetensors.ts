// The safetensors format: an 8-byte little-endian header length N, N bytes of JSON naming each
// tensor's dtype, shape and byte range, then the raw little-endian C-order data.
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from './atomic_write.ts';
import { bytesOf, bytesPerElement, dataFromBytes, type HostDType, type HostTensor, numel } from './host_tensor.ts';

const DTYPES: readonly HostDType[] = ['F32', 'F64', 'I64', 'I32', 'U8', 'BOOL'];

export interface SafetensorsFile {
  tensors: Map<string, HostTensor>;
  metadata: Record<string, string>;
}

export class SafetensorsError extends Error {}

export function parseSafetensors(bytes: Uint8Array, source = 'safetensors data'): SafetensorsFile {
  if (bytes.byteLength < 8) throw new SafetensorsError(`${source}: too short to be a safetensors file`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (8 + headerLen > bytes.byteLength) {
    throw new SafetensorsError(`${source}: header length ${headerLen} exceeds the file size ${bytes.byteLength}`);
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen))) as Record<string, unknown>;
  } catch {
    throw new SafetensorsError(`${source}: the header is not valid JSON`);
  }
  const dataStart = 8 + headerLen;
  const tensors = new Map<string, HostTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = (entry ?? {}) as Record<string, string>;
      continue;
    }
    const e = entry as { dtype?: string; shape?: number[]; data_offsets?: [number, number] };
    if (!e.dtype || !DTYPES.includes(e.dtype as HostDType)) {
      throw new SafetensorsError(`${source}: tensor '${name}' has unsupported dtype '${e.dtype}' (expected one of ${DTYPES.join(', ')})`);
    }
    const dtype = e.dtype as HostDType;
    const shape = e.shape ?? [];
    const [begin, end] = e.data_offsets ?? [0, 0];
    if (end - begin !== numel(shape) * bytesPerElement(dtype) || dataStart + end > bytes.byteLength) {
      throw new SafetensorsError(`${source}: tensor '${name}' has byte range [${begin}, ${end}) inconsistent with ${dtype}[${shape.join(', ')}]`);
    }
    tensors.set(name, { dtype, shape: [...shape], data: dataFromBytes(dtype, bytes.subarray(dataStart + begin, dataStart + end)) });
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
    if (t.data.byteLength !== n) throw new SafetensorsError(`tensor '${name}': data has ${t.data.byteLength} bytes, ${t.dtype}[${t.shape.join(', ')}] needs ${n}`);
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
