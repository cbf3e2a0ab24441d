/**
 * Training, the public entry: resolve the data (`digits`, VOC directories, a COCO JSON), resolve the
 * config, pick the backend, and run the trainer. `ssd train` is a thin wrapper around `runTraining`.
 *
 * The classes come from the data: a COCO file's categories, a VOC tree's labels.txt, `--labels FILE`,
 * or else the class names its annotations use (sorted). A split without a single usable object stops
 * here, in one line, before anything is trained or written.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SsdError } from '../core/errors.js';
import { loadCocoDataset } from '../core/datasets/coco.js';
import { findLabelsFile, loadVocDataset, readLabelsFile, resolveVocRoots, vocClassNames } from '../core/datasets/voc.js';
import { withBackground } from '../core/labels.js';
import type { Dataset } from '../core/datasets/types.js';
import { loadCheckpoint, resolveCheckpointPath, type WeightMap } from '../core/checkpoint.js';
import { selectBackend, type BackendName } from './backend.js';
import { planShares } from './data-parallel.js';
import { ssdTrainPipeline } from './augment/pipeline.js';
import { configFromRecord, DEFAULT_RECIPE, resolveRunLength, type RunLength, type TrainConfig } from './config.js';
import type { InitFrom } from './init-from.js';
import { train, type TrainResult } from './trainer.js';

export { train, savedConfig, firstConvLrMultFor, LABELS_FILE, type TrainOptions, type TrainResult, type TrainingRecord, type ValidationPoint } from './trainer.js';
export { architectureMismatch, frozenLayers, planInitFrom, type InitFrom, type InitPlan } from './init-from.js';
export { FREEZE_GROUPS, type FreezeGroup } from './config.js';
export { resolveConfig, knownConfigs, iterationsForEpochs, resolveRunLength, DEFAULT_RECIPE, type RunLength, type TrainConfig, type TrainRecipe } from './config.js';
export { validate, validationMetric, detectDataset } from './validate.js';
export { ssdTrainPipeline, evalPipeline, buildPipeline, runPipeline, type StepConfig } from './augment/pipeline.js';

/** Where `--data digits` lives (generated on first use). */
export const DIGITS_DIR = 'data/digits';
/**
 * 6000 training scenes: with 2000 the digits recipe overfits (VOC07 0.879 against 0.923 with 6000 on
 * the same 300 test scenes and schedule, docs/train.md); a few more seconds to generate once.
 */
export const DIGITS_SIZES = { train: 6000, test: 300, seed: 1 };

export interface TrainingData {
  train: Dataset;
  val?: Dataset;
  description: string;
}

export interface DataOptions {
  /** VOC: split to train on (default trainval; digits: train). */
  split?: string;
  /** VOC: split to validate on (default test, where the directory has it). */
  valSplit?: string;
  /** COCO: images directory (default: beside the JSON). */
  images?: string;
  /** Validation data: a COCO JSON or VOC directory (default: see valSplit). */
  valData?: string;
  valImages?: string;
  /** Where `digits` is generated (default data/digits). */
  digitsDir?: string;
  /** A labels.txt (one class a line) that names the classes, in order; other objects are skipped. */
  labelsFile?: string;
  log?: (line: string) => void;
}

/** Generates the digits dataset if `dir` does not hold it yet; returns the VOC year directory. */
export async function ensureDigitsDataset(dir: string, log: (line: string) => void = () => {}): Promise<string> {
  const root = join(dir, 'VOC2007');
  const have = (split: string): number => {
    const file = join(root, 'ImageSets', 'Main', `${split}.txt`);
    return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').length : 0;
  };
  const train = have('train');
  if (train >= DIGITS_SIZES.train && have('test') >= DIGITS_SIZES.test) return root;
  // Every scene depends only on (seed, split, index): a set made with fewer scenes (2000 before) grows
  // into the same first scenes plus new ones, and the test scenes stay the same.
  log(`digits: generating ${DIGITS_SIZES.train} train + ${DIGITS_SIZES.test} test scenes of MNIST digits in ${dir}${train > 0 ? ` (it held ${train} train scenes)` : ''}`);
  const { makeDigitsDataset } = await import('./digits-dataset.js');
  await makeDigitsDataset({ outDir: dir, train: DIGITS_SIZES.train, test: DIGITS_SIZES.test, seed: DIGITS_SIZES.seed });
  return root;
}

