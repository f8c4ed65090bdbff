// PyTorch checkpoints (torch.save) read without Python: the zip format of PyTorch >= 1.6
// (`<archive>/data.pkl`, one record per storage under `<archive>/data/`, an optional `byteorder`)
// and the legacy format (a magic-number pickle, the protocol version, sys_info, the main pickle,
// the sorted list of storage keys, then each storage as an 8-byte element count and its bytes,
// little-endian: torch/serialization.py `_legacy_load`, `_legacy_save`). The pickles run on
// torch_pickle.ts, which builds data only and refuses every global outside its table.
//
// Tensors are rebuilt as PyTorch does (`torch._utils._rebuild_tensor_v2`: storage, offset, size,
// stride) and copied out in C order, so a transposed or sliced view comes out as the tensor it is;
// tensors sharing a storage read it once. Storages are read lazily from the open file, so
// selecting one entry (`key`) of a large checkpoint reads only that entry's storages.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { type HostData, type HostDType, type HostTensor, numel } from './host_tensor.ts';
import {
  type GlobalDef,
  PickleRefused,
  PickleTruncated,
  PyDict,
  PyExternal,
  PyFloat,
  PyGlobal,
  PyTuple,
  type PyValue,
  typeName,
  unpickle,
} from './torch_pickle.ts';
import { type ZipEntry, ZipError, ZipReader } from './zip.ts';

export class TorchCheckpointError extends UserError {}

interface DtypeInfo {
  /** PyTorch's name, e.g. 'float32'. */
  name: string;
  size: number;
  /** The host dtype it is read as; undefined where hardneg has none (int8, int16, complex). */
  host?: HostDType;
}

const DTYPES: Record<string, DtypeInfo> = {
  float32: { name: 'float32', size: 4, host: 'F32' },
  float64: { name: 'float64', size: 8, host: 'F64' },
  float16: { name: 'float16', size: 2, host: 'F16' },
  bfloat16: { name: 'bfloat16', size: 2, host: 'BF16' },
  int64: { name: 'int64', size: 8, host: 'I64' },
  int32: { name: 'int32', size: 4, host: 'I32' },
  uint8: { name: 'uint8', size: 1, host: 'U8' },
  bool: { name: 'bool', size: 1, host: 'BOOL' },
  int16: { name: 'int16', size: 2 },
  int8: { name: 'int8', size: 1 },
  complex32: { name: 'complex32', size: 4 },
  complex64: { name: 'complex64', size: 8 },
  complex128: { name: 'complex128', size: 16 },
};
const DTYPE_ALIASES: Record<string, string> = {
  float: 'float32',
  double: 'float64',
  half: 'float16',
  long: 'int64',
  int: 'int32',
  short: 'int16',
  chalf: 'complex32',
  cfloat: 'complex64',
  cdouble: 'complex128',
};
/** torch.<X>Storage (the storage type torch.save names in each persistent id) → dtype. */
const STORAGE_TYPES: Record<string, string> = {
  FloatStorage: 'float32',
  DoubleStorage: 'float64',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
  ComplexHalfStorage: 'complex32',
  ComplexFloatStorage: 'complex64',
  ComplexDoubleStorage: 'complex128',
};
/** Untyped storages (bytes): their numel counts bytes; a tensor over one gives its own dtype. */
const UNTYPED_STORAGES = new Set(['torch.UntypedStorage', 'torch.storage.UntypedStorage', 'torch._UntypedStorage', 'torch.storage._UntypedStorage']);

const READ_DTYPES = Object.values(DTYPES)
  .filter((d) => d.host)
  .map((d) => d.name)
  .join(', ');

/** The dtype a global names: torch.float32 (and its aliases), or a storage type's. */
function dtypeOfGlobal(g: PyValue): DtypeInfo | undefined {
  if (!(g instanceof PyGlobal)) return undefined;
  const [mod, name] = [g.qualname.slice(0, g.qualname.lastIndexOf('.')), g.qualname.slice(g.qualname.lastIndexOf('.') + 1)];
  if (UNTYPED_STORAGES.has(g.qualname)) return DTYPES.uint8;
  if (mod !== 'torch') return undefined;
  const storage = STORAGE_TYPES[name];
  if (storage) return DTYPES[storage];
  return DTYPES[DTYPE_ALIASES[name] ?? name];
}

