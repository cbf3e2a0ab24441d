import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { INPUT_LAYOUTS, INPUT_NAME, inputTensor, OUTPUTS, outputTensorList, POSTPROCESS_MODES } from '../../core/model-contract.js';
import { metadataFromProps } from '../../core/model-metadata.js';
import { numClasses, numDefaultBoxes } from '../../core/specs.js';
import { buildOnnxModel, buildOnnxModelInfo, inspectModel, randomWeights } from '../../export/index.js';
import { floatInput, maxAbsDiff, pixels, run, tiny } from './helpers.js';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

describe('buildOnnxModel', () => {
  it('writes IR 8, opset 17 by default, raw_data initializers', () => {
    // No time limit: tests must pass on a loaded machine; speed is measured by benchmarks, not asserted.
    const spec = tiny();
    const bytes = buildOnnxModel({ spec, seed: 3 });
    const info = inspectModel(bytes);
    expect(info.irVersion).toBe(8);
    expect(info.opset).toBe(17);
    const model = onnx.ModelProto.decode(bytes);
    for (const t of model.graph!.initializer!) {
      expect(t.rawData?.length ?? 0).toBeGreaterThan(0);
      expect(t.floatData?.length ?? 0).toBe(0);
    }
  });

  it('emits the SSD-SPEC layer geometry: pool3 ceil mode, pool5 3x3/s1/p1, fc6 dilation 6 pad 6, 3x3 pad-1 heads', () => {
    // ssd-tiny has every layer kind of SSD300 (the SSD300 export itself runs in test/slow).
    const spec = tiny();
    const model = onnx.ModelProto.decode(buildOnnxModel({ spec, seed: 1, postprocess: 'none' }));
    const node = (name: string) => model.graph!.node!.find((n) => n.name === `${name}_node`)!;
    const attr = (name: string, a: string) => {
      const found = node(name).attribute!.find((x) => x.name === a)!;
      return { i: found.i, ints: found.ints ?? [] };
    };
    expect(Number(attr('pool3', 'ceil_mode').i)).toBe(1);
    expect(Number(attr('pool2', 'ceil_mode').i)).toBe(0);
    expect(attr('pool5', 'kernel_shape').ints.map(Number)).toEqual([3, 3]);
    expect(attr('pool5', 'strides').ints.map(Number)).toEqual([1, 1]);
    expect(attr('pool5', 'pads').ints.map(Number)).toEqual([1, 1, 1, 1]);
    expect(attr('fc6', 'dilations').ints.map(Number)).toEqual([6, 6]);
    expect(attr('fc6', 'pads').ints.map(Number)).toEqual([6, 6, 6, 6]);
    expect(attr('fc7', 'kernel_shape').ints.map(Number)).toEqual([1, 1]);
    expect(attr('conv6_2', 'strides').ints.map(Number)).toEqual([2, 2]);
    expect(attr('loc0', 'pads').ints.map(Number)).toEqual([1, 1, 1, 1]);
    // Source maps 12, 6, 3 with 4, 6, 4 boxes per location: 828 default boxes, 11 classes.
    const outs = inspectModel(onnx.ModelProto.encode(model).finish()).outputs;
    expect(outs.map((o) => [o.name, o.dims])).toEqual([['loc', [1, 828, 4]], ['conf', [1, 828, 11]]]);
  });

  it('declares exactly the model contract: one input per layout, the outputs of each postprocess mode', () => {
    // The names are the wire contract every reader of an exported model relies on (the runtime,
    // TensorRT users, Netron): pinned here so that a rename is a deliberate, breaking change.
    expect(OUTPUTS).toEqual({
      none: { loc: 'loc', conf: 'conf' },
      decode: { boxes: 'boxes', scores: 'scores' },
      nms: { numDetections: 'num_detections', boxes: 'detection_boxes', scores: 'detection_scores', classes: 'detection_classes' },
    });
    expect(INPUT_NAME).toBe('images');
    const spec = tiny();
    const elem = { float: 1, uint8: 2, int32: 6, float32: 1 } as const;
    for (const layout of INPUT_LAYOUTS) {
      for (const mode of POSTPROCESS_MODES) {
        const built = buildOnnxModelInfo({ spec, seed: 2, input: layout, postprocess: mode, batch: 'dynamic' });
        const info = inspectModel(built.bytes);
        const want = inputTensor(layout, spec.inputSize, 'N');
        expect(info.inputs).toEqual([{ name: INPUT_NAME, elemType: elem[want.type], dims: want.dims }]);
        const outs = outputTensorList(mode, { batch: 'N', numPriors: numDefaultBoxes(spec), numClasses: numClasses(spec), keepTopK: built.keepTopK });
        expect(info.outputs).toEqual(outs.map((o) => ({ name: o.name, elemType: elem[o.dtype], dims: o.dims })));
        expect(built.outputs).toEqual(outs);
      }
    }
  });

  it('transposes HWIO kernels to OIHW (hand-checked element)', () => {
    const spec = tiny();
    const weights = randomWeights(spec, 5);
    const model = onnx.ModelProto.decode(buildOnnxModel({ spec, weights }));
    const W = model.graph!.initializer!.find((t) => t.name === 'conv2_1_W')!;
    const [co, ci, kh, kw] = W.dims!.map(Number) as [number, number, number, number];
    expect([kh, kw]).toEqual([3, 3]);
    const oihw = new Float32Array(new Uint8Array(W.rawData!).buffer);
    const hwio = weights.get('conv2_1/kernel')!.data;
    for (const [o, i, y, x] of [[0, 0, 0, 0], [co - 1, ci - 1, 2, 1], [3, 2, 1, 2]] as const) {
      expect(oihw[((o * ci + i) * kh + y) * kw + x]).toBe(hwio[((y * kw + x) * ci + i) * co + o]);
    }
  });

  it('carries the metadata contract (spec, layout, postprocess, precision, producer, training)', () => {
    const spec = tiny();
    const bytes = buildOnnxModel({ spec, postprocess: 'nms', input: 'uint8-nhwc', fp16: true, keepTopK: 50, training: { data: 'voc07+12', iterations: 120000, map: 0.772 } });
    const meta = metadataFromProps(inspectModel(bytes).metadata);
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
    expect(meta.spec).toEqual(spec);
    expect(meta).toMatchObject({ inputLayout: 'uint8-nhwc', postprocess: 'nms', precision: 'fp16', keepTopK: 50, producer: `${pkg.name} ${pkg.version}` });
    expect(meta.training).toEqual({ data: 'voc07+12', iterations: 120000, map: 0.772 });
  });

  it('random init is deterministic per seed and differs across seeds', () => {
    const spec = tiny();
    const a = randomWeights(spec, 11), b = randomWeights(spec, 11), c = randomWeights(spec, 12);
    expect(a.get('fc6/kernel')!.data).toEqual(b.get('fc6/kernel')!.data);
    expect(a.get('fc6/kernel')!.data).not.toEqual(c.get('fc6/kernel')!.data);
    // The L2Norm scale starts at the spec's value (SSD300: 20; the narrow ssd-tiny: less, see core/specs.ts).
    const scale = spec.sources.find((src) => src.layer === 'conv4_3')!.l2NormScale!;
    expect(a.get('conv4_3_norm/scale')!.data.every((v) => v === Math.fround(scale))).toBe(true);
  });

  it('fp16 stores float16 weights, keeps float32 inputs/outputs, and halves the size', () => {
    const spec = tiny();
    const fp32 = buildOnnxModel({ spec, seed: 2 });
    const fp16 = buildOnnxModel({ spec, seed: 2, fp16: true });
    const info = inspectModel(fp16);
    const FLOAT = 1, FLOAT16 = 10;
    expect(info.initializerTypes.filter((t) => t === FLOAT16).length).toBeGreaterThan(30);
    expect(info.inputs[0]!.elemType).toBe(FLOAT);
    expect(info.outputs.every((o) => o.elemType === FLOAT)).toBe(true);
    expect(fp16.length / fp32.length).toBeGreaterThan(0.45);
    expect(fp16.length / fp32.length).toBeLessThan(0.56);
  });

  it('opsets 13..18 give the same outputs (ReduceSumSquare axes: attribute <= 17, input at 18)', async () => {
    const spec = tiny();
    const images = floatInput(spec, pixels(spec, 1, 4), 1);
    const ref = await run(buildOnnxModel({ spec, seed: 9, postprocess: 'decode', opset: 17 }), images);
    for (const opset of [13, 18]) {
      const bytes = buildOnnxModel({ spec, seed: 9, postprocess: 'decode', opset });
      expect(inspectModel(bytes).opset).toBe(opset);
      const out = await run(bytes, images);
      expect(maxAbsDiff(out.boxes!.data, ref.boxes!.data)).toBeLessThan(1e-6);
      expect(maxAbsDiff(out.scores!.data, ref.scores!.data)).toBeLessThan(1e-6);
    }
    expect(() => buildOnnxModel({ spec, opset: 12 })).toThrow(/opset 12 is not supported/);
    expect(() => buildOnnxModel({ spec, opset: 19 })).toThrow(/13\.\.18/);
  });

  it('rejects weights that do not fit the spec with a one-line error naming the weight', () => {
    const spec = tiny();
    const weights = randomWeights(spec, 1);
    weights.delete('conf1/bias');
    expect(() => buildOnnxModel({ spec, weights })).toThrow(/missing weight conf1\/bias/);
    const w2 = randomWeights(spec, 1);
    w2.set('fc7/kernel', { shape: [1, 1, 3, 3], data: new Float32Array(9) });
    expect(() => buildOnnxModel({ spec, weights: w2 })).toThrow(/fc7\/kernel has shape \[1,1,3,3\]/);
  });

  it('reports op counts and P for the summary', () => {
    const spec = tiny();
    const built = buildOnnxModelInfo({ spec, postprocess: 'none' });
    expect(built.numPriors).toBe(numDefaultBoxes(spec));
    expect(built.ops.get('Conv')).toBe(spec.layers.filter((l) => l.kind === 'conv').length + 2 * spec.sources.length);
    expect(built.ops.has('BatchNormalization')).toBe(false);
  });
});

