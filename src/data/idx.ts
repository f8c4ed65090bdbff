// The IDX format of (Fashion-)MNIST: a big-endian header — two zero bytes, a type code (0x08 =
// uint8), the number of dimensions — then each dimension as a big-endian uint32, then the data.
// Optionally gzip-compressed (detected by the gzip magic), decompressed with Node's zlib only.
import { readFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';

export interface IdxArray {
  /** The dimensions, e.g. [n, 28, 28] for images, [n] for labels. */
  dims: number[];
  data: Uint8Array;
}

export class IdxError extends Error {}

/** Parses IDX bytes (gzip-compressed or not); only the uint8 type (0x08) is supported. */
export function parseIdx(bytes: Uint8Array, source = 'IDX data'): IdxArray {
  let raw = bytes;
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      raw = gunzipSync(bytes);
    } catch (err) {
      throw new IdxError(`${source}: corrupt gzip stream (${(err as Error).message})`);
    }
  }
  if (raw.length < 4 || raw[0] !== 0 || raw[1] !== 0) throw new IdxError(`${source}: not an IDX file (bad magic)`);
  if (raw[2] !== 0x08) throw new IdxError(`${source}: unsupported IDX type 0x${(raw[2] as number).toString(16)} (expected 0x08, uint8)`);
  const nd = raw[3] as number;
  if (raw.length < 4 + 4 * nd) throw new IdxError(`${source}: truncated IDX header`);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const dims: number[] = [];
  for (let d = 0; d < nd; d++) dims.push(view.getUint32(4 + 4 * d, false));
  const start = 4 + 4 * nd;
  const size = dims.reduce((a, b) => a * b, 1);
  if (raw.length < start + size) throw new IdxError(`${source}: truncated (needs ${size} data bytes for dims [${dims.join(', ')}], has ${raw.length - start})`);
  return { dims, data: raw.slice(start, start + size) };
}

export function readIdx(path: string): IdxArray {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new IdxError(`${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return parseIdx(bytes, path);
}

/** Serialises a uint8 array as IDX, gzip-compressed (level 9) unless `gzip` is false. */
export function serializeIdx(a: IdxArray, gzip = true): Uint8Array {
  const size = a.dims.reduce((x, y) => x * y, 1);
  if (size !== a.data.length) throw new IdxError(`IDX dims [${a.dims.join(', ')}] need ${size} bytes, got ${a.data.length}`);
  const out = new Uint8Array(4 + 4 * a.dims.length + size);
  out.set([0, 0, 0x08, a.dims.length]);
  const view = new DataView(out.buffer);
  a.dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(a.data, 4 + 4 * a.dims.length);
  return gzip ? gzipSync(out, { level: 9 }) : out;
}
