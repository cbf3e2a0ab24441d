/**
 * Time of one SSD training step per backend, as `ssd train` runs it: the trainer's own `trainStep`
 * (forward, MultiBox loss with hard-negative mining, backward with the conv gradients layers/conv.ts
 * picks for the backend, gradient clipping per the recipe, SGD-momentum update) on the config's model
 * and recipe. Targets come from core matching of three boxes per image, done once before timing (in
 * training that is the data loader's work, which overlaps the steps).
 *
 * Cases (config x batch) and backends are interleaved: round 1 runs every (case, backend) segment, then
 * round 2 again, and so on, so that load from other processes on a shared machine hits all backends
 * alike and the ratios stay meaningful. Each segment builds a fresh model (seed 1), runs warm-up steps,
 * then times `steps` steps and the process CPU time they used (CPU seconds per wall second = cores busy).
 *
 * Entry point: scripts/bench-train-step.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { defaultBoxes } from '../core/default-boxes.js';
import { matchDefaultBoxes } from '../core/matching.js';
import { numClasses, numDefaultBoxes } from '../core/specs.js';
import { selectBackend, type BackendName } from './backend.js';
import { resolveConfig } from './config.js';
import type { TrainBatch } from './data-loader.js';
import { createSsdModel } from './model.js';
import { SgdMomentum } from './optimizer.js';
import { learningRate } from './schedule.js';
import { DataParallel } from './data-parallel.js';
import { firstConvLrMultFor, trainStep, trainStepParallel } from './trainer.js';

export interface BenchCase {
  /** A config name or file, as `ssd train --config` takes it. */
  config: string;
  /** Images per step (default: the config's batch size). */
  batch?: number;
  /** Backends for this case (default: the run's). */
  backends?: BackendName[];
  /** Timed steps per segment for this case (default: the run's). */
  steps?: number;
}

export interface TrainStepBenchOptions {
  cases?: BenchCase[];
  backends?: BackendName[];
  steps?: number;
  warmup?: number;
  rounds?: number;
  /**
   * Data-parallel thread counts to compare (data-parallel.ts; default [1]): each batch split over that
   * many threads, as `ssd train --threads N` runs it.
   */
  threads?: number[];
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
  /** Checked between steps: when it returns true the benchmark stops early and returns what it has. */
  stopRequested?: () => boolean;
}

export interface TrainStepResult {
  backend: BackendName;
  /** What computed, as the backend choice logs it (e.g. `tensorflow (CPU)`). */
  label: string;
  config: string;
  batch: number;
  /** Threads each batch was split over. */
  threads: number;
  /** Timed steps over all rounds. */
  steps: number;
  msPerStep: number;
  imagesPerSecond: number;
  /** Process CPU time per wall time during the timed steps: 1 = one core busy. */
  coresBusy: number;
  /** Seconds per step of each round, to show the spread. */
  roundSeconds: number[];
  /** Loss of the first and last timed step of the first round (a sanity check that the update does something). */
  lossFirst: number;
  lossLast: number;
  /** Why the segment failed (e.g. out of wasm memory); its numbers are then those of earlier rounds, or NaN. */
  error?: string;
}

export const DEFAULT_CASES: BenchCase[] = [{ config: 'ssd300', batch: 1 }];

/** Parses `config:batch[:backend+backend[:steps]]` items separated by commas (the script's --cases). */
export function parseCases(text: string): BenchCase[] {
  return text.split(',').filter((s) => s.trim() !== '').map((item) => {
    const [config, batch, backends, steps] = item.trim().split(':');
    if (!config) throw new Error(`--cases: "${item}" has no config name`);
    const c: BenchCase = { config };
    if (batch !== undefined && batch !== '') {
      const b = Number(batch);
      if (!Number.isInteger(b) || b < 1) throw new Error(`--cases: "${item}": batch must be a whole number >= 1`);
      c.batch = b;
    }
    if (backends) c.backends = backends.split('+') as BackendName[];
    if (steps !== undefined && steps !== '') {
      const n = Number(steps);
      if (!Number.isInteger(n) || n < 1) throw new Error(`--cases: "${item}": steps must be a whole number >= 1`);
      c.steps = n;
    }
    return c;
  });
}

