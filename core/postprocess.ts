/**
 * From raw head outputs to detections: softmax over classes, decode against the default boxes, per-class
 * NMS (SSD-SPEC "Inference"). The runtime and the trainer's validation both call postprocess().
 */
import { MAX_LOG_SCALE } from './box-coding.js';
import { nmsCandidates, type Detections, type MulticlassNmsOptions } from './nms.js';
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
let boxScratch = new Float32Array(0);
let candScratch = new Int32Array(0);

/**
 * Detections of one image from its P*4 box regressions and P*C class scores. Boxes are xyxy in [0, 1]
 * of the network input. Thresholds default to spec.postprocess.
 *
 * One pass over the rows finds the candidates (box, class) above the threshold and decodes only their
 * boxes. With logits, a row is softmaxed only when some foreground class can pass: with d = l_c - l_0
 * (l_0 the background logit), p_c = e^l_c / sum_j e^l_j <= e^l_c / (e^l_0 + e^l_c) = e^d / (1 + e^d),
 * which is <= thr when d <= log(thr / (1 - thr)); a row whose foreground logits all stay below
 * l_0 + log(thr / (1 - thr)) has no candidate, and its exponentials are never computed. On a trained SSD, where
 * background wins almost everywhere, that skips most rows. The result is exactly that of
 * softmaxRows + decodeBoxes + multiclassNms.
 */
export function postprocess(locP4: Float32Array, confPC: Float32Array, priorsCXCYWH: Float32Array, spec: SsdSpec, opts: PostprocessOptions = {}): Detections {
  const C = spec.labels.length;
  const P = priorsCXCYWH.length >> 2;
  if (locP4.length !== P * 4) throw new RangeError(`postprocess: ${locP4.length / 4} box regressions for ${P} default boxes`);
  if (confPC.length !== P * C) throw new RangeError(`postprocess: ${confPC.length} class scores for ${P} default boxes x ${C} classes`);
  const thr = opts.confidenceThreshold ?? spec.postprocess.confidenceThreshold;
  const fromLogits = opts.fromLogits ?? true;

  if (fromLogits && probScratch.length < P * C) probScratch = new Float32Array(P * C);
  if (boxScratch.length < P * 4) boxScratch = new Float32Array(P * 4);
  if (candScratch.length < P * C) candScratch = new Int32Array(P * C);
  if (rowScratch.length < C) rowScratch = new Float64Array(C);
  const probs = fromLogits ? probScratch.subarray(0, P * C) : confPC;
  const boxes = boxScratch.subarray(0, P * 4);
  const cand = candScratch;
  const e = rowScratch;
  const [v0, v1, v2, v3] = spec.variances;
  // torchvision clips before NMS (spec.postprocess.clipBeforeNms); the reference after (below).
  const clipFirst = spec.postprocess.clipBeforeNms === true;
  // The margin keeps rounding in exp/log from ever skipping a row whose probability could pass thr.
  const cut = thr > 0 && thr < 1 ? Math.log(thr / (1 - thr)) - 1e-6 : thr >= 1 ? Infinity : -Infinity;
  let n = 0;
  for (let p = 0, row = 0; p < P; p++, row += C) {
    const before = n;
    if (fromLogits) {
      // Live iff some foreground logit reaches l_0 + cut; the scan stops at the first one.
      const bar = confPC[row]! + cut;
      let c1 = 1;
      while (c1 < C && !(confPC[row + c1]! >= bar)) c1++;
      if (c1 === C) continue;
      let max = confPC[row]!;
      for (let c = 1; c < C; c++) if (confPC[row + c]! > max) max = confPC[row + c]!;
      let sum = 0;
      for (let c = 0; c < C; c++) {
        const v = Math.exp(confPC[row + c]! - max);
        e[c] = v;
        sum += v;
      }
      for (let c = 1; c < C; c++) {
        const prob = Math.fround(e[c]! / sum);
        probs[row + c] = prob;
        if (prob > thr) cand[n++] = c * P + p;
      }
    } else {
      for (let c = 1; c < C; c++) if (confPC[row + c]! > thr) cand[n++] = c * P + p;
    }
    if (n > before) {
      // decodeInto, inlined: this runs for thousands of rows per image.
      const o = p * 4;
      const dw = priorsCXCYWH[o + 2]!, dh = priorsCXCYWH[o + 3]!;
      const cx = priorsCXCYWH[o]! + locP4[o]! * v0 * dw;
      const cy = priorsCXCYWH[o + 1]! + locP4[o + 1]! * v1 * dh;
      const hw = (Math.exp(Math.min(locP4[o + 2]! * v2, MAX_LOG_SCALE)) * dw) / 2;
      const hh = (Math.exp(Math.min(locP4[o + 3]! * v3, MAX_LOG_SCALE)) * dh) / 2;
      boxes[o] = cx - hw;
      boxes[o + 1] = cy - hh;
      boxes[o + 2] = cx + hw;
      boxes[o + 3] = cy + hh;
      if (clipFirst) for (let j = o; j < o + 4; j++) boxes[j] = Math.min(1, Math.max(0, boxes[j]!));
    }
  }

  const det = nmsCandidates(boxes, probs, C, cand, n, {
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
