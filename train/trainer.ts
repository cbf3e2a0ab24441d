/**
 * The training loop: SGD with momentum and weight decay (optimizer.ts), warmup + multistep lr
 * (schedule.ts), batches with gradient accumulation from the data loader, MultiBox loss (loss.ts),
 * checkpoints (core/checkpoint.ts) every N iterations, at the end and on Ctrl-C, validation mAP with
 * the core's evaluator every N iterations, a progress line and an SVG training curve.
 *
 * Resuming is exact: the checkpoint holds the weights, the momentum buffers and the training record
 * (core/checkpoint.ts TrainingRecord: the iteration, the position in the sample stream, which with the
 * seed determines every later batch and augmentation, see data-loader.ts, the config, the loss history
 * and the validations), so N + N iterations give the same losses as 2N straight.
 *
 * Fine-tuning (`initFrom`, init-from.ts) takes only a checkpoint's weights: the optimizer, schedule
 * and sample stream start afresh, the conf heads are re-initialised when the classes differ, and
 * `recipe.freeze` holds the VGG16 base fixed (model.ts `frozen`: no gradient, so no weight decay).
 *
 * Nothing is created before the inputs are known to be good: the augmentation is built and the
 * checkpoint to resume is read before the run directory is made. Temporary checkpoint files that a
 * killed run (kill -9) left behind are removed when a run starts.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { CHECKPOINT_FILE, loadCheckpoint, saveCheckpoint, type Checkpoint, type LossHistory, type TrainingRecord, type ValidationPoint, type WeightMap } from '../core/checkpoint.js';
import { defaultBoxes } from '../core/default-boxes.js';
import { removeStaleAtomicTemps, writeFileAtomic } from '../core/atomic-write.js';
import { SsdError } from '../core/errors.js';
import type { Dataset } from '../core/datasets/types.js';
import type { SsdSpec } from '../core/specs.js';
import { buildPipeline } from './augment/pipeline.js';
import { configFromRecord, resolveRunLength, savedTrainConfig, type TrainConfig, type TrainRecipe } from './config.js';
import { DataLoader, ImageSource, type TrainBatch } from './data-loader.js';
import { LoaderThread, type BatchSource } from './data-loader-thread.js';
import { DataParallel, type SharesPlan } from './data-parallel.js';
import type { BackendName } from './backend.js';
import { GradientSum, canonicalNames, countPositives, shareGradients } from './gradients.js';
import { usesForwardConvGradients } from './layers/conv.js';
import { frozenLayers, headRange, planInitFrom, type InitFrom, type InitPlan } from './init-from.js';
import { createSsdModel, INPUT_PIXEL_STD, type SsdModel } from './model.js';
import { SgdMomentum } from './optimizer.js';
import { renderCurveSvg } from './plot.js';
import { ProgressBar } from './progress.js';
import { learningRate, type LrSchedule } from './schedule.js';
import { validate, validationMetric } from './validate.js';

export const CURVE_FILE = 'training-curve.svg';
/** The run's classes, one a line (background left out), as readLabelsFile and `--labels` read them. */
export const LABELS_FILE = 'labels.txt';

export type { LossHistory, TrainingRecord, ValidationPoint } from '../core/checkpoint.js';

export interface TrainOptions {
  config: TrainConfig;
  trainSet: Dataset;
  valSet?: Dataset;
  outDir: string;
  /** Continue from `<outDir>/checkpoint.ssdckpt` (its spec, weights, optimizer and stream position). */
  resume?: boolean;
  /** Starting weights (e.g. an ImageNet VGG16 backbone); may be partial. Ignored on resume. */
  initialWeights?: WeightMap;
  /**
   * Start from this checkpoint's weights (`--init-from`, init-from.ts): fresh optimizer, schedule and
   * sample stream; its spec's conventions with the config's classes; conf heads re-initialised when the
   * classes differ. Ignored on resume when the run directory already has a checkpoint.
   */
  initFrom?: InitFrom;
  /** Stop (with a checkpoint) after this iteration even if the schedule runs longer. */
  stopAfter?: number;
  /** Lines for the person at the terminal (default: stderr). */
  log?: (line: string) => void;
  /** Show the progress bar (default true). */
  progress?: boolean;
  /** Catch Ctrl-C: finish the step, save, return interrupted (default true). */
  handleSigint?: boolean;
  prefetch?: number;
  /**
   * Split every micro-batch over this many threads (data-parallel.ts; planShares picks it for
   * `ssd train`). Default 1: this thread alone.
   */
  shares?: SharesPlan;
  /** Images cache for decoded training images (bytes). */
  imageCacheBytes?: number;
  /**
   * Build the batches on a thread of their own (data-loader-thread.ts; the same batches): `ssd train`
   * does. Default false: this thread builds them between steps.
   */
  loaderThread?: boolean;
}

