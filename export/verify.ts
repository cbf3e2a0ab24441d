/**
 * Export-time verification: run the exported graph in onnxruntime-node (CPU) on random pixels and on a
 * real image, run the TensorFlow.js training model on the same pixels, and compare.
 *  - Raw heads (a postprocess-"none" twin of the model, same input layout, precision and batch): max abs
 *    diff of loc and conf must be <= 1e-4 in fp32 (HEAD_TOLERANCE.fp32), <= HEAD_TOLERANCE.fp16 in fp16.
 *  - The written model's own outputs against core on the tfjs heads: decode vs core decodeBoxes and
 *    softmax; nms vs core postprocess (the runtime's decode + NMS), detection by detection.
 * A failure throws an SsdError carrying the numbers. Exports may import tfjs; the runtime may not.
 */
import * as ort from 'onnxruntime-node';
import type { WeightMap } from '../core/checkpoint.js';
import { decodeBoxes } from '../core/box-coding.js';
import { defaultBoxes } from '../core/default-boxes.js';
import { SsdError, oneLine } from '../core/errors.js';
import { iou } from '../core/iou.js';
import { INPUT_NAME, OUTPUTS, type InputLayout, type PostprocessMode } from '../core/model-contract.js';
import { postprocess as corePostprocess, softmaxRows } from '../core/postprocess.js';
import { createRng } from '../core/rng.js';
import { numClasses, type SsdSpec } from '../core/specs.js';
import { buildOnnxModel } from './build.js';
import { allocModelInput, writeChannels, writeModelInput, type ModelInputLayout } from '../core/preprocess.js';
import { PictureError, decodePicture, type DecodedPicture } from '../imageio/decode.js';

/** Raw-head tolerances (max abs diff vs the tfjs model). fp16: measured worst case x ~3, see docs/export.md. */
export const HEAD_TOLERANCE = { fp32: 1e-4, fp16: 0.05 } as const;
/** Share of detections (nms mode) that must match core postprocess: near-ties at the cut may swap. */
export const NMS_MATCH_MIN = { fp32: 0.97, fp16: 0.85 } as const;

export interface VerifyOptions {
  spec: SsdSpec;
  weights: WeightMap;
  /** The written model. */
  bytes: Uint8Array;
  input: InputLayout;
  postprocess: PostprocessMode;
  batch: number | 'dynamic';
  opset: number;
  fp16: boolean;
  keepTopK?: number;
  /** A photo to verify on (any format sharp reads); omitted: a synthetic scene. */
  image?: string;
  seed?: number;
  /** Where the one backend line goes (default stderr). */
  log?: (line: string) => void;
}

export interface InputCheck {
  /** 'random pixels', 'image <path>' or 'synthetic scene'. */
  input: string;
  locMaxAbsDiff: number;
  confMaxAbsDiff: number;
  /** The written model's outputs vs core on the tfjs heads (decode: boxes/scores; nms: matched detections). */
  outputMaxAbsDiff?: number;
  /** nms only: detections matched (same class, IoU >= 0.9) / max(count ONNX, count core). */
  nmsMatchRate?: number;
  detections?: { onnx: number; core: number };
}

export interface Fp16Check {
  /** fp16 file size / fp32 file size. */
  sizeRatio: number;
  /** fp16 vs fp32 ONNX raw heads on the same input. */
  locMaxAbsDiff: number;
  confMaxAbsDiff: number;
  /** fp16 vs fp32 softmax scores. */
  scoreMaxAbsDiff: number;
}

