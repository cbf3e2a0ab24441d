/**
 * The checkpoint file: one self-describing file holding the spec, the weights (canonical names and
 * layouts from `paramSpecs`), optional optimizer state and the training state. Plain typed arrays, so
 * the exporter reads checkpoints without TensorFlow.js.
 *
 * Layout: magic "SSDCKPT1" | uint32 LE header length | header JSON (utf8, space-padded to a multiple
 * of 4 bytes) | float32 LE tensor data in header order.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from './atomic-write.js';
import { SsdError } from './errors.js';
import { paramSpecs, validateSpec, type SsdSpec } from './specs.js';

export interface Tensor { shape: number[]; data: Float32Array }
/** Tensors by canonical name (`conv1_1/kernel`, `loc0/bias`, ...). */
export type WeightMap = Map<string, Tensor>;

export interface Checkpoint {
  spec: SsdSpec;
  weights: WeightMap;
  /** Optimizer slots by name (for SGD with momentum: `<param>/momentum`). */
  optimizer?: WeightMap;
  /** Trainer state needed to resume exactly: iteration, rng state, loss history, lr schedule, ... */
  state?: Record<string, unknown>;
}

const MAGIC = 'SSDCKPT1';
export const CHECKPOINT_FILE = 'checkpoint.ssdckpt';

interface HeaderEntry { name: string; group: 'weights' | 'optimizer'; shape: number[] }
interface Header { format: 'ssd-checkpoint'; version: 1; spec: SsdSpec; state?: Record<string, unknown>; tensors: HeaderEntry[] }

export function encodeCheckpoint(ckpt: Checkpoint): Uint8Array[] {
  const tensors: HeaderEntry[] = [];
  const blobs: Uint8Array[] = [];
  for (const [group, map] of [['weights', ckpt.weights], ['optimizer', ckpt.optimizer ?? new Map()]] as const) {
    for (const [name, t] of map) {
      const n = t.shape.reduce((a: number, b: number) => a * b, 1);
      if (n !== t.data.length) throw new Error(`checkpoint tensor ${name}: shape [${t.shape}] holds ${n} values, data has ${t.data.length}`);
      tensors.push({ name, group, shape: t.shape });
      blobs.push(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    }
  }
  const header: Header = { format: 'ssd-checkpoint', version: 1, spec: ckpt.spec, state: ckpt.state, tensors };
  let json = JSON.stringify(header);
  json += ' '.repeat((4 - (Buffer.byteLength(json) % 4)) % 4);
  const jsonBytes = Buffer.from(json);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(jsonBytes.length);
  return [Buffer.from(MAGIC), len, jsonBytes, ...blobs];
}

/** Writes atomically (temp file + rename). `path` may be a directory: then `<dir>/checkpoint.ssdckpt`. */
export function saveCheckpoint(path: string, ckpt: Checkpoint): string {
  const file = existsSync(path) && statSync(path).isDirectory() ? join(path, CHECKPOINT_FILE) : path;
  writeFileAtomic(file, encodeCheckpoint(ckpt));
  return file;
}

export function resolveCheckpointPath(path: string): string {
  if (!existsSync(path)) throw new SsdError(`checkpoint ${path}: no such file or directory`);
  if (statSync(path).isDirectory()) {
    const file = join(path, CHECKPOINT_FILE);
    if (!existsSync(file)) throw new SsdError(`checkpoint ${path}: directory has no ${CHECKPOINT_FILE}`);
    return file;
  }
  return path;
}

export function decodeCheckpoint(bytes: Uint8Array, where = 'checkpoint'): Checkpoint {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 12 || buf.toString('latin1', 0, 8) !== MAGIC) throw new SsdError(`${where}: not an SSD checkpoint (bad magic)`);
  const jsonLen = buf.readUInt32LE(8);
  if (12 + jsonLen > buf.length) throw new SsdError(`${where}: truncated header`);
  let header: Header;
  try {
    header = JSON.parse(buf.toString('utf8', 12, 12 + jsonLen)) as Header;
  } catch (err) {
    throw new SsdError(`${where}: corrupt header (${(err as Error).message})`);
  }
  if (header.format !== 'ssd-checkpoint' || header.version !== 1 || !Array.isArray(header.tensors)) throw new SsdError(`${where}: unsupported checkpoint format`);
  const spec = validateSpec(header.spec);
  let off = 12 + jsonLen;
  const weights: WeightMap = new Map();
  const optimizer: WeightMap = new Map();
  for (const e of header.tensors) {
    const n = e.shape.reduce((a, b) => a * b, 1);
    if (off + n * 4 > buf.length) throw new SsdError(`${where}: truncated at tensor ${e.name} (file has ${buf.length} bytes, needs ${off + n * 4})`);
    // Copy: the file buffer need not be 4-byte aligned, and callers may keep tensors after it is freed.
    const data = new Float32Array(n);
    new Uint8Array(data.buffer).set(buf.subarray(off, off + n * 4));
    off += n * 4;
    (e.group === 'optimizer' ? optimizer : weights).set(e.name, { shape: e.shape, data });
  }
  if (off !== buf.length) throw new SsdError(`${where}: ${buf.length - off} unexpected trailing bytes`);
  for (const p of paramSpecs(spec)) {
    const t = weights.get(p.name);
    if (!t) throw new SsdError(`${where}: missing weight ${p.name}`);
    if (t.shape.join('x') !== p.shape.join('x')) throw new SsdError(`${where}: weight ${p.name} has shape [${t.shape}], spec wants [${p.shape}]`);
  }
  return { spec, weights, optimizer: optimizer.size ? optimizer : undefined, state: header.state };
}

export function loadCheckpoint(path: string): Checkpoint {
  const file = resolveCheckpointPath(path);
  return decodeCheckpoint(readFileSync(file), `checkpoint ${file}`);
}
