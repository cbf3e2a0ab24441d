/**
 * PyTorch checkpoint files (`.pth`/`.pt`) -> tensors by state-dict key, in PyTorch's own layout
 * (conv weights OIHW), as float32. Two containers:
 *  - zip (torch >= 1.6, torchvision's and most current files): `<archive>/data.pkl` plus one entry per
 *    storage, `<archive>/data/<key>`; the pickle's persistent ids are ('storage', type, key, location,
 *    numel).
 *  - legacy (torch < 1.6: ssd.pytorch's 2017 `ssd300_mAP_77.43_v2.pth`, lufficc's 2019 files): pickles
 *    back to back (magic number, protocol version, sys info, the object, the storage keys) then each
 *    storage as int64 element count + raw little-endian data; persistent ids ('storage', type, key,
 *    location, numel, view_metadata).
 * The object is a state dict, or a dict holding one under "model" or "state_dict" (what training
 * scripts save). See pickle.ts for what is (not) interpreted.
 */
import type { Tensor } from '../../core/checkpoint.js';
import { SsdError } from '../../core/errors.js';
import { isTensorRef, PyDict, PyGlobal, PyTuple, STORAGE_TYPES, unpickle, type PyValue, type StorageDtype, type StorageRef, type TensorRef } from './pickle.js';
import { looksLikeZip, openZip } from './zip.js';

export interface PthFile {
  container: 'zip' | 'legacy';
  /** Where the state dict was found: '' (the file is one), 'model' or 'state_dict'. */
  wrapper: string;
  /** State-dict key -> float32 tensor, PyTorch layout, in file order. */
  tensors: Map<string, Tensor>;
}

const ELEMENT_BYTES: Record<StorageDtype, number> = { float32: 4, float16: 2, bfloat16: 2, float64: 8, int64: 8, int32: 4, uint8: 1, bool: 1 };
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;

function storageFromPid(pid: PyValue, where: string, legacy: boolean): StorageRef {
  const fail = (why: string): never => { throw new SsdError(`${where}: ${why}`); };
  if (!(pid instanceof PyTuple) || pid.items[0] !== 'storage') return fail('corrupt pickle (persistent id is not a storage)');
  const [, type, key, location, numel, view] = pid.items;
  if (!(type instanceof PyGlobal)) return fail('corrupt pickle (storage type is not a global)');
  const dtype = STORAGE_TYPES[type.name];
  if (!dtype || type.module !== 'torch') return fail(`unsupported storage type ${type.qualified}`);
  if (typeof key !== 'string' && typeof key !== 'number') return fail('corrupt pickle (storage key)');
  if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) return fail('corrupt pickle (storage size)');
  if (legacy && view !== undefined && view !== null) return fail('unsupported legacy storage view (a tensor saved as a view of another storage)');
  return { kind: 'storage', dtype, key: String(key), numel, location: typeof location === 'string' ? location : 'cpu' };
}

/** Storage bytes -> float32 values (little-endian, as torch writes on every platform it runs on). */
function decodeStorage(bytes: Uint8Array, dtype: StorageDtype, numel: number): Float32Array {
  const out = new Float32Array(numel);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'float32': for (let i = 0; i < numel; i++) out[i] = dv.getFloat32(i * 4, true); break;
    case 'float64': for (let i = 0; i < numel; i++) out[i] = dv.getFloat64(i * 8, true); break;
    case 'float16': for (let i = 0; i < numel; i++) out[i] = halfToFloat(dv.getUint16(i * 2, true)); break;
    case 'bfloat16': {
      const f = new DataView(new ArrayBuffer(4));
      for (let i = 0; i < numel; i++) { f.setUint32(0, dv.getUint16(i * 2, true) << 16); out[i] = f.getFloat32(0); }
      break;
    }
    case 'int64': for (let i = 0; i < numel; i++) out[i] = Number(dv.getBigInt64(i * 8, true)); break;
    case 'int32': for (let i = 0; i < numel; i++) out[i] = dv.getInt32(i * 4, true); break;
    case 'uint8': case 'bool': for (let i = 0; i < numel; i++) out[i] = bytes[i]!; break;
  }
  return out;
}