export interface VerificationReport {
  passed: boolean;
  backend: string;
  provider: 'cpu';
  precision: 'fp32' | 'fp16';
  tolerance: number;
  batch: number;
  checks: InputCheck[];
  fp16?: Fp16Check;
  failures: string[];
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** A smooth synthetic "photo" (sky gradient, ground, a few objects) for when no --image is given. */
export function syntheticScene(size: number): Uint8Array {
  const px = new Uint8Array(size * size * 3);
  const rects = [
    { x1: 0.1, y1: 0.45, x2: 0.4, y2: 0.9, c: [200, 40, 40] },
    { x1: 0.55, y1: 0.2, x2: 0.9, y2: 0.6, c: [30, 160, 60] },
    { x1: 0.45, y1: 0.65, x2: 0.7, y2: 0.95, c: [240, 220, 60] },
  ];
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const u = x / size, v = y / size;
      let c = v < 0.5 ? [90 + 100 * v, 140 + 80 * v, 230] : [100 + 40 * u, 90, 60 + 30 * v];
      for (const r of rects) if (u >= r.x1 && u < r.x2 && v >= r.y1 && v < r.y2) c = r.c.map((k, i) => k * (0.8 + 0.2 * Math.sin(10 * (u + v) + i)));
      const o = (y * size + x) * 3;
      for (let k = 0; k < 3; k++) px[o + k] = Math.max(0, Math.min(255, Math.round(c[k]!)));
    }
  }
  return px;
}

/**
 * A photo as the model sees it, size x size RGB: decoded by the decode the runtime and training share
 * (imageio/decode.ts), then warped by the core's one resize (core/preprocess.ts), so that
 * verification sees exactly the tensor `ssd detect` and training give the network for that file.
 */
export async function loadImageRGB(path: string, spec: SsdSpec): Promise<Uint8Array> {
  let pic: DecodedPicture;
  try {
    pic = await decodePicture(path);
  } catch (err) {
    throw new SsdError(`--image ${path}: cannot read it as an image (${err instanceof PictureError ? err.reason : oneLine(err)})`, { cause: err });
  }
  // The uint8-nhwc layout of the core is the warped RGB picture itself.
  const out = new Uint8Array(spec.inputSize * spec.inputSize * 3);
  writeModelInput({ ...pic, format: 'rgb' }, { layout: 'uint8-nhwc', inputSize: spec.inputSize, input: spec.input }, 'warp', out, 0);
  return out;
}

/** A batch of S x S RGB pictures in a float layout, through the core's colour order and mean. */
function floatBatch(spec: SsdSpec, layout: Exclude<ModelInputLayout, 'uint8-nhwc'>, rgbNHWC: Uint8Array, batch: number): Float32Array {
  const S = spec.inputSize;
  const t = { layout, inputSize: S, input: spec.input };
  const out = allocModelInput(t, batch) as Float32Array;
  for (let b = 0; b < batch; b++) writeChannels(rgbNHWC.subarray(b * S * S * 3, (b + 1) * S * S * 3), 'rgb', S * 3, t, out, b);
  return out;
}

interface Feeds { rgb: Uint8Array; label: string }

async function runOnnx(bytes: Uint8Array, spec: SsdSpec, layout: InputLayout, rgbNHWC: Uint8Array, batch: number): Promise<Record<string, ort.Tensor>> {
  const S = spec.inputSize;
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], graphOptimizationLevel: 'all' });
  try {
    const input = layout === 'uint8-nhwc'
      ? new ort.Tensor('uint8', rgbNHWC, [batch, S, S, 3])
      : new ort.Tensor('float32', floatBatch(spec, 'float-nchw', rgbNHWC, batch), [batch, 3, S, S]);
    return await session.run({ [INPUT_NAME]: input });
  } finally {
    await session.release();
  }
}

function output(outputs: Record<string, ort.Tensor>, name: string): ort.Tensor {
  const t = outputs[name];
  if (!t) throw new Error(`verify: model has no output ${name}`);
  return t;
}

function f32(outputs: Record<string, ort.Tensor>, name: string): Float32Array {
  return output(outputs, name).data as Float32Array;
}

