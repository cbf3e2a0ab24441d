/**
 * Training configurations as data: the model spec, the augmentation pipeline and the optimisation
 * recipe. A config is a built-in spec name (`ssd300`), a file name in train/configs/ (`digits`), or a
 * JSON file holding either a full spec or `{ "base": "ssd300", ...spec overrides, "train": {...},
 * "augment": [...] }`. Every field is validated with a message that names it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SsdError, oneLine } from '../core/errors.js';
import { SPECS, specByName, validateSpec, type SsdSpec } from '../core/specs.js';
import { ssdTrainPipeline, type StepConfig } from './augment/pipeline.js';
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
  /** Iterations at which lr is multiplied by gamma. */
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
}

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

/** Names accepted by --config: built-in specs and the JSON files of train/configs/. */
export function knownConfigs(): string[] {
  const files = ['digits', 'ssd300-voc', 'ssd512-voc'].filter((n) => existsSync(join(CONFIG_DIR, `${n}.json`)));
  return [...new Set([...files, ...Object.keys(SPECS)])];
}

const INT_FIELDS = ['iterations', 'epochs', 'batchSize', 'accumulate', 'warmup', 'valEvery', 'valLimit', 'checkpointEvery', 'seed'] as const;
const NUM_FIELDS = ['lr', 'warmupFactor', 'gamma', 'momentum', 'weightDecay', 'negPosRatio', 'alpha', 'clipGradNorm'] as const;

export function validateRecipe(r: Record<string, unknown>, where: string): Partial<TrainRecipe> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) {
    const at = `${where}.train.${k}`;
    if ((INT_FIELDS as readonly string[]).includes(k)) {
      if (!Number.isInteger(v) || (v as number) < 0) throw new SsdError(`${at} must be a whole number >= 0, got ${JSON.stringify(v)}`);
      if (['batchSize', 'accumulate'].includes(k) && (v as number) < 1) throw new SsdError(`${at} must be >= 1`);
    } else if ((NUM_FIELDS as readonly string[]).includes(k)) {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new SsdError(`${at} must be a number >= 0, got ${JSON.stringify(v)}`);
    } else if (k === 'steps') {
      if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x) && x > 0)) throw new SsdError(`${at} must be a list of whole numbers > 0`);
    } else {
      throw new SsdError(`${where}: unknown field train.${k} (known: ${[...INT_FIELDS, ...NUM_FIELDS, 'steps'].join(', ')})`);
    }
    out[k] = v;
  }
  return out as Partial<TrainRecipe>;
}

function parseConfigObject(raw: unknown, where: string, depth = 0): TrainConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new SsdError(`${where}: must be a JSON object`);
  const obj = raw as Record<string, unknown>;
  const { base, train, augment, ...rest } = obj;
  let spec: SsdSpec;
  let recipe: TrainRecipe = { ...DEFAULT_RECIPE, steps: [...DEFAULT_RECIPE.steps] };
  let pipeline = ssdTrainPipeline();
  if (base !== undefined) {
    if (typeof base !== 'string') throw new SsdError(`${where}: base must be a config name (${knownConfigs().join(', ')})`);
    if (depth > 4) throw new SsdError(`${where}: base chain too deep`);
    const parent = resolveConfig(base, depth + 1);
    recipe = parent.train;
    pipeline = parent.augment;
    spec = { ...parent.spec, ...(rest as Partial<SsdSpec>) };
  } else if ('layers' in rest) {
    spec = rest as unknown as SsdSpec;
  } else {
    throw new SsdError(`${where}: needs "base" (one of ${knownConfigs().join(', ')}) or a full spec with "layers"`);
  }
  validateSpec(spec);
  if (train !== undefined) {
    if (typeof train !== 'object' || train === null) throw new SsdError(`${where}: train must be an object`);
    recipe = { ...recipe, ...validateRecipe(train as Record<string, unknown>, where) };
  }
  if (augment !== undefined) pipeline = augment as StepConfig[];
  return { name: spec.name, spec, augment: pipeline, train: recipe };
}

export function loadConfigFile(path: string, depth = 0): TrainConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new SsdError(`config ${path}: ${oneLine(err)}`);
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
  throw new SsdError(`unknown config "${nameOrPath}" (known: ${knownConfigs().join(', ')}; or a path to a .json file)`);
}
