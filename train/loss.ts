/**
 * The MultiBox loss (SSD-SPEC "Matching and loss"):
 *   L = (L_conf + alpha * L_loc) / N,  N = number of positive default boxes in the batch (0 -> L = 0;
 *   a share of a data-parallel batch takes the whole batch's N, `normalizer`)
 * L_loc: Smooth L1 (beta 1) between predicted and encoded offsets, summed over the positives' 4 coords.
 * L_conf: softmax cross-entropy over the positives and, per image, the hardest negatives: those with the
 * highest background loss -log softmax(conf)[0], at most `negPosRatio` per positive of that image.
 * The ranking is done on plain numbers, outside the gradient: it only selects which boxes enter L_conf.
 */
import * as tf from '@tensorflow/tfjs';

export interface MultiboxTargets {
  /** Encoded ground-truth offsets [N, P, 4] (core/box-coding.ts); ignored where the label is 0. */
  loc: tf.Tensor3D;
  /** Matched class per default box [N, P] int32, 0 = background. */
  labels: tf.Tensor2D;
}

export interface MultiboxLossOptions {
  /** Negatives kept per positive, per image (3). */
  negPosRatio?: number;
  /** Weight of the localisation term (1). */
  alpha?: number;
  /**
   * N, when these images are a share of a larger batch (data-parallel training, train/gradients.ts):
   * the positives of the whole batch, so that the shares' losses add up to the batch's. Default: the
   * positives of these images.
   */
  normalizer?: number;
}

export interface MultiboxLoss {
  total: tf.Scalar;
  /** L_loc / N. */
  loc: tf.Scalar;
  /** L_conf / N. */
  conf: tf.Scalar;
  numPositive: number;
}

/**
 * Marks, per image, the positives and the hardest negatives (1 = enters the confidence loss).
 * `backgroundLossNP` is -log p(background) per box; ties keep the lower box index.
 */
export function selectHardNegatives(backgroundLossNP: Float32Array, labelsNP: Int32Array, n: number, p: number, negPosRatio: number): { maskNP: Float32Array; numPositive: number } {
  const maskNP = new Float32Array(n * p);
  let numPositive = 0;
  const negatives: number[] = [];
  for (let i = 0; i < n; i++) {
    const off = i * p;
    let pos = 0;
    negatives.length = 0;
    for (let j = 0; j < p; j++) {
      if (labelsNP[off + j]! > 0) { maskNP[off + j] = 1; pos++; } else negatives.push(j);
    }
    numPositive += pos;
    const keep = Math.min(Math.floor(negPosRatio * pos), negatives.length);
    if (keep === 0) continue;
    negatives.sort((a, b) => backgroundLossNP[off + b]! - backgroundLossNP[off + a]! || a - b);
    for (let r = 0; r < keep; r++) maskNP[off + negatives[r]!] = 1;
  }
  return { maskNP, numPositive };
}

export function multiboxLoss(loc: tf.Tensor3D, conf: tf.Tensor3D, targets: MultiboxTargets, opts: MultiboxLossOptions = {}): MultiboxLoss {
  const negPosRatio = opts.negPosRatio ?? 3;
  const alpha = opts.alpha ?? 1;
  const [n, p, c] = conf.shape;
  if (loc.shape[0] !== n || loc.shape[1] !== p || loc.shape[2] !== 4) throw new Error(`multiboxLoss: loc is [${loc.shape}], conf is [${conf.shape}]`);
  if (targets.loc.shape.join() !== loc.shape.join()) throw new Error(`multiboxLoss: target loc is [${targets.loc.shape}], predictions [${loc.shape}]`);
  if (targets.labels.shape[0] !== n || targets.labels.shape[1] !== p) throw new Error(`multiboxLoss: labels are [${targets.labels.shape}], want [${n},${p}]`);

  const labelsNP = Int32Array.from(targets.labels.dataSync());
  for (const l of labelsNP) if (l < 0 || l >= c) throw new Error(`multiboxLoss: label ${l} outside [0, ${c})`);
  // Background loss of each box, read as numbers: the ranking must not be part of the gradient.
  const backgroundLossNP = tf.tidy(() => tf.neg(tf.logSoftmax(conf).slice([0, 0, 0], [n, p, 1])).dataSync() as Float32Array);
  const { maskNP, numPositive } = selectHardNegatives(backgroundLossNP, labelsNP, n, p, negPosRatio);

  const N = opts.normalizer ?? numPositive;
  if (!(N >= numPositive)) throw new Error(`multiboxLoss: normalizer ${N} is below the ${numPositive} positives of these images`);
  return tf.tidy(() => {
    if (numPositive === 0) {
      // Keep the graph connected (zero gradients rather than none) so callers can always take grads.
      const zero = tf.add(tf.add(tf.mul(tf.sum(loc), 0), tf.mul(tf.sum(conf), 0)), 0) as tf.Scalar; // + 0 turns -0 into 0
      return { total: zero, loc: zero.clone(), conf: zero.clone(), numPositive };
    }
    const labels = tf.tensor2d(labelsNP, [n, p], 'int32');
    const pos = tf.cast(tf.greater(labels, 0), 'float32');
    const diff = tf.abs(tf.sub(loc, targets.loc));
    // Smooth L1 as 0.5 m^2 + (d - m), m = min(d, 1): the same function, built from ops with gradients.
    const m = tf.minimum(diff, 1);
    const smoothL1 = tf.add(tf.mul(tf.square(m), 0.5), tf.sub(diff, m));
    const locSum = tf.sum(tf.mul(tf.sum(smoothL1, -1), pos));
    const ce = tf.neg(tf.sum(tf.mul(tf.logSoftmax(conf), tf.oneHot(labels, c)), -1));
    const confSum = tf.sum(tf.mul(ce, tf.tensor2d(maskNP, [n, p])));
    const locLoss = tf.div(locSum, N) as tf.Scalar;
    const confLoss = tf.div(confSum, N) as tf.Scalar;
    return { total: tf.add(confLoss, tf.mul(locLoss, alpha)) as tf.Scalar, loc: locLoss, conf: confLoss, numPositive };
  });
}
