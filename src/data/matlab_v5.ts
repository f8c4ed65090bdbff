// A reader for MATLAB Level 5 MAT-files (the format of MATLAB's `save -v6` and `-v7`, and of
// scipy.io.savemat), enough of it for dataset annotations such as Cars196's `cars_annos.mat`.
//
// Format (MathWorks, "MAT-File Format", Level 5):
//   - a 128-byte header: 116 bytes of text, 8 bytes of subsystem-data offset, the version 0x0100
//     and the endian indicator 'MI' written as a 16-bit number, so the file reads 'IM' when it
//     was written little-endian and 'MI' when big-endian; every later number is in that order;
//   - then data elements, each an 8-byte tag (type, byte count) and its data padded to 8 bytes, or
//     a "small" element whose 1–4 data bytes share the tag (byte count in the upper 16 bits of the
//     tag's first word). A variable is one miMATRIX element, or one miCOMPRESSED element holding a
//     zlib stream that inflates to the miMATRIX (v7; not padded);
//   - an miMATRIX holds array flags (class, complex, logical), dimensions, the name, then by class:
//     numeric: real part [and imaginary part], in any stored type (MATLAB stores a double holding
//     small integers as miUINT8, say) converted here to the class's type; char: the characters
//     (miUINT16/miUTF16 code units, miUTF8, miUTF32, or one byte each), column-major; cell: one
//     miMATRIX per cell; struct: field-name width, the names, then one miMATRIX per element and
//     field (elements column-major); object: a class name, then as a struct. An miMATRIX with no
//     content is an empty double [].
//
// Not supported (read as `{ kind: 'unsupported' }`, so the rest of the file still reads): sparse
// arrays, function handles, opaque objects (MATLAB strings, tables). MATLAB v4 files and v7.3
// (HDF5) files are recognised and refused with a message saying so.
import { readFileSync } from 'node:fs';
import { inflateSync } from 'node:zlib';

export class MatError extends Error {}

export type NumericClass = 'double' | 'single' | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64';
export type NumericData =
  Float64Array | Float32Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | BigInt64Array | BigUint64Array;

export interface MatNumeric {
  kind: 'numeric';
  class: NumericClass;
  /** MATLAB's dimensions (at least 2), e.g. [1, 1] for a scalar. */
  dims: number[];
  /** The array's own MATLAB logical flag (stored as uint8). */
  logical: boolean;
  /** Column-major values, in the class's type. */
  real: NumericData;
  imag: NumericData | null;
}

export interface MatChar {
  kind: 'char';
  dims: number[];
  /** All characters, column-major (for a 1×n array: the string). */
  chars: string;
}

export interface MatCell {
  kind: 'cell';
  dims: number[];
  /** Column-major. */
  cells: MatValue[];
}

export interface MatStruct {
  kind: 'struct';
  dims: number[];
  fields: string[];
  /** One map per element, column-major. */
  elements: Map<string, MatValue>[];
  /** The class name of a MATLAB object (mxOBJECT_CLASS), else undefined. */
  className?: string;
}

export interface MatUnsupported {
  kind: 'unsupported';
  dims: number[];
  /** What it is, e.g. 'sparse array'. */
  what: string;
}

export type MatValue = MatNumeric | MatChar | MatCell | MatStruct | MatUnsupported;

export interface MatFile {
  /** The header's descriptive text, trailing spaces and NULs removed. */
  header: string;
  littleEndian: boolean;
  /** Variables in file order. */
  variables: Map<string, MatValue>;
}

const MI = {
  INT8: 1,
  UINT8: 2,
  INT16: 3,
  UINT16: 4,
  INT32: 5,
  UINT32: 6,
  SINGLE: 7,
  DOUBLE: 9,
  INT64: 12,
  UINT64: 13,
  MATRIX: 14,
  COMPRESSED: 15,
  UTF8: 16,
  UTF16: 17,
  UTF32: 18,
} as const;

const ELEMENT_SIZE: Record<number, number> = {
  [MI.INT8]: 1,
  [MI.UINT8]: 1,
  [MI.INT16]: 2,
  [MI.UINT16]: 2,
  [MI.INT32]: 4,
  [MI.UINT32]: 4,
  [MI.SINGLE]: 4,
  [MI.DOUBLE]: 8,
  [MI.INT64]: 8,
  [MI.UINT64]: 8,
  [MI.UTF8]: 1,
  [MI.UTF16]: 2,
  [MI.UTF32]: 4,
};