/** The bytes of one storage as saved: read once, on first use, into an aligned buffer. */
class RootStorage {
  private bytes: Uint8Array | undefined;
  constructor(
    readonly key: string,
    readonly dtype: DtypeInfo,
    readonly numel: number,
    private readonly load: () => Uint8Array,
  ) {}
  data(): Uint8Array {
    this.bytes ??= this.load();
    return this.bytes;
  }
}

/** A storage as a tensor sees it: a root storage, or (legacy files) a view into one. */
export class TorchStorage extends PyExternal {
  constructor(
    readonly root: RootStorage,
    readonly dtype: DtypeInfo,
    readonly byteOffset: number,
    readonly byteLength: number,
  ) {
    super();
  }
  describe(): string {
    return `${this.dtype.name} storage`;
  }
}

/** A tensor as torch.save describes it; `materialise` copies it out in C order. */
export class TorchTensor extends PyExternal {
  constructor(
    readonly storage: TorchStorage,
    readonly dtype: DtypeInfo,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {
    super();
  }
  describe(): string {
    return `tensor ${this.dtype.name}[${this.shape.join(', ')}]`;
  }
}

function counts(v: PyValue, what: string, fail: (w: string) => never): number[] {
  const items = v instanceof PyTuple ? v.items : Array.isArray(v) ? v : null;
  if (items === null || !items.every((x): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)) {
    return fail(`a tensor's ${what} is ${typeName(v)}, expected a tuple of non-negative integers`);
  }
  return items;
}

function rebuildTensor(args: PyValue[], dtypeArg: PyValue | undefined, fail: (w: string) => never): TorchTensor {
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof TorchStorage)) return fail(`a tensor is rebuilt from a ${typeName(storage ?? null)}, expected a storage`);
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0)
    return fail('a tensor has a storage offset that is not a non-negative integer');
  const shape = counts(size ?? null, 'size', fail);
  const strides = counts(stride ?? null, 'stride', fail);
  if (shape.length !== strides.length) fail(`a tensor has ${shape.length} sizes but ${strides.length} strides`);
  let dtype = storage.dtype;
  if (dtypeArg !== undefined) {
    const d = dtypeOfGlobal(dtypeArg);
    if (!d) return fail(`a tensor's dtype is ${typeName(dtypeArg)}, not a torch dtype`);
    dtype = d;
  }
  return new TorchTensor(storage, dtype, offset, shape, strides);
}

function asTensor(v: PyValue | undefined, fail: (w: string) => never): TorchTensor {
  if (!(v instanceof TorchTensor)) return fail(`a parameter wraps a ${typeName(v ?? null)}, expected a tensor`);
  return v;
}

/** PyTorch's tensor rebuilders, storage types and dtypes: all the globals torch.save writes. */
function torchGlobals(): Map<string, GlobalDef> {
  const g = new Map<string, GlobalDef>([
    ['torch._utils._rebuild_tensor', { call: (a, fail) => rebuildTensor(a, undefined, fail) }],
    ['torch._utils._rebuild_tensor_v2', { call: (a, fail) => rebuildTensor(a, undefined, fail) }],
    ['torch._utils._rebuild_tensor_v3', { call: (a, fail) => rebuildTensor(a, a[6] ?? null, fail) }],
    ['torch._utils._rebuild_parameter', { call: (a, fail) => asTensor(a[0], fail) }],
    ['torch._utils._rebuild_parameter_with_state', { call: (a, fail) => asTensor(a[0], fail) }],
    [
      // Tensor subclasses: _rebuild_from_type_v2(func, new_type, args, state) → func(*args).
      'torch._tensor._rebuild_from_type_v2',
      {
        call: (a, fail) => {
          const [func, , args] = a;
          if (!(func instanceof PyGlobal) || !func.def.call || !(args instanceof PyTuple)) return fail('damaged tensor subclass record');
          return func.def.call(args.items, fail);
        },
      },
    ],
    [
      'torch._tensor._rebuild_from_type',
      { call: (a, fail) => asTensor(a[0] instanceof PyGlobal && a[2] instanceof PyTuple ? (a[0].def.call?.(a[2].items, fail) ?? null) : null, fail) },
    ],
    ['torch.Tensor', {}],
    ['torch._tensor.Tensor', {}],
    ['torch.nn.parameter.Parameter', {}],
    ['torch.Size', { call: (a) => (a[0] instanceof PyTuple ? a[0] : new PyTuple(Array.isArray(a[0]) ? a[0] : [])) }],
    ['torch.device', { call: (a) => a.map((x) => String(x)).join(':') }],
  ]);
  for (const name of [...Object.keys(STORAGE_TYPES), ...Object.keys(DTYPES), ...Object.keys(DTYPE_ALIASES)]) g.set(`torch.${name}`, {});
  for (const name of UNTYPED_STORAGES) g.set(name, {});
  return g;
}

