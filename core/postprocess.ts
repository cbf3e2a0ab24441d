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

/** Row-wise softmax of a [rows * C] matrix (numerically stable: the row max is subtracted first). */
export function softmaxRows(logits: Float32Array, C: number, out?: Float32Array): Float32Array {
  const res = out ?? new Float32Array(logits.length);
  if (logits.length % C !== 0) throw new RangeError(`softmaxRows: ${logits.length} values are not rows of ${C}`);
  for (let row = 0; row < logits.length; row += C) {
    let max = logits[row]!;
    for (let c = 1; c < C; c++) if (logits[row + c]! > max) max = logits[row + c]!;
    let sum = 0;
    for (let c = 0; c < C; c++) {
      const e = Math.exp(logits[row + c]! - max);
      res[row + c] = e;
      sum += e;
    }
    const inv = 1 / sum;
    for (let c = 0; c < C; c++) res[row + c] = res[row + c]! * inv;
  }
  return res;
}

let probScratch = new Float32Array(0);
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

  let probs = confPC;
  if (opts.fromLogits ?? true) {
    if (probScratch.length < P * C) probScratch = new Float32Array(P * C);
    probs = softmaxRows(confPC, C, probScratch.subarray(0, P * C));
  }

  // Decode only the boxes that some foreground class could keep; the others are never read by NMS.
  if (boxScratch.length < P * 4) boxScratch = new Float32Array(P * 4);
  const boxes = boxScratch.subarray(0, P * 4);
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
