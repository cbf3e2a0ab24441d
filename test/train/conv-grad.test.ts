import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { conv2dFilterGrad, conv2dInputGrad, installFastConvGradients } from '../../train/conv-grad.js';

/** tfjs' own Conv2D gradient on the cpu backend (which has both backprop kernels) is the reference. */
describe('Conv2D gradients as forward convolutions', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  const cases = [
    { n: 2, h: 9, w: 7, cin: 3, cout: 5, k: 3, s: 1, pad: 1 },
    { n: 1, h: 10, w: 10, cin: 4, cout: 2, k: 3, s: 2, pad: 1 },
    { n: 2, h: 7, w: 7, cin: 2, cout: 3, k: 3, s: 1, pad: 0 },
    { n: 1, h: 5, w: 5, cin: 3, cout: 4, k: 1, s: 1, pad: 0 },
    { n: 2, h: 3, w: 3, cin: 2, cout: 2, k: 4, s: 1, pad: 1 },
    { n: 1, h: 11, w: 8, cin: 2, cout: 3, k: 3, s: 2, pad: 0 },
  ];

  for (const c of cases) {
    it(`k${c.k} s${c.s} pad ${c.pad} on ${c.h}x${c.w}: same dx and dw as tfjs' kernels`, () => {
      const x = tf.randomNormal([c.n, c.h, c.w, c.cin], 0, 1, 'float32', 1) as tf.Tensor4D;
      const w = tf.randomNormal([c.k, c.k, c.cin, c.cout], 0, 1, 'float32', 2) as tf.Tensor4D;
      const y = tf.conv2d(x, w, c.s, c.pad);
      const dy = tf.randomNormal(y.shape, 0, 1, 'float32', 3) as tf.Tensor4D;
      const refDx = tf.conv2dTranspose(dy, w, x.shape, c.s, c.pad);
      // Reference filter gradient through tfjs' registered gradient (cpu Conv2DBackpropFilter).
      const refDw = tf.grad((wv: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(x, wv as tf.Tensor4D, c.s, c.pad), dy)))(w);
      const pads: [number, number, number, number] = [c.pad, c.pad, c.pad, c.pad];
      const dx = conv2dInputGrad(x.shape, dy, w, c.s, pads);
      const dw = conv2dFilterGrad(x, dy, [c.k, c.k], c.s, pads);
      expect(dx.shape).toEqual(x.shape);
      expect(dw.shape).toEqual(w.shape);
      expect(tf.max(tf.abs(tf.sub(dx, refDx))).dataSync()[0]).toBeLessThan(1e-4);
      expect(tf.max(tf.abs(tf.sub(dw, refDw))).dataSync()[0]).toBeLessThan(1e-4);
    });
  }

  it('installed as the Conv2D gradient, and checked against finite differences', () => {
    installFastConvGradients();
    const x = tf.randomNormal([1, 6, 6, 2], 0, 1, 'float32', 4) as tf.Tensor4D;
    const w = tf.randomNormal([3, 3, 2, 2], 0, 1, 'float32', 5) as tf.Tensor4D;
    const f = (xv: tf.Tensor4D, wv: tf.Tensor4D) => tf.sum(tf.square(tf.conv2d(xv, wv, 2, 1)));
    const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => f(a as tf.Tensor4D, b as tf.Tensor4D))([x, w]);
    const eps = 1e-2;
    const wData = w.dataSync().slice();
    for (const idx of [0, 7, 20, 35]) {
      const plus = wData.slice(); plus[idx]! += eps;
      const minus = wData.slice(); minus[idx]! -= eps;
      const num = (f(x, tf.tensor4d(plus, w.shape)).dataSync()[0]! - f(x, tf.tensor4d(minus, w.shape)).dataSync()[0]!) / (2 * eps);
      expect(gw!.dataSync()[idx]).toBeCloseTo(num, 1);
    }
    const xData = x.dataSync().slice();
    for (const idx of [0, 13, 40, 71]) {
      const plus = xData.slice(); plus[idx]! += eps;
      const minus = xData.slice(); minus[idx]! -= eps;
      const num = (f(tf.tensor4d(plus, x.shape), w).dataSync()[0]! - f(tf.tensor4d(minus, x.shape), w).dataSync()[0]!) / (2 * eps);
      expect(gx!.dataSync()[idx]).toBeCloseTo(num, 1);
    }
  });
});