const TORCH_GLOBALS = torchGlobals();

/** Reads `length` bytes at `position` into a fresh (aligned) buffer. */
function readAt(fd: number, position: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done === length ? out : out.subarray(0, done);
}

export type CheckpointFormat = 'zip' | 'legacy';

/** An open checkpoint: its object tree, with storages read from the file on demand. */
export interface TorchCheckpoint {
  format: CheckpointFormat;
  root: PyValue;
  /** Storages are stored big-endian (a `byteorder` record saying 'big'). */
  bigEndian: boolean;
  close(): void;
}

const MAGIC_NUMBER = 0x1950a86a20f9469cfc6cn;
const PROTOCOL_VERSION = 1001;

/** What the first bytes say a file is. */
export function sniffFormat(head: Uint8Array): CheckpointFormat | 'safetensors' | 'tar' | 'unknown' {
  if (head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) return 'zip';
  if (head.length >= 262 && new TextDecoder('latin1').decode(head.subarray(257, 262)) === 'ustar') return 'tar';
  if (head[0] === 0x80 && (head[1] as number) >= 2 && (head[1] as number) <= 5) return 'legacy';
  if (head.length >= 10 && head[8] === 0x7b && head[0] !== 0x80) {
    const n = new DataView(head.buffer, head.byteOffset, head.byteLength).getBigUint64(0, true);
    if (n > 0n && n < 100_000_000n) return 'safetensors';
  }
  return 'unknown';
}

function storageId(pid: PyValue, fail: (w: string) => never): PyValue[] {
  if (!(pid instanceof PyTuple) || pid.items.length < 1) return fail('damaged checkpoint (a persistent id is not a tuple)');
  let typename = pid.items[0];
  if (typename instanceof Uint8Array) typename = new TextDecoder('latin1').decode(typename);
  if (typename !== 'storage') return fail(`damaged checkpoint (persistent id of kind ${JSON.stringify(typename)}, expected 'storage')`);
  return pid.items.slice(1);
}

/** The root storage for `key`, made once and shared by every tensor that names it. */
function storageFor(
  roots: Map<string, RootStorage>,
  key: PyValue,
  typeArg: PyValue,
  count: PyValue,
  fail: (w: string) => never,
  load: (key: string, nbytes: number) => Uint8Array,
): RootStorage {
  if (typeof key !== 'string' && typeof key !== 'number') return fail('damaged checkpoint (a storage key is not a string)');
  const dtype = dtypeOfGlobal(typeArg);
  if (!dtype) return fail(`damaged checkpoint (storage type ${typeName(typeArg)})`);
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) return fail(`damaged checkpoint (storage '${key}' has size ${String(count)})`);
  const k = String(key);
  const known = roots.get(k);
  if (known) {
    if (known.dtype !== dtype || known.numel !== count) fail(`damaged checkpoint (storage '${k}' is declared twice, differently)`);
    return known;
  }
  const root = new RootStorage(k, dtype, count, () => load(k, count * dtype.size));
  roots.set(k, root);
  return root;
}