export interface TrainResult {
  iteration: number;
  interrupted: boolean;
  history: LossHistory;
  validations: ValidationPoint[];
  checkpoint: string;
  seconds: number;
  imagesPerSecond: number;
  /** The validation on the whole validation set at the end of the run (when there is one). */
  finalValidation?: ValidationPoint;
  /** Its headline number: VOC07 mAP, or COCO AP@[.50:.95] for COCO data. */
  finalMap?: number;
}

function scheduleOf(r: TrainRecipe): LrSchedule {
  return { baseLr: r.lr, warmupIterations: r.warmup, warmupFactor: r.warmupFactor, steps: r.steps, gamma: r.gamma };
}

function emptyHistory(): LossHistory {
  return { iterations: [], loss: [], loc: [], conf: [], lr: [] };
}


export interface StepResult { loss: number; loc: number; conf: number; images: number; numPositive: number }

/**
 * One optimizer step over `batches` (gradient accumulation): gradients of each micro-batch's loss are
 * summed and divided by the number of micro-batches, then applied. Exported for the step benchmark
 * (step-bench.ts), which times exactly this.
 */
export function trainStep(model: SsdModel, opt: SgdMomentum, batches: TrainBatch[], lr: number, recipe: TrainRecipe): StepResult {
  const canonical = canonicalNames(model);
  const sum = new GradientSum();
  for (const b of batches) {
    if (b.size === 0) continue;
    const s = shareGradients(model, b, recipe, countPositives(b.labels), canonical);
    sum.add(s.grads, s.parts, b.size);
    sum.microBatches++;
  }
  return applyStep(model, opt, sum, lr, recipe);
}

/**
 * The same step with every micro-batch split over the data-parallel workers (data-parallel.ts): this
 * thread computes the first share while the workers compute theirs; the shares' gradients are summed
 * here, applied once, and the new weights published to the workers for the next step.
 */
export async function trainStepParallel(model: SsdModel, opt: SgdMomentum, batches: TrainBatch[], lr: number, recipe: TrainRecipe, parallel: DataParallel): Promise<StepResult> {
  const sum = new GradientSum();
  for (const b of batches) {
    if (b.size === 0) continue;
    await parallel.gradients(model, b, recipe, sum);
    sum.microBatches++;
  }
  const r = applyStep(model, opt, sum, lr, recipe);
  parallel.publishWeights(model);
  return r;
}

/** Averages the accumulated micro-batches, applies the first conv's multiplier and clipping, updates. */
function applyStep(model: SsdModel, opt: SgdMomentum, sum: GradientSum, lr: number, recipe: TrainRecipe): StepResult {
  const used = sum.microBatches;
  const res: StepResult = { loss: sum.loss, loc: sum.loc, conf: sum.conf, images: sum.images, numPositive: sum.numPositive };
  const sums = sum.grads;
  if (used === 0) return res;
  if (used > 1) {
    for (const [name, g] of sums) {
      sums.set(name, tf.div(g, used));
      g.dispose();
    }
  }
  const mult = recipe.firstConvLrMult ?? 1;
  if (mult !== 1) {
    const name = `${firstConv(model.spec)}/kernel`;
    const g = sums.get(name);
    if (g) {
      sums.set(name, tf.mul(g, mult));
      g.dispose();
    }
  }
  if (recipe.clipGradNorm > 0) {
    // Global-norm clipping: a bad batch early in from-scratch training cannot throw the weights away.
    const norm = tf.tidy(() => tf.sqrt(tf.addN([...sums.values()].map((g) => tf.sum(tf.square(g))))).dataSync()[0]!);
    if (norm > recipe.clipGradNorm) {
      const k = recipe.clipGradNorm / norm;
      for (const [name, g] of sums) {
        sums.set(name, tf.mul(g, k));
        g.dispose();
      }
    }
  }
  opt.apply(model.variables, sums, lr);
  sums.clear();
  return { ...res, loss: res.loss / used, loc: res.loc / used, conf: res.conf / used };
}