const NUMERIC_TYPES: readonly number[] = Object.keys(ELEMENT_SIZE).map(Number);

const NUMERIC_CLASSES: Record<number, NumericClass> = {
  6: 'double',
  7: 'single',
  8: 'int8',
  9: 'uint8',
  10: 'int16',
  11: 'uint16',
  12: 'int32',
  13: 'uint32',
  14: 'int64',
  15: 'uint64',
};

const MX_CELL = 1;
const MX_STRUCT = 2;
const MX_OBJECT = 3;
const MX_CHAR = 4;
const MX_SPARSE = 5;
const FLAG_COMPLEX = 0x800;
const FLAG_LOGICAL = 0x200;

interface Element {
  type: number;
  /** Byte range of the data in the reader's buffer. */
  start: number;
  end: number;
  /** Offset of the next element. */
  next: number;
}

/** Reads elements from one buffer (the file, or one inflated variable). */
class Reader {
  readonly view: DataView;

  constructor(
    readonly bytes: Uint8Array,
    readonly le: boolean,
    readonly what: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  fail(at: number, message: string): never {
    throw new MatError(`${this.what}: ${message} (at byte ${at})`);
  }

  u32(at: number): number {
    if (at + 4 > this.bytes.length) this.fail(at, 'truncated file');
    return this.view.getUint32(at, this.le);
  }

  /** The element whose tag starts at `at` (data padded to 8 bytes, except miCOMPRESSED's). */
  element(at: number): Element {
    const first = this.u32(at);
    if (first >>> 16 !== 0) {
      const n = first >>> 16;
      if (n > 4) this.fail(at, `small data element of ${n} bytes (at most 4)`);
      return { type: first & 0xffff, start: at + 4, end: at + 4 + n, next: at + 8 };
    }
    const n = this.u32(at + 4);
    const start = at + 8;
    const end = start + n;
    if (end > this.bytes.length) this.fail(at, `truncated file: an element of ${n} bytes runs past the end (${this.bytes.length} bytes)`);
    const next = first === MI.COMPRESSED ? end : start + Math.ceil(n / 8) * 8;
    return { type: first, start, end, next: Math.min(next, this.bytes.length) };
  }

  expect(at: number, limit: number, types: readonly number[], what: string): Element {
    if (at >= limit) this.fail(at, `missing ${what}`);
    const e = this.element(at);
    if (!types.includes(e.type)) this.fail(at, `expected ${what}, found an element of type ${e.type}`);
    if (e.end > limit) this.fail(at, `${what} runs past the end of its array`);
    return e;
  }

  /** The number of values of a numeric data element. */
  count(e: Element): number {
    const size = ELEMENT_SIZE[e.type];
    if (size === undefined) this.fail(e.start - 8, `data element of type ${e.type} is not numeric`);
    const bytes = e.end - e.start;
    if (bytes % size !== 0) this.fail(e.start, `${bytes} bytes is not a whole number of ${size}-byte values`);
    return bytes / size;
  }

  /** Value i of a numeric data element (64-bit integers as bigint). */
  at(e: Element, i: number): number | bigint {
    const v = this.view;
    const s = e.start;
    switch (e.type) {
      case MI.INT8:
        return v.getInt8(s + i);
      case MI.UINT8:
      case MI.UTF8:
        return v.getUint8(s + i);
      case MI.INT16:
        return v.getInt16(s + 2 * i, this.le);
      case MI.UINT16:
      case MI.UTF16:
        return v.getUint16(s + 2 * i, this.le);
      case MI.INT32:
        return v.getInt32(s + 4 * i, this.le);
      case MI.UINT32:
      case MI.UTF32:
        return v.getUint32(s + 4 * i, this.le);
      case MI.SINGLE:
        return v.getFloat32(s + 4 * i, this.le);
      case MI.DOUBLE:
        return v.getFloat64(s + 8 * i, this.le);
      case MI.INT64:
        return v.getBigInt64(s + 8 * i, this.le);
      default:
        return v.getBigUint64(s + 8 * i, this.le);
    }
  }

  ints(e: Element): number[] {
    const n = this.count(e);
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) out[i] = Number(this.at(e, i));
    return out;
  }

