// A pickle interpreter that only builds data, for the files torch.save writes (src/io/pth.ts).
//
// Python's pickle is a small stack machine whose GLOBAL and REDUCE opcodes import and call any
// function at all: torch.load(weights_only=False) on a hostile file runs whatever it names
// (os.system, builtins.eval). Here a global is looked up in a fixed table of data constructors
// (OrderedDict, argparse.Namespace, and what the caller adds: PyTorch's tensor rebuilders, storage
// types and dtypes); any other name is refused the moment it is read, before anything could be
// called, with a UserError naming it. Nothing is ever imported or executed. Protocols 1–5 are read:
// the opcodes PyTorch emits and the rest of the data-building set. Out-of-band buffers, the
// extension registry and protocol 0's quoted strings (which torch.save cannot write: its
// persistent ids need a binary protocol) are refused.
import { UserError } from '../errors.ts';

export class PickleError extends UserError {}

/** A global outside the table: named, never imported. */
export class PickleRefused extends PickleError {}

/** A pickle that ended early: the legacy-format reader reads more of the file and tries again. */
export class PickleTruncated extends PickleError {}

/** Values of the caller's own types (tensors, storages) travel through the machine unchanged. */
export abstract class PyExternal {
  abstract describe(): string;
}

export class PyTuple {
  constructor(readonly items: PyValue[]) {}
}

/** dict or collections.OrderedDict; BUILD state (a state dict's `_metadata`) goes to `attrs`. */
export class PyDict {
  readonly map = new Map<PyValue, PyValue>();
  attrs: PyValue = null;
  constructor(readonly type: string = 'dict') {}
}

/** An instance of an allowed record class (argparse.Namespace): its type and its __dict__. */
export class PyObject {
  state: PyValue = null;
  constructor(readonly type: string) {}
}

/**
 * A Python float whose value is a whole number (65536.0): kept apart from ints so reports say
 * float. Other floats are plain numbers, which no int can be.
 */
export class PyFloat {
  constructor(readonly value: number) {}
}

/** A global that the table allowed: what REDUCE (`call`) and NEWOBJ (`construct`) may do with it. */
export class PyGlobal {
  constructor(
    readonly qualname: string,
    readonly def: GlobalDef,
  ) {}
}

export type PyValue = null | boolean | number | bigint | string | Uint8Array | PyValue[] | PyTuple | PyDict | PyObject | PyGlobal | PyFloat | PyExternal;

export interface GlobalDef {
  /** REDUCE: the result of calling the global with these positional arguments. */
  call?: (args: PyValue[], fail: (what: string) => never) => PyValue;
  /** NEWOBJ: cls.__new__(cls, *args). */
  construct?: (args: PyValue[], fail: (what: string) => never) => PyValue;
}

export interface UnpickleOptions {
  /** Names the file in messages. */
  source: string;
  /** Globals beyond the built-in data constructors, by 'module.name'. */
  globals?: ReadonlyMap<string, GlobalDef>;
  /** BINPERSID / PERSID: the object a persistent id stands for. */
  persistentLoad?: (pid: PyValue, fail: (what: string) => never) => PyValue;
}

const READS = 'only tensors, dicts, lists, tuples, numbers and strings are read';

/** Python 2 module names that protocol-2 pickles written by Python 3 still use (fix_imports). */
const MODULE_ALIASES: Record<string, string> = { __builtin__: 'builtins', copy_reg: 'copyreg' };

export function typeName(v: PyValue): string {
  if (v === null) return 'None';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'bigint') return 'int';
  if (typeof v === 'string') return 'str';
  if (v instanceof Uint8Array) return 'bytes';
  if (Array.isArray(v)) return 'list';
  if (v instanceof PyTuple) return 'tuple';
  if (v instanceof PyDict) return v.type;
  if (v instanceof PyObject) return v.type;
  if (v instanceof PyGlobal) return v.qualname;
  if (v instanceof PyFloat) return 'float';
  return v.describe();
}

