/**
 * Training configurations as data: the model spec, the augmentation pipeline and the optimisation
 * recipe. A config is a built-in spec name (`ssd300`), a file name in train/configs/ (`digits`), or a
 * JSON file holding either a full spec or `{ "base": "ssd300", ...spec overrides, "train": {...},
 * "augment": [...] }`.
 *
 * Everything is checked when the config is loaded, before a run directory exists: every key must be one
 * the config knows (a typo is refused with the nearest known name, e.g. `batchnorm` -> `batchNorm`),
 * every value is validated with a message naming the file and the field, and the augmentation pipeline
 * is built once. Spec overrides merge deeply into the base (`{"postprocess": {"nmsThreshold": 0.5}}`
 * keeps the other thresholds); lists (layers, maps, labels, augment, steps) replace the base's.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SavedTrainConfig } from '../core/checkpoint.js';
import { SsdError, oneLine } from '../core/errors.js';
import { didYouMean } from '../core/nearest-names.js';
import { SPECS, specByName, validateSpec, type ConvLayer, type FeatureMapSpec, type InputSpec, type MaxPoolLayer, type PostprocessSpec, type SourceSpec, type SsdSpec } from '../core/specs.js';
import { buildPipeline, ssdTrainPipeline, type StepConfig } from './augment/pipeline.js';
import { SSD_SCHEDULE } from './schedule.js';

/** The optimisation recipe (SSD-SPEC "Training recipe" defaults). */
export interface TrainRecipe {
  /** Total optimizer steps; `epochs`, when set, overrides it once the dataset size is known. */
  iterations: number;
  epochs?: number;
  batchSize: number;
  /** Micro-batches whose gradients are summed into one step (effective batch = batchSize * accumulate). */
  accumulate: number;
  lr: number;
  warmup: number;
  warmupFactor: number;
  /** Iterations at which lr is multiplied by gamma, for a run of `iterations` (scaled with the run length). */
  steps: number[];
  gamma: number;
  momentum: number;
  weightDecay: number;
  negPosRatio: number;
  alpha: number;
  /** Clip the gradient's global L2 norm to this (0 = off, the reference recipe). */
  clipGradNorm: number;
  valEvery: number;
  /** Validation images per quick validation (0 = all); the final validation always uses all. */
  valLimit: number;
  checkpointEvery: number;
  seed: number;
  /**
   * Learning-rate multiplier of the first conv's kernel (Caffe's lr_mult). Unset: the trainer decides
   * when a run starts (train/trainer.ts `firstConvLrMultFor`) and saves its choice with the run.
   */
  firstConvLrMult?: number;
  /** Parts held fixed while training (`--freeze base`: the VGG16 trunk up to fc7; train/init-from.ts). */
  freeze?: FreezeGroup;
}

/** What `--freeze` / `train.freeze` can hold fixed: `base`, the VGG16 trunk (model.ts baseLayerNames). */
export const FREEZE_GROUPS = ['base'] as const;
export type FreezeGroup = (typeof FREEZE_GROUPS)[number];

export interface TrainConfig {
  name: string;
  spec: SsdSpec;
  augment: StepConfig[];
  train: TrainRecipe;
}

export const DEFAULT_RECIPE: TrainRecipe = {
  iterations: 120_000, batchSize: 32, accumulate: 1, lr: SSD_SCHEDULE.baseLr, warmup: SSD_SCHEDULE.warmupIterations,
  warmupFactor: SSD_SCHEDULE.warmupFactor, steps: [...SSD_SCHEDULE.steps], gamma: SSD_SCHEDULE.gamma, momentum: 0.9,
  weightDecay: 5e-4, negPosRatio: 3, alpha: 1, clipGradNorm: 0, valEvery: 5000, valLimit: 500, checkpointEvery: 5000, seed: 1,
};

const CONFIG_DIR = join(dirname(fileURLToPath(import.meta.url)), 'configs');

/** The training configs shipped in train/configs/ (by file name, without .json). */
export function configFiles(): string[] {
  if (!existsSync(CONFIG_DIR)) return [];
  return readdirSync(CONFIG_DIR).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -'.json'.length)).sort();
}