function syntheticBatch(config: string, batch: number): { batch: TrainBatch; spec: ReturnType<typeof resolveConfig>['spec'] } {
  const spec = resolveConfig(config).spec;
  const P = numDefaultBoxes(spec);
  const S = spec.inputSize;
  const priors = defaultBoxes(spec);
  const locTargets = new Float32Array(batch * P * 4);
  const labels = new Int32Array(batch * P);
  let numPositive = 0;
  const C = numClasses(spec);
  for (let i = 0; i < batch; i++) {
    const gt = Float32Array.from([0.1, 0.1, 0.45, 0.6, 0.5, 0.3, 0.9, 0.8, 0.05, 0.7, 0.25, 0.95]);
    const m = matchDefaultBoxes(gt, Int32Array.from([1, (i % (C - 1)) + 1, 1]), priors, { variances: spec.variances });
    locTargets.set(m.locTargets, i * P * 4);
    labels.set(m.labels, i * P);
    for (const l of m.labels) if (l > 0) numPositive++;
  }
  const imagesNHWC = new Float32Array(batch * S * S * 3);
  for (let i = 0; i < imagesNHWC.length; i++) imagesNHWC[i] = ((i * 2654435761) % 255) - 120;
  return { batch: { size: batch, imagesNHWC, locTargets, labels, numPositive, ids: [] }, spec };
}

/** Lets signal handlers and timers run between synchronous steps. */
const yieldToEventLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