function pairsInto(d: PyDict, pairs: PyValue, fail: (what: string) => never): PyDict {
  const items = Array.isArray(pairs) ? pairs : pairs instanceof PyTuple ? pairs.items : null;
  if (items === null) fail(`${d.type}() expects a list of pairs, got ${typeName(pairs)}`);
  for (const p of items) {
    const kv = p instanceof PyTuple ? p.items : Array.isArray(p) ? p : null;
    if (kv === null || kv.length !== 2) fail(`${d.type}() expects (key, value) pairs`);
    d.map.set(kv[0] as PyValue, kv[1] as PyValue);
  }
  return d;
}

/** Record classes read as their __dict__ (DINO saves its argparse.Namespace in full checkpoints). */
const RECORD_CLASSES = new Set(['argparse.Namespace']);

const BUILTIN_GLOBALS = new Map<string, GlobalDef>([
  [
    'collections.OrderedDict',
    {
      call: (args, fail) =>
        args.length === 0 ? new PyDict('collections.OrderedDict') : pairsInto(new PyDict('collections.OrderedDict'), args[0] ?? null, fail),
      construct: () => new PyDict('collections.OrderedDict'),
    },
  ],
  ['argparse.Namespace', { construct: () => new PyObject('argparse.Namespace'), call: () => new PyObject('argparse.Namespace') }],
  [
    // Protocol 0-1 instances of plain classes: copyreg._reconstructor(cls, object, None).
    'copyreg._reconstructor',
    {
      call: (args, fail) => {
        const [cls, base] = args;
        if (!(cls instanceof PyGlobal) || !RECORD_CLASSES.has(cls.qualname) || !(base instanceof PyGlobal) || base.qualname !== 'builtins.object') {
          return fail('copyreg._reconstructor is only read for argparse.Namespace');
        }
        return new PyObject(cls.qualname);
      },
    },
  ],
  ['builtins.object', {}],
  [
    // Protocol 2 writes bytes as _codecs.encode(text, 'latin1').
    '_codecs.encode',
    {
      call: (args, fail) => {
        const [text, encoding] = args;
        if (typeof text !== 'string' || (encoding !== 'latin1' && encoding !== 'latin-1')) return fail("_codecs.encode is only read as encode(text, 'latin1')");
        return Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);
      },
    },
  ],
  ['builtins.set', { call: (args) => listOf(args[0] ?? []) }],
  ['builtins.frozenset', { call: (args) => listOf(args[0] ?? []) }],
  ['builtins.bytearray', { call: (args) => (args[0] instanceof Uint8Array ? args[0] : new Uint8Array(0)) }],
]);