/** Names accepted by --config: the JSON files of train/configs/, then the built-in specs. */
export function knownConfigs(): string[] {
  return [...new Set([...configFiles(), ...Object.keys(SPECS)])];
}

const INT_FIELDS = ['iterations', 'epochs', 'batchSize', 'accumulate', 'warmup', 'valEvery', 'valLimit', 'checkpointEvery', 'seed'] as const;
const NUM_FIELDS = ['lr', 'warmupFactor', 'gamma', 'momentum', 'weightDecay', 'negPosRatio', 'alpha', 'clipGradNorm', 'firstConvLrMult'] as const;
const RECIPE_FIELDS: readonly string[] = [...INT_FIELDS, ...NUM_FIELDS, 'steps', 'freeze'];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Checks recipe fields (a config's "train" object); errors name `<where>.train.<field>`. */
export function validateRecipe(r: Record<string, unknown>, where: string): Partial<TrainRecipe> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) {
    const at = `${where}.train.${k}`;
    if ((INT_FIELDS as readonly string[]).includes(k)) {
      if (!Number.isInteger(v) || (v as number) < 0) throw new SsdError(`${at} must be a whole number >= 0, got ${JSON.stringify(v)}`);
      if (['batchSize', 'accumulate', 'iterations'].includes(k) && (v as number) < 1) throw new SsdError(`${at} must be >= 1`);
    } else if ((NUM_FIELDS as readonly string[]).includes(k)) {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new SsdError(`${at} must be a number >= 0, got ${JSON.stringify(v)}`);
    } else if (k === 'steps') {
      if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x) && x > 0)) throw new SsdError(`${at} must be a list of whole numbers > 0`);
    } else if (k === 'freeze') {
      if (!(FREEZE_GROUPS as readonly unknown[]).includes(v)) throw new SsdError(`${at} must be one of ${FREEZE_GROUPS.join(', ')}, got ${JSON.stringify(v)}`);
    } else {
      throw new SsdError(`${where}: unknown key train.${k}${didYouMean(k, RECIPE_FIELDS)} (known: ${RECIPE_FIELDS.join(', ')})`);
    }
    out[k] = Array.isArray(v) ? [...v] : v;
  }
  return out as Partial<TrainRecipe>;
}

/**
 * The keys a spec may hold, as a schema: a nested object lists its keys, `[schema]` is a list of such
 * elements, LEAF a value (validateSpec checks the values). Typed so that a field added to SsdSpec (or
 * its parts) fails to compile until it is listed here.
 */
const LEAF = 0;
type KeySchema = typeof LEAF | { [key: string]: KeySchema } | [KeySchema];
type Keys<T> = { [K in keyof Required<T>]: KeySchema };
type LayerKeys = Keys<ConvLayer> & Keys<MaxPoolLayer>;
const POSTPROCESS_KEYS: Keys<PostprocessSpec> = { confidenceThreshold: LEAF, nmsThreshold: LEAF, topKPerClass: LEAF, keepTopK: LEAF, clipBeforeNms: LEAF };
const INPUT_KEYS: Keys<InputSpec> = { channelOrder: LEAF, mean: LEAF };
// Conv and max-pool fields together; validateSpec checks each layer against its kind.
const LAYER_KEYS: LayerKeys = { kind: LEAF, name: LEAF, out: LEAF, kernel: LEAF, stride: LEAF, pad: LEAF, dilation: LEAF, relu: LEAF, ceil: LEAF };
const SOURCE_KEYS: Keys<SourceSpec> = { layer: LEAF, l2NormScale: LEAF };
const MAP_KEYS: Keys<FeatureMapSpec> = { size: LEAF, step: LEAF, minSize: LEAF, maxSize: LEAF, aspectRatios: LEAF };
const SPEC_KEYS: Keys<SsdSpec> = {
  name: LEAF, inputSize: LEAF, labels: LEAF, input: INPUT_KEYS, layers: [LAYER_KEYS], sources: [SOURCE_KEYS], maps: [MAP_KEYS],
  variances: LEAF, clipBoxes: LEAF, batchNorm: LEAF, batchNormEpsilon: LEAF, postprocess: POSTPROCESS_KEYS, clampPriors: LEAF,
};
const CONFIG_KEYS = ['base', 'train', 'augment'];

