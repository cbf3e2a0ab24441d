/** MultiBox loss (SSD-SPEC "Matching and loss") against hand-computed values and finite differences. */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { multiboxLoss, selectHardNegatives } from '../../train/loss.js';
import { describeOnBackends, useBackend } from './backends.js';
import { checkGradients, randomTensor } from './reference.js';

const LN = Math.log;
const E = Math.E;

/**
 * Image 0: five default boxes, three classes, one positive (box 0, class 1).
 *   box 0 logits [0, 0, 0]      positive, CE = -log(1/3) = ln 3
 *   box 1 logits [2, 0, 0]      background loss = -log(e^2 / (e^2 + 2)) = ln(1 + 2/e^2) = 0.2395
 *   box 2 logits [0, 1, 0]      background loss = ln(1 + e + 1) = ln(2 + e)    = 1.5514
 *   box 3 logits [0, 0, ln 2]   background loss = ln(1 + 1 + 2) = ln 4          = 1.3863
 *   box 4 logits [1, 0, 0]      background loss = ln(1 + 2/e)                   = 0.5514
 * 3 negatives per positive: boxes 2, 3, 4 (box 1 is the easiest and is left out).
 *   L_conf = ln 3 + ln(2 + e) + ln 4 + ln(1 + 2/e)
 * Box 0 predicts offsets [0.5, -2, 0, 1.5] for target [0, 0, 0, 0]:
 *   Smooth L1 = 0.5 * 0.5^2 + (2 - 0.5) + 0 + (1.5 - 0.5) = 0.125 + 1.5 + 0 + 1 = 2.625
 * Negatives' offsets are wildly off and must not count.
 * Image 1 has no positive: none of its boxes counts (at most 3 negatives per positive of the image).
 * N = 1, so total = L_conf + 2.625.
 */
function handExample() {
  const conf = tf.tensor3d([
    [[0, 0, 0], [2, 0, 0], [0, 1, 0], [0, 0, LN(2)], [1, 0, 0]],
    [[5, -3, 9], [0, 4, 0], [1, 1, 1], [0, 0, 0], [-2, 3, 1]],
  ]);
  const loc = tf.tensor3d([
    [[0.5, -2, 0, 1.5], [9, 9, 9, 9], [-7, 3, 5, 2], [4, 4, 4, 4], [1, 1, 1, 1]],
    [[9, 9, 9, 9], [9, 9, 9, 9], [9, 9, 9, 9], [9, 9, 9, 9], [9, 9, 9, 9]],
  ]);
  const targets = { loc: tf.zeros([2, 5, 4]) as tf.Tensor3D, labels: tf.tensor2d([[1, 0, 0, 0, 0], [0, 0, 0, 0, 0]], [2, 5], 'int32') };
  return { conf, loc, targets };
}