  ascii(e: Element): string {
    let s = '';
    for (let i = e.start; i < e.end; i++) {
      const c = this.bytes[i] as number;
      if (c === 0) break;
      s += String.fromCharCode(c);
    }
    return s;
  }
}

function numericArray(cls: NumericClass, r: Reader, e: Element, count: number): NumericData {
  const n = r.count(e);
  if (n !== count) r.fail(e.start, `${n} values for an array of ${count} elements`);
  if (cls === 'int64' || cls === 'uint64') {
    const out = cls === 'int64' ? new BigInt64Array(n) : new BigUint64Array(n);
    for (let i = 0; i < n; i++) {
      const x = r.at(e, i);
      out[i] = typeof x === 'bigint' ? x : BigInt(Math.trunc(x));
    }
    return out;
  }
  const out = new NUMERIC_ARRAYS[cls](n);
  for (let i = 0; i < n; i++) out[i] = Number(r.at(e, i));
  return out;
}

const NUMERIC_ARRAYS = {
  double: Float64Array,
  single: Float32Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
} as const;

const UTF8 = new TextDecoder('utf-8');

function charData(r: Reader, e: Element): string {
  if (e.type === MI.UTF8) return UTF8.decode(r.bytes.subarray(e.start, e.end));
  const n = r.count(e);
  let s = '';
  if (e.type === MI.UTF32) {
    for (let i = 0; i < n; i++) s += String.fromCodePoint(Number(r.at(e, i)));
    return s;
  }
  // miUINT16 / miUTF16: UTF-16 code units; miUINT8 / miINT8: one byte per character.
  const codes: number[] = [];
  for (let i = 0; i < n; i++) codes.push(Number(r.at(e, i)) & 0xffff);
  for (let i = 0; i < codes.length; i += 8192) s += String.fromCharCode(...codes.slice(i, i + 8192));
  return s;
}

const product = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