function listOf(v: PyValue): PyValue[] {
  if (Array.isArray(v)) return [...v];
  if (v instanceof PyTuple) return [...v.items];
  return [];
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Runs one pickle from `bytes[start]` to its STOP; returns the value and the offset after STOP
 * (the legacy torch.save format is several pickles in a row).
 */
export function unpickle(bytes: Uint8Array, start: number, opts: UnpickleOptions): { value: PyValue; end: number } {
  const { source } = opts;
  const fail = (what: string): never => {
    throw new PickleError(`${source}: ${what}`);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = start;
  // As CPython's unpickler: MARK sets the stack aside and starts an empty one.
  let stack: PyValue[] = [];
  const metastack: PyValue[][] = [];
  const memo = new Map<number, PyValue>();

  const need = (n: number): void => {
    if (pos + n > bytes.length) throw new PickleTruncated(`${source}: truncated (the pickle ends at byte ${bytes.length} without its STOP opcode)`);
  };
  const u8 = (): number => {
    need(1);
    return bytes[pos++] as number;
  };
  const u16 = (): number => {
    need(2);
    const v = view.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = (): number => {
    need(4);
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const i32 = (): number => {
    need(4);
    const v = view.getInt32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = (): number => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(bytes.length)) throw new PickleTruncated(`${source}: truncated (a length of ${v} bytes runs past the end of the data)`);
    return Number(v);
  };
  const take = (n: number): Uint8Array => {
    need(n);
    const out = bytes.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw new PickleTruncated(`${source}: truncated (a text argument has no end of line)`);
    const text = new TextDecoder('latin1').decode(bytes.subarray(pos, end));
    pos = end + 1;
    return text;
  };
  const utf8 = (b: Uint8Array): string => {
    try {
      return decoder.decode(b);
    } catch {
      return fail(`a string at byte ${pos - b.length} is not valid UTF-8`);
    }
  };
  // `stack` is read when push runs, after its argument (which may pop a mark and swap stacks).
  const push = (v: PyValue): void => {
    stack.push(v);
  };
  const pop = (): PyValue => {
    if (stack.length === 0) fail(`damaged pickle (stack empty at byte ${pos - 1})`);
    return stack.pop() as PyValue;
  };
  const top = (): PyValue => {
    if (stack.length === 0) fail(`damaged pickle (nothing to work on at byte ${pos - 1})`);
    return stack[stack.length - 1] as PyValue;
  };
  const popMark = (): PyValue[] => {
    const prev = metastack.pop();
    if (prev === undefined) fail(`damaged pickle (no mark at byte ${pos - 1})`);
    const items = stack;
    stack = prev as PyValue[];
    return items;
  };
  const memoGet = (i: number): PyValue => {
    if (!memo.has(i)) fail(`damaged pickle (memo ${i} read before it was written)`);
    return memo.get(i) as PyValue;
  };
  const memoPut = (i: number): void => {
    memo.set(i, top());
  };
  const lookup = (module: string, name: string): PyGlobal => {
    const mod = MODULE_ALIASES[module] ?? module;
    // torch.load maps the module torch.tensor to torch._tensor (PyTorch pull request 51633).
    const qualname = `${mod === 'torch.tensor' ? 'torch._tensor' : mod}.${name}`;
    const def = opts.globals?.get(qualname) ?? BUILTIN_GLOBALS.get(qualname);
    if (!def) throw new PickleRefused(`${source}: refers to ${qualname}, which hardneg never executes: ${READS}`);
    return new PyGlobal(qualname, def as GlobalDef);
  };
  const float = (v: number): PyValue => (Number.isInteger(v) ? new PyFloat(v) : v);
  const int = (v: bigint): number | bigint => (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
  const long = (b: Uint8Array): number | bigint => {
    // Two's complement, little-endian, any length.
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i] as number);
    if ((b[b.length - 1] as number) & 0x80) v -= 1n << BigInt(8 * b.length);
    return int(v);
  };
  const setItems = (target: PyValue, items: PyValue[]): void => {
    if (!(target instanceof PyDict)) fail(`damaged pickle (SETITEM on a ${typeName(target)})`);
    if (items.length % 2 !== 0) fail('damaged pickle (SETITEMS with an odd number of items)');
    for (let i = 0; i < items.length; i += 2) (target as PyDict).map.set(items[i] as PyValue, items[i + 1] as PyValue);
  };
  const append = (target: PyValue, items: PyValue[]): void => {
    if (!Array.isArray(target)) fail(`damaged pickle (APPEND on a ${typeName(target)})`);
    (target as PyValue[]).push(...items);
  };
  const call = (callable: PyValue, args: PyValue): PyValue => {
    if (!(callable instanceof PyGlobal) || !callable.def.call) fail(`cannot call ${typeName(callable)}: only data constructors are read`);
    if (!(args instanceof PyTuple)) fail(`damaged pickle (REDUCE arguments are a ${typeName(args)}, not a tuple)`);
    return (callable as PyGlobal).def.call?.((args as PyTuple).items, fail) ?? null;
  };
  const construct = (cls: PyValue, args: PyValue[]): PyValue => {
    if (!(cls instanceof PyGlobal) || !cls.def.construct) fail(`cannot create a ${typeName(cls)}: only data is read`);
    return (cls as PyGlobal).def.construct?.(args, fail) ?? null;
  };
  const build = (inst: PyValue, state: PyValue): void => {
    if (inst instanceof PyDict) inst.attrs = state;
    else if (inst instanceof PyObject) {
      // (state, slotstate) or a plain __dict__.
      inst.state = state instanceof PyTuple && state.items.length === 2 ? (state.items[0] ?? null) : state;
    } else if (inst instanceof PyExternal) {
      // A tensor's Python attributes (a Parameter subclass's): not part of its data.
    } else fail(`cannot set the state of a ${typeName(inst)}`);
  };

  for (;;) {
    const at = pos;
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail(`pickle protocol ${bytes[pos - 1]} is newer than 5`);
        break;
      case 0x95: // FRAME: a length prefix only
        u64();
        break;
      case 0x2e: // STOP
        return { value: pop(), end: pos };
      case 0x28: // MARK
        metastack.push(stack);
        stack = [];
        break;
      case 0x30: // POP
        if (stack.length > 0) pop();
        else popMark();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        push(top());
        break;
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x4a: // BININT
        push(i32());
        break;
      case 0x4b: // BININT1
        push(u8());
        break;
      case 0x4d: // BININT2
        push(u16());
        break;
      case 0x8a: // LONG1
        push(long(take(u8())));
        break;
      case 0x8b: {
        // LONG4
        const n = i32();
        if (n < 0) fail('damaged pickle (negative LONG4 length)');
        push(long(take(n)));
        break;
      }
      case 0x49: {
        // INT (text; '01'/'00' are True/False)
        const t = line().trim();
        if (t === '01' || t === '00') push(t === '01');
        else if (/^[-+]?\d+$/.test(t)) push(int(BigInt(t)));
        else fail(`damaged pickle (INT '${t.slice(0, 20)}')`);
        break;
      }
      case 0x4c: {
        // LONG (text)
        const t = line().trim().replace(/L$/, '');
        if (!/^[-+]?\d+$/.test(t)) fail(`damaged pickle (LONG '${t.slice(0, 20)}')`);
        push(int(BigInt(t)));
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        need(8);
        push(float(view.getFloat64(pos, false)));
        pos += 8;
        break;
      case 0x46: {
        // FLOAT (text)
        const t = line().trim();
        const v = Number(t);
        if (Number.isNaN(v) && !/^[-+]?nan$/i.test(t)) fail(`damaged pickle (FLOAT '${t.slice(0, 20)}')`);
        push(float(v));
        break;
      }
      case 0x58: // BINUNICODE
        push(utf8(take(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(utf8(take(u8())));
        break;
      case 0x8d: // BINUNICODE8
        push(utf8(take(u64())));
        break;
      case 0x54: {
        // BINSTRING (Python 2 str: read as latin-1 text)
        const n = i32();
        if (n < 0) fail('damaged pickle (negative BINSTRING length)');
        push(new TextDecoder('latin1').decode(take(n)));
        break;
      }
      case 0x55: // SHORT_BINSTRING
        push(new TextDecoder('latin1').decode(take(u8())));
        break;
      case 0x42: // BINBYTES
        push(take(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        push(take(u8()).slice());
        break;
      case 0x8e: // BINBYTES8
        push(take(u64()).slice());
        break;
      case 0x96: // BYTEARRAY8
        push(take(u64()).slice());
        break;
      case 0x97: // NEXT_BUFFER
        fail('uses out-of-band buffers (pickle protocol 5), which a file cannot hold');
        break;
      case 0x98: // READONLY_BUFFER
        break;
      case 0x7d: // EMPTY_DICT
        push(new PyDict());
        break;
      case 0x5d: // EMPTY_LIST
        push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        push(new PyTuple([]));
        break;
      case 0x8f: // EMPTY_SET
        push([]);
        break;
      case 0x85: // TUPLE1
        push(new PyTuple([pop()]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        push(new PyTuple([pop(), b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        push(new PyTuple([pop(), b, c]));
        break;
      }
      case 0x74: // TUPLE
        push(new PyTuple(popMark()));
        break;
      case 0x6c: // LIST
        push(popMark());
        break;
      case 0x64: {
        // DICT
        const items = popMark();
        const d = new PyDict();
        setItems(d, items);
        push(d);
        break;
      }
      case 0x91: // FROZENSET
        push(popMark());
        break;
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        append(top(), [v]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        append(top(), items);
        break;
      }
      case 0x90: {
        // ADDITEMS (sets are read as lists)
        const items = popMark();
        append(top(), items);
        break;
      }
      case 0x71: // BINPUT
        memoPut(u8());
        break;
      case 0x72: // LONG_BINPUT
        memoPut(u32());
        break;
      case 0x94: // MEMOIZE
        memoPut(memo.size);
        break;
      case 0x70: {
        // PUT (text)
        const t = line();
        if (!/^\d+$/.test(t)) fail(`damaged pickle (PUT '${t.slice(0, 20)}')`);
        memoPut(Number(t));
        break;
      }
      case 0x68: // BINGET
        push(memoGet(u8()));
        break;
      case 0x6a: // LONG_BINGET
        push(memoGet(u32()));
        break;
      case 0x67: {
        // GET (text)
        const t = line();
        if (!/^\d+$/.test(t)) fail(`damaged pickle (GET '${t.slice(0, 20)}')`);
        push(memoGet(Number(t)));
        break;
      }
      case 0x63: {
        // GLOBAL 'module\nname\n'
        const module = line();
        push(lookup(module, line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('damaged pickle (STACK_GLOBAL without two strings)');
        push(lookup(module as string, name as string));
        break;
      }
      case 0x69: {
        // INST 'module\nname\n': cls(*args) for the items since the mark
        const module = line();
        const cls = lookup(module, line());
        push(call(cls, new PyTuple(popMark())));
        break;
      }
      case 0x6f: {
        // OBJ: cls is the first item after the mark
        const items = popMark();
        push(call(items[0] ?? null, new PyTuple(items.slice(1))));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        push(call(pop(), args));
        break;
      }
      case 0x81: {
        // NEWOBJ
        const args = pop();
        const cls = pop();
        if (!(args instanceof PyTuple)) fail('damaged pickle (NEWOBJ arguments are not a tuple)');
        push(construct(cls, (args as PyTuple).items));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX (keyword arguments are not used by anything read here)
        const kwargs = pop();
        const args = pop();
        const cls = pop();
        if (!(args instanceof PyTuple) || !(kwargs instanceof PyDict)) fail('damaged pickle (NEWOBJ_EX arguments)');
        if ((kwargs as PyDict).map.size > 0) fail(`cannot create a ${typeName(cls)} with keyword arguments`);
        push(construct(cls, (args as PyTuple).items));
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        build(top(), state);
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) fail('damaged pickle (a persistent id where none is expected)');
        push(opts.persistentLoad?.(pid, fail) ?? null);
        break;
      }
      case 0x50: {
        // PERSID (text)
        const pid = line();
        if (!opts.persistentLoad) fail('damaged pickle (a persistent id where none is expected)');
        push(opts.persistentLoad?.(pid, fail) ?? null);
        break;
      }
      case 0x82:
      case 0x83:
      case 0x84:
        fail('uses the copyreg extension registry (EXT opcodes), whose codes name globals this reader cannot check');
        break;
      case 0x53: // STRING (Python 2 repr text)
      case 0x56: // UNICODE (raw-unicode-escape text)
        fail(`uses the protocol-0 text opcode ${String.fromCharCode(op)} at byte ${at}, which torch.save never writes`);
        break;
      default:
        fail(`not a pickle PyTorch writes (unknown opcode 0x${op.toString(16).padStart(2, '0')} at byte ${at})`);
    }
  }
}
