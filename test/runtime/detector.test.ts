// Detector end to end on small random-weight SSDs exported on the fly: the three postprocess modes
// (ONNX NonMaxSuppression in the graph vs the core's decode + NMS in JS) agree, boxes come back in
// original pixels (checked against an independent preprocessing + raw onnxruntime run), batches
// survive a bad image, raw frames match decoded images, and non-SSD models are refused.
import { readFileSync, writeFileSync } from 'node:fs';
import onnxProto from 'onnx-proto';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { defaultBoxes } from '../../core/default-boxes.js';
import { SsdError } from '../../core/errors.js';
import { postprocess } from '../../core/postprocess.js';
import { resampleBilinearHWC } from '../../core/preprocess.js';
import { nhwcToNchw, preprocessNHWC } from '../../export/input-graph.js';
import type { DetectionPixelsXYXY } from '../../core/model-contract.js';
import { Detector } from '../../runtime/detector.js';
import { readOnnxHeader } from '../../runtime/onnx-metadata.js';
import { encode, patternRgb, tinySpec, writeReluModel, writeTinyModel } from './helpers.js';
import { tempDir } from '../helpers/temp-dir.js';

const { onnx } = onnxProto;
const tmp = tempDir('ssd-runtime-');
const quiet = { log: () => {} };
const S = tinySpec().inputSize; // 96

const W = 200, H = 100;
let png: Buffer;
let png2: Buffer;
beforeAll(async () => {
  png = await encode(patternRgb(W, H), W, H);
  png2 = await encode(patternRgb(W, H, 2), W, H);
});

/** Same detections up to float noise: same classes, boxes within `tol` pixels, scores within 1e-4. */
function expectSameDetections(a: DetectionPixelsXYXY[], b: DetectionPixelsXYXY[], tol = 1e-3): void {
  expect(a.length).toBe(b.length);
  a.forEach((d, i) => {
    const e = b[i]!;
    expect(d.classId).toBe(e.classId);
    expect(d.label).toBe(e.label);
    expect(Math.abs(d.score - e.score)).toBeLessThan(1e-4);
    d.box.forEach((v, k) => expect(Math.abs(v - e.box[k]!)).toBeLessThan(tol));
  });
}

describe('postprocess modes', () => {
  it('graph NMS (ONNX NonMaxSuppression), graph decode + core NMS, and raw heads + core decode/NMS agree, in both input layouts', async () => {
    const results: Record<string, DetectionPixelsXYXY[]> = {};
    for (const postprocess of ['none', 'decode', 'nms'] as const) {
      for (const input of ['float-nchw', 'uint8-nhwc'] as const) {
        const d = await Detector.load(writeTinyModel(tmp, { postprocess, input }), quiet);
        expect(d.metadata.postprocess).toBe(postprocess);
        results[`${postprocess}/${input}`] = await d.detect(png, { threshold: 0.3 });
        await d.dispose();
      }
    }
    const ref = results['none/float-nchw']!;
    // A meaningful comparison: some detections, fewer than the keep-top-k cut of 200.
    expect(ref.length).toBeGreaterThan(5);
    expect(ref.length).toBeLessThan(200);
    expect(ref.every((d) => d.score >= 0.3 && d.classId >= 1 && d.classId <= 10)).toBe(true);
    for (const [k, v] of Object.entries(results)) {
      if (k !== 'none/float-nchw') expectSameDetections(v, ref);
    }
  });
});