function openZip(path: string, source: string): TorchCheckpoint {
  const zip = new ZipReader(path, source);
  try {
    const fail = (what: string): never => {
      throw new TorchCheckpointError(`${source}: ${what}`);
    };
    const pickles = [...zip.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
    const first = pickles[0];
    if (first === undefined) fail('a zip archive without <archive>/data.pkl: not a torch.save checkpoint');
    const prefix = (first as string).slice(0, -'/data.pkl'.length);
    if (zip.entries.has(`${prefix}/constants.pkl`) || [...zip.entries.keys()].some((n) => n.startsWith(`${prefix}/code/`))) {
      fail('a TorchScript archive (torch.jit.save), not a state dict; save model.state_dict() with torch.save');
    }
    let bigEndian = false;
    const order = zip.entries.get(`${prefix}/byteorder`);
    if (order) {
      const text = new TextDecoder().decode(zip.readEntry(order)).trim();
      if (text !== 'little' && text !== 'big') fail(`byteorder record says '${text.slice(0, 20)}', expected little or big`);
      bigEndian = text === 'big';
    }
    const roots = new Map<string, RootStorage>();
    const load = (key: string, nbytes: number): Uint8Array => {
      const entry = zip.entries.get(`${prefix}/data/${key}`);
      if (!entry) return fail(`storage '${key}' is missing (no record ${prefix}/data/${key})`);
      if (entry.size !== nbytes) fail(`storage '${key}' holds ${entry.size} bytes, the pickle declares ${nbytes}`);
      return zip.readEntry(entry);
    };
    const pickle = zip.readEntry(zip.entries.get(first as string) as ZipEntry);
    const { value } = unpickle(pickle, 0, {
      source,
      globals: TORCH_GLOBALS,
      persistentLoad: (pid, pfail) => {
        const [typeArg, key, , count] = storageId(pid, pfail);
        const root = storageFor(roots, key ?? null, typeArg ?? null, count ?? null, pfail, load);
        return new TorchStorage(root, root.dtype, 0, root.numel * root.dtype.size);
      },
    });
    return { format: 'zip', root: value, bigEndian, close: () => zip.close() };
  } catch (err) {
    zip.close();
    throw err;
  }
}

function openLegacy(path: string, source: string): TorchCheckpoint {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const fail = (what: string): never => {
      throw new TorchCheckpointError(`${source}: ${what}`);
    };
    // The pickles come first and are small next to the storages: read a first part of the file,
    // and more whenever a pickle runs past it.
    for (let chunk = Math.min(size, 1 << 20); ; chunk = Math.min(size, chunk * 4)) {
      const head = readAt(fd, 0, chunk);
      try {
        const opts = { source, globals: TORCH_GLOBALS };
        let r;
        try {
          r = unpickle(head, 0, opts);
        } catch (err) {
          // A refused global is worth naming even in a file that is not torch.save's.
          if (err instanceof PickleTruncated || err instanceof PickleRefused) throw err;
          return fail('not a PyTorch checkpoint (neither a zip archive nor a legacy torch.save file)');
        }
        if (r.value !== MAGIC_NUMBER) fail('not a PyTorch checkpoint (a pickle, but without the legacy torch.save magic number)');
        r = unpickle(head, r.end, opts);
        if (r.value !== PROTOCOL_VERSION) fail(`legacy torch.save protocol ${String(r.value)}, expected ${PROTOCOL_VERSION}`);
        r = unpickle(head, r.end, opts); // sys_info: byte order and C type sizes; the data is little-endian whatever it says
        const roots = new Map<string, RootStorage>();
        const dataAt = new Map<string, number>();
        const load = (key: string, nbytes: number): Uint8Array => {
          const at = dataAt.get(key) as number;
          const bytes = readAt(fd, at, nbytes);
          if (bytes.length !== nbytes) fail(`truncated (storage '${key}' needs bytes ${at}–${at + nbytes} of ${size})`);
          return bytes;
        };
        const main = unpickle(head, r.end, {
          ...opts,
          persistentLoad: (pid, pfail) => {
            const [typeArg, key, , count, view] = storageId(pid, pfail);
            const root = storageFor(roots, key ?? null, typeArg ?? null, count ?? null, pfail, load);
            if (view === null || view === undefined) return new TorchStorage(root, root.dtype, 0, root.numel * root.dtype.size);
            // (view_key, offset, view_size): a view into the root storage (PyTorch < 0.4).
            const [, offset, viewSize] = view instanceof PyTuple ? view.items : [];
            if (typeof offset !== 'number' || typeof viewSize !== 'number' || offset < 0 || viewSize < 0 || offset + viewSize > root.numel) {
              return pfail(`damaged checkpoint (storage view ${typeName(view)} outside storage '${root.key}')`);
            }
            return new TorchStorage(root, root.dtype, offset * root.dtype.size, viewSize * root.dtype.size);
          },
        });
        const keys = unpickle(head, main.end, opts);
        if (!Array.isArray(keys.value) || !keys.value.every((k) => typeof k === 'string'))
          fail('damaged checkpoint (the list of storage keys is not a list of strings)');
        // Each storage: an 8-byte little-endian element count, then its bytes.
        let pos = keys.end;
        for (const key of keys.value as string[]) {
          const root = roots.get(key);
          if (!root) fail(`damaged checkpoint (storage '${key}' is listed but no tensor uses it)`);
          const header = readAt(fd, pos, 8);
          if (header.length < 8) fail(`truncated (storage '${key}' should start at byte ${pos} of ${size})`);
          const n = new DataView(header.buffer).getBigInt64(0, true);
          if (n !== BigInt((root as RootStorage).numel))
            fail(`damaged checkpoint (storage '${key}' holds ${n} elements, the pickle declares ${(root as RootStorage).numel})`);
          dataAt.set(key, pos + 8);
          pos += 8 + (root as RootStorage).numel * (root as RootStorage).dtype.size;
          if (pos > size) fail(`truncated (storage '${key}' ends at byte ${pos}, the file has ${size})`);
        }
        for (const key of roots.keys()) if (!dataAt.has(key)) fail(`damaged checkpoint (storage '${key}' is not in the file's list of storages)`);
        return { format: 'legacy', root: main.value, bigEndian: false, close: () => closeSync(fd) };
      } catch (err) {
        if (err instanceof PickleTruncated && chunk < size) continue;
        throw err;
      }
    }
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

function headOf(path: string): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    return readAt(fd, 0, 512);
  } finally {
    closeSync(fd);
  }
}

