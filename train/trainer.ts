/**
 * The training loop: SGD with momentum and weight decay (optimizer.ts), warmup + multistep lr
 * (schedule.ts), batches with gradient accumulation from the data loader, MultiBox loss (loss.ts),
 * checkpoints (core/checkpoint.ts) every N iterations, at the end and on Ctrl-C, validation mAP with
 * the core's evaluator every N iterations, a progress line and an SVG training curve.
 *
 * Resuming is exact: the checkpoint holds the weights, the momentum buffers, the iteration, the
 * position in the sample stream (which with the seed determines every later batch and augmentation,
 * see data-loader.ts) and the loss history, so N + N iterations give the same losses as 2N straight.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { CHECKPOINT_FILE, loadCheckpoint, saveCheckpoint, type WeightMap } from '../core/checkpoint.js';
import { defaultBoxes } from '../core/default-boxes.js';
import { writeFileAtomic } from '../core/atomic-write.js';
import { SsdError } from '../core/errors.js';
import type { Dataset } from '../core/datasets/types.js';
import type { SsdSpec } from '../core/specs.js';
import { buildPipeline } from './augment/pipeline.js';
import type { TrainConfig, TrainRecipe } from './config.js';
import { installFastConvGradients } from './conv-grad.js';
import { DataLoader, ImageSource, type TrainBatch } from './data-loader.js';
import { multiboxLoss } from './loss.js';
import { createSsdModel, type SsdModel } from './model.js';
import { SgdMomentum } from './optimizer.js';
import { renderCurveSvg } from './plot.js';
import { ProgressBar } from './progress.js';
import { learningRate, type LrSchedule } from './schedule.js';
import { validate } from './validate.js';

export const CURVE_FILE = 'training-curve.svg';

export interface LossHistory {
  iterations: number[];
  loss: number[];
  loc: number[];
  conf: number[];
  lr: number[];
}

export interface MapPoint { iteration: number; map: number; images: number }

/** What the checkpoint's `state` holds (plain JSON). */
export interface TrainerState {
  /** Optimizer steps done. */
  iteration: number;
  /** Micro-batches consumed from the sample stream (the loader's position). */
  microBatches: number;
  config: { name: string; augment: TrainConfig['augment']; train: TrainRecipe };
  /** The random stream: seed plus position; every later batch and augmentation follows from them. */
  rng: { seed: number; microBatches: number };
  history: LossHistory;
  maps: MapPoint[];
  backend: string;
  elapsedSeconds: number;
}

export interface TrainOptions {
  config: TrainConfig;
  trainSet: Dataset;
  valSet?: Dataset;
  outDir: string;
  /** Continue from `<outDir>/checkpoint.ssdckpt` (its spec, weights, optimizer and stream position). */
  resume?: boolean;
  /** Starting weights (e.g. an ImageNet VGG16 backbone); may be partial. Ignored on resume. */
  initialWeights?: WeightMap;
  /** Stop (with a checkpoint) after this iteration even if the schedule runs longer. */
  stopAfter?: number;
  /** Lines for the person at the terminal (default: stderr). */
  log?: (line: string) => void;
  /** Show the progress bar (default true). */
  progress?: boolean;
  /** Catch Ctrl-C: finish the step, save, return interrupted (default true). */
  handleSigint?: boolean;
  prefetch?: number;
  /** Images cache for decoded training images (bytes). */
  imageCacheBytes?: number;
}

export interface TrainResult {
  iteration: number;
  interrupted: boolean;
  history: LossHistory;
  maps: MapPoint[];
  checkpoint: string;
  seconds: number;
  imagesPerSecond: number;
  finalMap?: number;
}

function scheduleOf(r: TrainRecipe): LrSchedule {
  return { baseLr: r.lr, warmupIterations: r.warmup, warmupFactor: r.warmupFactor, steps: r.steps, gamma: r.gamma };
}

function emptyHistory(): LossHistory {
  return { iterations: [], loss: [], loc: [], conf: [], lr: [] };
}

/** Iterations for `epochs` passes over `numSamples` images. */
export function iterationsForEpochs(epochs: number, numSamples: number, batchSize: number, accumulate: number): number {
  return Math.max(1, Math.ceil((epochs * numSamples) / (batchSize * accumulate)));
}

interface StepResult { loss: number; loc: number; conf: number; images: number; numPositive: number }

/**
 * One optimizer step over `batches` (gradient accumulation): gradients of each micro-batch's loss are
 * summed and divided by the number of micro-batches, then applied.
 */
