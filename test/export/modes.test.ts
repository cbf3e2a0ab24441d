/**
 * Every postprocess and input mode against core (the runtime's own decode/NMS) on the same weights:
 * the raw heads of a postprocess-"none" float-nchw model are the reference input to core.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeBoxes } from '../../core/box-coding.js';
import { defaultBoxes } from '../../core/default-boxes.js';
import { postprocess, softmaxRows } from '../../core/postprocess.js';
import type { SsdSpec } from '../../core/specs.js';
import type { WeightMap } from '../../core/checkpoint.js';
import { buildOnnxModel, randomWeights } from '../../export/index.js';
import { floatInput, maxAbsDiff, pixels, run, tiny, uint8Input, type Outputs } from './helpers.js';

const N = 3;
let spec: SsdSpec;
let weights: WeightMap;
let rgb: Uint8Array;
let heads: Outputs;
let P: number, C: number;

beforeAll(async () => {
  spec = tiny();
  weights = randomWeights(spec, 21);
  rgb = pixels(spec, N, 5);
  heads = await run(buildOnnxModel({ spec, weights, postprocess: 'none', batch: N }), floatInput(spec, rgb, N));
  P = defaultBoxes(spec).length / 4;
  C = spec.labels.length;
});

const image = (a: ArrayLike<number>, b: number, per: number) => Float32Array.from(Array.prototype.slice.call(a, b * per, (b + 1) * per) as number[]);

describe('postprocess and input modes match core', () => {
  it('uint8-nhwc (Cast, RGB->BGR, mean, Transpose in the graph) equals float-nchw fed with CPU preprocessing', async () => {
    expect(spec.input.channelOrder).toBe('bgr');
    const out = await run(buildOnnxModel({ spec, weights, postprocess: 'none', batch: N, input: 'uint8-nhwc' }), uint8Input(spec, rgb, N));
    expect(maxAbsDiff(out.loc!.data, heads.loc!.data)).toBeLessThan(1e-5);
    expect(maxAbsDiff(out.conf!.data, heads.conf!.data)).toBeLessThan(1e-5);
  });

  it('an RGB spec gets no channel reorder', async () => {
    const rgbSpec: SsdSpec = { ...spec, input: { channelOrder: 'rgb', mean: [123, 117, 104] } };
    const a = await run(buildOnnxModel({ spec: rgbSpec, weights, postprocess: 'none', batch: N, input: 'uint8-nhwc' }), uint8Input(rgbSpec, rgb, N));
    const b = await run(buildOnnxModel({ spec: rgbSpec, weights, postprocess: 'none', batch: N }), floatInput(rgbSpec, rgb, N));
    expect(maxAbsDiff(a.conf!.data, b.conf!.data)).toBeLessThan(1e-5);
    // ...and it really differs from the BGR model on the same pixels.
    expect(maxAbsDiff(a.conf!.data, heads.conf!.data)).toBeGreaterThan(1e-3);
  });

  it('decode: boxes = core decodeBoxes against the default boxes, scores = core softmax', async () => {
    for (const input of ['float-nchw', 'uint8-nhwc'] as const) {
      const out = await run(buildOnnxModel({ spec, weights, postprocess: 'decode', batch: N, input }), input === 'uint8-nhwc' ? uint8Input(spec, rgb, N) : floatInput(spec, rgb, N));
      expect(out.boxes!.dims).toEqual([N, P, 4]);
      expect(out.scores!.dims).toEqual([N, P, C]);
      for (let b = 0; b < N; b++) {
        const boxesRef = decodeBoxes(image(heads.loc!.data, b, P * 4), defaultBoxes(spec), spec.variances);
        expect(maxAbsDiff(image(out.boxes!.data, b, P * 4), boxesRef)).toBeLessThan(2e-5);
        expect(maxAbsDiff(image(out.scores!.data, b, P * C), softmaxRows(image(heads.conf!.data, b, P * C), C))).toBeLessThan(2e-6);
      }
    }
  });

  async function checkNms(s: SsdSpec, keepTopK: number, input: 'float-nchw' | 'uint8-nhwc') {
    const out = await run(buildOnnxModel({ spec: s, weights, postprocess: 'nms', batch: N, input, keepTopK }), input === 'uint8-nhwc' ? uint8Input(s, rgb, N) : floatInput(s, rgb, N));
    expect(out.detection_boxes!.dims).toEqual([N, keepTopK, 4]);
    expect(out.detection_scores!.dims).toEqual([N, keepTopK]);
    expect(out.detection_classes!.dims).toEqual([N, keepTopK]);
    expect(out.num_detections!.dims).toEqual([N]);
    const counts: number[] = [];
    for (let b = 0; b < N; b++) {
      const ref = postprocess(image(heads.loc!.data, b, P * 4), image(heads.conf!.data, b, P * C), defaultBoxes(s), s, { keepTopK });
      const n = out.num_detections!.data[b]!;
      counts.push(n);
      expect(n).toBe(ref.count);
      // Same detections; order may differ only between near-tied scores (|diff| ~1e-7 from float rounding).
      const used = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const o = b * keepTopK + i;
        const j = Array.from({ length: n }, (_, k) => k).find((k) => !used[k] && ref.classIds[k] === out.detection_classes!.data[o]
          && Math.abs(ref.scores[k]! - out.detection_scores!.data[o]!) < 2e-6
          && maxAbsDiff(ref.boxesXYXY.subarray(k * 4, k * 4 + 4), out.detection_boxes!.data.subarray(o * 4, o * 4 + 4)) < 2e-5);
        expect(j, `image ${b} detection ${i} has a core twin`).toBeDefined();
        used[j!] = 1;
        // Ranks agree up to near-ties.
        expect(Math.abs(ref.scores[i]! - out.detection_scores!.data[o]!)).toBeLessThan(2e-6);
      }
      // Padding: score 0, class 0, zero box.
      for (let i = n; i < keepTopK; i++) {
        expect(out.detection_scores!.data[b * keepTopK + i]).toBe(0);
        expect(out.detection_classes!.data[b * keepTopK + i]).toBe(0);
        for (let k = 0; k < 4; k++) expect(out.detection_boxes!.data[(b * keepTopK + i) * 4 + k]).toBe(0);
      }
    }
    return counts;
  }

  it('nms: NonMaxSuppression + top-K graph = core postprocess (SSD-SPEC thresholds 0.01 / 0.45 / 400 / 200)', async () => {
    expect(spec.postprocess).toEqual({ confidenceThreshold: 0.01, nmsThreshold: 0.45, topKPerClass: 400, keepTopK: 200 });
    const counts = await checkNms(spec, 200, 'uint8-nhwc');
    expect(Math.max(...counts)).toBe(200);
  });

  it('nms: padded when fewer than K survive, and a small pre-NMS top-k per class is honoured', async () => {
    const strict: SsdSpec = { ...spec, postprocess: { confidenceThreshold: 0.3, nmsThreshold: 0.3, topKPerClass: 3, keepTopK: 200 } };
    // At most 3 per class x 10 classes = 30 < 40: padding is certain, and the per-class cap is what limits.
    const counts = await checkNms(strict, 40, 'float-nchw');
    expect(Math.min(...counts)).toBeLessThan(40);
    expect(Math.max(...counts)).toBeGreaterThan(0);
  });
});

describe('batch and graph optimisation', () => {
  it('dynamic batch gives per-image results identical to batch 1', async () => {
    for (const postprocess of ['decode', 'nms'] as const) {
      const dyn = await run(buildOnnxModel({ spec, weights, postprocess, batch: 'dynamic', input: 'uint8-nhwc' }), uint8Input(spec, rgb, N));
      const one = buildOnnxModel({ spec, weights, postprocess, batch: 1, input: 'uint8-nhwc' });
      const S = spec.inputSize;
      for (let b = 0; b < N; b++) {
        const single = await run(one, uint8Input(spec, rgb.slice(b * S * S * 3, (b + 1) * S * S * 3), 1));
        for (const [name, t] of Object.entries(single)) {
          const per = t.data.length;
          expect(maxAbsDiff(dyn[name]!.data.subarray(b * per, (b + 1) * per), t.data), `${postprocess} ${name} image ${b}`).toBeLessThan(1e-5);
        }
      }
    }
  });

  it('onnxruntime loads every mode with graph optimisations disabled and all, same outputs', async () => {
    for (const postprocess of ['none', 'decode', 'nms'] as const) {
      for (const fp16 of [false, true]) {
        const bytes = buildOnnxModel({ spec, weights, postprocess, fp16, batch: 'dynamic', input: 'uint8-nhwc' });
        const a = await run(bytes, uint8Input(spec, rgb, N), 'disabled');
        const b = await run(bytes, uint8Input(spec, rgb, N), 'all');
        for (const name of Object.keys(a)) {
          expect(maxAbsDiff(a[name]!.data, b[name]!.data), `${postprocess} fp16=${fp16} ${name}`).toBeLessThan(fp16 ? 5e-3 : 1e-4);
        }
      }
    }
  });
});
