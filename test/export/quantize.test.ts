// INT8 QDQ quantization (export/quantize.ts) on every export mode of the small ssd-tiny config:
// the graph is planned, calibrated on a few pictures in onnxruntime, written as QDQ, and then runs
// in onnxruntime with outputs close to the float model's.
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { OUTPUTS } from '../../core/model-contract.js';
import { metadataFromProps } from '../../core/model-metadata.js';
import { buildOnnxModel, inspectModel } from '../../export/index.js';
import {
  RangeCollector, activationParams, calibrationModel, planQuantization, quantizeModel, quantizeWeightsPerChannel,
  type CalibrationMethod,
} from '../../export/quantize.js';
import { floatInput, maxAbsDiff, pixels, run, tiny, uint8Input } from './helpers.js';

const spec = tiny();
const N = 4;
const rgb = pixels(spec, N, 5);

async function calibrate(bytes: Uint8Array, layout: 'float-nchw' | 'uint8-nhwc', method: CalibrationMethod = 'minmax') {
  const plan = planQuantization(bytes);
  const probe = calibrationModel(plan);
  const collector = new RangeCollector(method);
  const S = spec.inputSize;
  for (let i = 0; i < N; i++) {
    const one = rgb.subarray(i * S * S * 3, (i + 1) * S * S * 3);
    const input = layout === 'uint8-nhwc' ? uint8Input(spec, one, 1) : floatInput(spec, one, 1);
    const out = await run(probe, input);
    for (const t of plan.tensors) collector.add(t, out[t]!.data as Float32Array);
  }
  return { plan, ranges: collector.ranges() };
}