export async function verifyExport(opts: VerifyOptions): Promise<VerificationReport> {
  const { spec, weights } = opts;
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const S = spec.inputSize;
  const C = numClasses(spec);
  const B = opts.batch === 'dynamic' ? 2 : opts.batch;
  const precision = opts.fp16 ? 'fp16' : 'fp32';
  const tolerance = HEAD_TOLERANCE[precision];
  const priors = defaultBoxes(spec);
  const P = priors.length / 4;

  // Inputs: B random-pixel images, and the photo (or synthetic scene) and its mirror image filling the batch.
  const rng = createRng(opts.seed ?? 7);
  const random = new Uint8Array(B * S * S * 3);
  for (let i = 0; i < random.length; i++) random[i] = rng.int(256);
  const photo = opts.image ? await loadImageRGB(opts.image, spec) : syntheticScene(S);
  const photoBatch = new Uint8Array(B * S * S * 3);
  for (let b = 0; b < B; b++) {
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        const sx = b % 2 === 0 ? x : S - 1 - x;
        photoBatch.set(photo.subarray((y * S + sx) * 3, (y * S + sx) * 3 + 3), ((b * S + y) * S + x) * 3);
      }
    }
  }
  const inputs: Feeds[] = [{ rgb: random, label: 'random pixels' }, { rgb: photoBatch, label: opts.image ? `image ${opts.image}` : 'synthetic scene' }];

  const tf = await import('@tensorflow/tfjs');
  const { selectBackend } = await import('../train/backend.js');
  const { createSsdModel } = await import('../train/model.js');
  const backend = await selectBackend(undefined, { log: (line) => log(`verify: tfjs ${line}; onnxruntime-node: cpu execution provider`) });
  const model = createSsdModel(spec, { weights });
  const twin = buildOnnxModel({ spec, weights, input: opts.input, postprocess: 'none', batch: opts.batch, opset: opts.opset, fp16: opts.fp16 });
  const fp32Twin = opts.fp16 ? buildOnnxModel({ spec, weights, input: opts.input, postprocess: 'none', batch: opts.batch, opset: opts.opset }) : undefined;
  const checks: InputCheck[] = [];
  const failures: string[] = [];
  let fp16: Fp16Check | undefined;
  try {
    for (const inp of inputs) {
      const { locTf, confTf } = tf.tidy(() => {
        const out = model.forward(tf.tensor4d(floatBatch(spec, 'float-nhwc', inp.rgb, B), [B, S, S, 3]), false);
        return { locTf: out.loc.dataSync() as Float32Array, confTf: out.conf.dataSync() as Float32Array };
      });
      const heads = await runOnnx(twin, spec, opts.input, inp.rgb, B);
      const locOnnx = f32(heads, OUTPUTS.none.loc);
      const confOnnx = f32(heads, OUTPUTS.none.conf);
      const check: InputCheck = { input: inp.label, locMaxAbsDiff: maxAbsDiff(locOnnx, locTf), confMaxAbsDiff: maxAbsDiff(confOnnx, confTf) };
      if (!(check.locMaxAbsDiff <= tolerance && check.confMaxAbsDiff <= tolerance)) {
        failures.push(`${inp.label}: raw heads differ from the tfjs model by loc ${check.locMaxAbsDiff.toExponential(2)}, conf ${check.confMaxAbsDiff.toExponential(2)} (tolerance ${tolerance} ${precision})`);
      }

      const out = await runOnnx(opts.bytes, spec, opts.input, inp.rgb, B);
      if (opts.postprocess === 'none') {
        check.outputMaxAbsDiff = Math.max(maxAbsDiff(f32(out, OUTPUTS.none.loc), locTf), maxAbsDiff(f32(out, OUTPUTS.none.conf), confTf));
        if (!(check.outputMaxAbsDiff <= tolerance)) failures.push(`${inp.label}: written model outputs differ from tfjs by ${check.outputMaxAbsDiff.toExponential(2)}`);
      } else if (opts.postprocess === 'decode') {
        const boxesRef = new Float32Array(B * P * 4);
        for (let b = 0; b < B; b++) boxesRef.set(decodeBoxes(locTf.subarray(b * P * 4, (b + 1) * P * 4), priors, spec.variances), b * P * 4);
        const scoresRef = softmaxRows(confTf, C);
        // Box corners move by offset * variance * prior size, so head noise shrinks; scores by softmax's slope <= 1/2.
        check.outputMaxAbsDiff = Math.max(maxAbsDiff(f32(out, OUTPUTS.decode.boxes), boxesRef), maxAbsDiff(f32(out, OUTPUTS.decode.scores), scoresRef));
        if (!(check.outputMaxAbsDiff <= tolerance)) failures.push(`${inp.label}: decoded boxes/scores differ from core decode of the tfjs heads by ${check.outputMaxAbsDiff.toExponential(2)} (tolerance ${tolerance})`);
      } else {
        const cmp = compareDetections(out, locTf, confTf, priors, spec, B, opts.keepTopK);
        Object.assign(check, cmp);
        if (!(cmp.nmsMatchRate >= NMS_MATCH_MIN[precision])) {
          failures.push(`${inp.label}: only ${(100 * cmp.nmsMatchRate).toFixed(1)}% of detections match core postprocess (${cmp.detections.onnx} ONNX vs ${cmp.detections.core} core; need ${100 * NMS_MATCH_MIN[precision]}%)`);
        }
      }
      checks.push(check);

      if (fp32Twin && inp === inputs[1]) {
        const ref = await runOnnx(fp32Twin, spec, opts.input, inp.rgb, B);
        const conf32 = f32(ref, OUTPUTS.none.conf);
        fp16 = {
          sizeRatio: 0,
          locMaxAbsDiff: maxAbsDiff(locOnnx, f32(ref, OUTPUTS.none.loc)),
          confMaxAbsDiff: maxAbsDiff(confOnnx, conf32),
          scoreMaxAbsDiff: maxAbsDiff(softmaxRows(confOnnx, C), softmaxRows(conf32, C)),
        };
      }
    }
  } finally {
    model.dispose();
  }
  if (fp16 && fp32Twin) {
    const fp32Full = buildOnnxModel({ spec, weights, input: opts.input, postprocess: opts.postprocess, batch: opts.batch, opset: opts.opset, keepTopK: opts.keepTopK });
    fp16.sizeRatio = opts.bytes.length / fp32Full.length;
  }
  return { passed: failures.length === 0, backend: backend.name, provider: 'cpu', precision, tolerance, batch: B, checks, fp16, failures };
}