describeOnBackends(['cpu', 'wasm', 'tensorflow'], (b) => `multiboxLoss on ${b}`, (backend) => {
  it('matches the hand-computed example', async () => {
    await useBackend(backend);
    const { conf, loc, targets } = handExample();
    const l = multiboxLoss(loc, conf, targets);
    const confExpected = LN(3) + LN(2 + E) + LN(4) + LN(1 + 2 / E);
    expect(l.numPositive).toBe(1);
    expect(l.loc.dataSync()[0]).toBeCloseTo(2.625, 5);
    expect(l.conf.dataSync()[0]).toBeCloseTo(confExpected, 5);
    expect(l.total.dataSync()[0]).toBeCloseTo(confExpected + 2.625, 5);
    const half = multiboxLoss(loc, conf, targets, { alpha: 0.5 });
    expect(half.total.dataSync()[0]).toBeCloseTo(confExpected + 1.3125, 5);
    // Ratio 1: only the hardest negative (box 2) joins the positive.
    const one = multiboxLoss(loc, conf, targets, { negPosRatio: 1 });
    expect(one.conf.dataSync()[0]).toBeCloseTo(LN(3) + LN(2 + E), 5);
  });

  it('selection carries no gradient: unselected boxes get exactly zero gradient', async () => {
    await useBackend(backend);
    const { conf, loc, targets } = handExample();
    const [gLoc, gConf] = tf.grads((a: tf.Tensor, b: tf.Tensor) => multiboxLoss(a as tf.Tensor3D, b as tf.Tensor3D, targets).total)([loc, conf]);
    const plus0 = (t: tf.Tensor) => tf.add(t, 0); // -0 and 0 are the same gradient
    const gl = plus0(gLoc!).arraySync() as number[][][];
    const gc = plus0(gConf!).arraySync() as number[][][];
    expect(gl[0]![0]).toEqual([0.5, -1, 0, 1].map((v) => expect.closeTo(v, 6)));
    for (const b of [1, 2, 3, 4]) expect(gl[0]![b]).toEqual([0, 0, 0, 0]);
    expect(gc[0]![1]).toEqual([0, 0, 0]);
    for (const b of [0, 1, 2, 3, 4]) expect(gc[1]![b]).toEqual([0, 0, 0]);
    // Selected negative, box 2: d(-log p0)/dlogits = softmax - onehot(0) = [1/(2+e) - 1, e/(2+e), 1/(2+e)].
    const s = 2 + E;
    expect(gc[0]![2]![0]).toBeCloseTo(1 / s - 1, 5);
    expect(gc[0]![2]![1]).toBeCloseTo(E / s, 5);
  });

  it('gradients match finite differences on random predictions', async () => {
    await useBackend(backend);
    const n = 2, p = 12, c = 4;
    const loc = randomTensor([n, p, 4], 21, 2);
    const conf = randomTensor([n, p, c], 22, 3);
    const labels = tf.tensor2d([[0, 2, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3], [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]], [n, p], 'int32');
    const targets = { loc: randomTensor([n, p, 4], 23) as tf.Tensor3D, labels };
    checkGradients((a, b) => multiboxLoss(a as tf.Tensor3D, b as tf.Tensor3D, targets).total, [loc, conf], { what: `${backend} multibox`, eps: 1e-3, tol: 5e-3, samples: 10 });
  });

  it('is 0 with finite (zero) gradients when no box is positive', async () => {
    await useBackend(backend);
    const loc = randomTensor([1, 6, 4], 31);
    const conf = randomTensor([1, 6, 3], 32);
    const targets = { loc: tf.zeros([1, 6, 4]) as tf.Tensor3D, labels: tf.zeros([1, 6], 'int32') as tf.Tensor2D };
    const l = multiboxLoss(loc as tf.Tensor3D, conf as tf.Tensor3D, targets);
    expect(l.numPositive).toBe(0);
    expect(l.total.dataSync()[0]).toBe(0);
    const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => multiboxLoss(a as tf.Tensor3D, b as tf.Tensor3D, targets).total)([loc, conf]);
    for (const t of g) expect(Array.from(t.dataSync()).every((v) => v === 0)).toBe(true); // -0 === 0
  });
});

describe('selectHardNegatives', () => {
  it('keeps at most 3 negatives per positive per image, capped by the negatives available, hardest first', () => {
    // Image 0: 2 positives, 4 negatives -> all 4 negatives kept (3 * 2 = 6 > 4).
    // Image 1: 1 positive, 5 negatives -> the 3 with the highest background loss (ties: lower index).
    const labels = Int32Array.from([1, 0, 0, 2, 0, 0, 0, 0, 3, 0, 0, 0]);
    const bg = Float32Array.from([0, 1, 2, 0, 3, 4, 0.5, 0.9, 0, 0.9, 0.1, 0.9]);
    const { maskNP, numPositive } = selectHardNegatives(bg, labels, 2, 6, 3);
    expect(numPositive).toBe(3);
    expect(Array.from(maskNP)).toEqual([1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 1]);
  });
});
