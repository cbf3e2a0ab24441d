/** The SSD model built from a spec: size, output order, gradients end to end, weights in and out. */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import type { WeightMap } from '../../core/checkpoint.js';
import { SsdError } from '../../core/errors.js';
import { CAFFE_INPUT, DEFAULT_POSTPROCESS, DEFAULT_VARIANCES, conv, maxpool, numDefaultBoxes, paramCount, specByName, ssd300Extras, ssd512Extras, vgg16AtrousLayers, type LayerSpec, type SsdSpec } from '../../core/specs.js';
import { multiboxLoss } from '../../train/loss.js';
import { createSsdModel } from '../../train/model.js';
import { TENSORFLOW_INSTALLED, backendMissing, onBackend, useBackend } from './backends.js';
import { randomArray } from './reference.js';

function handSpec(layers: LayerSpec[], sources: SsdSpec['sources'], maps: Array<[number, number[]]>, inputSize: number, batchNorm = false): SsdSpec {
  return {
    name: 'hand', inputSize, labels: ['background', 'a', 'b'], input: { ...CAFFE_INPUT }, layers, sources,
    maps: maps.map(([size, aspectRatios]) => ({ size, step: inputSize / size, minSize: inputSize * 0.3, maxSize: inputSize * 0.6, aspectRatios })),
    variances: [...DEFAULT_VARIANCES], clipBoxes: false, batchNorm, batchNormEpsilon: 1e-5, postprocess: { ...DEFAULT_POSTPROCESS },
  };
}

/** Every layer kind of SSD300 on a 10x10 input: pool floor and ceil, pool5, L2Norm, atrous fc6, 1x1, strided conv. */
function miniSpec(batchNorm = false): SsdSpec {
  return handSpec([
    conv('conv1_1', 3), maxpool('pool1'), conv('conv4_3', 4), maxpool('pool3', 2, 2, 0, true), maxpool('pool5', 3, 1, 1),
    conv('fc6', 4, 3, 1, 6, 6), conv('fc7', 3, 1), conv('conv6_1', 2, 1), conv('conv6_2', 3, 3, 2, 1),
  ], [{ layer: 'conv4_3', l2NormScale: 20 }, { layer: 'fc7' }, { layer: 'conv6_2' }], [[5, [2]], [3, [2, 3]], [2, [2]]], 10, batchNorm);
}

beforeAll(async () => { await tf.setBackend('cpu'); });