function firstConv(spec: SsdSpec): string {
  return spec.layers.find((l) => l.kind === 'conv')!.name;
}

/**
 * The first conv's learning-rate multiplier for a new run, unless the recipe sets one.
 *
 * The network sees mean-subtracted 0..255 pixels (std about INPUT_PIXEL_STD = 58), not unit-variance
 * inputs: model.ts divides the first conv's He init by 58 so that activations start at unit scale, but
 * then that kernel is 58x smaller than He and its gradient (input x upstream gradient) 58x larger, so
 * plain SGD moves it 58^2 = 3364 times faster, relative to its size, than any other layer. From scratch
 * without batch norm that was the divergence: a first step of lr 1e-3 more than doubled conv1_1 and the
 * loss went to NaN within 4 iterations at any learning rate. Multiplying its gradient by 1/58^2 is
 * exactly SGD on unit-variance inputs (the exported model still takes 0..255 pixels).
 * Not needed, and not applied, when the first conv was imported (an ImageNet VGG16 trained for these
 * inputs, the reference's starting point) or is followed by batch norm (which normalises its output,
 * whatever its scale).
 */
export function firstConvLrMultFor(spec: SsdSpec, initialWeights: WeightMap | undefined): number {
  if (spec.batchNorm || initialWeights?.has(`${firstConv(spec)}/kernel`)) return 1;
  return 1 / (INPUT_PIXEL_STD * INPUT_PIXEL_STD);
}

function describeFrozen(model: SsdModel, frozen: Set<string>): string {
  let n = 0;
  for (const [name, v] of model.variables) if (frozen.has(name.split('/')[0]!)) n += v.size;
  const convs = model.spec.layers.filter((l) => frozen.has(l.name) && l.kind === 'conv').map((l) => l.name);
  return `base ${convs[0]}..${convs[convs.length - 1]} (${convs.length} convs, ${n.toLocaleString('en-US')} values: no gradient, no weight decay, batch-norm statistics fixed)`;
}

/** The one line that says what --init-from loaded, re-initialised and froze. */
function describeInit(from: InitFrom, plan: InitPlan, model: SsdModel, frozen: Set<string>): string {
  const src = from.checkpoint.spec;
  const loaded = [...plan.weights.values()].reduce((n, t) => n + t.data.length, 0);
  const classes = plan.classesChanged
    ? `re-initialised ${headRange(plan.reinitialised)} (${src.labels.length - 1} classes -> ${plan.spec.labels.length - 1}: ${plan.spec.labels.slice(1, 6).join(', ')}${plan.spec.labels.length > 6 ? ', ...' : ''})`
    : `same ${src.labels.length - 1} classes, nothing re-initialised`;
  return `init: from ${from.source} (${src.name}): loaded ${plan.weights.size} tensors (${loaded.toLocaleString('en-US')} values); ${classes}; ` +
    `frozen ${frozen.size > 0 ? describeFrozen(model, frozen) : 'nothing'}; keeps its input (${src.input.channelOrder.toUpperCase()} - ${src.input.mean.map((v) => Number(v.toFixed(3))).join('/')}), default boxes and L2Norm; fresh optimizer and schedule`;
}

function sameArchitecture(a: SsdSpec, b: SsdSpec): boolean {
  return JSON.stringify({ ...a, name: '' }) === JSON.stringify({ ...b, name: '' });
}

function trainingCheckpoint(file: string): Checkpoint & { training: TrainingRecord } {
  const ckpt = loadCheckpoint(file);
  if (!ckpt.training) throw new SsdError(`${file}: not a training checkpoint (no training record); cannot --resume`);
  return ckpt as Checkpoint & { training: TrainingRecord };
}

/**
 * The config a run in `outDir` was started with (from its checkpoint), for `--resume` without
 * `--config`; undefined when there is no checkpoint yet.
 */
export function savedConfig(outDir: string): TrainConfig | undefined {
  const file = join(outDir, CHECKPOINT_FILE);
  if (!existsSync(file)) return undefined;
  const ckpt = trainingCheckpoint(file);
  return configFromRecord(ckpt.training.config, ckpt.spec, file);
}

