/**
 * From raw head outputs to detections: softmax over classes, decode against the default boxes, per-class
 * NMS (SSD-SPEC "Inference"). The runtime and the trainer's validation both call postprocess().
 */
import { decodeInto } from './box-coding.js';
import { multiclassNms, type Detections, type MulticlassNmsOptions } from './nms.js';
import type { SsdSpec } from './specs.js';

export interface PostprocessOptions extends MulticlassNmsOptions {
  /** confPC holds logits (softmax them first); false when the model already ends in a softmax. Default true. */
  fromLogits?: boolean;
  /**
   * Clip the returned boxes to [0, 1] (default true). NMS itself runs on the unclipped boxes, as the
   * reference Caffe DetectionOutput does; only the output is clipped.
   */
  clip?: boolean;
}

let rowScratch = new Float64Array(0);

/** Row-wise softmax of a [rows * C] matrix (numerically stable: the row max is subtracted first). */
export function softmaxRows(logits: Float32Array, C: number, out?: Float32Array): Float32Array {
  const res = out ?? new Float32Array(logits.length);
  if (logits.length % C !== 0) throw new RangeError(`softmaxRows: ${logits.length} values are not rows of ${C}`);
  // Exponentials stay in float64 until the division, so each probability is rounded once.
  if (rowScratch.length < C) rowScratch = new Float64Array(C);
  const e = rowScratch;
  for (let row = 0; row < logits.length; row += C) {
    let max = logits[row]!;
    for (let c = 1; c < C; c++) if (logits[row + c]! > max) max = logits[row + c]!;
    let sum = 0;
    for (let c = 0; c < C; c++) {
      const v = Math.exp(logits[row + c]! - max);
      e[c] = v;
      sum += v;
    }
    for (let c = 0; c < C; c++) res[row + c] = e[c]! / sum;
  }
  return res;
}

let probScratch = new Float32Array(0);

/**
 * Softmax of the rows where some foreground class can exceed `thr`; elsewhere the foreground
 * probabilities are written as 0. Exact for thresholding: a foreground probability is
 * exp(l_c - max) / sum <= exp(l_c - max) (the sum is >= 1), so when every l_c - max is below log(thr)
 * none can pass, and the row's exponentials are never computed. On a trained SSD this skips most rows.
 */
function softmaxLiveRows(logits: Float32Array, C: number, thr: number, out: Float32Array): void {
  // The margin keeps rounding of exp/log from ever skipping a row whose probability could reach thr.
  const cut = thr > 0 ? Math.log(thr) - 1e-6 : -Infinity;
  if (rowScratch.length < C) rowScratch = new Float64Array(C);
  const e = rowScratch;
  for (let row = 0; row < logits.length; row += C) {
    let max = logits[row]!;
    let fgMax = -Infinity;
    for (let c = 1; c < C; c++) {
      const v = logits[row + c]!;
      if (v > fgMax) fgMax = v;
    }
    if (fgMax > max) max = fgMax;
    if (fgMax - max < cut) {
      out[row] = 1;
      for (let c = 1; c < C; c++) out[row + c] = 0;
      continue;
    }
    let sum = 0;
    for (let c = 0; c < C; c++) {
      const v = Math.exp(logits[row + c]! - max);
      e[c] = v;
      sum += v;
    }
    for (let c = 0; c < C; c++) out[row + c] = e[c]! / sum;
  }
}
let boxScratch = new Float32Array(0);

/**
 * Detections of one image from its P*4 box regressions and P*C class scores. Boxes are xyxy in [0, 1]
 * of the network input. Thresholds default to spec.postprocess.
 */
export function postprocess(locP4: Float32Array, confPC: Float32Array, priorsCXCYWH: Float32Array, spec: SsdSpec, opts: PostprocessOptions = {}): Detections {
  const C = spec.labels.length;
  const P = priorsCXCYWH.length >> 2;
  if (locP4.length !== P * 4) throw new RangeError(`postprocess: ${locP4.length / 4} box regressions for ${P} default boxes`);
  if (confPC.length !== P * C) throw new RangeError(`postprocess: ${confPC.length} class scores for ${P} default boxes x ${C} classes`);
  const thr = opts.confidenceThreshold ?? spec.postprocess.confidenceThreshold;

  if (probScratch.length < P * C) probScratch = new Float32Array(P * C);
  if (boxScratch.length < P * 4) boxScratch = new Float32Array(P * 4);
  const boxes = boxScratch.subarray(0, P * 4);
  let probs = confPC;
  if (opts.fromLogits ?? true) {
    probs = probScratch.subarray(0, P * C);
    softmaxLiveRows(confPC, C, thr, probs);
  }

  // Decode only the boxes that some foreground class could keep; the others are never read by NMS.
  for (let p = 0, row = 0; p < P; p++, row += C) {
    for (let c = 1; c < C; c++) {
      if (probs[row + c]! > thr) {
        decodeInto(locP4, p, priorsCXCYWH, p, spec.variances, boxes, p, 1);
        break;
      }
    }
  }

  const det = multiclassNms(boxes, probs, C, {
    confidenceThreshold: thr,
    topKPerClass: opts.topKPerClass ?? spec.postprocess.topKPerClass,
    nmsThreshold: opts.nmsThreshold ?? spec.postprocess.nmsThreshold,
    keepTopK: opts.keepTopK ?? spec.postprocess.keepTopK,
  });
  if (opts.clip ?? true) {
    const b = det.boxesXYXY;
    for (let i = 0; i < b.length; i++) b[i] = Math.min(1, Math.max(0, b[i]!));
  }
  return det;
}
