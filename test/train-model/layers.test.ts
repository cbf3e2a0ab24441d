/**
 * Every layer kind of the SSD trunk and heads: forward against float64 loop references (Caffe
 * semantics), gradients against central finite differences, on the cpu, wasm and tensorflow backends
 * (cpu and wasm with the forward-conv gradients of layers/conv.ts, tensorflow with its own kernels).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { expect, it } from 'vitest';
import { conv2dTrainable, usesForwardConvGradients } from '../../train/layers/conv.js';
import { l2Normalize } from '../../train/layers/l2norm.js';
import { maxPoolCaffe } from '../../train/layers/pool.js';
import { batchNorm } from '../../train/layers/batch-norm.js';
import { describeOnBackends, useBackend } from './backends.js';
import { checkGradients, convRef, expectClose, maxPoolRef, randomTensor } from './reference.js';

/** A scalar that weighs every output differently, so each output's gradient is checked. */
function weighted(y: tf.Tensor, seed: number): tf.Scalar {
  return tf.sum(tf.mul(y, randomTensor(y.shape, seed))) as tf.Scalar;
}

const CONVS = [
  { what: '3x3 conv pad 1', hw: 6, cin: 3, cout: 4, k: 3, stride: 1, pad: 1, dilation: 1 },
  { what: '3x3 conv stride 2 pad 1 (conv6_2)', hw: 7, cin: 3, cout: 2, k: 3, stride: 2, pad: 1, dilation: 1 },
  { what: '3x3 conv stride 2 pad 1 on an even side (conv8_2 of SSD512; not TF "same")', hw: 6, cin: 2, cout: 3, k: 3, stride: 2, pad: 1, dilation: 1 },
  { what: '3x3 conv pad 0 (conv8_2)', hw: 5, cin: 2, cout: 3, k: 3, stride: 1, pad: 0, dilation: 1 },
  { what: '1x1 conv (fc7)', hw: 4, cin: 3, cout: 2, k: 1, stride: 1, pad: 0, dilation: 1 },
  { what: '1x1 conv stride 2 (a matMul on every 2nd pixel on tensorflow)', hw: 5, cin: 3, cout: 2, k: 1, stride: 2, pad: 0, dilation: 1 },
  { what: '4x4 conv pad 1 (conv10_2)', hw: 3, cin: 2, cout: 2, k: 4, stride: 1, pad: 1, dilation: 1 },
  { what: 'atrous 3x3 dilation 6 pad 6 (fc6)', hw: 5, cin: 2, cout: 3, k: 3, stride: 1, pad: 6, dilation: 6 },
  { what: 'atrous 3x3 dilation 2 pad 1', hw: 7, cin: 2, cout: 2, k: 3, stride: 1, pad: 1, dilation: 2 },
];