describe('MaxPool geometry', () => {
  it('gives core outputSize (Caffe/PyTorch ceil mode) for every kernel/stride/pad/size, checked in onnxruntime', async () => {
    const { maxPoolPadding } = await import('../../export/graph.js');
    const { OnnxGraph } = await import('../../export/onnx-builder.js');
    const { outputSize, maxpool } = await import('../../core/specs.js');
    const ort = await import('onnxruntime-node');
    const cases: [number, number, number, number, boolean][] = [];
    for (const n of [5, 6, 7, 75]) for (const [k, s, p] of [[2, 2, 0], [3, 2, 1], [2, 2, 1], [3, 1, 1], [3, 3, 1]]) for (const ceil of [false, true]) if (p <= k / 2) cases.push([n, k!, s!, p!, ceil]);
    const g = new OnnxGraph(17);
    const x = g.input('x', 'float', [1, 1, 'H', 'W']);
    const outs: string[] = [];
    for (const [n, k, s, p, ceil] of cases) {
      const layer = maxpool('pool', k, s, p, ceil);
      outs.push(g.output(g.op('MaxPool', [x], { kernel_shape: [k, k], strides: [s, s], ...maxPoolPadding(layer, n) }), `y${outs.length}`, 'float', [1, 1, 'h', 'w']));
    }
    // One graph per input size: run each case on its own n.
    const session = await ort.InferenceSession.create(g.toModel({ graphName: 'pools', producerName: 't', producerVersion: '0' }));
    for (const [i, [n, k, s, p, ceil]] of cases.entries()) {
      const r = await session.run({ x: new ort.Tensor('float32', new Float32Array(n * n), [1, 1, n, n]) }, [outs[i]!]);
      const want = outputSize(maxpool('pool', k, s, p, ceil), n);
      expect(r[outs[i]!]!.dims, `n ${n} k ${k} s ${s} p ${p} ceil ${ceil}`).toEqual([1, 1, want, want]);
    }
    await session.release();
    // Some ceil cases need the explicit end padding (ONNX's ceil formula would add a window in the padding).
    expect(cases.some(([n, k, s, p, ceil]) => ceil && maxPoolPadding(maxpool('pool', k, s, p, ceil), n).ceil_mode === 0)).toBe(true);
    // SSD300 pool3: 75 -> 38 with ceil_mode=1 itself.
    expect(maxPoolPadding(maxpool('pool3', 2, 2, 0, true), 75)).toEqual({ pads: [0, 0, 0, 0], ceil_mode: 1 });
  });
});