describe('quantizeModel', () => {
  it.each([
    ['none', 'float-nchw', false], ['decode', 'float-nchw', false], ['nms', 'float-nchw', false],
    ['none', 'uint8-nhwc', false], ['decode', 'uint8-nhwc', true], ['nms', 'uint8-nhwc', true],
  ] as const)('postprocess %s, input %s, fp16 %s: quantizes, runs, stays close to float', async (postprocess, input, fp16) => {
    const bytes = buildOnnxModel({ spec, postprocess, input, fp16, batch: 'dynamic' });
    const { plan, ranges } = await calibrate(bytes, input);
    expect(plan.source).toBe(fp16 ? 'fp16' : 'fp32');
    const q = quantizeModel(plan, ranges, { method: 'minmax', calibration: 'test pictures', images: N });
    expect(q.quantizedConvs).toBeGreaterThan(5);
    expect(q.floatConvs).toBe(0);
    const info = inspectModel(q.bytes);
    expect(info.ops).toContain('QuantizeLinear');
    expect(info.ops).toContain('DequantizeLinear');
    // uint8 activations: each trunk Relu is absorbed by its Conv's zero point.
    expect(info.ops.filter((o) => o === 'Relu').length).toBe(0);
    expect(info.inputs).toEqual(inspectModel(bytes).inputs);
    expect(info.outputs).toEqual(inspectModel(bytes).outputs);
    const meta = metadataFromProps(info.metadata);
    expect(meta.precision).toBe('int8');
    expect(JSON.parse(info.metadata['ssd.quantization']!)).toMatchObject({ method: 'minmax', activations: 'uint8', calibration: 'test pictures', images: N });

    const feed = input === 'uint8-nhwc' ? uint8Input(spec, rgb, N) : floatInput(spec, rgb, N);
    const ref = await run(bytes, feed);
    const got = await run(q.bytes, feed);
    if (postprocess === 'none') {
      const conf = ref[OUTPUTS.none.conf]!.data as Float32Array;
      const span = Math.max(...conf) - Math.min(...conf);
      expect(maxAbsDiff(got[OUTPUTS.none.conf]!.data, conf)).toBeLessThan(0.1 * span);
    } else if (postprocess === 'decode') {
      expect(maxAbsDiff(got[OUTPUTS.decode.scores]!.data, ref[OUTPUTS.decode.scores]!.data)).toBeLessThan(0.1);
    } else {
      expect(got[OUTPUTS.nms.numDetections]!.dims).toEqual(ref[OUTPUTS.nms.numDetections]!.dims);
    }
  });

  it('percentile and entropy give ranges inside minmax, and the models run', async () => {
    const bytes = buildOnnxModel({ spec, postprocess: 'none', batch: 'dynamic' });
    const mm = await calibrate(bytes, 'float-nchw', 'minmax');
    for (const method of ['percentile', 'entropy'] as const) {
      const c = await calibrate(bytes, 'float-nchw', method);
      for (const [t, r] of c.ranges) {
        const m = mm.ranges.get(t)!;
        expect(r.max).toBeLessThanOrEqual(m.max);
        expect(r.min).toBeGreaterThanOrEqual(m.min);
        expect(r.max).toBeGreaterThan(0);
      }
      const q = quantizeModel(c.plan, c.ranges, { method, calibration: 'x', images: N });
      const out = await run(q.bytes, floatInput(spec, rgb, N));
      expect(Number.isFinite((out[OUTPUTS.none.conf]!.data as Float32Array)[0])).toBe(true);
    }
  });

  it('heads: false keeps the head convs (loc and conf per source) float', async () => {
    const bytes = buildOnnxModel({ spec, postprocess: 'decode', batch: 'dynamic' });
    const plan = planQuantization(bytes, 'model', { heads: false });
    const all = planQuantization(bytes);
    const collector = new RangeCollector('minmax');
    const probe = calibrationModel(all);
    const S = spec.inputSize;
    const out = await run(probe, floatInput(spec, rgb.subarray(0, S * S * 3), 1));
    for (const t of all.tensors) collector.add(t, out[t]!.data as Float32Array);
    expect(plan.tensors.every((t) => all.tensors.includes(t))).toBe(true);
    const q = quantizeModel(plan, collector.ranges(), { method: 'minmax', calibration: 'x', images: 1 });
    expect(q.floatConvs).toBe(2 * spec.sources.length);
    expect(q.quantizedConvs).toBe(all.convs.length - 2 * spec.sources.length);
    const ref = await run(bytes, floatInput(spec, rgb, N));
    const got = await run(q.bytes, floatInput(spec, rgb, N));
    expect(maxAbsDiff(got[OUTPUTS.decode.scores]!.data, ref[OUTPUTS.decode.scores]!.data)).toBeLessThan(0.1);
  });

  it('int8 activations (TensorRT): symmetric, zero point 0, the Relus kept', async () => {
    const bytes = buildOnnxModel({ spec, postprocess: 'decode', batch: 'dynamic' });
    const { plan, ranges } = await calibrate(bytes, 'float-nchw');
    const q = quantizeModel(plan, ranges, { method: 'minmax', calibration: 'x', images: N, activations: 'int8' });
    const info = inspectModel(q.bytes);
    expect(info.ops.filter((o) => o === 'Relu').length).toBe(inspectModel(bytes).ops.filter((o) => o === 'Relu').length);
    const m = onnxProto.onnx.ModelProto.decode(q.bytes);
    const zeros = m.graph!.initializer!.filter((t) => t.name!.includes('_qzero'));
    expect(zeros.length).toBeGreaterThan(0);
    expect(zeros.every((t) => t.dataType === 3 && t.rawData![0] === 0)).toBe(true);
    const out = await run(q.bytes, floatInput(spec, rgb, N));
    expect(out[OUTPUTS.decode.scores]!.dims[0]).toBe(N);
  });

  it('names never collide with the graph\'s own (models exported before the L2Norm rename quantize too)', async () => {
    const bytes = buildOnnxModel({ spec, postprocess: 'none' });
    const m = onnxProto.onnx.ModelProto.decode(bytes);
    // Take the names the quantizer would pick for the input's parameters, as an old export's
    // `conv4_3_norm_scale` took the quantizers' `<tensor>_scale`.
    const init = m.graph!.initializer!.find((t) => t.name!.endsWith('_gamma'));
    expect(init, 'the L2Norm weight is called <norm>_gamma').toBeDefined();
    const normOut = init!.name!.replace(/_gamma$/, '');
    m.graph!.node!.forEach((n) => { n.input = n.input!.map((x) => (x === init!.name ? `${normOut}_scale` : x)); });
    init!.name = `${normOut}_scale`;
    const first = m.graph!.initializer!.find((t) => t.name === 'conv1_1_W') ?? m.graph!.initializer![0]!;
    const firstOld = first.name!;
    m.graph!.node!.forEach((n) => { n.input = n.input!.map((x) => (x === firstOld ? 'images_qscale' : x)); });
    first.name = 'images_qscale';
    const old = onnxProto.onnx.ModelProto.encode(m).finish();
    const { plan, ranges } = await calibrate(old, 'float-nchw');
    const q = quantizeModel(plan, ranges, { method: 'minmax', calibration: 'x', images: N });
    const S = spec.inputSize;
    const out = await run(q.bytes, floatInput(spec, rgb.subarray(0, S * S * 3), 1));
    expect(out[OUTPUTS.none.conf]!.dims[0]).toBe(1);
  });

  it('refuses a model that is already quantized, naming it', async () => {
    const bytes = buildOnnxModel({ spec, postprocess: 'none' });
    const { plan, ranges } = await calibrate(bytes, 'float-nchw');
    const q = quantizeModel(plan, ranges, { method: 'minmax', calibration: 'x', images: N });
    expect(() => planQuantization(q.bytes, 'model m.onnx')).toThrow(/m\.onnx: is already quantized/);
    expect(() => planQuantization(new Uint8Array([1, 2, 3]), 'model x.onnx')).toThrow(/x\.onnx: not an ONNX model/);
  });
});

describe('quantization arithmetic', () => {
  it('activation parameters hold 0 and the range', () => {
    expect(activationParams({ min: 0, max: 25.5 }, 'uint8')).toEqual({ scale: 0.1, zeroPoint: 0, type: 'uint8' });
    const p = activationParams({ min: -1, max: 3 }, 'uint8');
    expect(p.zeroPoint).toBe(64);
    expect(activationParams({ min: 2, max: 2 }, 'uint8').scale).toBeCloseTo(2 / 255);
    expect(activationParams({ min: -4, max: 2 }, 'int8')).toEqual({ scale: 4 / 127, zeroPoint: 0, type: 'int8' });
  });

  it('weights: symmetric per output channel, an all-zero channel stays zero', () => {
    const w = Float32Array.of(0.5, -1, 0.25, 0, 0, 0);
    const { q, scales } = quantizeWeightsPerChannel(w, 2);
    expect(Array.from(scales)).toEqual([Math.fround(1 / 127), 1]);
    expect(Array.from(q)).toEqual([64, -127, 32, 0, 0, 0]);
  });

  it('onnxruntime accepts the calibration probe with every planned tensor as an output', async () => {
    const bytes = buildOnnxModel({ spec, postprocess: 'nms' });
    const plan = planQuantization(bytes);
    const s = await ort.InferenceSession.create(calibrationModel(plan));
    try {
      for (const t of plan.tensors) expect(s.outputNames).toContain(t);
    } finally {
      await s.release();
    }
  });
});