/** Objects a dataset trains or validates on. */
function countObjects(ds: Dataset): number {
  return ds.samples.reduce((n, sample) => n + sample.objects.length, 0);
}

/** Stops when a split has nothing to learn from or score against (it would train on background alone). */
function requireObjects(ds: Dataset, flag: string): void {
  if (countObjects(ds) > 0) return;
  const why = ds.warnings.length ? `; ${ds.warnings.length} skipped, e.g. ${ds.warnings[0]}` : '';
  throw new SsdError(`${flag}: ${ds.name} has no usable object in its ${ds.samples.length} images${why}`);
}

export async function loadTrainingData(data: string, opts: DataOptions = {}): Promise<TrainingData> {
  const log = opts.log ?? (() => {});
  const onWarning = (w: string) => log(`warning: ${w}`);
  let labels = opts.labelsFile !== undefined ? readLabelsFileFlag(opts.labelsFile) : undefined;
  let train: Dataset;
  let val: Dataset | undefined;
  if (data === 'digits') {
    const root = await ensureDigitsDataset(resolve(opts.digitsDir ?? DIGITS_DIR), log);
    train = loadVocDataset(root, opts.split ?? 'train', { onWarning, ...(labels ? { labels } : {}) });
    val = loadVocDataset(root, opts.valSplit ?? 'test', { onWarning, labels: train.labels });
  } else if (data.endsWith('.json')) {
    if (!existsSync(data)) throw new SsdError(`--data ${data}: no such file`);
    train = loadCocoDataset(data, opts.images, { onWarning, ...(labels ? { labels } : {}) });
  } else {
    const roots = resolveVocRoots(data.split(',').map((d) => d.trim()).filter(Boolean));
    const split = opts.split ?? 'trainval';
    if (!labels && roots.every((r) => findLabelsFile(r) === undefined)) {
      // No class list anywhere: the annotations name the classes (not the 20 VOC ones, which would
      // skip every object of custom data and train on background alone).
      const names = vocClassNames(roots, split);
      if (names.length === 0) throw new SsdError(`--data ${data}: split ${split} has no object with a class name (and there is no labels.txt; --labels FILE names the classes)`);
      labels = withBackground(names);
      log(`classes: ${names.length} from the annotations of ${split} (no labels.txt; --labels FILE sets them): ${names.slice(0, 12).join(', ')}${names.length > 12 ? ', ...' : ''}`);
    }
    train = loadVocDataset(roots, split, { onWarning, ...(labels ? { labels } : {}) });
    const valSplit = opts.valSplit ?? 'test';
    const withVal = roots.filter((r) => existsSync(join(r, 'ImageSets', 'Main', `${valSplit}.txt`)));
    if (!opts.valData && withVal.length) val = loadVocDataset(withVal, valSplit, { onWarning, labels: train.labels });
  }
  if (opts.valData) {
    val = opts.valData.endsWith('.json')
      ? loadCocoDataset(opts.valData, opts.valImages, { onWarning, labels: train.labels })
      : loadVocDataset(resolveVocRoots(opts.valData.split(',')), opts.valSplit ?? 'test', { onWarning, labels: train.labels });
  }
  if (train.samples.length === 0) throw new SsdError(`--data ${data}: no training images found`);
  requireObjects(train, `--data ${data}`);
  if (val) requireObjects(val, opts.valData ? `--val-data ${opts.valData}` : `--data ${data}`);
  return { train, ...(val ? { val } : {}), description: `${train.name} (${train.samples.length} images)${val ? `, validation ${val.name} (${val.samples.length} images)` : ''}` };
}