/** nms outputs of a batch vs core postprocess of the tfjs heads, image by image. */
function compareDetections(out: Record<string, ort.Tensor>, locTf: Float32Array, confTf: Float32Array, priors: Float32Array, spec: SsdSpec, B: number, keepTopK?: number) {
  const C = numClasses(spec);
  const P = priors.length / 4;
  const num = output(out, OUTPUTS.nms.numDetections).data as Int32Array;
  const boxes = f32(out, OUTPUTS.nms.boxes);
  const scores = f32(out, OUTPUTS.nms.scores);
  const classes = output(out, OUTPUTS.nms.classes).data as Int32Array;
  const K = scores.length / B;
  let matched = 0, denom = 0, onnxTotal = 0, coreTotal = 0, maxDiff = 0;
  for (let b = 0; b < B; b++) {
    const ref = corePostprocess(locTf.subarray(b * P * 4, (b + 1) * P * 4), confTf.subarray(b * P * C, (b + 1) * P * C), priors, spec, { keepTopK: keepTopK ?? spec.postprocess.keepTopK });
    const n = num[b]!;
    onnxTotal += n;
    coreTotal += ref.count;
    denom += Math.max(n, ref.count);
    const used = new Uint8Array(ref.count);
    for (let i = 0; i < n; i++) {
      const o = b * K + i;
      const box = boxes.subarray(o * 4, o * 4 + 4);
      for (let j = 0; j < ref.count; j++) {
        if (used[j] || ref.classIds[j] !== classes[o]) continue;
        if (iou(box, ref.boxesXYXY, 0, j) < 0.9) continue;
        used[j] = 1;
        matched++;
        maxDiff = Math.max(maxDiff, Math.abs(ref.scores[j]! - scores[o]!));
        for (let k = 0; k < 4; k++) maxDiff = Math.max(maxDiff, Math.abs(ref.boxesXYXY[j * 4 + k]! - box[k]!));
        break;
      }
    }
  }
  return { nmsMatchRate: denom === 0 ? 1 : matched / denom, outputMaxAbsDiff: maxDiff, detections: { onnx: onnxTotal, core: coreTotal } };
}
