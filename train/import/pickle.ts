/**
 * The subset of Python's pickle that torch.save writes for a state dict, interpreted as data only.
 * Nothing from a file is ever executed: GLOBAL may name only the few callables listed in
 * ALLOWED_GLOBALS (OrderedDict, torch's tensor rebuilders, storage types), REDUCE applies them as
 * plain TypeScript functions, and any other global or opcode is a one-line SsdError. Every read is
 * bounds-checked, so a truncated or corrupted pickle fails with a message rather than a crash.
 *
 * Opcodes: protocol 2 as torch uses it (PROTO, MARK, STOP, the ints, BINFLOAT, the strings and bytes,
 * NONE/NEWTRUE/NEWFALSE, the tuples, EMPTY_LIST/DICT, APPEND(S), SETITEM(S), GLOBAL, REDUCE, BUILD,
 * BINPERSID, the memo ops, POP, POP_MARK) plus protocol 4's FRAME, MEMOIZE, SHORT_BINUNICODE and
 * STACK_GLOBAL, which newer torch versions may emit.
 */
import { SsdError } from '../../core/errors.js';

/** A Python global named by the pickle (only allowed ones are ever created). */
export class PyGlobal {
  constructor(readonly module: string, readonly name: string) {}
  get qualified(): string { return `${this.module}.${this.name}`; }
}

export class PyTuple {
  constructor(readonly items: PyValue[]) {}
}

/** A dict (or OrderedDict): insertion order kept, as Python does. */
export class PyDict {
  readonly map = new Map<string | number | boolean | null, PyValue>();
}

export type StorageDtype = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'uint8' | 'bool';

/** What a persistent id resolved to: a storage of the archive, read later by key. */
export interface StorageRef { kind: 'storage'; dtype: StorageDtype; key: string; numel: number; location: string }

/** torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...): a strided view of a storage. */
export interface TensorRef { kind: 'tensor'; storage: StorageRef; offset: number; size: number[]; stride: number[] }

export type PyValue = null | boolean | number | bigint | string | Uint8Array | PyValue[] | PyTuple | PyDict | PyGlobal | StorageRef | TensorRef;

/** Storage classes torch pickles inside persistent ids, and the element type each holds. */
export const STORAGE_TYPES: Record<string, StorageDtype> = {
  FloatStorage: 'float32', HalfStorage: 'float16', BFloat16Storage: 'bfloat16', DoubleStorage: 'float64',
  LongStorage: 'int64', IntStorage: 'int32', ByteStorage: 'uint8', BoolStorage: 'bool',
};

const ALLOWED_GLOBALS = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_parameter',
  ...Object.keys(STORAGE_TYPES).map((s) => `torch.${s}`),
]);

export const isTensorRef = (v: PyValue | undefined): v is TensorRef => typeof v === 'object' && v !== null && (v as TensorRef).kind === 'tensor';
export const isStorageRef = (v: PyValue | undefined): v is StorageRef => typeof v === 'object' && v !== null && (v as StorageRef).kind === 'storage';

const MARK = Symbol('mark');
type StackItem = PyValue | typeof MARK;

export interface UnpickleResult { value: PyValue; end: number }

/**
 * Runs the pickle that starts at `start` up to its STOP. `persistentLoad` turns a persistent id
 * (BINPERSID) into a value; it is the container's business (zip: storage keys; legacy: the same).
 */