function describeValidation(v: ValidationPoint): string {
  if (v.metric === 'coco') {
    const [, ap50, ap75] = v.stats ?? [];
    return `COCO AP ${v.map.toFixed(4)} (AP50 ${ap50?.toFixed(4) ?? 'n/a'}, AP75 ${ap75?.toFixed(4) ?? 'n/a'})`;
  }
  return `VOC07 mAP ${v.map.toFixed(4)}`;
}

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const ckptPath = join(opts.outDir, CHECKPOINT_FILE);
  const backend = tf.getBackend();
  // On the CPU backends the convs compute their gradients as forward convs (layers/conv.ts).
  const fastGrads = usesForwardConvGradients(backend);

  let config = opts.config;
  let spec = config.spec;
  let record: TrainingRecord | undefined;
  let resumeFrom: Checkpoint | undefined;
  let initPlan: InitPlan | undefined;
  let initialWeights = opts.initialWeights;
  if (opts.initFrom && opts.initialWeights) throw new SsdError('give --init-from or --backbone-weights, not both (--init-from already holds the backbone)');
  if (opts.resume && existsSync(ckptPath)) {
    resumeFrom = trainingCheckpoint(ckptPath);
    record = resumeFrom.training!;
    if (!sameArchitecture(resumeFrom.spec, spec) && resumeFrom.spec.name !== spec.name) log(`resume: using the checkpoint's model ${resumeFrom.spec.name} (config named ${spec.name})`);
    spec = resumeFrom.spec;
    // The first conv keeps the learning-rate multiplier the run started with (it depended on the
    // initial weights, which a resumed run no longer has).
    const savedMult = record.config.train.firstConvLrMult;
    const keepMult = config.train.firstConvLrMult === undefined && typeof savedMult === 'number';
    config = { ...config, spec, train: keepMult ? { ...config.train, firstConvLrMult: savedMult } : config.train };
    if (opts.initFrom) log(`resume: the run in ${opts.outDir} continues from its own checkpoint; --init-from ${opts.initFrom.source} is ignored`);
  } else if (opts.initFrom) {
    initPlan = planInitFrom(opts.initFrom, config);
    spec = initPlan.spec;
    initialWeights = initPlan.weights;
    // A checkpoint trained from scratch keeps the first conv's multiplier it was trained with (as a
    // resumed run does); an imported one has none and its first conv learns at the base rate.
    const savedMult = opts.initFrom.checkpoint.training?.config.train.firstConvLrMult;
    const mult = config.train.firstConvLrMult ?? (typeof savedMult === 'number' ? savedMult : firstConvLrMultFor(spec, initialWeights));
    config = { ...config, spec, train: { ...config.train, firstConvLrMult: mult } };
  } else if (config.train.firstConvLrMult === undefined) {
    config = { ...config, train: { ...config.train, firstConvLrMult: firstConvLrMultFor(spec, initialWeights) } };
  }
  const run = resolveRunLength(config.train, opts.trainSet.samples.length);
  const recipe = run.recipe;
  config = { ...config, train: recipe };
  const total = recipe.iterations;
  const stopAt = Math.min(total, opts.stopAfter ?? total);
  // Checked before anything is written: a bad pipeline or an empty dataset leaves no run directory.
  const steps = buildPipeline(config.augment, spec);
  if (opts.trainSet.samples.length === 0) throw new SsdError(`training data ${opts.trainSet.name}: no images`);
  const frozen = frozenLayers(spec, recipe.freeze);

  mkdirSync(opts.outDir, { recursive: true });
  const stale = removeStaleAtomicTemps(opts.outDir, [CHECKPOINT_FILE, CURVE_FILE, LABELS_FILE]);
  if (stale.length > 0) {
    const mb = stale.reduce((n, f) => n + f.bytes, 0) / 1e6;
    log(`run ${opts.outDir}: removed ${stale.length} temporary file(s) (${mb.toFixed(1)} MB) that an interrupted run left behind`);
  }
  for (const note of run.notes) log(note);
  // The classes travel with the checkpoint's spec (and so into the model's metadata); this copy is for people and --labels.
  writeFileAtomic(join(opts.outDir, LABELS_FILE), `${spec.labels.slice(1).join('\n')}\n`);
  const opt = new SgdMomentum({ momentum: recipe.momentum, weightDecay: recipe.weightDecay });
  let model: SsdModel;
  if (resumeFrom) {
    model = createSsdModel(spec, { weights: resumeFrom.weights, frozen });
    opt.setState(resumeFrom.optimizer, model.variables);
    log(`resume: ${ckptPath} at iteration ${record!.iteration}`);
  } else {
    if (opts.resume) log(`resume: no checkpoint in ${opts.outDir} yet, starting ${opts.initFrom ? `from --init-from ${opts.initFrom.source}` : 'from scratch'}`);
    model = createSsdModel(spec, { seed: recipe.seed, frozen, ...(initialWeights ? { weights: initialWeights } : {}) });
    if (opts.initFrom && initPlan) log(describeInit(opts.initFrom, initPlan, model, frozen));
    else if (frozen.size > 0) log(`init: frozen ${describeFrozen(model, frozen)}`);
    if (recipe.firstConvLrMult !== undefined && recipe.firstConvLrMult !== 1 && !opts.initFrom) {
      log(`init: from scratch without batch norm: ${firstConv(spec)}/kernel learns at lr x ${recipe.firstConvLrMult.toPrecision(3)} (1/${INPUT_PIXEL_STD}^2: its input is 0..255 pixels, not unit-variance)`);
    }
  }
  const shares = opts.shares?.shares ?? 1;
  let parallel: DataParallel | undefined;
  if (shares > 1) {
    try {
      parallel = await DataParallel.start(model, backend as BackendName, shares, frozen);
    } catch (err) {
      opt.dispose();
      model.dispose();
      throw err;
    }
    log(`data-parallel: each batch split over ${shares} threads (${opts.shares!.reason}), gradients summed every step`);
  }
  let loader: BatchSource;
  try {
    loader = opts.loaderThread
      ? await LoaderThread.start({ dataset: opts.trainSet, spec, augment: config.augment, batchSize: recipe.batchSize, seed: recipe.seed, ...(opts.imageCacheBytes !== undefined ? { cacheBytes: opts.imageCacheBytes } : {}) },
        { prefetch: opts.prefetch ?? 2, warn: (w) => progressLog(w) })
      : new DataLoader({ dataset: opts.trainSet, spec, steps, batchSize: recipe.batchSize, seed: recipe.seed, prefetch: opts.prefetch ?? 2, images: new ImageSource(opts.imageCacheBytes, (w) => progressLog(w)), warn: (w) => progressLog(w) }, defaultBoxes(spec));
  } catch (err) {
    await parallel?.dispose();
    opt.dispose();
    model.dispose();
    throw err;
  }
  const valImages = new ImageSource(256 * 1024 * 1024, (w) => progressLog(w));
  const metric = opts.valSet ? validationMetric(opts.valSet) : undefined;

  let iteration = record?.iteration ?? 0;
  let microBatches = record?.microBatches ?? 0;
  const history = record?.history ?? emptyHistory();
  const validations = record?.validations ?? [];
  const elapsedBefore = record?.elapsedSeconds ?? 0;
  const bar = new ProgressBar({ total, enabled: opts.progress !== false });
  function progressLog(line: string): void {
    if (opts.progress === false) log(line); else bar.log(line);
  }
  const schedule = scheduleOf(recipe);
  log(`train: ${spec.name} (${model.paramCount().toLocaleString('en-US')} parameters, input ${spec.inputSize}) on ${opts.trainSet.samples.length} images, ` +
    `${total} iterations of batch ${recipe.batchSize}${recipe.accumulate > 1 ? ` x ${recipe.accumulate} accumulated` : ''}, lr ${recipe.lr}, backend ${backend}${fastGrads ? ' (conv gradients as forward convs)' : ''}`);

  const saveAll = (): string => {
    const training: TrainingRecord = {
      iteration, totalIterations: total, microBatches, seed: recipe.seed,
      data: `${opts.trainSet.name} (${opts.trainSet.samples.length} images)`,
      ...(opts.valSet ? { valData: `${opts.valSet.name} (${opts.valSet.samples.length} images)` } : {}),
      config: savedTrainConfig(config), history, validations, backend,
      elapsedSeconds: elapsedBefore + (performance.now() - started) / 1000,
    };
    const file = saveCheckpoint(ckptPath, { spec, weights: model.getWeights(), optimizer: opt.getState(), training });
    writeCurve();
    return file;
  };
  const writeCurve = (): void => {
    const title = `${spec.name}: loss and ${metric === 'coco' ? 'COCO AP' : 'VOC07 mAP'}`;
    writeFileAtomic(join(opts.outDir, CURVE_FILE), renderCurveSvg({ ...history, map: validations, title }));
  };
  const runValidation = async (limit: number): Promise<ValidationPoint | undefined> => {
    if (!opts.valSet || opts.valSet.samples.length === 0) return undefined;
    const r = await validate(model, opts.valSet, { limit: limit > 0 ? limit : undefined, images: valImages });
    const point: ValidationPoint = { iteration, metric: r.metric, map: r.map, ...(r.stats ? { stats: r.stats } : {}), images: r.images };
    validations.push(point);
    progressLog(`val @ ${iteration}: ${describeValidation(point)} on ${r.images} images (${r.seconds.toFixed(1)} s)`);
    writeCurve();
    return point;
  };

  let interrupted = false;
  const onSigint = (): void => {
    if (interrupted) {
      process.stderr.write('\nsecond Ctrl-C: exiting without saving\n');
      process.exit(130);
    }
    interrupted = true;
    progressLog('Ctrl-C: finishing this step, then saving a checkpoint (Ctrl-C again to quit at once)');
  };
  if (opts.handleSigint !== false) process.on('SIGINT', onSigint);

  const started = performance.now();
  let imagesDone = 0;
  let secPerIt = 0;
  let imgPerSec = 0;
  let lastCheckpoint = iteration;
  try {
    while (iteration < stopAt && !interrupted) {
      // Prefetched batches resolve as microtasks; without this the event loop (Ctrl-C, timers) would
      // never run between steps.
      await new Promise<void>((r) => setImmediate(r));
      if (interrupted) break;
      const t0 = performance.now();
      const batches: TrainBatch[] = [];
      for (let j = 0; j < recipe.accumulate; j++) batches.push(await loader.batch(microBatches + j));
      microBatches += recipe.accumulate;
      const lr = learningRate(schedule, iteration);
      const r = parallel ? await trainStepParallel(model, opt, batches, lr, recipe, parallel) : trainStep(model, opt, batches, lr, recipe);
      if (!Number.isFinite(r.loss)) throw new SsdError(`training diverged at iteration ${iteration} (loss ${r.loss}); lower --lr or raise --warmup`);
      history.iterations.push(iteration);
      history.loss.push(r.loss);
      history.loc.push(r.loc);
      history.conf.push(r.conf);
      history.lr.push(lr);
      iteration++;
      imagesDone += r.images;
      const dt = (performance.now() - t0) / 1000;
      secPerIt = secPerIt === 0 ? dt : 0.9 * secPerIt + 0.1 * dt;
      imgPerSec = (recipe.batchSize * recipe.accumulate) / secPerIt;
      bar.update({ iteration, loss: r.loss, loc: r.loc, conf: r.conf, lr, imagesPerSecond: imgPerSec }, secPerIt, iteration === stopAt);
      if (recipe.valEvery > 0 && iteration % recipe.valEvery === 0 && iteration < total) await runValidation(recipe.valLimit);
      if (recipe.checkpointEvery > 0 && iteration % recipe.checkpointEvery === 0) {
        saveAll();
        lastCheckpoint = iteration;
      }
    }
    let finalValidation: ValidationPoint | undefined;
    if (!interrupted && iteration >= total) finalValidation = await runValidation(0);
    const file = iteration !== lastCheckpoint || !existsSync(ckptPath) || finalValidation !== undefined ? saveAll() : ckptPath;
    bar.done();
    const seconds = (performance.now() - started) / 1000;
    log(`${interrupted ? 'interrupted' : 'done'} at iteration ${iteration}: checkpoint ${file}, curve ${join(opts.outDir, CURVE_FILE)}` +
      ` (${seconds.toFixed(0)} s, ${(imagesDone / Math.max(seconds, 1e-9)).toFixed(1)} img/s overall)`);
    return {
      iteration, interrupted, history, validations, checkpoint: file, seconds, imagesPerSecond: imagesDone / Math.max(seconds, 1e-9),
      ...(finalValidation ? { finalValidation, finalMap: finalValidation.map } : {}),
    };
  } finally {
    if (opts.handleSigint !== false) process.removeListener('SIGINT', onSigint);
    await parallel?.dispose();
    if (loader instanceof LoaderThread) await loader.dispose();
    opt.dispose();
    model.dispose();
  }
}