export async function benchTrainStep(opts: TrainStepBenchOptions = {}): Promise<TrainStepResult[]> {
  const cases = opts.cases ?? DEFAULT_CASES;
  let runBackends: BackendName[] = opts.backends ?? ['tensorflow', 'wasm'];
  const steps = opts.steps ?? 3;
  const warmup = opts.warmup ?? 1;
  const rounds = opts.rounds ?? 1;
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const stop = opts.stopRequested ?? (() => false);
  const threadCounts = opts.threads ?? [1];

  // Fail on a missing backend before the first long step, not in the middle of the run; by default
  // (no backends named) one that is not installed is left out with a line saying so.
  const labels = new Map<BackendName, string>();
  if (!opts.backends && cases.some((c) => !c.backends)) {
    const available: BackendName[] = [];
    for (const b of runBackends) {
      try {
        labels.set(b, (await selectBackend(b, { log })).label);
        available.push(b);
      } catch (err) {
        log(`bench: leaving out ${b}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    runBackends = available;
  }
  for (const b of new Set(cases.flatMap((c) => c.backends ?? runBackends))) {
    if (!labels.has(b)) labels.set(b, (await selectBackend(b, { log })).label);
  }

  const data = cases.map((c) => {
    const r = resolveConfig(c.config).train;
    const batch = c.batch ?? r.batchSize;
    const synthetic = syntheticBatch(c.config, batch);
    // The recipe train() runs for a new run from scratch.
    const recipe = { ...r, firstConvLrMult: r.firstConvLrMult ?? firstConvLrMultFor(synthetic.spec, undefined) };
    // The learning rate of the run's first iteration (warm-up start): timing does not depend on it.
    const lr = learningRate({ baseLr: recipe.lr, warmupIterations: recipe.warmup, warmupFactor: recipe.warmupFactor, steps: recipe.steps, gamma: recipe.gamma }, 0);
    return { c, recipe, lr, batch, input: synthetic.batch, spec: synthetic.spec };
  });
  const results = new Map<string, TrainStepResult & { ms: number; cpuMs: number }>();
  for (let round = 0; round < rounds && !stop(); round++) {
    for (const d of data) {
      for (const [backend, threads] of (d.c.backends ?? runBackends).flatMap((b) => threadCounts.map((t) => [b, Math.min(t, d.batch)] as const))) {
        if (stop()) break;
        const key = `${d.c.config}:${d.batch}:${backend}:${threads}`;
        const what = `round ${round + 1}/${rounds} ${d.c.config} batch ${d.batch} ${backend}${threads > 1 ? ` ${threads} threads` : ''}`;
        let model: ReturnType<typeof createSsdModel> | undefined;
        let opt: SgdMomentum | undefined;
        let parallel: DataParallel | undefined;
        try {
          await selectBackend(backend, { log: () => {} });
          model = createSsdModel(d.spec, { seed: 1 });
          opt = new SgdMomentum({ momentum: d.recipe.momentum, weightDecay: d.recipe.weightDecay });
          if (threads > 1) parallel = await DataParallel.start(model, backend, threads, new Set());
          const m = model;
          const o = opt;
          const p = parallel;
          const step = async (): Promise<number> => (p ? await trainStepParallel(m, o, [d.input], d.lr, d.recipe, p) : trainStep(m, o, [d.input], d.lr, d.recipe)).loss;
          for (let i = 0; i < warmup && !stop(); i++) {
            const t = performance.now();
            await step();
            log(`  ${what}: warm-up step ${i + 1}/${warmup} ${((performance.now() - t) / 1000).toFixed(2)} s`);
            await yieldToEventLoop();
          }
          const losses: number[] = [];
          let ms = 0;
          let cpuMs = 0;
          const timed = d.c.steps ?? steps;
          for (let i = 0; i < timed && !stop(); i++) {
            const cpu0 = process.cpuUsage();
            const t = performance.now();
            losses.push(await step());
            const dt = performance.now() - t;
            const cpu = process.cpuUsage(cpu0);
            ms += dt;
            cpuMs += (cpu.user + cpu.system) / 1000;
            log(`  ${what}: step ${i + 1}/${timed} ${(dt / 1000).toFixed(2)} s, loss ${losses[i]!.toFixed(3)}`);
            await yieldToEventLoop();
          }
          if (losses.length === 0) continue;
          const prev = results.get(key);
          if (prev) {
            prev.steps += losses.length; prev.ms += ms; prev.cpuMs += cpuMs; prev.roundSeconds.push(ms / losses.length / 1000);
          } else {
            results.set(key, {
              backend, label: labels.get(backend) ?? backend, config: d.c.config, batch: d.batch, threads, steps: losses.length, ms, cpuMs,
              msPerStep: 0, imagesPerSecond: 0, coresBusy: 0, roundSeconds: [ms / losses.length / 1000],
              lossFirst: losses[0]!, lossLast: losses[losses.length - 1]!,
            });
          }
        } catch (err) {
          // One case that cannot run must not lose the others' numbers. (SSD300 at batch 8 overflows
          // the wasm heap, and the wasm module is broken after that: later wasm segments fail too.)
          const error = err instanceof Error ? err.message : String(err);
          log(`  ${what}: failed: ${error}`);
          const prev = results.get(key);
          if (prev) prev.error = error;
          else {
            results.set(key, {
              backend, label: labels.get(backend) ?? backend, config: d.c.config, batch: d.batch, threads, steps: 0, ms: 0, cpuMs: 0,
              msPerStep: NaN, imagesPerSecond: NaN, coresBusy: NaN, roundSeconds: [], lossFirst: NaN, lossLast: NaN, error,
            });
          }
        } finally {
          try {
            await parallel?.dispose();
            opt?.dispose();
            model?.dispose();
          } catch {
            // A backend that failed mid-step may not release its tensors; the next segment starts fresh anyway.
          }
        }
      }
    }
  }
  return [...results.values()].map(({ ms, cpuMs, ...r }) => (r.steps === 0 ? r : {
    ...r, msPerStep: ms / r.steps, imagesPerSecond: (1000 * r.batch * r.steps) / ms, coresBusy: cpuMs / ms,
  }));
}