export function unpickle(bytes: Uint8Array, where: string, persistentLoad: (pid: PyValue) => PyValue, start = 0): UnpickleResult {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: StackItem[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PyValue>();
  let p = start;
  const fail = (why: string): never => { throw new SsdError(`${where}: ${why}`); };
  const need = (n: number): void => { if (p + n > buf.length) fail('truncated pickle'); };
  const pop = (): PyValue => {
    if (stack.length === 0) fail(`corrupt pickle (stack underflow at byte ${p})`);
    const v = stack.pop()!;
    if (v === MARK) return fail(`corrupt pickle (mark on the stack at byte ${p})`);
    return v;
  };
  const top = (): PyValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) return fail(`corrupt pickle (empty stack at byte ${p})`);
    return v;
  };
  const popMark = (): PyValue[] => {
    const m = marks.pop();
    if (m === undefined) return fail(`corrupt pickle (no mark at byte ${p})`);
    // The MARK itself sits at index m.
    return stack.splice(m).slice(1) as PyValue[];
  };
  const line = (): string => {
    const end = buf.indexOf(0x0a, p);
    if (end < 0) fail('truncated pickle');
    const s = buf.toString('latin1', p, end);
    p = end + 1;
    return s;
  };
  const pushGlobal = (module: string, name: string): void => {
    const q = `${module}.${name}`;
    if (!ALLOWED_GLOBALS.has(q)) fail(`unsupported pickle global ${q} (only tensors in plain or ordered dicts are read; nothing is executed)`);
    stack.push(new PyGlobal(module, name));
  };
  const setItem = (d: PyValue, k: PyValue, v: PyValue): void => {
    if (!(d instanceof PyDict)) fail('corrupt pickle (SETITEM on something that is not a dict)');
    if (k !== null && typeof k !== 'string' && typeof k !== 'number' && typeof k !== 'boolean') fail('unsupported pickle dict key (not a string or number)');
    (d as PyDict).map.set(k as string | number | boolean | null, v);
  };

  for (;;) {
    need(1);
    const op = buf[p++]!;
    switch (op) {
      case 0x80: need(1); if (buf[p]! > 5) fail(`unsupported pickle protocol ${buf[p]}`); p += 1; break; // PROTO
      case 0x95: need(8); p += 8; break; // FRAME: a length hint only
      case 0x2e: { // STOP
        if (stack.length !== 1 || marks.length) fail('corrupt pickle (stack not a single value at STOP)');
        return { value: pop(), end: p };
      }
      case 0x28: marks.push(stack.length); stack.push(MARK); break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4b: need(1); stack.push(buf[p]!); p += 1; break; // BININT1
      case 0x4d: need(2); stack.push(buf.readUInt16LE(p)); p += 2; break; // BININT2
      case 0x4a: need(4); stack.push(buf.readInt32LE(p)); p += 4; break; // BININT
      case 0x8a: { // LONG1: n-byte little-endian two's complement
        need(1);
        const n = buf[p++]!;
        need(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(buf[p + i]!);
        if (n > 0 && buf[p + n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
        p += n;
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: need(8); stack.push(buf.readDoubleBE(p)); p += 8; break; // BINFLOAT
      case 0x58: { need(4); const n = buf.readUInt32LE(p); p += 4; need(n); stack.push(buf.toString('utf8', p, p + n)); p += n; break; } // BINUNICODE
      case 0x8c: { need(1); const n = buf[p++]!; need(n); stack.push(buf.toString('utf8', p, p + n)); p += n; break; } // SHORT_BINUNICODE
      case 0x54: { need(4); const n = buf.readUInt32LE(p); p += 4; need(n); stack.push(buf.toString('latin1', p, p + n)); p += n; break; } // BINSTRING
      case 0x55: { need(1); const n = buf[p++]!; need(n); stack.push(buf.toString('latin1', p, p + n)); p += n; break; } // SHORT_BINSTRING
      case 0x42: { need(4); const n = buf.readUInt32LE(p); p += 4; need(n); stack.push(Uint8Array.from(buf.subarray(p, p + n))); p += n; break; } // BINBYTES
      case 0x43: { need(1); const n = buf[p++]!; need(n); stack.push(Uint8Array.from(buf.subarray(p, p + n))); p += n; break; } // SHORT_BINBYTES
      case 0x29: stack.push(new PyTuple([])); break; // EMPTY_TUPLE
      case 0x74: stack.push(new PyTuple(popMark())); break; // TUPLE
      case 0x85: { const a = pop(); stack.push(new PyTuple([a])); break; } // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push(new PyTuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push(new PyTuple([a, b, c])); break; } // TUPLE3
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x7d: stack.push(new PyDict()); break; // EMPTY_DICT
      case 0x61: { const v = pop(); const l = top(); if (!Array.isArray(l)) fail('corrupt pickle (APPEND to something that is not a list)'); (l as PyValue[]).push(v); break; } // APPEND
      case 0x65: { const items = popMark(); const l = top(); if (!Array.isArray(l)) fail('corrupt pickle (APPENDS to something that is not a list)'); (l as PyValue[]).push(...items); break; } // APPENDS
      case 0x73: { const v = pop(); const k = pop(); setItem(top(), k, v); break; } // SETITEM
      case 0x75: { // SETITEMS
        const items = popMark();
        if (items.length % 2) fail('corrupt pickle (SETITEMS with an odd number of items)');
        const d = top();
        for (let i = 0; i < items.length; i += 2) setItem(d, items[i]!, items[i + 1]!);
        break;
      }
      case 0x63: { const module = line(); const name = line(); pushGlobal(module, name); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop(); const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('corrupt pickle (STACK_GLOBAL needs two strings)');
        pushGlobal(module as string, name as string);
        break;
      }
      case 0x52: { const args = pop(); const fn = pop(); stack.push(reduce(fn, args, fail)); break; } // REDUCE
      case 0x62: { // BUILD: only OrderedDict's attribute state (state_dict()._metadata), which is dropped
        const state = pop();
        const obj = top();
        if (!(obj instanceof PyDict)) fail('unsupported pickle BUILD (object state on something other than a dict)');
        if (state !== null && !(state instanceof PyDict) && !(state instanceof PyTuple)) fail('unsupported pickle BUILD state');
        break;
      }
      case 0x51: stack.push(persistentLoad(pop())); break; // BINPERSID
      case 0x71: need(1); memo.set(buf[p]!, top()); p += 1; break; // BINPUT
      case 0x72: need(4); memo.set(buf.readUInt32LE(p), top()); p += 4; break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: case 0x6a: { // BINGET, LONG_BINGET
        const n = op === 0x68 ? 1 : 4;
        need(n);
        const k = n === 1 ? buf[p]! : buf.readUInt32LE(p);
        p += n;
        if (!memo.has(k)) fail(`corrupt pickle (memo ${k} read before it was written)`);
        stack.push(memo.get(k)!);
        break;
      }
      default:
        fail(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')} at byte ${p - 1}`);
    }
  }
}

const isInt = (v: PyValue | undefined): v is number => typeof v === 'number' && Number.isSafeInteger(v);

function intTuple(v: PyValue | undefined, what: string, fail: (why: string) => never): number[] {
  if (!(v instanceof PyTuple) || !v.items.every(isInt)) return fail(`corrupt pickle (tensor ${what} is not a tuple of integers)`);
  return v.items as number[];
}

/** REDUCE of an allowed global: each is a pure function of its (already decoded) arguments. */
function reduce(fn: PyValue, args: PyValue, fail: (why: string) => never): PyValue {
  if (!(fn instanceof PyGlobal)) return fail('unsupported pickle REDUCE (callable is not a global)');
  if (!(args instanceof PyTuple)) return fail(`corrupt pickle (${fn.qualified} called without an argument tuple)`);
  const a = args.items;
  switch (fn.qualified) {
    case 'collections.OrderedDict': {
      const d = new PyDict();
      if (a.length === 0) return d;
      // OrderedDict([(k, v), ...])
      const pairs = a[0];
      if (a.length !== 1 || !Array.isArray(pairs)) return fail('unsupported OrderedDict arguments');
      for (const kv of pairs) {
        const items = kv instanceof PyTuple ? kv.items : Array.isArray(kv) ? kv : undefined;
        if (!items || items.length !== 2 || (typeof items[0] !== 'string' && typeof items[0] !== 'number')) return fail('unsupported OrderedDict item');
        d.map.set(items[0] as string | number, items[1]!);
      }
      return d;
    }
    case 'torch._utils._rebuild_tensor':
    case 'torch._utils._rebuild_tensor_v2': {
      if (a.length < 4) return fail(`corrupt pickle (${fn.name} needs 4+ arguments, got ${a.length})`);
      const storage = a[0];
      if (!isStorageRef(storage)) return fail(`corrupt pickle (${fn.name} without a storage)`);
      const offset = a[1];
      if (!isInt(offset) || offset < 0) return fail(`corrupt pickle (${fn.name} storage offset is not a whole number)`);
      const size = intTuple(a[2], 'size', fail);
      const stride = intTuple(a[3], 'stride', fail);
      if (size.length !== stride.length || size.some((s) => s < 0) || stride.some((s) => s < 0)) return fail(`corrupt pickle (${fn.name} size and stride do not match)`);
      return { kind: 'tensor', storage, offset, size, stride };
    }
    case 'torch._utils._rebuild_parameter': {
      if (!isTensorRef(a[0])) return fail('corrupt pickle (_rebuild_parameter without a tensor)');
      return a[0]!;
    }
    default:
      return fail(`unsupported pickle call of ${fn.qualified}`);
  }
}
