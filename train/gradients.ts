/**
 * The gradients of one share of a micro-batch: forward, MultiBox loss, backward. One home for what the
 * trainer's thread and every data-parallel worker thread (data-parallel.ts) compute, so that both run
 * exactly the same code.
 *
 * The loss of a share is normalised by the positives of the whole micro-batch (`normalizer`), not by
 * its own: hard negatives are mined per image (loss.ts), so the shares' losses and gradients then add
 * up to the micro-batch's own, and splitting a batch over threads changes nothing but float rounding.
 */
import * as tf from '@tensorflow/tfjs';
import type { TrainBatch } from './data-loader.js';
import { multiboxLoss } from './loss.js';
import type { SsdModel } from './model.js';

export interface LossParts {
  /** The share's contribution to the micro-batch's loss (conf + alpha * loc, over the batch's N). */
  loss: number;
  loc: number;
  conf: number;
  /** Positives in this share. */
  numPositive: number;
}

export interface ShareGradients {
  /** Gradient per canonical variable name (trainable variables only); the caller disposes them. */
  grads: Map<string, tf.Tensor>;
  parts: LossParts;
}

export interface LossWeights {
  negPosRatio: number;
  alpha: number;
}

/** A batch's images [from, to) as a batch of its own (views, no copies). */
export function sliceBatch(b: TrainBatch, from: number, to: number, inputSize: number, numPriors: number): TrainBatch {
  const px = inputSize * inputSize * 3;
  let numPositive = 0;
  const labels = b.labels.subarray(from * numPriors, to * numPriors);
  for (const l of labels) if (l > 0) numPositive++;
  return {
    size: to - from,
    imagesNHWC: b.imagesNHWC.subarray(from * px, to * px),
    locTargets: b.locTargets.subarray(from * numPriors * 4, to * numPriors * 4),
    labels,
    numPositive,
    ids: b.ids.slice(from, to),
  };
}

/**
 * Gradients of `b`'s loss normalised by `normalizer` positives (default: its own). Frozen variables
 * get none. `canonical` maps tfjs variable names to the model's canonical names.
 */
export function shareGradients(model: SsdModel, b: TrainBatch, w: LossWeights, normalizer: number, canonical: ReadonlyMap<string, string>): ShareGradients {
  const S = model.spec.inputSize;
  const P = b.labels.length / b.size;
  let parts: LossParts = { loss: 0, loc: 0, conf: 0, numPositive: 0 };
  const { value, grads } = tf.tidy(() => {
    const images = tf.tensor4d(b.imagesNHWC, [b.size, S, S, 3]);
    const targets = { loc: tf.tensor3d(b.locTargets, [b.size, P, 4]), labels: tf.tensor2d(b.labels, [b.size, P], 'int32') };
    return tf.variableGrads(() => {
      const out = model.forward(images, true);
      const l = multiboxLoss(out.loc, out.conf, targets, { negPosRatio: w.negPosRatio, alpha: w.alpha, normalizer });
      parts = { loss: 0, loc: l.loc.dataSync()[0]!, conf: l.conf.dataSync()[0]!, numPositive: l.numPositive };
      return l.total;
    }, model.trainableVariables());
  });
  parts.loss = value.dataSync()[0]!;
  value.dispose();
  const out = new Map<string, tf.Tensor>();
  for (const [tfName, g] of Object.entries(grads)) out.set(canonical.get(tfName)!, g);
  return { grads: out, parts };
}

/** tfjs variable name -> canonical name, for `shareGradients`. */
export function canonicalNames(model: SsdModel): Map<string, string> {
  return new Map([...model.variables].map(([name, v]) => [v.name, name]));
}

/** Positive default boxes of a batch, as the MultiBox loss counts them (label > 0). */
export function countPositives(labels: Int32Array): number {
  let n = 0;
  for (const l of labels) if (l > 0) n++;
  return n;
}

/**
 * Gradients and losses summed over the shares of a micro-batch and over the micro-batches of a step
 * (gradient accumulation). Additions happen in the order they are made, so a step is deterministic.
 */
export class GradientSum {
  readonly grads = new Map<string, tf.Tensor>();
  /** Micro-batches that had at least one image. */
  microBatches = 0;
  images = 0;
  loss = 0;
  loc = 0;
  conf = 0;
  numPositive = 0;

  /** Adds gradients (consumed: disposed or kept) and their loss parts. */
  add(grads: Map<string, tf.Tensor>, parts: LossParts, images: number): void {
    for (const [name, g] of grads) {
      const prev = this.grads.get(name);
      if (prev) {
        this.grads.set(name, tf.add(prev, g));
        prev.dispose();
        g.dispose();
      } else this.grads.set(name, g);
    }
    this.loss += parts.loss;
    this.loc += parts.loc;
    this.conf += parts.conf;
    this.numPositive += parts.numPositive;
    this.images += images;
  }

  dispose(): void {
    for (const g of this.grads.values()) g.dispose();
    this.grads.clear();
  }
}