export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** The strided view `t` of its storage values, as a contiguous tensor. */
function materialise(t: TensorRef, values: Float32Array, name: string, where: string): Tensor {
  const numel = t.size.reduce((a, b) => a * b, 1);
  if (numel === 0) return { shape: [...t.size], data: new Float32Array(0) };
  // Highest element the view touches; every other index is below it (strides are >= 0).
  const last = t.offset + t.size.reduce((acc, s, i) => acc + (s - 1) * t.stride[i]!, 0);
  if (last >= t.storage.numel || last >= values.length) throw new SsdError(`${where}: tensor ${name} reaches element ${last} of a storage of ${t.storage.numel}`);
  // A view never has more elements than its storage unless it is expanded (stride 0): refuse those
  // rather than allocate what a corrupted size asks for.
  if (numel > t.storage.numel) throw new SsdError(`${where}: tensor ${name} has ${numel} elements in a storage of ${t.storage.numel} (expanded tensors are not read)`);
  const data = new Float32Array(numel);
  const dims = t.size.length;
  const idx = new Array<number>(dims).fill(0);
  let src = t.offset;
  for (let o = 0; o < numel; o++) {
    data[o] = values[src]!;
    for (let d = dims - 1; d >= 0; d--) {
      idx[d]!++;
      src += t.stride[d]!;
      if (idx[d]! < t.size[d]!) break;
      src -= t.stride[d]! * t.size[d]!;
      idx[d] = 0;
    }
  }
  return { shape: [...t.size], data };
}

/** The state dict inside the unpickled object: itself, or under "model" / "state_dict". */
function findStateDict(obj: PyValue, where: string): { dict: PyDict; wrapper: string } {
  if (!(obj instanceof PyDict)) throw new SsdError(`${where}: not a state dict (the file holds a ${describe(obj)}, not a dict of tensors)`);
  for (const wrapper of ['model', 'state_dict']) {
    const inner = obj.map.get(wrapper);
    if (inner instanceof PyDict) return { dict: inner, wrapper };
  }
  return { dict: obj, wrapper: '' };
}

function describe(v: PyValue): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'list';
  if (v instanceof PyTuple) return 'tuple';
  if (isTensorRef(v)) return 'tensor';
  return typeof v;
}

function collect(dict: PyDict, where: string, load: (s: StorageRef) => Float32Array): Map<string, Tensor> {
  const tensors = new Map<string, Tensor>();
  for (const [key, value] of dict.map) {
    if (typeof key !== 'string') throw new SsdError(`${where}: state dict key ${String(key)} is not a string`);
    if (!isTensorRef(value)) throw new SsdError(`${where}: state dict entry ${key} is a ${describe(value)}, not a tensor`);
    tensors.set(key, materialise(value, load(value.storage), key, where));
  }
  if (tensors.size === 0) throw new SsdError(`${where}: the state dict holds no tensors`);
  return tensors;
}

function readZipPth(bytes: Uint8Array, where: string): PthFile {
  const zip = openZip(bytes, where);
  const pkls = [...zip.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length !== 1) throw new SsdError(`${where}: not a PyTorch checkpoint (the zip has ${pkls.length ? 'several' : 'no'} <name>/data.pkl)`);
  const prefix = pkls[0]!.slice(0, -'data.pkl'.length);
  const { value } = unpickle(zip.read(pkls[0]!), `${where} (${pkls[0]})`, (pid) => storageFromPid(pid, where, false));
  const { dict, wrapper } = findStateDict(value, where);
  const cache = new Map<string, Float32Array>();
  const tensors = collect(dict, where, (s) => {
    let v = cache.get(s.key);
    if (!v) {
      const entry = `${prefix}data/${s.key}`;
      const raw = zip.read(entry);
      const need = s.numel * ELEMENT_BYTES[s.dtype];
      if (raw.length < need) throw new SsdError(`${where}: storage ${entry} has ${raw.length} bytes, its tensors need ${need}`);
      v = decodeStorage(raw, s.dtype, s.numel);
      cache.set(s.key, v);
    }
    return v;
  });
  return { container: 'zip', wrapper, tensors };
}