/** Parses the miMATRIX whose data is bytes [start, end) of `r`. */
function matrix(r: Reader, start: number, end: number, depth: number): { name: string; value: MatValue } {
  if (depth > 64) r.fail(start, 'arrays nested more than 64 deep');
  if (end === start) return { name: '', value: { kind: 'numeric', class: 'double', dims: [0, 0], logical: false, real: new Float64Array(0), imag: null } };
  const flagsEl = r.expect(start, end, [MI.UINT32], 'array flags');
  const flags = r.ints(flagsEl);
  const word = flags[0] ?? 0;
  const mxClass = word & 0xff;
  const dimsEl = r.expect(flagsEl.next, end, [MI.INT32], 'dimensions');
  const dims = r.ints(dimsEl);
  if (dims.length < 2 || dims.some((d) => d < 0)) r.fail(dimsEl.start, `bad dimensions [${dims.join(', ')}]`);
  const nameEl = r.expect(dimsEl.next, end, [MI.INT8, MI.UINT8], 'array name');
  const name = r.ascii(nameEl);
  let at = nameEl.next;
  const count = product(dims);
  const sub = (what: string): { name: string; value: MatValue } => {
    const e = r.expect(at, end, [MI.MATRIX], what);
    at = e.next;
    return matrix(r, e.start, e.end, depth + 1);
  };
  const numeric = NUMERIC_CLASSES[mxClass];
  if (numeric) {
    const realEl = r.expect(at, end, NUMERIC_TYPES, 'real part');
    const real = numericArray(numeric, r, realEl, count);
    let imag: NumericData | null = null;
    if (word & FLAG_COMPLEX) {
      const imagEl = r.expect(realEl.next, end, NUMERIC_TYPES, 'imaginary part');
      imag = numericArray(numeric, r, imagEl, count);
    }
    return { name, value: { kind: 'numeric', class: numeric, dims, logical: (word & FLAG_LOGICAL) !== 0, real, imag } };
  }
  switch (mxClass) {
    case MX_CHAR: {
      if (at >= end) return { name, value: { kind: 'char', dims, chars: '' } };
      const e = r.expect(at, end, [MI.UINT16, MI.UTF16, MI.UTF8, MI.UTF32, MI.UINT8, MI.INT8], 'character data');
      return { name, value: { kind: 'char', dims, chars: charData(r, e) } };
    }
    case MX_CELL: {
      const cells: MatValue[] = [];
      for (let i = 0; i < count; i++) cells.push(sub(`cell ${i + 1} of ${count}`).value);
      return { name, value: { kind: 'cell', dims, cells } };
    }
    case MX_STRUCT:
    case MX_OBJECT: {
      let className: string | undefined;
      if (mxClass === MX_OBJECT) {
        const c = r.expect(at, end, [MI.INT8, MI.UINT8], 'object class name');
        className = r.ascii(c);
        at = c.next;
      }
      const widthEl = r.expect(at, end, [MI.INT32], 'field name length');
      const width = r.ints(widthEl)[0] ?? 0;
      const namesEl = r.expect(widthEl.next, end, [MI.INT8, MI.UINT8], 'field names');
      at = namesEl.next;
      const bytes = namesEl.end - namesEl.start;
      if (width <= 0 ? bytes !== 0 : bytes % width !== 0) r.fail(namesEl.start, `${bytes} bytes of field names of width ${width}`);
      const fields: string[] = [];
      for (let f = 0; width > 0 && f < bytes / width; f++) {
        const s = namesEl.start + f * width;
        fields.push(r.ascii({ type: MI.INT8, start: s, end: s + width, next: 0 }));
      }
      const elements: Map<string, MatValue>[] = [];
      for (let i = 0; i < count; i++) {
        const m = new Map<string, MatValue>();
        for (const f of fields) m.set(f, sub(`field '${f}' of element ${i + 1}`).value);
        elements.push(m);
      }
      const value: MatStruct = { kind: 'struct', dims, fields, elements };
      if (className !== undefined) value.className = className;
      return { name, value };
    }
    case MX_SPARSE:
      return { name, value: { kind: 'unsupported', dims, what: 'sparse array' } };
    case 16:
      return { name, value: { kind: 'unsupported', dims, what: 'function handle' } };
    case 17:
      return { name, value: { kind: 'unsupported', dims, what: 'opaque object (e.g. a MATLAB string or table)' } };
    default:
      return { name, value: { kind: 'unsupported', dims, what: `array of class ${mxClass}` } };
  }
}

/** Parses a whole MAT-file held in memory; `what` names it in errors. */
export function parseMat(bytes: Uint8Array, what = 'MAT-file'): MatFile {
  const text = (a: number, b: number): string => String.fromCharCode(...bytes.subarray(a, Math.min(b, bytes.length)));
  if (bytes.length >= 8 && text(0, 8) === '\x89HDF\r\n\x1a\n')
    throw new MatError(`${what}: an HDF5 file (MATLAB v7.3), not a v5 MAT-file; save it with save(..., '-v7')`);
  if (bytes.length < 128) throw new MatError(`${what}: not a MATLAB v5 MAT-file (${bytes.length} bytes, shorter than the 128-byte header)`);
  const indicator = text(126, 128);
  if (indicator !== 'IM' && indicator !== 'MI') {
    const hint =
      text(0, 19) === 'MATLAB 7.3 MAT-file'
        ? ' (a MATLAB v7.3 HDF5 file; save it with -v7)'
        : text(0, 6) === 'MATLAB'
          ? ''
          : ' (a MATLAB v4 file or not a MAT-file at all)';
    throw new MatError(`${what}: not a MATLAB v5 MAT-file: no endian indicator 'IM' or 'MI' at bytes 126–127${hint}`);
  }
  const le = indicator === 'IM';
  const header = text(0, 116).replace(/[\s\0]+$/, '');
  if (header.startsWith('MATLAB 7.3')) throw new MatError(`${what}: a MATLAB v7.3 (HDF5) file, not a v5 MAT-file; save it with save(..., '-v7')`);
  const r = new Reader(bytes, le, what);
  const version = new DataView(bytes.buffer, bytes.byteOffset + 124, 2).getUint16(0, le);
  if (version !== 0x0100) r.fail(124, `unknown MAT-file version 0x${version.toString(16)} (expected 0x0100)`);
  const variables = new Map<string, MatValue>();
  let at = 128;
  while (at + 8 <= bytes.length) {
    const e = r.element(at);
    if (e.type === MI.COMPRESSED) {
      let inflated: Uint8Array;
      try {
        inflated = inflateSync(bytes.subarray(e.start, e.end));
      } catch (err) {
        throw new MatError(`${what}: corrupt compressed variable (${err instanceof Error ? err.message : String(err)}) (at byte ${at})`);
      }
      const ir = new Reader(inflated, le, `${what} (compressed variable at byte ${at})`);
      const m = ir.element(0);
      if (m.type !== MI.MATRIX) ir.fail(0, `expected an miMATRIX, found an element of type ${m.type}`);
      const { name, value } = matrix(ir, m.start, m.end, 0);
      if (name) variables.set(name, value);
    } else if (e.type === MI.MATRIX) {
      const { name, value } = matrix(r, e.start, e.end, 0);
      if (name) variables.set(name, value);
    }
    // Other top-level elements carry nothing a reader needs; skip them.
    at = e.next;
  }
  return { header, littleEndian: le, variables };
}