describe('boxes in original pixels', () => {
  it('equal the raw model output scaled by the image size (independent preprocessing, onnxruntime called directly)', async () => {
    const path = writeTinyModel(tmp, { postprocess: 'none' });
    const spec = tinySpec();
    // Independent of the runtime: the PNG's pixels resized by the core's resize (core/preprocess.ts, the
    // one training uses) -> export's preprocessNHWC -> NCHW -> onnxruntime -> core postprocess.
    const rgb = new Uint8Array(S * S * 3);
    resampleBilinearHWC(patternRgb(W, H), W, H, W * 3, rgb, S, S, S * 3);
    const nchw = nhwcToNchw(preprocessNHWC(spec, new Uint8Array(rgb)), 1, S, S, 3);
    const session = await ort.InferenceSession.create(path);
    const out = await session.run({ images: new ort.Tensor('float32', nchw, [1, 3, S, S]) });
    await session.release();
    const det = postprocess(out.loc!.data as Float32Array, out.conf!.data as Float32Array, defaultBoxes(spec), spec, { confidenceThreshold: 0.3 });
    const expected: DetectionPixelsXYXY[] = Array.from({ length: det.count }, (_, i) => ({
      label: spec.labels[det.classIds[i]!]!,
      classId: det.classIds[i]!,
      score: det.scores[i]!,
      box: [det.boxesXYXY[i * 4]! * W, det.boxesXYXY[i * 4 + 1]! * H, det.boxesXYXY[i * 4 + 2]! * W, det.boxesXYXY[i * 4 + 3]! * H],
    }));
    const d = await Detector.load(path, { ...quiet, thread: 'main' });
    const got = await d.detect(png, { threshold: 0.3 });
    await d.dispose();
    expect(got.length).toBeGreaterThan(5);
    expectSameDetections(got, expected);
    expect(got.every((g) => g.box[0] >= 0 && g.box[2] <= W && g.box[1] >= 0 && g.box[3] <= H)).toBe(true);
  });

  it('letterbox keeps boxes inside the picture', async () => {
    const d = await Detector.load(writeTinyModel(tmp), { ...quiet, resize: 'letterbox' });
    const boxes = await d.detect(png, { threshold: 0.2 });
    await d.dispose();
    expect(boxes.length).toBeGreaterThan(0);
    for (const b of boxes) {
      expect(b.box[0]).toBeGreaterThanOrEqual(0);
      expect(b.box[3]).toBeLessThanOrEqual(H);
      expect(b.box[2]).toBeGreaterThanOrEqual(b.box[0]);
    }
  });
});