/** Refuses a key the schema does not know, naming it with its path and the nearest known key. */
function checkKeys(value: unknown, schema: KeySchema, path: string, where: string): void {
  if (schema === LEAF) return;
  if (Array.isArray(schema)) {
    if (Array.isArray(value)) value.forEach((v, i) => checkKeys(v, schema[0], `${path}[${i}]`, where));
    return;
  }
  if (!isObject(value)) return;
  const known = Object.keys(schema);
  for (const [k, v] of Object.entries(value)) {
    const at = path ? `${path}.${k}` : k;
    if (!(k in schema)) {
      const all = path ? known : [...CONFIG_KEYS, ...known];
      throw new SsdError(`${where}: unknown key ${at}${didYouMean(k, all)}`);
    }
    checkKeys(v, schema[k]!, at, where);
  }
}

/** Objects merge key by key (recursively); anything else, lists included, replaces the base's value. */
export function deepMerge<T>(base: T, override: unknown): T {
  if (!isObject(base) || !isObject(override)) return structuredClone(override) as T;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(override)) out[k] = k in base ? deepMerge(base[k], v) : structuredClone(v);
  return out as T;
}

function parseConfigObject(raw: unknown, where: string, depth = 0): TrainConfig {
  if (!isObject(raw)) throw new SsdError(`${where}: must be a JSON object`);
  const { base, train, augment, ...rest } = raw;
  checkKeys(rest, SPEC_KEYS, '', where);
  let spec: SsdSpec;
  let recipe: TrainRecipe = { ...DEFAULT_RECIPE, steps: [...DEFAULT_RECIPE.steps] };
  let pipeline = ssdTrainPipeline();
  if (base !== undefined) {
    if (typeof base !== 'string') throw new SsdError(`${where}: base must be a config name (${knownConfigs().join(', ')})`);
    if (depth > 4) throw new SsdError(`${where}: base chain too deep`);
    const parent = resolveConfig(base, depth + 1);
    recipe = parent.train;
    pipeline = parent.augment;
    spec = deepMerge(parent.spec, rest);
  } else if ('layers' in rest) {
    // A full spec: every field must be there (validateSpec names the first that is not).
    spec = structuredClone(rest) as unknown as SsdSpec;
  } else {
    throw new SsdError(`${where}: needs "base" (one of ${knownConfigs().join(', ')}) or a full spec with "layers"`);
  }
  try {
    validateSpec(spec);
  } catch (err) {
    throw err instanceof SsdError ? new SsdError(`${where}: ${err.message}`, { cause: err }) : err;
  }
  if (train !== undefined) {
    if (!isObject(train)) throw new SsdError(`${where}: train must be an object`);
    recipe = { ...recipe, ...validateRecipe(train, where) };
  }
  if (augment !== undefined) pipeline = augment as StepConfig[];
  // Built once here so that a bad step fails now, before any run directory exists.
  buildPipeline(pipeline, spec, `${where}: augment`);
  return { name: spec.name, spec, augment: structuredClone(pipeline), train: recipe };
}

export function loadConfigFile(path: string, depth = 0): TrainConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new SsdError(`config ${path}: ${oneLine(err)}`, { cause: err });
  }
  return parseConfigObject(raw, `config ${path}`, depth);
}

/** A config by name (train/configs/<name>.json, then built-in spec) or by path to a JSON file. */
export function resolveConfig(nameOrPath: string, depth = 0): TrainConfig {
  if (nameOrPath.endsWith('.json') || nameOrPath.includes('/')) {
    if (!existsSync(nameOrPath)) throw new SsdError(`config ${nameOrPath}: no such file`);
    return loadConfigFile(nameOrPath, depth);
  }
  const file = join(CONFIG_DIR, `${nameOrPath}.json`);
  if (existsSync(file)) return loadConfigFile(file, depth);
  if (SPECS[nameOrPath]) {
    const spec = specByName(nameOrPath);
    return { name: nameOrPath, spec, augment: ssdTrainPipeline(), train: { ...DEFAULT_RECIPE, steps: [...DEFAULT_RECIPE.steps] } };
  }
  throw new SsdError(`unknown config "${nameOrPath}"${didYouMean(nameOrPath, knownConfigs())} (known: ${knownConfigs().join(', ')}; or a path to a .json file)`);
}

