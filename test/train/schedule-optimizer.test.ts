import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { SgdMomentum, SSD_SGD } from '../../train/optimizer.js';
import { learningRate, SSD_SCHEDULE } from '../../train/schedule.js';

describe('learning-rate schedule (SSD-SPEC "Training recipe")', () => {
  it('reference recipe: lr 1e-3, x0.1 at 80k and 100k', () => {
    const s = { ...SSD_SCHEDULE, warmupIterations: 0 };
    expect(learningRate(s, 0)).toBe(1e-3);
    expect(learningRate(s, 79_999)).toBe(1e-3);
    expect(learningRate(s, 80_000)).toBeCloseTo(1e-4, 12);
    expect(learningRate(s, 100_000)).toBeCloseTo(1e-5, 12);
    expect(SSD_SCHEDULE.steps).toEqual([80_000, 100_000]);
  });

  it('linear warmup from warmupFactor * lr', () => {
    const s = { baseLr: 0.01, warmupIterations: 100, warmupFactor: 0.1, steps: [50], gamma: 0.1 };
    expect(learningRate(s, 0)).toBeCloseTo(0.001, 12);
    expect(learningRate(s, 25)).toBeCloseTo(0.01 * (0.1 + 0.9 * 0.25), 12);
    // A decay step inside the warmup applies on top of it.
    expect(learningRate(s, 50)).toBeCloseTo(0.001 * (0.1 + 0.9 * 0.5), 12);
    expect(learningRate(s, 100)).toBeCloseTo(0.001, 12);
  });
});

describe('SGD with momentum and weight decay', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('matches the hand-computed update (Caffe/PyTorch form) over two steps', () => {
    expect(SSD_SGD).toEqual({ momentum: 0.9, weightDecay: 5e-4 });
    const w = tf.variable(tf.tensor1d([1, -2]));
    const vars = new Map([['w', w]]);
    const opt = new SgdMomentum({ momentum: 0.9, weightDecay: 0.1 });
    opt.apply(vars, new Map([['w', tf.tensor1d([0.5, 0.5])]]), 0.1);
    // v1 = g + wd*w = [0.6, 0.3]; w1 = w - lr*v1 = [0.94, -2.03]
    expect(w.dataSync()[0]).toBeCloseTo(0.94, 6);
    expect(w.dataSync()[1]).toBeCloseTo(-2.03, 6);
    opt.apply(vars, new Map([['w', tf.tensor1d([0, 1])]]), 0.1);
    // v2 = 0.9*v1 + g + wd*w1 = [0.54 + 0.094, 0.27 + 1 - 0.203]; w2 = w1 - 0.1*v2
    expect(w.dataSync()[0]).toBeCloseTo(0.94 - 0.1 * 0.634, 6);
    expect(w.dataSync()[1]).toBeCloseTo(-2.03 - 0.1 * 1.067, 6);
  });

  it('momentum buffers round-trip through getState/setState (resume)', () => {
    const mk = () => new Map([['a', tf.variable(tf.tensor2d([[1, 2], [3, 4]]))]]);
    const va = mk(), vb = mk();
    const a = new SgdMomentum();
    a.apply(va, new Map([['a', tf.ones([2, 2])]]), 0.01);
    const state = a.getState();
    expect([...state.keys()]).toEqual(['a/momentum']);
    const b = new SgdMomentum();
    vb.get('a')!.assign(va.get('a')!);
    b.setState(state, vb);
    a.apply(va, new Map([['a', tf.fill([2, 2], 0.5)]]), 0.01);
    b.apply(vb, new Map([['a', tf.fill([2, 2], 0.5)]]), 0.01);
    expect(Array.from(vb.get('a')!.dataSync())).toEqual(Array.from(va.get('a')!.dataSync()));
  });
});