describe('raw frames', () => {
  it('an RGB frame at the input size gives what its lossless PNG gives; a BGR frame of the same picture too', async () => {
    const rgb = patternRgb(S, S, 1);
    const bgr = new Uint8Array(rgb.length);
    for (let i = 0; i < rgb.length; i += 3) bgr.set([rgb[i + 2]!, rgb[i + 1]!, rgb[i]!], i);
    for (const input of ['float-nchw', 'uint8-nhwc'] as const) {
      const d = await Detector.load(writeTinyModel(tmp, { input }), quiet);
      const fromPng = await d.detect(await encode(rgb, S, S), { threshold: 0.2 });
      expect(fromPng.length).toBeGreaterThan(0);
      expectSameDetections(await d.detect({ data: rgb, width: S, height: S, format: 'rgb' }, { threshold: 0.2 }), fromPng);
      expectSameDetections(await d.detect({ data: bgr, width: S, height: S, format: 'bgr' }, { threshold: 0.2 }), fromPng);
      await d.dispose();
    }
  });

  it('prepare/run/finish separately equal detect, and the next frame can be prepared while one runs', async () => {
    const d = await Detector.load(writeTinyModel(tmp), quiet);
    const frames = [0, 1, 2].map((p) => ({ data: patternRgb(160, 120, p), width: 160, height: 120, format: 'rgb' as const }));
    const direct: DetectionPixelsXYXY[][] = [];
    for (const f of frames) direct.push(await d.detect(f, { threshold: 0.2 }));
    let preparing = d.prepare(frames[0]!);
    const piped: DetectionPixelsXYXY[][] = [];
    for (let i = 0; i < frames.length; i++) {
      const p = await preparing;
      const running = d.run(p);
      if (i + 1 < frames.length) preparing = d.prepare(frames[i + 1]!);
      piped.push(d.finish(await running, p, { threshold: 0.2 })[0]!);
    }
    // All three runs in flight at once: they queue on the inference thread and resolve in order.
    const prepared = await Promise.all(frames.map((f) => d.prepare(f)));
    const runs = prepared.map((p) => d.run(p));
    const queued = (await Promise.all(runs)).map((raw, i) => d.finish(raw, prepared[i]!, { threshold: 0.2 })[0]!);
    await d.dispose();
    piped.forEach((p, i) => expectSameDetections(p, direct[i]!));
    queued.forEach((p, i) => expectSameDetections(p, direct[i]!));
  });

  it('finish hands the input buffer to the next prepare: a finished Prepared cannot run, a fixed batch pads with zeros again', async () => {
    const d = await Detector.load(writeTinyModel(tmp, { batch: 2 }), quiet);
    const frame = (p: number) => ({ data: patternRgb(160, 120, p), width: 160, height: 120, format: 'rgb' as const });
    const a = await d.prepare([frame(0), frame(1)]);
    const buffer = a.tensor.data;
    const ranA = await d.run(a);
    expect(a.tensor.data === buffer).toBe(false); // back from the inference thread: the same memory, a new view
    const reused = a.tensor.data;
    const twoImages = d.finish(ranA, a, { threshold: 0.2 });
    await expect(d.run(a)).rejects.toThrow('this Prepared was finished');
    const b = await d.prepare(frame(2));
    expect(b.tensor.data === reused).toBe(true);
    // The second slot held frame 1; now it is zeros, as a fresh buffer's.
    const per = b.tensor.data.length / 2;
    expect(b.tensor.data.subarray(per).every((v) => v === 0)).toBe(true);
    const fresh = await Detector.load(writeTinyModel(tmp, { batch: 2 }), quiet);
    expectSameDetections(d.finish(await d.run(b), b, { threshold: 0.2 })[0]!, (await fresh.detect(frame(2), { threshold: 0.2 })));
    expect(twoImages).toHaveLength(2);
    await Promise.all([d.dispose(), fresh.dispose()]);
  });
});

describe('detectBatch', () => {
  it.each([1, 'dynamic', 2] as const)('batch %s: a bad image is reported in its slot, the others equal single detections', async (batch) => {
    const bad = join(tmp, 'truncated.jpg');
    const jpeg = await encode(patternRgb(64, 64), 64, 64, 'jpeg');
    writeFileSync(bad, jpeg.subarray(0, jpeg.length >> 1));
    const d = await Detector.load(writeTinyModel(tmp, { batch }), { ...quiet, maxBatch: 3 });
    expect(d.batch).toBe(batch);
    const single = [await d.detect(png, { threshold: 0.2 }), await d.detect(png2, { threshold: 0.2 })];
    const results = await d.detectBatch([png, bad, png2, join(tmp, 'missing.png')], { threshold: 0.2 });
    await d.dispose();
    expect(results.map((r) => r.ok)).toEqual([true, false, true, false]);
    const [r0, r1, r2, r3] = results;
    if (!r0!.ok || r1!.ok || !r2!.ok || r3!.ok) throw new Error('unreachable');
    expect(r1!.error).toMatch(/truncated\.jpg: cannot decode/);
    expect(r3!.error).toMatch(/missing\.png: file not found/);
    expectSameDetections(r0!.detections, single[0]!);
    expectSameDetections(r2!.detections, single[1]!);
  });
});