/** What the trainer saves of a config in its checkpoint (core/checkpoint.ts TrainingRecord.config). */
export function savedTrainConfig(config: TrainConfig): SavedTrainConfig {
  return { name: config.name, augment: structuredClone(config.augment), train: { ...config.train, steps: [...config.train.steps] } };
}

/** A config saved in a checkpoint, checked as a config file is (for --resume). */
export function configFromRecord(saved: SavedTrainConfig, spec: SsdSpec, where: string): TrainConfig {
  const train = { ...DEFAULT_RECIPE, steps: [...DEFAULT_RECIPE.steps], ...validateRecipe(saved.train, where) };
  buildPipeline(saved.augment, spec, `${where}: augment`);
  return { name: saved.name, spec, augment: structuredClone(saved.augment) as StepConfig[], train };
}

/** Iterations for `epochs` passes over `numSamples` images. */
export function iterationsForEpochs(epochs: number, numSamples: number, batchSize: number, accumulate: number): number {
  return Math.max(1, Math.ceil((epochs * numSamples) / (batchSize * accumulate)));
}

/**
 * A recipe for a run of `total` iterations instead of the recipe's own length: the decay steps keep
 * their place as fractions of the run (4200 iterations with steps 3300, 3900 -> 300 iterations with
 * steps 236, 279), so that a shorter or longer run still decays. Warmup stays as it is (it is about
 * the first updates, not the run length). `note` is the one line saying what changed, if anything.
 */
export function scaleRecipe(recipe: TrainRecipe, total: number, why: string): { recipe: TrainRecipe; note?: string } {
  const { epochs: _epochs, ...rest } = recipe;
  if (total === recipe.iterations) return { recipe: { ...rest, iterations: total } };
  const steps = [...new Set(recipe.steps.map((s) => Math.max(1, Math.round((s * total) / recipe.iterations))))];
  const note = recipe.steps.length === 0
    ? undefined
    : `schedule: ${why}: ${total} iterations instead of ${recipe.iterations}; lr decay steps ${recipe.steps.join(', ')} -> ${steps.join(', ')} (same fractions of the run; --steps sets them)`;
  return { recipe: { ...rest, iterations: total, steps }, ...(note ? { note } : {}) };
}

/** Run-length choices made outside the config (the command line). */
export interface RunLength {
  iterations?: number;
  epochs?: number;
  /** Decay steps as given: taken as they are, not scaled. */
  steps?: number[];
}

/**
 * The recipe of an actual run: its length in iterations (the config's `epochs` or `iterations`, unless
 * `override` says otherwise), the decay steps scaled to that length (see scaleRecipe) unless given,
 * and `epochs` resolved away. `notes` are the lines to log about it.
 */
export function resolveRunLength(recipe: TrainRecipe, numSamples: number, override: RunLength = {}): { recipe: TrainRecipe; notes: string[] } {
  const notes: string[] = [];
  let r = recipe;
  if (r.epochs) {
    const scaled = scaleRecipe(r, iterationsForEpochs(r.epochs, numSamples, r.batchSize, r.accumulate), `${r.epochs} epochs of ${numSamples} images`);
    r = scaled.recipe;
    if (scaled.note && override.iterations === undefined && override.epochs === undefined) notes.push(scaled.note);
  }
  const total = override.epochs !== undefined ? iterationsForEpochs(override.epochs, numSamples, r.batchSize, r.accumulate) : override.iterations;
  if (total !== undefined) {
    const why = override.epochs !== undefined ? `--epochs ${override.epochs} of ${numSamples} images` : `--iterations ${total}`;
    const scaled = scaleRecipe(r, total, why);
    r = scaled.recipe;
    if (scaled.note && !override.steps) notes.push(scaled.note);
  }
  if (override.steps) r = { ...r, steps: [...override.steps] };
  return { recipe: r, notes };
}