/**
 * Opens a torch.save file (either format) and runs its pickle. The tree holds TorchTensor values
 * whose data is read only by materialise(); close() when done.
 */
export function openTorchCheckpoint(path: string, source = path): TorchCheckpoint {
  const head = headOf(path);
  if (head.length === 0) throw new TorchCheckpointError(`${source}: empty file`);
  const kind = sniffFormat(head);
  try {
    if (kind === 'zip') return openZip(path, source);
    if (kind === 'tar')
      throw new TorchCheckpointError(`${source}: a tar-format checkpoint (PyTorch < 0.4), which is not read; re-save it with a newer torch.save`);
    if (kind === 'safetensors') throw new TorchCheckpointError(`${source}: a safetensors file, not a torch.save checkpoint`);
    return openLegacy(path, source);
  } catch (err) {
    if (err instanceof ZipError) throw new TorchCheckpointError(err.message);
    throw err;
  }
}

/** A byte-aligned copy viewed as the host dtype's array (no further copy). */
function hostData(dtype: HostDType, bytes: Uint8Array): HostData {
  const b = bytes.buffer as ArrayBuffer;
  switch (dtype) {
    case 'F32':
      return new Float32Array(b, 0, bytes.length / 4);
    case 'F64':
      return new Float64Array(b, 0, bytes.length / 8);
    case 'F16':
    case 'BF16':
      return new Uint16Array(b, 0, bytes.length / 2);
    case 'I64':
      return new BigInt64Array(b, 0, bytes.length / 8);
    case 'I32':
      return new Int32Array(b, 0, bytes.length / 4);
    case 'U8':
    case 'BOOL':
      return bytes;
  }
}