describe('createSsdModel', () => {
  it('SSD300/VOC has 26,285,486 trainable parameters (SSD-SPEC, torchvision count) and the documented init', () => {
    const spec = specByName('ssd300');
    const m = createSsdModel(spec, { seed: 1 });
    try {
      expect(m.paramCount()).toBe(26_285_486);
      expect(paramCount(spec)).toBe(26_285_486);
      expect(m.variables.get('fc6/kernel')!.shape).toEqual([3, 3, 512, 1024]);
      expect(m.variables.get('fc7/kernel')!.shape).toEqual([1, 1, 1024, 1024]);
      expect(m.variables.get('conf0/kernel')!.shape).toEqual([3, 3, 512, 4 * 21]);
      expect(m.variables.get('conv4_3_norm/scale')!.dataSync().every((v) => v === 20)).toBe(true);
      // Base: He normal, std sqrt(2 / fan_in): conv1_2 sqrt(2 / 576) = 0.0589; conv1_1 sqrt(2 / 27) = 0.272
      // divided by the 0..255 pixel std 58 (INPUT_PIXEL_STD) = 0.00469.
      const std = (name: string) => { const k = Array.from(m.variables.get(name)!.dataSync()); return Math.sqrt(k.reduce((a, v) => a + v * v, 0) / k.length); };
      expect(std('conv1_2/kernel')).toBeCloseTo(0.0589, 3);
      expect(std('conv1_1/kernel')).toBeCloseTo(0.272 / 58, 3);
      // Extras and heads: Xavier uniform, limit sqrt(6 / (fan_in + fan_out)) = sqrt(6 / (1024 + 256)) for conv6_1.
      const limit = Math.sqrt(6 / (1024 + 256));
      const k6 = m.variables.get('conv6_1/kernel')!.dataSync();
      expect(k6.every((v) => Math.abs(v) <= limit)).toBe(true);
      expect(Math.max(...k6.slice(0, 20000).map(Math.abs))).toBeGreaterThan(limit * 0.99);
      expect(m.variables.get('conv6_1/bias')!.dataSync().every((v) => v === 0)).toBe(true);
    } finally { m.dispose(); }
  });

  it('ssd-tiny outputs one prediction per default box', () => {
    const spec = specByName('ssd-tiny');
    const m = createSsdModel(spec, { seed: 2 });
    const out = m.forward(tf.zeros([1, spec.inputSize, spec.inputSize, 3]) as tf.Tensor4D, false);
    expect(out.loc.shape).toEqual([1, numDefaultBoxes(spec), 4]);
    expect(out.conf.shape).toEqual([1, numDefaultBoxes(spec), spec.labels.length]);
    tf.dispose([out.loc, out.conf]);
    m.dispose();
    expect(() => m.forward(tf.zeros([1, 96, 96, 3]) as tf.Tensor4D, false)).toThrow(/disposed/);
  });

  it('SSD300 and SSD512 structures at 1/16 width: 8732 and 24564 predictions (SSD-SPEC "Default boxes")', async () => {
    await tf.setBackend('wasm');
    for (const [name, boxes, extras] of [['ssd300', 8732, ssd300Extras(16)], ['ssd512', 24564, ssd512Extras(16)]] as const) {
      const full = specByName(name);
      const spec: SsdSpec = { ...full, layers: [...vgg16AtrousLayers(16), ...extras] };
      expect(numDefaultBoxes(spec)).toBe(boxes);
      const m = createSsdModel(spec, { seed: 1 });
      const out = m.forward(tf.zeros([1, spec.inputSize, spec.inputSize, 3]) as tf.Tensor4D, false);
      expect(out.loc.shape).toEqual([1, boxes, 4]);
      expect(out.conf.shape).toEqual([1, boxes, 21]);
      tf.dispose(out);
      m.dispose();
    }
    await tf.setBackend('cpu');
  });

  it('flattens heads NHWC: box index = (y * W + x) * k + a, channel = a * 4 + j (SSD-SPEC "Prediction heads")', () => {
    // One 1x1 conv copies input channel 0; the heads' centre taps multiply it by (channel + 1).
    const spec = handSpec([conv('c1', 1, 1)], [{ layer: 'c1' }], [[8, [2]]], 8);
    const k = 4;
    const C = 3;
    const weights: WeightMap = new Map();
    weights.set('c1/kernel', { shape: [1, 1, 3, 1], data: Float32Array.from([1, 0, 0]) });
    weights.set('c1/bias', { shape: [1], data: new Float32Array(1) });
    const centreTap = (outs: number) => {
      const d = new Float32Array(9 * outs);
      for (let ch = 0; ch < outs; ch++) d[4 * outs + ch] = ch + 1;
      return d;
    };
    weights.set('loc0/kernel', { shape: [3, 3, 1, k * 4], data: centreTap(k * 4) });
    weights.set('loc0/bias', { shape: [k * 4], data: new Float32Array(k * 4) });
    weights.set('conf0/kernel', { shape: [3, 3, 1, k * C], data: centreTap(k * C) });
    weights.set('conf0/bias', { shape: [k * C], data: new Float32Array(k * C) });
    const m = createSsdModel(spec, { weights });
    const img = tf.tidy(() => tf.stack([tf.range(1, 65).reshape([8, 8]), tf.zeros([8, 8]), tf.zeros([8, 8])], -1).expandDims(0)) as tf.Tensor4D;
    const { loc, conf } = m.forward(img, false);
    const locA = loc.arraySync()[0]!;
    const confA = conf.arraySync()[0]!;
    for (const [y, x, a, j] of [[0, 0, 0, 0], [0, 1, 0, 0], [1, 0, 2, 3], [7, 7, 3, 1], [3, 5, 1, 2]] as const) {
      const v = y * 8 + x + 1;
      expect(locA[(y * 8 + x) * k + a]![j]).toBeCloseTo(v * (a * 4 + j + 1), 3);
      expect(confA[(y * 8 + x) * k + a]![j % C]).toBeCloseTo(v * (a * C + (j % C) + 1), 3);
    }
    m.dispose();
  });

  for (const backend of ['cpu', 'wasm', 'tensorflow'] as const) {
    it.skipIf(backendMissing(backend))(onBackend(backend, `${backend}: gradients of the whole model (MultiBox loss) match finite differences for every variable`), async () => {
      await useBackend(backend);
      const spec = miniSpec();
      const m = createSsdModel(spec, { seed: 5 });
      const P = numDefaultBoxes(spec);
      const x = tf.tensor4d(randomArray(2 * 10 * 10 * 3, 41).map((v) => v * 100), [2, 10, 10, 3]); // pixel scale, as the model expects
      const labels = new Int32Array(2 * P);
      labels[3] = 1; labels[40] = 2; labels[P + 10] = 1; labels[P + P - 1] = 2;
      const targets = { loc: tf.tensor3d(randomArray(2 * P * 4, 42), [2, P, 4]), labels: tf.tensor2d(labels, [2, P], 'int32') };
      const lossValue = () => tf.tidy(() => { const o = m.forward(x, true); return multiboxLoss(o.loc, o.conf, targets).total.dataSync()[0]!; });
      const { grads } = tf.variableGrads(() => { const o = m.forward(x, true); return multiboxLoss(o.loc, o.conf, targets).total; }, m.trainableVariables());
      for (const [name, v] of m.variables) {
        // Steps of ~1% of the variable's typical magnitude (conv1_1 is ~0.005, see INPUT_PIXEL_STD).
        const rms = Math.sqrt(v.square().mean().dataSync()[0]!);
        const eps = rms > 0 ? Math.min(1e-3, Math.max(2e-4, 0.01 * rms)) : 1e-3;
        const g = grads[v.name]!.dataSync();
        // Float32 noise of the numeric derivative is about 0.01 here (loss ~ 30, eps 1e-3): floor at 1.
        const scale = Math.max(1, ...Array.from(g, Math.abs));
        let maxAt = 0;
        g.forEach((val, i) => { if (Math.abs(val) > Math.abs(g[maxAt]!)) maxAt = i; });
        const base = v.dataSync().slice() as Float32Array;
        for (const i of new Set([maxAt, Math.floor(base.length / 2), base.length - 1])) {
          const at = (d: number) => { const t = base.slice(); t[i] = t[i]! + d; v.assign(tf.tensor(t, v.shape)); return lossValue(); };
          const [lo, mid, hi] = [at(-eps), at(0), at(eps)];
          v.assign(tf.tensor(base, v.shape));
          // ReLU, max pool and the negative ranking make the loss piecewise smooth: a step may cross a
          // kink, so the analytic value must match the central or one of the one-sided differences.
          const errs = [(hi - lo) / (2 * eps), (hi - mid) / eps, (mid - lo) / eps].map((n) => Math.abs(n - g[i]!) / scale);
          expect(Math.min(...errs), `${backend} ${name}[${i}]: analytic ${g[i]} numeric ${(hi - lo) / (2 * eps)}`).toBeLessThan(2e-2);
        }
      }
      m.dispose();
    });
  }

  it(`same seed -> same weights and the same outputs on cpu, wasm${TENSORFLOW_INSTALLED ? ' and tensorflow' : ''}`, async () => {
    const spec = specByName('ssd-tiny');
    const img = () => tf.tensor4d(randomArray(96 * 96 * 3, 7).map((v) => v * 100), [1, 96, 96, 3]);
    await tf.setBackend('cpu');
    const a = createSsdModel(spec, { seed: 9 });
    const outA = a.forward(img(), false);
    const confA = outA.conf.dataSync().slice();
    const wA = a.getWeights();
    for (const backend of TENSORFLOW_INSTALLED ? (['wasm', 'tensorflow'] as const) : (['wasm'] as const)) {
      await useBackend(backend);
      const b = createSsdModel(spec, { seed: 9 });
      const outB = b.forward(img(), false);
      const confB = outB.conf.dataSync();
      for (const [name, t] of wA) expect(b.getWeights().get(name)!.data, `${backend} ${name}`).toEqual(t.data);
      let worst = 0;
      const mag = Math.max(...Array.from(confA, Math.abs));
      confA.forEach((v, i) => { worst = Math.max(worst, Math.abs(v - confB[i]!) / mag); });
      expect(worst, backend).toBeLessThan(1e-4);
      b.dispose();
    }
    const c = createSsdModel(spec, { seed: 10 });
    expect(c.getWeights().get('conv1_1/kernel')!.data).not.toEqual(wA.get('conv1_1/kernel')!.data);
    [a, c].forEach((m) => m.dispose());
    await tf.setBackend('cpu');
  });

  it('getWeights/setWeights round-trip; wrong names and shapes are SsdErrors', () => {
    const spec = miniSpec();
    const a = createSsdModel(spec, { seed: 1 });
    const b = createSsdModel(spec, { seed: 2 });
    const w = a.getWeights();
    b.setWeights(w);
    for (const [name, t] of b.getWeights()) expect(t.data, name).toEqual(w.get(name)!.data);
    const bad: WeightMap = new Map(w);
    bad.set('fc6/kernel', { shape: [3, 3, 4, 5], data: new Float32Array(180) });
    expect(() => b.setWeights(bad)).toThrow(SsdError);
    expect(() => b.setWeights(bad)).toThrow(/fc6\/kernel has shape \[3,3,4,5\], model wants \[3,3,4,4\]/);
    const unknown: WeightMap = new Map(w);
    unknown.set('conv9/kernel', { shape: [1], data: new Float32Array(1) });
    expect(() => b.setWeights(unknown)).toThrow(/conv9\/kernel is not a weight/);
    const partial: WeightMap = new Map([['fc7/bias', { shape: [3], data: Float32Array.from([1, 2, 3]) }]]);
    expect(() => b.setWeights(partial)).toThrow(/missing weight conv1_1\/kernel/);
    b.setWeights(partial, { allowMissing: true });
    expect(Array.from(b.variables.get('fc7/bias')!.dataSync())).toEqual([1, 2, 3]);
    expect(() => createSsdModel(spec, { weights: bad })).toThrow(SsdError);
    a.dispose();
    b.dispose();
  });

  it('batch-norm variant: gamma/beta trainable, moving statistics updated in training mode only', () => {
    const spec = miniSpec(true);
    const m = createSsdModel(spec, { seed: 3 });
    const convChannels = 3 + 4 + 4 + 3 + 2 + 3;
    expect(m.paramCount()).toBe(createSsdModel(miniSpec(false)).paramCount() + 2 * convChannels);
    expect(m.variables.get('fc6/bn_mean')!.trainable).toBe(false);
    expect(m.variables.get('fc6/bn_gamma')!.trainable).toBe(true);
    const x = tf.tensor4d(randomArray(2 * 300, 5), [2, 10, 10, 3]);
    const before = m.variables.get('conv1_1/bn_mean')!.dataSync().slice();
    tf.dispose(m.forward(x, false));
    expect(m.variables.get('conv1_1/bn_mean')!.dataSync()).toEqual(before);
    tf.dispose(m.forward(x, true));
    expect(m.variables.get('conv1_1/bn_mean')!.dataSync()).not.toEqual(before);
    expect(m.getWeights().has('conv1_1/bn_variance')).toBe(true);
    m.dispose();
  });

  it('does not leak tensors across forward passes', () => {
    const spec = miniSpec();
    const m = createSsdModel(spec, { seed: 1 });
    const x = tf.zeros([1, 10, 10, 3]) as tf.Tensor4D;
    tf.dispose(m.forward(x, true));
    const n = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) { const o = m.forward(x, true); tf.dispose([o.loc, o.conf]); }
    expect(tf.memory().numTensors).toBe(n);
    m.dispose();
  });
});
