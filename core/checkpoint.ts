/**
 * The checkpoint file: one self-describing file holding the spec, the weights (canonical names and
 * layouts from `paramSpecs`), optional optimizer state and the training record. Plain typed arrays, so
 * the exporter reads checkpoints without TensorFlow.js.
 *
 * Layout: magic "SSDCKPT1" | uint32 LE header length | header JSON (utf8, space-padded to a multiple
 * of 4 bytes) | float32 LE tensor data in header order.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { removeStaleAtomicTemps, writeFileAtomic } from './atomic-write.js';
import { SsdError } from './errors.js';
import { paramSpecs, validateSpec, type SsdSpec } from './specs.js';

export interface Tensor { shape: number[]; data: Float32Array }
/** Tensors by canonical name (`conv1_1/kernel`, `loc0/bias`, ...). */
export type WeightMap = Map<string, Tensor>;

/** Loss per optimizer step (parallel arrays). */
export interface LossHistory {
  iterations: number[];
  loss: number[];
  loc: number[];
  conf: number[];
  lr: number[];
}

export const VALIDATION_METRICS = ['voc07', 'coco'] as const;
/** 'voc07': VOC2007 11-point mAP at IoU 0.5; 'coco': COCO AP@[.50:.95] (pycocotools' stats[0]). */
export type ValidationMetric = (typeof VALIDATION_METRICS)[number];

/** One validation during training. */
export interface ValidationPoint {
  iteration: number;
  metric: ValidationMetric;
  /** The metric's headline number (VOC07 mAP, or COCO AP@[.50:.95]). */
  map: number;
  /** COCO only: the 12 summary numbers, in COCO_STAT_NAMES order (-1 where undefined). */
  stats?: number[];
  images: number;
}

/**
 * The run's configuration as the trainer saved it. Its recipe and augmentation are training's data,
 * kept here as JSON and validated by train/config.ts (`recipeFromRecord`) when a run resumes.
 */
export interface SavedTrainConfig {
  name: string;
  augment: unknown[];
  train: Record<string, unknown>;
}

/**
 * What a training run writes beside the weights, written by train/trainer.ts and read by --resume and
 * by the exporter (export/index.ts -> the model's training metadata). Every field is checked on load.
 */
export interface TrainingRecord {
  /** Optimizer steps done. */
  iteration: number;
  /** The run's length in optimizer steps. */
  totalIterations: number;
  /** Micro-batches consumed from the sample stream: with `seed`, every later batch and augmentation. */
  microBatches: number;
  seed: number;
  /** The training data as the run described it, e.g. "VOC2007 trainval (5011 images)". */
  data: string;
  /** The validation data, when the run had some. */
  valData?: string;
  config: SavedTrainConfig;
  history: LossHistory;
  validations: ValidationPoint[];
  /** The TensorFlow.js backend that trained (tensorflow, wasm, cpu). */
  backend: string;
  elapsedSeconds: number;
}

export interface Checkpoint {
  spec: SsdSpec;
  weights: WeightMap;
  /** Optimizer slots by name (for SGD with momentum: `<param>/momentum`). */
  optimizer?: WeightMap;
  /** Present in checkpoints written by the trainer: what resuming and the model's metadata need. */
  training?: TrainingRecord;
}

const MAGIC = 'SSDCKPT1';
export const CHECKPOINT_FILE = 'checkpoint.ssdckpt';

interface HeaderEntry { name: string; group: 'weights' | 'optimizer'; shape: number[] }
/** `state` is what trainers before the typed record wrote (read by `legacyTrainingRecord`). */
interface Header { format: 'ssd-checkpoint'; version: 1; spec: SsdSpec; training?: TrainingRecord; state?: unknown; tensors: HeaderEntry[] }

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
  const header: Header = { format: 'ssd-checkpoint', version: 1, spec: ckpt.spec, ...(ckpt.training ? { training: ckpt.training } : {}), tensors };
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
    throw new SsdError(`${where}: corrupt header (${(err as Error).message})`, { cause: err });
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
  const training = header.training !== undefined ? validateTrainingRecord(header.training, `${where}: training`)
    : header.state !== undefined ? legacyTrainingRecord(header.state, `${where}: state`) : undefined;
  return { spec, weights, ...(optimizer.size ? { optimizer } : {}), ...(training ? { training } : {}) };
}

export function loadCheckpoint(path: string): Checkpoint {
  const file = resolveCheckpointPath(path);
  return decodeCheckpoint(readFileSync(file), `checkpoint ${file}`);
}

/**
 * Removes checkpoint temporaries that a killed writer left in a run directory (see
 * removeStaleAtomicTemps: only the writer's own temporary pattern, only when its process is gone).
 */