function readLegacyPth(bytes: Uint8Array, where: string): PthFile {
  const noPid = (): PyValue => { throw new SsdError(`${where}: corrupt legacy checkpoint (storage reference outside the object)`); };
  const magic = unpickle(bytes, where, noPid);
  if (magic.value !== LEGACY_MAGIC) throw new SsdError(`${where}: not a PyTorch checkpoint (bad magic number)`);
  const protocol = unpickle(bytes, where, noPid, magic.end);
  if (protocol.value !== 1001) throw new SsdError(`${where}: unsupported legacy PyTorch format version ${String(protocol.value)}`);
  const sysInfo = unpickle(bytes, where, noPid, protocol.end);
  if (sysInfo.value instanceof PyDict && sysInfo.value.map.get('little_endian') === false) throw new SsdError(`${where}: big-endian PyTorch checkpoints are not read`);
  const storages = new Map<string, StorageRef>();
  const obj = unpickle(bytes, where, (pid) => {
    const s = storageFromPid(pid, where, true);
    const seen = storages.get(s.key);
    if (seen && (seen.dtype !== s.dtype || seen.numel !== s.numel)) throw new SsdError(`${where}: corrupt legacy checkpoint (storage ${s.key} described twice)`);
    storages.set(s.key, s);
    return s;
  }, sysInfo.end);
  const keys = unpickle(bytes, where, noPid, obj.end);
  if (!Array.isArray(keys.value) || !keys.value.every((k) => typeof k === 'string')) throw new SsdError(`${where}: corrupt legacy checkpoint (storage key list)`);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const values = new Map<string, Float32Array>();
  let p = keys.end;
  for (const key of keys.value as string[]) {
    const s = storages.get(key);
    if (!s) throw new SsdError(`${where}: corrupt legacy checkpoint (storage ${key} is not used by the object)`);
    if (p + 8 > buf.length) throw new SsdError(`${where}: truncated (storage ${key} is missing)`);
    const numel = Number(buf.readBigInt64LE(p));
    p += 8;
    if (numel !== s.numel) throw new SsdError(`${where}: corrupt legacy checkpoint (storage ${key} holds ${numel} elements, the object says ${s.numel})`);
    const n = numel * ELEMENT_BYTES[s.dtype];
    if (p + n > buf.length) throw new SsdError(`${where}: truncated (storage ${key} runs past the end of the file)`);
    values.set(key, decodeStorage(buf.subarray(p, p + n), s.dtype, numel));
    p += n;
  }
  if (p !== buf.length) throw new SsdError(`${where}: ${buf.length - p} unexpected trailing bytes`);
  const { dict, wrapper } = findStateDict(obj.value, where);
  const tensors = collect(dict, where, (s) => {
    const v = values.get(s.key);
    if (!v) throw new SsdError(`${where}: storage ${s.key} has no data in the file`);
    return v;
  });
  return { container: 'legacy', wrapper, tensors };
}

/** Reads a .pth file's state dict. Throws a one-line SsdError for anything else or anything damaged. */
export function readPth(bytes: Uint8Array, where: string): PthFile {
  if (looksLikeZip(bytes)) return readZipPth(bytes, where);
  if (bytes.length >= 2 && bytes[0] === 0x80 && bytes[1]! >= 2) return readLegacyPth(bytes, where);
  throw new SsdError(`${where}: not a PyTorch checkpoint (neither a zip nor a pickle)`);
}

