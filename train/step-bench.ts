/**
 * Images per second of one SSD training step — forward, MultiBox loss (with hard-negative mining),
 * backward and an SGD-momentum update — on the wasm and cpu TensorFlow.js backends side by side.
 * Targets come from core matching of a few boxes against the default boxes, done once before timing
 * (in training it is the data loader's work).
 *
 * Entry point: scripts/bench-train-step.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { defaultBoxes } from '../core/default-boxes.js';
import { matchDefaultBoxes } from '../core/matching.js';
import { numDefaultBoxes, numClasses, specByName } from '../core/specs.js';
import { selectBackend, type BackendName } from './backend.js';
import { multiboxLoss } from './loss.js';
import { createSsdModel } from './model.js';
import { SgdMomentum } from './optimizer.js';

export interface TrainStepBenchOptions {
  config?: string;
  batch?: number;
  steps?: number;
  warmup?: number;
  backends?: BackendName[];
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

export interface TrainStepResult {
  backend: string;
  config: string;
  batch: number;
  steps: number;
  msPerStep: number;
  imagesPerSecond: number;
  /** Loss of the first and last timed step (a sanity check that the update does something). */
  lossFirst: number;
  lossLast: number;
}

export async function benchTrainStep(opts: TrainStepBenchOptions = {}): Promise<TrainStepResult[]> {
  const config = opts.config ?? 'ssd300';
  const batch = opts.batch ?? 1;
  const steps = opts.steps ?? 3;
  const warmup = opts.warmup ?? 1;
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const spec = specByName(config);
  const P = numDefaultBoxes(spec);
  const S = spec.inputSize;

  // Three objects per image, the same for every backend.
  const priors = defaultBoxes(spec);
  const locNP4 = new Float32Array(batch * P * 4);
  const labelsNP = new Int32Array(batch * P);
  for (let i = 0; i < batch; i++) {
    const gt = Float32Array.from([0.1, 0.1, 0.45, 0.6, 0.5, 0.3, 0.9, 0.8, 0.05, 0.7, 0.25, 0.95]);
    const m = matchDefaultBoxes(gt, Int32Array.from([1, 2 % (numClasses(spec) - 1) + 1, 1]), priors, { variances: spec.variances });
    locNP4.set(m.locTargets, i * P * 4);
    labelsNP.set(m.labels, i * P);
  }
  const pixels = new Float32Array(batch * S * S * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = ((i * 2654435761) % 255) - 120;

  const results: TrainStepResult[] = [];
  for (const backend of opts.backends ?? ['wasm', 'cpu']) {
    const choice = await selectBackend(backend, { log });
    const model = createSsdModel(spec, { seed: 1 });
    const sgd = new SgdMomentum();
    const images = tf.tensor4d(pixels, [batch, S, S, 3]);
    const targets = { loc: tf.tensor3d(locNP4, [batch, P, 4]), labels: tf.tensor2d(labelsNP, [batch, P], 'int32') };
    const vars = model.trainableVariables();
    const names = new Map(vars.map((v) => [v.name, [...model.variables].find(([, x]) => x === v)![0]]));
    const step = (): number => {
      const { value, grads } = tf.variableGrads(() => {
        const out = model.forward(images, true);
        return multiboxLoss(out.loc, out.conf, targets).total;
      }, vars);
      const byName = new Map<string, tf.Tensor>();
      for (const [tfName, g] of Object.entries(grads)) byName.set(names.get(tfName)!, g);
      sgd.apply(model.variables, byName, 1e-4);
      const loss = value.dataSync()[0]!;
      value.dispose();
      return loss;
    };
    for (let i = 0; i < warmup; i++) {
      const t = performance.now();
      step();
      log(`  ${choice.name}: warm-up step ${i + 1}/${warmup} ${((performance.now() - t) / 1000).toFixed(1)} s`);
    }
    const losses: number[] = [];
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) {
      const t = performance.now();
      losses.push(step());
      log(`  ${choice.name}: step ${i + 1}/${steps} ${((performance.now() - t) / 1000).toFixed(1)} s, loss ${losses[i]!.toFixed(3)}`);
    }
    const ms = (performance.now() - t0) / steps;
    results.push({ backend: choice.name, config, batch, steps, msPerStep: ms, imagesPerSecond: (1000 * batch) / ms, lossFirst: losses[0]!, lossLast: losses[losses.length - 1]! });
    tf.dispose([images, targets.loc, targets.labels]);
    model.dispose();
  }
  return results;
}
