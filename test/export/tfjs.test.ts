/** The exported graph against the training model (train/model.ts createSsdModel) on the same weights. */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { SsdSpec } from '../../core/specs.js';
import { buildOnnxModel, randomWeights } from '../../export/index.js';
import { preprocessNHWC } from '../../export/input-graph.js';
import { HEAD_TOLERANCE } from '../../export/verify.js';
import { createSsdModel } from '../../train/model.js';
import { describeOnBackends, useBackend } from '../train-model/backends.js';
import { maxAbsDiff, pixels, run, tiny, uint8Input } from './helpers.js';

beforeAll(async () => { await tf.setBackend('cpu'); });

async function compare(spec: SsdSpec, seed: number, fp16 = false) {
  const weights = randomWeights(spec, seed);
  const N = 2;
  const rgb = pixels(spec, N, seed);
  const S = spec.inputSize;
  const model = createSsdModel(spec, { weights });
  const { loc, conf } = tf.tidy(() => {
    const out = model.forward(tf.tensor4d(preprocessNHWC(spec, rgb), [N, S, S, 3]), false);
    return { loc: out.loc.dataSync() as Float32Array, conf: out.conf.dataSync() as Float32Array };
  });
  model.dispose();
  const onnx = await run(buildOnnxModel({ spec, weights, postprocess: 'none', batch: N, input: 'uint8-nhwc', fp16 }), uint8Input(spec, rgb, N));
  return { loc: maxAbsDiff(onnx.loc!.data, loc), conf: maxAbsDiff(onnx.conf!.data, conf), scale: Math.max(...Array.from(conf, Math.abs)) };
}

describeOnBackends(['cpu', 'tensorflow'], (b) => `ONNX raw heads vs the tfjs model on ${b}`, (backend) => {
  beforeAll(async () => { await useBackend(backend); });
  afterAll(async () => { await tf.setBackend('cpu'); });

  it('fp32: max abs diff <= 1e-4 (issue: verified at export)', async () => {
    const d = await compare(tiny(), 41);
    expect(d.scale).toBeGreaterThan(0.1);
    expect(d.loc).toBeLessThanOrEqual(1e-4);
    expect(d.conf).toBeLessThanOrEqual(1e-4);
  });

  it('fp32 with batch norm: the folded graph matches the tfjs BN model in inference mode', async () => {
    const d = await compare({ ...tiny(), batchNorm: true }, 42);
    expect(d.loc).toBeLessThanOrEqual(1e-4);
    expect(d.conf).toBeLessThanOrEqual(1e-4);
  });

  it('fp16: within the documented tolerance, and really not fp32', async () => {
    const d = await compare(tiny(), 43, true);
    expect(d.conf).toBeLessThanOrEqual(HEAD_TOLERANCE.fp16);
    expect(d.loc).toBeLessThanOrEqual(HEAD_TOLERANCE.fp16);
    expect(Math.max(d.loc, d.conf)).toBeGreaterThan(1e-5);
  });
});