function trainStep(model: SsdModel, opt: SgdMomentum, batches: TrainBatch[], lr: number, recipe: TrainRecipe): StepResult {
  const spec = model.spec;
  const S = spec.inputSize;
  const P = defaultBoxes(spec).length / 4;
  const canonical = new Map([...model.variables].map(([name, v]) => [v.name, name]));
  const vars = model.trainableVariables();
  const sums = new Map<string, tf.Tensor>();
  const res: StepResult = { loss: 0, loc: 0, conf: 0, images: 0, numPositive: 0 };
  let used = 0;
  for (const b of batches) {
    if (b.size === 0) continue;
    used++;
    let parts = { loc: 0, conf: 0, numPositive: 0 };
    const { value, grads } = tf.tidy(() => {
      const images = tf.tensor4d(b.imagesNHWC, [b.size, S, S, 3]);
      const targets = { loc: tf.tensor3d(b.locTargets, [b.size, P, 4]), labels: tf.tensor2d(b.labels, [b.size, P], 'int32') };
      return tf.variableGrads(() => {
        const out = model.forward(images, true);
        const l = multiboxLoss(out.loc, out.conf, targets, { negPosRatio: recipe.negPosRatio, alpha: recipe.alpha });
        parts = { loc: l.loc.dataSync()[0]!, conf: l.conf.dataSync()[0]!, numPositive: l.numPositive };
        return l.total;
      }, vars);
    });
    res.loss += value.dataSync()[0]!;
    value.dispose();
    res.loc += parts.loc;
    res.conf += parts.conf;
    res.numPositive += parts.numPositive;
    res.images += b.size;
    for (const [tfName, g] of Object.entries(grads)) {
      const name = canonical.get(tfName)!;
      const prev = sums.get(name);
      if (prev) {
        sums.set(name, tf.add(prev, g));
        prev.dispose();
        g.dispose();
      } else sums.set(name, g);
    }
  }
  if (used === 0) return res;
  if (used > 1) {
    for (const [name, g] of sums) {
      sums.set(name, tf.div(g, used));
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
  return { ...res, loss: res.loss / used, loc: res.loc / used, conf: res.conf / used };
}

function firstConv(spec: SsdSpec): string {
  return spec.layers.find((l) => l.kind === 'conv')!.name;
}

/**
 * He initialisation assumes unit-variance inputs, but SSD's inputs are mean-subtracted 0..255 pixels
 * (std ~60): from scratch, every activation and the first losses come out ~60x too large and SGD
 * diverges. Dividing the first conv's initial kernel by that spread (a fixed 64) starts the network at
 * the scale its initialisation intends; ImageNet backbones already carry the right scale.
 */
export const INPUT_SPREAD = 64;

function scaleFirstConvForInput(model: SsdModel, log: (line: string) => void): void {
  const name = `${firstConv(model.spec)}/kernel`;
  const v = model.variables.get(name);
  if (!v) return;
  tf.tidy(() => v.assign(tf.div(v, INPUT_SPREAD)));
  log(`init: ${name} scaled by 1/${INPUT_SPREAD} for 0..255 inputs (training from scratch)`);
}

function sameArchitecture(a: SsdSpec, b: SsdSpec): boolean {
  return JSON.stringify({ ...a, name: '' }) === JSON.stringify({ ...b, name: '' });
}

/**
 * The config a run in `outDir` was started with (from its checkpoint), for `--resume` without
 * `--config`; undefined when there is no checkpoint yet.
 */
export function savedConfig(outDir: string): TrainConfig | undefined {
  const file = join(outDir, CHECKPOINT_FILE);
  if (!existsSync(file)) return undefined;
  const ckpt = loadCheckpoint(file);
  const st = ckpt.state as unknown as TrainerState | undefined;
  if (!st?.config) throw new SsdError(`${file}: not a training checkpoint (no trainer state); cannot --resume`);
  return { name: st.config.name, spec: ckpt.spec, augment: st.config.augment, train: st.config.train };
}

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  mkdirSync(opts.outDir, { recursive: true });
  const ckptPath = join(opts.outDir, CHECKPOINT_FILE);
  const backend = tf.getBackend();
  // The CPU backends train several times faster with conv gradients as forward convs (conv-grad.ts).
  const fastGrads = backend === 'wasm' || backend === 'cpu';
  if (fastGrads) installFastConvGradients();

  let config = opts.config;
  let spec = config.spec;
  let state: TrainerState | undefined;
  let model: SsdModel;
  const opt = new SgdMomentum({ momentum: config.train.momentum, weightDecay: config.train.weightDecay });
  if (opts.resume && existsSync(ckptPath)) {
    const ckpt = loadCheckpoint(ckptPath);
    const saved = ckpt.state as unknown as TrainerState | undefined;
    if (!saved || typeof saved.iteration !== 'number' || typeof saved.microBatches !== 'number') throw new SsdError(`${ckptPath}: not a training checkpoint (no trainer state); cannot --resume`);
    if (!sameArchitecture(ckpt.spec, spec) && ckpt.spec.name !== spec.name) log(`resume: using the checkpoint's model ${ckpt.spec.name} (config named ${spec.name})`);
    spec = ckpt.spec;
    state = saved;
    config = { ...config, spec };
    model = createSsdModel(spec, { weights: ckpt.weights, filterGrad: fastGrads ? 'native' : 'auto' });
    opt.setState(ckpt.optimizer, model.variables);
    log(`resume: ${ckptPath} at iteration ${saved.iteration}`);
  } else {
    if (opts.resume) log(`resume: no checkpoint in ${opts.outDir} yet, starting from scratch`);
    model = createSsdModel(spec, { seed: config.train.seed, filterGrad: fastGrads ? 'native' : 'auto', ...(opts.initialWeights ? { weights: opts.initialWeights } : {}) });
    if (!opts.initialWeights?.has(`${firstConv(spec)}/kernel`)) scaleFirstConvForInput(model, log);
  }
  const recipe = config.train;
  const total = recipe.epochs ? iterationsForEpochs(recipe.epochs, opts.trainSet.samples.length, recipe.batchSize, recipe.accumulate) : recipe.iterations;
  const stopAt = Math.min(total, opts.stopAfter ?? total);
  const steps = buildPipeline(config.augment, spec);
  const images = new ImageSource(opts.imageCacheBytes, (w) => progressLog(w));
  const loader = new DataLoader({ dataset: opts.trainSet, spec, steps, batchSize: recipe.batchSize, seed: recipe.seed, prefetch: opts.prefetch ?? 2, images, warn: (w) => progressLog(w) }, defaultBoxes(spec));
  const valImages = new ImageSource(256 * 1024 * 1024, (w) => progressLog(w));

  let iteration = state?.iteration ?? 0;
  let microBatches = state?.microBatches ?? 0;
  const history = state?.history ?? emptyHistory();
  const maps = state?.maps ?? [];
  const elapsedBefore = state?.elapsedSeconds ?? 0;
  const bar = new ProgressBar({ total, enabled: opts.progress !== false });
  function progressLog(line: string): void {
    if (opts.progress === false) log(line); else bar.log(line);
  }
  const schedule = scheduleOf(recipe);
  log(`train: ${spec.name} (${model.paramCount().toLocaleString('en-US')} parameters, input ${spec.inputSize}) on ${opts.trainSet.samples.length} images, ` +
    `${total} iterations of batch ${recipe.batchSize}${recipe.accumulate > 1 ? ` x ${recipe.accumulate} accumulated` : ''}, lr ${recipe.lr}, backend ${backend}${fastGrads ? ' (conv gradients as forward convs)' : ''}`);

  const saveAll = (): string => {
    const st: TrainerState = {
      iteration, microBatches, config: { name: config.name, augment: config.augment, train: recipe },
      rng: { seed: recipe.seed, microBatches }, history, maps, backend,
      elapsedSeconds: elapsedBefore + (performance.now() - started) / 1000,
    };
    const file = saveCheckpoint(ckptPath, { spec, weights: model.getWeights(), optimizer: opt.getState(), state: st as unknown as Record<string, unknown> });
    writeCurve();
    return file;
  };
  const writeCurve = (): void => {
    writeFileAtomic(join(opts.outDir, CURVE_FILE), renderCurveSvg({ ...history, map: maps, title: `${spec.name}: loss and VOC07 mAP` }));
  };
  const runValidation = async (limit: number): Promise<number | undefined> => {
    if (!opts.valSet || opts.valSet.samples.length === 0) return undefined;
    const r = await validate(model, opts.valSet, { limit: limit > 0 ? limit : undefined, images: valImages });
    maps.push({ iteration, map: r.map, images: r.images });
    progressLog(`val @ ${iteration}: VOC07 mAP ${r.map.toFixed(4)} on ${r.images} images (${r.seconds.toFixed(1)} s)`);
    writeCurve();
    return r.map;
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
      const r = trainStep(model, opt, batches, lr, recipe);
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
    let finalMap: number | undefined;
    if (!interrupted && iteration >= total) finalMap = await runValidation(0);
    const file = iteration !== lastCheckpoint || !existsSync(ckptPath) || finalMap !== undefined ? saveAll() : ckptPath;
    bar.done();
    const seconds = (performance.now() - started) / 1000;
    log(`${interrupted ? 'interrupted' : 'done'} at iteration ${iteration}: checkpoint ${file}, curve ${join(opts.outDir, CURVE_FILE)}` +
      ` (${seconds.toFixed(0)} s, ${(imagesDone / Math.max(seconds, 1e-9)).toFixed(1)} img/s overall)`);
    return { iteration, interrupted, history, maps, checkpoint: file, seconds, imagesPerSecond: imagesDone / Math.max(seconds, 1e-9), ...(finalMap !== undefined ? { finalMap } : {}) };
  } finally {
    if (opts.handleSigint !== false) process.removeListener('SIGINT', onSigint);
    opt.dispose();
    model.dispose();
  }
}