describe('detectEach', () => {
  it('yields every input in order (a wholly bad batch too) with the next batch already running while the caller handles a result', async () => {
    const bad = join(tmp, 'truncated-each.jpg');
    const jpeg = await encode(patternRgb(64, 64), 64, 64, 'jpeg');
    writeFileSync(bad, jpeg.subarray(0, jpeg.length >> 1));
    const d = await Detector.load(writeTinyModel(tmp, { batch: 'dynamic' }), { ...quiet, maxBatch: 2 });
    const single = [await d.detect(png, { threshold: 0.2 }), await d.detect(png2, { threshold: 0.2 })];
    // Groups of 2: [png, png2] [png2, bad] [bad, bad] [png]
    const inputs = [png, png2, png2, bad, bad, bad, png];
    let runs = 0;
    const run = d.run.bind(d);
    d.run = (p) => { runs++; return run(p); };
    const got: Array<{ ok: boolean; runsWhenHandled: number }> = [];
    const results = [];
    for await (const r of d.detectEach(inputs, { threshold: 0.2 })) {
      got.push({ ok: r.ok, runsWhenHandled: runs });
      results.push(r);
      // A slow consumer (drawing, writing) does not stop the pipeline.
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await d.dispose();
    expect(got.map((g) => g.ok)).toEqual([true, true, true, false, false, false, true]);
    // When the first result reaches the caller, the second batch (its next run) has been submitted.
    expect(got[0]!.runsWhenHandled).toBe(2);
    expect(runs).toBe(3); // the all-bad group never runs
    results.forEach((r, i) => {
      expect(r.input).toBe(inputs[i] === bad ? bad : `image buffer (${(inputs[i] as Buffer).byteLength} bytes)`);
      if (r.ok) expectSameDetections(r.detections, inputs[i] === png ? single[0]! : single[1]!);
      else expect(r.error).toMatch(/truncated-each\.jpg: cannot decode/);
    });
  });
});

describe('load options and bad models', () => {
  it('threads, graph optimization off and no warm-up give the same detections', async () => {
    const path = writeTinyModel(tmp);
    const a = await Detector.load(path, quiet);
    const b = await Detector.load(path, { ...quiet, threads: 1, graphOptimization: 'disabled', warmup: false, providers: ['cuda', 'cpu'] });
    expect(b.provider).toBe('cpu');
    expect(b.skippedProviders.map((s) => s.name)).toEqual(['cuda']);
    expectSameDetections(await b.detect(png, { threshold: 0.2 }), await a.detect(png, { threshold: 0.2 }));
    await a.dispose();
    await b.dispose();
    await expect(b.detect(png)).rejects.toThrow(SsdError);
  });

  it('an unknown device profile is an SsdError naming the known ones', async () => {
    await expect(Detector.load(writeTinyModel(tmp), { ...quiet, device: 'toaster' })).rejects.toThrow(/unknown device profile "toaster" \(known: .*cpu/);
  });

  it('a model whose heads do not match its metadata (labels edited after export) is refused', async () => {
    const model = onnx.ModelProto.decode(readFileSync(writeTinyModel(tmp, { postprocess: 'none' })));
    const edited = { ...tinySpec(), labels: ['background', 'a', 'b'] };
    for (const p of model.metadataProps) if (p.key === 'ssd.spec') p.value = JSON.stringify(edited);
    const path = join(tmp, 'edited.onnx');
    writeFileSync(path, onnx.ModelProto.encode(model).finish());
    await expect(Detector.load(path, quiet)).rejects.toThrow(/edited\.onnx: output conf is float32 \[1,\d+,11\], but its SSD metadata \(ssd-tiny96\) gives float32 \[N,\d+,3\]/);
  });

  it('a model whose input is not an SSD image is refused, naming the shapes', async () => {
    // A one-node Relu model, [1, 3] -> [1, 3], carrying a real SSD's metadata.
    const path = writeReluModel(join(tmp, 'relu.onnx'), readOnnxHeader(writeTinyModel(tmp)).props);
    await expect(Detector.load(path, quiet)).rejects.toThrow(/relu\.onnx: input x is float32 \[1,3\], but its SSD metadata \(ssd-tiny96, float-nchw\) needs float32 \[N,3,96,96\]/);
    // The same graph without the metadata.
    const plain = writeReluModel(join(tmp, 'relu-plain.onnx'));
    await expect(Detector.load(plain, quiet)).rejects.toThrow(/relu-plain\.onnx: no SSD metadata/);
  });
});