function readLabelsFileFlag(path: string): string[] {
  if (!existsSync(path)) throw new SsdError(`--labels ${path}: no such file`);
  try {
    return readLabelsFile(path);
  } catch (err) {
    throw err instanceof SsdError ? new SsdError(`--labels ${err.message}`, { cause: err }) : err;
  }
}

/** The spec's labels become the dataset's (the heads are sized by the number of classes). */
export function adaptToLabels(config: TrainConfig, labels: string[], log: (line: string) => void = () => {}): TrainConfig {
  if (config.spec.labels.join('\n') === labels.join('\n')) return config;
  log(`config ${config.name}: ${config.spec.labels.length - 1} classes -> the data's ${labels.length - 1} (${labels.slice(1, 6).join(', ')}${labels.length > 6 ? ', ...' : ''})`);
  return { ...config, spec: { ...config.spec, labels: [...labels] } };
}

/** Reads the checkpoint of `--init-from DIR|FILE` (a run directory, an `ssd import` output or a file). */
export function loadInitFrom(path: string): InitFrom {
  try {
    const file = resolveCheckpointPath(path);
    return { source: file, checkpoint: loadCheckpoint(file) };
  } catch (err) {
    throw err instanceof SsdError ? new SsdError(`--init-from ${err.message}`, { cause: err }) : err;
  }
}

/**
 * The config of a run started with `--init-from` and no `--config`: the checkpoint's own (its spec,
 * and the recipe and augmentation of the run that wrote it), or for an imported checkpoint, which has
 * no training record, its spec with the default SSD recipe and augmentation. What the source run
 * froze is not inherited (`--freeze` says so for this run).
 */
export function configFromInit(from: InitFrom): TrainConfig {
  const ck = from.checkpoint;
  if (ck.training) {
    const c = configFromRecord(ck.training.config, ck.spec, from.source);
    const { freeze: _freeze, ...train } = c.train;
    return { ...c, train };
  }
  return { name: ck.spec.name, spec: ck.spec, augment: ssdTrainPipeline(), train: { ...DEFAULT_RECIPE, steps: [...DEFAULT_RECIPE.steps] } };
}

export interface RunTrainingOptions {
  config: TrainConfig;
  data: TrainingData;
  outDir: string;
  backend?: BackendName;
  resume?: boolean;
  initialWeights?: WeightMap;
  /** Start from this checkpoint's weights (TrainOptions.initFrom). */
  initFrom?: InitFrom;
  /** Run length from the command line; the schedule's decay steps scale with it (resolveRunLength). */
  runLength?: RunLength;
  log?: (line: string) => void;
  progress?: boolean;
  /** Threads each batch is split over (`--threads`; default auto: one per core on a CPU backend, planShares). */
  threads?: number | 'auto';
}

export async function runTraining(o: RunTrainingOptions): Promise<TrainResult & { backend: string }> {
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const choice = await selectBackend(o.backend, { log });
  let config = adaptToLabels(o.config, o.data.train.labels, log);
  log(`data: ${o.data.description}`);
  if (o.runLength && Object.keys(o.runLength).length > 0) {
    const run = resolveRunLength(config.train, o.data.train.samples.length, o.runLength);
    for (const note of run.notes) log(note);
    config = { ...config, train: run.recipe };
  }
  const result = await train({
    config, trainSet: o.data.train, ...(o.data.val ? { valSet: o.data.val } : {}), outDir: o.outDir,
    ...(o.resume ? { resume: true } : {}), ...(o.initialWeights ? { initialWeights: o.initialWeights } : {}),
    ...(o.initFrom ? { initFrom: o.initFrom } : {}), log,
    ...(o.progress === false ? { progress: false } : {}),
    shares: planShares(o.threads ?? 'auto', choice, config.train.batchSize),
    loaderThread: true,
  });
  return { ...result, backend: choice.name };
}
