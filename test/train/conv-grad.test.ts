import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { conv2dFilterGrad, conv2dInputGrad } from '../../train/layers/conv.js';
import { describeOnBackends, useBackend } from '../train-model/backends.js';

/**
 * The conv gradients of train/layers/conv.ts (the only conv-gradient mechanism: a tf.customGrad per conv
 * on wasm and cpu) against the gradient kernels of a backend that has both: tfjs' cpu kernels, and
 * libtensorflow's (what the tensorflow backend trains with).
 */
describeOnBackends(['cpu', 'tensorflow'], (b) => `Conv2D gradients as forward convolutions = ${b}'s own kernels`, (backend) => {
  const cases = [
    { n: 2, h: 9, w: 7, cin: 3, cout: 5, k: 3, s: 1, pad: 1 },
    { n: 1, h: 10, w: 10, cin: 4, cout: 2, k: 3, s: 2, pad: 1 },
    { n: 2, h: 7, w: 7, cin: 2, cout: 3, k: 3, s: 1, pad: 0 },
    { n: 1, h: 5, w: 5, cin: 3, cout: 4, k: 1, s: 1, pad: 0 },
    { n: 2, h: 3, w: 3, cin: 2, cout: 2, k: 4, s: 1, pad: 1 },
    { n: 1, h: 11, w: 8, cin: 2, cout: 3, k: 3, s: 2, pad: 0 },
  ];

  for (const c of cases) {
    it(`k${c.k} s${c.s} pad ${c.pad} on ${c.h}x${c.w}: same dx and dw`, async () => {
      await useBackend(backend);
      const x = tf.randomNormal([c.n, c.h, c.w, c.cin], 0, 1, 'float32', 1) as tf.Tensor4D;
      const w = tf.randomNormal([c.k, c.k, c.cin, c.cout], 0, 1, 'float32', 2) as tf.Tensor4D;
      // Explicit padding as tf.pad + 'valid' (the tensorflow backend takes no numeric pad).
      const conv = (xv: tf.Tensor4D, wv: tf.Tensor4D) => tf.conv2d(c.pad ? tf.pad(xv, [[0, 0], [c.pad, c.pad], [c.pad, c.pad], [0, 0]]) : xv, wv, c.s, 'valid');
      const dy = tf.randomNormal(conv(x, w).shape, 0, 1, 'float32', 3) as tf.Tensor4D;
      const [refDx, refDw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(conv(a as tf.Tensor4D, b as tf.Tensor4D), dy)))([x, w]);
      const dx = conv2dInputGrad(dy, w, x.shape, c.s, c.pad);
      const dw = conv2dFilterGrad(x, dy, c.k, c.s, c.pad);
      expect(dx.shape).toEqual(x.shape);
      expect(dw.shape).toEqual(w.shape);
      expect(tf.max(tf.abs(tf.sub(dx, refDx!))).dataSync()[0]).toBeLessThan(1e-4);
      expect(tf.max(tf.abs(tf.sub(dw, refDw!))).dataSync()[0]).toBeLessThan(1e-4);
    });
  }
});