export function removeStaleCheckpointTemps(dir: string): { path: string; bytes: number }[] {
  return removeStaleAtomicTemps(dir, [CHECKPOINT_FILE]);
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;
const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
// JSON has no NaN: a diverged loss was written as null. Read it back as NaN.
const numberOrNaN = (v: unknown): v is number | null => v === null || typeof v === 'number';

/** Checks a training record read from a file; errors name the field (`<where>.history.loss[3]`). */
export function validateTrainingRecord(raw: unknown, where = 'training record'): TrainingRecord {
  const fail = (field: string, why: string): never => { throw new SsdError(`${where}.${field} ${why}`); };
  if (!isObject(raw)) throw new SsdError(`${where} must be an object`);
  for (const f of ['iteration', 'totalIterations', 'microBatches', 'seed'] as const) if (!isCount(raw[f])) fail(f, 'must be a whole number >= 0');
  if (typeof raw.data !== 'string') fail('data', 'must be a string');
  if (raw.valData !== undefined && typeof raw.valData !== 'string') fail('valData', 'must be a string');
  const config = raw.config;
  if (!isObject(config)) return fail('config', 'must be an object');
  if (typeof config.name !== 'string') fail('config.name', 'must be a string');
  if (!Array.isArray(config.augment)) fail('config.augment', 'must be a list');
  if (!isObject(config.train)) fail('config.train', 'must be an object');
  const h = raw.history;
  if (!isObject(h)) return fail('history', 'must be an object');
  const n = Array.isArray(h.iterations) ? h.iterations.length : -1;
  for (const f of ['iterations', 'loss', 'loc', 'conf', 'lr'] as const) {
    const list = h[f];
    if (!Array.isArray(list) || list.length !== n) fail(`history.${f}`, `must be a list as long as history.iterations`);
    (list as unknown[]).forEach((v, i) => { if (!(f === 'iterations' ? isCount(v) : numberOrNaN(v))) fail(`history.${f}[${i}]`, 'must be a number'); });
  }
  if (!Array.isArray(raw.validations)) fail('validations', 'must be a list');
  (raw.validations as unknown[]).forEach((v, i) => {
    const at = `validations[${i}]`;
    if (!isObject(v)) return void fail(at, 'must be an object');
    if (!isCount(v.iteration)) fail(`${at}.iteration`, 'must be a whole number >= 0');
    if (!(VALIDATION_METRICS as readonly unknown[]).includes(v.metric)) fail(`${at}.metric`, `must be one of ${VALIDATION_METRICS.join(', ')}`);
    if (!isFiniteNumber(v.map)) fail(`${at}.map`, 'must be a number');
    if (!isCount(v.images)) fail(`${at}.images`, 'must be a whole number >= 0');
    if (v.stats !== undefined && !(Array.isArray(v.stats) && v.stats.every(isFiniteNumber))) fail(`${at}.stats`, 'must be a list of numbers');
  });
  if (typeof raw.backend !== 'string') fail('backend', 'must be a string');
  if (!isFiniteNumber(raw.elapsedSeconds)) fail('elapsedSeconds', 'must be a number');
  const record = raw as unknown as TrainingRecord;
  const nan = (list: (number | null)[]): number[] => list.map((v) => (v === null ? NaN : v));
  return { ...record, history: { iterations: [...record.history.iterations], loss: nan(record.history.loss), loc: nan(record.history.loc), conf: nan(record.history.conf), lr: nan(record.history.lr) } };
}

/**
 * The record of a checkpoint written before the typed record existed: the trainer's former `state`
 * ({ iteration, microBatches, config, rng: { seed }, history, maps: [{ iteration, map, images }],
 * backend, elapsedSeconds }, mAP always VOC07). Its data was not recorded.
 */
export function legacyTrainingRecord(state: unknown, where = 'state'): TrainingRecord | undefined {
  if (!isObject(state) || !isObject(state.config)) return undefined;
  const config = state.config;
  const train = isObject(config.train) ? config.train : {};
  const rng = isObject(state.rng) ? state.rng : {};
  const maps = Array.isArray(state.maps) ? state.maps.filter(isObject) : [];
  return validateTrainingRecord({
    iteration: state.iteration,
    totalIterations: isCount(train.iterations) ? train.iterations : state.iteration,
    microBatches: state.microBatches,
    seed: isCount(rng.seed) ? rng.seed : isCount(train.seed) ? train.seed : 0,
    data: `unrecorded (config ${String(config.name)})`,
    config: { name: config.name, augment: config.augment, train },
    history: state.history,
    validations: maps.map((m) => ({ iteration: m.iteration, metric: 'voc07', map: m.map, images: m.images })),
    backend: typeof state.backend === 'string' ? state.backend : 'unknown',
    elapsedSeconds: isFiniteNumber(state.elapsedSeconds) ? state.elapsedSeconds : 0,
  }, where);
}