/** Copies `size`/`stride` elements from `src` (element 0 at byte `base`) into C order. */
function gather(src: Uint8Array, base: number, elem: number, shape: number[], stride: number[], total: number): Uint8Array {
  const out = new Uint8Array(total * elem);
  if (total === 0) return out;
  // Drop size-1 dimensions and merge neighbours that are contiguous with each other.
  const dims: Array<[number, number]> = [];
  for (let i = 0; i < shape.length; i++) {
    const size = shape[i] as number;
    const st = stride[i] as number;
    if (size === 1) continue;
    const last = dims[dims.length - 1];
    if (last && last[1] === size * st) {
      last[0] *= size;
      last[1] = st;
    } else dims.push([size, st]);
  }
  if (dims.length === 0 || (dims.length === 1 && (dims[0] as [number, number])[1] === 1)) {
    out.set(src.subarray(base, base + total * elem));
    return out;
  }
  const [innerSize, innerStride] = dims.pop() as [number, number];
  const outer = dims;
  const idx = new Array<number>(outer.length).fill(0);
  // Same-width word arrays copy an element in one or a few moves (never through a float, which
  // could change a NaN's bits); misaligned data falls back to bytes.
  const word = elem % 4 === 0 ? 4 : elem % 2 === 0 ? 2 : 1;
  const aligned = (src.byteOffset + base) % word === 0 && src.byteOffset % word === 0;
  const W = word === 4 ? Uint32Array : word === 2 ? Uint16Array : Uint8Array;
  const from = aligned ? new W(src.buffer as ArrayBuffer, src.byteOffset, Math.floor(src.byteLength / word)) : src;
  const to = aligned ? new W(out.buffer) : out;
  const k = aligned ? elem / word : elem;
  const unit = aligned ? word : 1;
  let o = 0;
  let rowStart = base;
  for (;;) {
    if (innerStride === 1) {
      out.set(src.subarray(rowStart, rowStart + innerSize * elem), o * elem);
      o += innerSize;
    } else {
      let s = rowStart / unit;
      const step = (innerStride * elem) / unit;
      let d = (o * elem) / unit;
      for (let i = 0; i < innerSize; i++, s += step) for (let j = 0; j < k; j++) to[d++] = from[s + j] as number;
      o += innerSize;
    }
    // Next row: an odometer over the outer dimensions.
    let dim = outer.length - 1;
    for (; dim >= 0; dim--) {
      const [size, st] = outer[dim] as [number, number];
      idx[dim] = (idx[dim] as number) + 1;
      rowStart += st * elem;
      if ((idx[dim] as number) < size) break;
      rowStart -= size * st * elem;
      idx[dim] = 0;
    }
    if (dim < 0) return out;
  }
}

/** Largest tensor copied out: what one typed array can hold. */
const MAX_BYTES = 2 ** 32 - 1;

/** The tensor's values in C order as a HostTensor; `name` and `source` name it in messages. */
export function materialise(t: TorchTensor, name: string, source: string, bigEndian = false): HostTensor {
  const fail = (what: string): never => {
    throw new TorchCheckpointError(`${source}: tensor '${name}' ${what}`);
  };
  const host = t.dtype.host;
  if (!host) return fail(`is ${t.dtype.name}, which hardneg does not read (it reads ${READ_DTYPES})`);
  const elem = t.dtype.size;
  const total = numel(t.shape);
  if (total * elem > MAX_BYTES) fail(`has ${total} elements, more than hardneg copies at once (${MAX_BYTES} bytes)`);
  const capacity = Math.floor(t.storage.byteLength / elem);
  if (total > 0) {
    const last = t.shape.reduce((acc, size, i) => acc + (size - 1) * (t.stride[i] as number), t.offset);
    if (last >= capacity) fail(`reaches element ${last} of its storage, which holds ${capacity} ${t.dtype.name} elements`);
  }
  const src = t.storage.root.data();
  const out = gather(src, t.storage.byteOffset + t.offset * elem, elem, t.shape, t.stride, total);
  if (bigEndian && elem > 1) {
    for (let i = 0; i < out.length; i += elem) {
      for (let a = i, b = i + elem - 1; a < b; a++, b--) {
        const x = out[a] as number;
        out[a] = out[b] as number;
        out[b] = x;
      }
    }
  }
  return { dtype: host, shape: [...t.shape], data: hostData(host, out) };
}