/** Reads and parses a MAT-file. */
export function readMat(path: string): MatFile {
  return parseMat(readFileSync(path), path);
}

// ---------------------------------------------------------------- accessors

function describe(v: MatValue): string {
  return v.kind === 'numeric' ? `${v.class} array [${v.dims.join('×')}]` : `${v.kind} array [${v.dims.join('×')}]`;
}

/** A variable of the file, or a MatError naming what is there instead. */
export function matVariable(f: MatFile, name: string, what = 'MAT-file'): MatValue {
  const v = f.variables.get(name);
  if (!v) throw new MatError(`${what}: no variable '${name}' (found: ${[...f.variables.keys()].join(', ') || 'none'})`);
  return v;
}

/** The rows of a char array (a 1×n array is one string; an empty one is ['']). */
export function matCharRows(v: MatValue, what = 'value'): string[] {
  if (v.kind !== 'char') throw new MatError(`${what}: expected a char array, found a ${describe(v)}`);
  const [m = 0, ...rest] = v.dims;
  const n = product(rest);
  if (m === 0 || n === 0) return [''];
  const chars = [...v.chars];
  if (chars.length !== m * n) return [v.chars]; // multi-unit characters: keep the text as stored
  return Array.from({ length: m }, (_, i) => Array.from({ length: n }, (_, j) => chars[i + j * m]).join(''));
}

/** A char array holding one string (1×n, n×1 or empty). */
export function matString(v: MatValue, what = 'value'): string {
  const rows = matCharRows(v, what);
  if (rows.length === 1) return rows[0] as string;
  if (v.dims[1] === 1) return rows.join('');
  throw new MatError(`${what}: expected one string, found a ${describe(v)}`);
}

/** The real values of a numeric array as numbers (64-bit integers must be exactly representable). */
export function matNumbers(v: MatValue, what = 'value'): number[] {
  if (v.kind !== 'numeric') throw new MatError(`${what}: expected a numeric array, found a ${describe(v)}`);
  return Array.from(v.real as ArrayLike<number | bigint>, (x) => {
    if (typeof x !== 'bigint') return x;
    const n = Number(x);
    if (!Number.isSafeInteger(n)) throw new MatError(`${what}: ${x} cannot be represented exactly as a number`);
    return n;
  });
}

/** The single real value of a numeric 1×1 array. */
export function matScalar(v: MatValue, what = 'value'): number {
  const xs = matNumbers(v, what);
  if (xs.length !== 1) throw new MatError(`${what}: expected one number, found a ${describe(v)}`);
  return xs[0] as number;
}

/** Field `field` of element `index` (0-based, column-major) of a struct array. */
export function matField(v: MatValue, index: number, field: string, what = 'value'): MatValue {
  if (v.kind !== 'struct') throw new MatError(`${what}: expected a struct array, found a ${describe(v)}`);
  if (!v.fields.includes(field)) throw new MatError(`${what}: no field '${field}' (fields: ${v.fields.join(', ') || 'none'})`);
  const e = v.elements[index];
  if (!e) throw new MatError(`${what}: element ${index} is out of range [0, ${v.elements.length})`);
  return e.get(field) as MatValue;
}