describeOnBackends(['cpu', 'wasm', 'tensorflow'], (b) => `layers on ${b}`, (backend) => {
  it('tfjs gaps this code works around still exist', async () => {
    await useBackend(backend);
    const x = randomTensor([1, 5, 5, 1], 1) as tf.Tensor4D;
    const w = randomTensor([3, 3, 1, 1], 2) as tf.Tensor4D;
    // The conv2D gradient refuses dilation > 1 on every backend.
    expect(() => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same', 'NHWC', 2).sum())([x, w])).toThrow(/dilation/);
    // wasm has no filter-gradient kernel; tensorflow takes no numeric padding.
    if (backend === 'wasm') expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeUndefined();
    if (backend === 'tensorflow') expect(() => tf.conv2d(x, w, 1, 1)).toThrow(/only 'valid' and 'same'/);
    expect(usesForwardConvGradients()).toBe(backend !== 'tensorflow');
  });

  for (const c of CONVS) {
    it(`${c.what}: forward = loops, gradient = finite differences`, async () => {
      await useBackend(backend);
      const x = randomTensor([2, c.hw, c.hw, c.cin], 3) as tf.Tensor4D;
      const w = randomTensor([c.k, c.k, c.cin, c.cout], 4) as tf.Tensor4D;
      const geom = { stride: c.stride, pad: c.pad, dilation: c.dilation };
      const y = conv2dTrainable(x, w, geom);
      const ref = convRef(x.dataSync() as Float32Array, x.shape, w.dataSync() as Float32Array, w.shape, c.stride, c.pad, c.dilation);
      expect(y.shape).toEqual(ref.shape);
      expectClose(y.dataSync(), ref.data, 1e-5, c.what);
      checkGradients((a, b) => weighted(conv2dTrainable(a as tf.Tensor4D, b as tf.Tensor4D, geom), 5), [x, w], { what: `${backend} ${c.what}` });
      tf.dispose([x, w, y]);
    });
  }

  it('1x1 conv 1024 -> 256 (conv6_1 of SSD300, where oneDNN\'s Conv2DBackpropInput dies with SIGFPE): dx = dy W^T, dw = x^T dy', async () => {
    await useBackend(backend);
    const [n, hw, cin, cout] = [2, 3, 1024, 256];
    const x = randomTensor([n, hw, hw, cin], 13) as tf.Tensor4D;
    const w = randomTensor([1, 1, cin, cout], 14, 0.05) as tf.Tensor4D;
    const dy = randomTensor([n, hw, hw, cout], 15) as tf.Tensor4D;
    const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(conv2dTrainable(a as tf.Tensor4D, b as tf.Tensor4D, { stride: 1, pad: 0, dilation: 1 }), dy)))([x, w]);
    const [xd, wd, dyd] = [x.dataSync(), w.dataSync(), dy.dataSync()];
    const pixels = n * hw * hw;
    const refDx = new Float64Array(pixels * cin);
    const refDw = new Float64Array(cin * cout);
    for (let p = 0; p < pixels; p++) {
      for (let i = 0; i < cin; i++) {
        let acc = 0;
        for (let o = 0; o < cout; o++) {
          acc += dyd[p * cout + o]! * wd[i * cout + o]!;
          refDw[i * cout + o] += xd[p * cin + i]! * dyd[p * cout + o]!;
        }
        refDx[p * cin + i] = acc;
      }
    }
    expectClose(dx!.dataSync(), refDx, 1e-4, `${backend} conv6_1 dx`);
    expectClose(dw!.dataSync(), refDw, 1e-4, `${backend} conv6_1 dw`);
    tf.dispose([x, w, dy, dx!, dw!]);
  });

  const POOLS = [
    { what: 'pool 2x2 s2 ceil (pool3, 5 -> 3)', hw: 5, k: 2, stride: 2, pad: 0, ceil: true, out: 3 },
    { what: 'pool 2x2 s2 floor (5 -> 2)', hw: 5, k: 2, stride: 2, pad: 0, ceil: false, out: 2 },
    { what: 'pool 3x3 s1 pad 1 (pool5)', hw: 4, k: 3, stride: 1, pad: 1, ceil: false, out: 4 },
  ];
  for (const p of POOLS) {
    it(`${p.what}: forward = loops, gradient = finite differences`, async () => {
      await useBackend(backend);
      const x = randomTensor([1, p.hw, p.hw, 3], 7) as tf.Tensor4D;
      const layer = { kernel: p.k, stride: p.stride, pad: p.pad, ceil: p.ceil };
      const y = maxPoolCaffe(x, layer);
      expect(y.shape).toEqual([1, p.out, p.out, 3]);
      expectClose(y.dataSync(), maxPoolRef(x.dataSync() as Float32Array, x.shape, p.k, p.stride, p.pad, p.ceil).data, 1e-6, p.what);
      checkGradients((a) => weighted(maxPoolCaffe(a as tf.Tensor4D, layer), 8), [x], { what: `${backend} ${p.what}`, eps: 1e-3, samples: 8 });
      tf.dispose([x, y]);
    });
  }

  it('pool3 of SSD300: ceil mode maps 75 -> 38 (SSD-SPEC)', async () => {
    await useBackend(backend);
    const x = tf.zeros([1, 75, 75, 1]) as tf.Tensor4D;
    expect(maxPoolCaffe(x, { kernel: 2, stride: 2, pad: 0, ceil: true }).shape).toEqual([1, 38, 38, 1]);
    expect(maxPoolCaffe(x, { kernel: 2, stride: 2, pad: 0, ceil: false }).shape).toEqual([1, 37, 37, 1]);
  });

  it('L2Norm: y = x * scale / |x| per pixel; gradients for x and scale = finite differences', async () => {
    await useBackend(backend);
    const x = randomTensor([1, 3, 3, 4], 9) as tf.Tensor4D;
    const scale = tf.tensor1d([20, 10, 5, 2]);
    const y = l2Normalize(x, scale).dataSync();
    const xd = x.dataSync();
    const expected = new Float64Array(xd.length);
    for (let p = 0; p < 9; p++) {
      let ss = 0;
      for (let c = 0; c < 4; c++) ss += xd[p * 4 + c]! ** 2;
      for (let c = 0; c < 4; c++) expected[p * 4 + c] = (xd[p * 4 + c]! / Math.sqrt(ss)) * [20, 10, 5, 2][c]!;
    }
    expectClose(y, expected, 1e-5, 'L2Norm');
    checkGradients((a, s) => weighted(l2Normalize(a as tf.Tensor4D, s as tf.Tensor1D), 10), [x, scale], { what: `${backend} L2Norm`, eps: 1e-3, tol: 5e-3 });
    // An all-zero pixel (common after ReLU) must not give NaN gradients.
    const g = tf.grads((a) => tf.sum(l2Normalize(a as tf.Tensor4D, scale)) as tf.Scalar)([tf.zeros([1, 1, 1, 4])])[0]!;
    expect(Array.from(g.dataSync()).every(Number.isFinite)).toBe(true);
  });

  it('batch norm (training): normalises with batch statistics; gradients for x, gamma, beta = finite differences', async () => {
    await useBackend(backend);
    const x = randomTensor([2, 3, 3, 2], 11) as tf.Tensor4D;
    const mk = (v: number[]) => tf.variable(tf.tensor1d(v), false);
    const params = { gamma: mk([1.5, 0.5]), beta: mk([0.1, -0.2]), movingMean: mk([0, 0]), movingVariance: mk([1, 1]) };
    const y = batchNorm(x, params, 1e-5, true);
    const { mean, variance } = tf.moments(y, [0, 1, 2]);
    expectClose(mean.dataSync(), [0.1, -0.2], 1e-5, 'BN mean = beta');
    expectClose(variance.dataSync(), [1.5 ** 2, 0.5 ** 2], 1e-3, 'BN variance = gamma^2');
    // Moving averages moved 10% of the way toward the batch statistics (unbiased variance).
    const xm = tf.moments(x, [0, 1, 2]);
    expectClose(params.movingMean.dataSync(), Array.from(xm.mean.dataSync(), (v) => 0.1 * v), 1e-5, 'moving mean');
    expectClose(params.movingVariance.dataSync(), Array.from(xm.variance.dataSync(), (v) => 0.9 + 0.1 * v * 18 / 17), 1e-5, 'moving variance');
    const f = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => weighted(batchNorm(a as tf.Tensor4D, { ...params, gamma: g as tf.Variable, beta: b as tf.Variable }, 1e-5, true), 12);
    checkGradients(f, [x, tf.tensor1d([1.5, 0.5]), tf.tensor1d([0.1, -0.2])], { what: `${backend} batch norm`, eps: 1e-3, tol: 5e-3 });
  });
});