// ----------------------------------------------------------------------------------------------
// From an object tree to named tensors.
// ----------------------------------------------------------------------------------------------

export interface SelectOptions {
  /** Descend into this entry first (DINO: 'teacher'); a dotted path reaches nested entries. */
  key?: string;
  /** Keep only tensors whose names start with this, without it. */
  stripPrefix?: string;
}

/** An entry that is not a tensor: reported, never written. `value` is a JSON-able rendering. */
export interface NonTensorEntry {
  name: string;
  type: string;
  value?: unknown;
}

export interface StateDictFile {
  format: CheckpointFormat | 'safetensors';
  tensors: Map<string, HostTensor>;
  nonTensors: NonTensorEntry[];
  /** Tensors left out because their names lack `stripPrefix`. */
  outsidePrefix: number;
}

/**
 * A JSON-able rendering of a Python value (argparse.Namespace as a plain record), cut short after
 * `budget` values: a pickle can build huge or self-referring structures.
 */
export function plainValue(v: PyValue, budget = { left: 2000 }, path: Set<PyValue> = new Set()): unknown {
  if (--budget.left < 0) return '…';
  if (v === null || typeof v === 'boolean') return v;
  if (typeof v === 'string') return v.length > 1000 ? `${v.slice(0, 1000)}…` : v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array) return `<${v.length} bytes>`;
  if (v instanceof PyGlobal) return v.qualname;
  if (v instanceof PyFloat) return v.value;
  if (v instanceof PyExternal) return `<${v.describe()}>`;
  if (path.has(v)) return '<itself>';
  path.add(v);
  let out: unknown;
  if (Array.isArray(v)) out = v.map((x) => plainValue(x, budget, path));
  else if (v instanceof PyTuple) out = v.items.map((x) => plainValue(x, budget, path));
  else if (v instanceof PyDict) out = Object.fromEntries([...v.map].map(([k, x]) => [String(plainValue(k, budget, path)), plainValue(x, budget, path)]));
  else out = v.state instanceof PyDict ? plainValue(v.state, budget, path) : {};
  path.delete(v);
  return out;
}

function holdsTensor(v: PyValue, seen = new Set<PyValue>()): boolean {
  if (v instanceof TorchTensor) return true;
  if (!Array.isArray(v) && !(v instanceof PyTuple)) return false;
  if (seen.has(v)) return false;
  seen.add(v);
  return (Array.isArray(v) ? v : v.items).some((x) => holdsTensor(x, seen));
}

function describeNonTensor(v: PyValue): string {
  if (Array.isArray(v)) return `list of ${v.length}`;
  if (v instanceof PyTuple) return `tuple of ${v.items.length}`;
  if (v instanceof PyDict) return `${v.type} (empty)`;
  return typeName(v);
}

function keyText(k: PyValue): string | undefined {
  if (typeof k === 'string') return k;
  if (typeof k === 'number' || typeof k === 'bigint' || typeof k === 'boolean') return String(k);
  return undefined;
}

/**
 * Flattens the tree: dicts by key and lists or tuples that hold tensors by index, joined with '.'
 * (PyTorch's module naming); everything else is a non-tensor entry.
 */
export function flattenCheckpoint(
  root: PyValue,
  source: string,
  opts: SelectOptions = {},
): { tensors: Map<string, TorchTensor>; nonTensors: NonTensorEntry[]; outsidePrefix: number } {
  const fail = (what: string): never => {
    throw new TorchCheckpointError(`${source}: ${what}`);
  };
  let node = root;
  if (opts.key !== undefined) node = descend(root, opts.key, fail);
  if (!(node instanceof PyDict)) {
    const where = opts.key === undefined ? 'its top level' : `entry '${opts.key}'`;
    fail(`${where} is of type ${typeName(node)}, expected a dict of named tensors (a state dict)`);
  }
  const tensors = new Map<string, TorchTensor>();
  const nonTensors: NonTensorEntry[] = [];
  const seen = new Set<string>();
  const add = (name: string): void => {
    if (seen.has(name)) fail(`two entries are both named '${name}' once nested names are joined with '.'`);
    seen.add(name);
  };
  // Containers on the way down: a pickle can make a dict that holds itself.
  const path = new Set<PyValue>();
  const enter = (v: PyValue, name: string): void => {
    if (path.has(v)) fail(`entry '${name}' holds itself`);
    if (path.size > 100) fail(`entry '${name}' is nested more than 100 levels deep`);
    path.add(v);
  };
  const walkDict = (d: PyDict, name: string): void => {
    for (const [k, x] of d.map) {
      const text = keyText(k);
      const child = name === '' ? (text ?? '?') : `${name}.${text ?? '?'}`;
      if (text === undefined) {
        add(child);
        nonTensors.push({ name: child, type: `entry under a ${typeName(k)} key`, value: plainValue(x) });
      } else walk(x, child);
    }
  };
  const walk = (v: PyValue, name: string): void => {
    if (v instanceof TorchTensor) {
      add(name);
      tensors.set(name, v);
    } else if (v instanceof PyDict && v.map.size > 0) {
      enter(v, name);
      walkDict(v, name);
      path.delete(v);
    } else if ((Array.isArray(v) || v instanceof PyTuple) && holdsTensor(v)) {
      enter(v, name);
      (Array.isArray(v) ? v : v.items).forEach((x, i) => walk(x, `${name}.${i}`));
      path.delete(v);
    } else {
      add(name);
      nonTensors.push({ name, type: describeNonTensor(v), value: plainValue(v) });
    }
  };
  path.add(node as PyDict);
  walkDict(node as PyDict, '');
  const prefix = opts.stripPrefix;
  if (prefix === undefined || prefix === '') return { tensors, nonTensors, outsidePrefix: 0 };
  const kept = new Map<string, TorchTensor>();
  for (const [n, t] of tensors) if (n.startsWith(prefix) && n.length > prefix.length) kept.set(n.slice(prefix.length), t);
  if (kept.size === 0 && tensors.size > 0) {
    fail(
      `no tensor name starts with '${prefix}' (names are like ${[...tensors.keys()]
        .slice(0, 3)
        .map((n) => `'${n}'`)
        .join(', ')})`,
    );
  }
  return {
    tensors: kept,
    nonTensors: nonTensors.filter((e) => e.name.startsWith(prefix)).map((e) => ({ ...e, name: e.name.slice(prefix.length) })),
    outsidePrefix: tensors.size - kept.size,
  };
}

function descend(root: PyValue, key: string, fail: (w: string) => never): PyValue {
  const entries = (d: PyDict): string =>
    [...d.map.keys()]
      .map((k) => keyText(k) ?? '?')
      .slice(0, 12)
      .join(', ');
  if (root instanceof PyDict && root.map.has(key)) return root.map.get(key) as PyValue;
  // A dotted path: 'state.model' reaches {'state': {'model': …}}.
  let node = root;
  for (const part of key.split('.')) {
    if (!(node instanceof PyDict)) return fail(`has no entry '${key}': '${part}' is inside a ${typeName(node)}`);
    const next = [...node.map.keys()].find((k) => keyText(k) === part);
    if (next === undefined) return fail(`has no entry '${key}' (${node === root ? 'top-level' : 'its'} entries: ${entries(node)})`);
    node = node.map.get(next) as PyValue;
  }
  return node;
}

/**
 * Reads a torch.save checkpoint into named host tensors: the state dict (after `key`, keeping
 * `stripPrefix`), every tensor materialised in C order with its dtype, and the entries that are not
 * tensors listed. Refuses any pickle global outside PyTorch's data (a TorchCheckpointError or
 * PickleError, both UserErrors naming the file).
 */
export function readTorchCheckpoint(path: string, opts: SelectOptions = {}): StateDictFile {
  const ckpt = openTorchCheckpoint(path);
  try {
    const { tensors, nonTensors, outsidePrefix } = flattenCheckpoint(ckpt.root, path, opts);
    const out = new Map<string, HostTensor>();
    for (const [name, t] of tensors) out.set(name, materialise(t, name, path, ckpt.bigEndian));
    return { format: ckpt.format, tensors: out, nonTensors, outsidePrefix };
  } finally {
    ckpt.close();
  }
}
