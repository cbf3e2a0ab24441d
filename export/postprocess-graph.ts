/**
 * Postprocessing inside the graph, after the raw heads (float32 loc [N, P, 4], conf [N, P, C] logits).
 * The outputs, their names and shapes are the model contract's (core/model-contract.ts OUTPUTS); the
 * functions here return the graph values that become them, by the contract's role names.
 *
 * decode: boxes as x1, y1, x2, y2 in input fractions (not clipped: the reference NMS runs on
 *   unclipped boxes, so a runtime doing NMS on these gets exactly core/postprocess's answer), and
 *   softmax scores. The default boxes are constants of the graph.
 * nms: SSD's detection output (SSD-SPEC "Inference") with ONNX NonMaxSuppression: per foreground class
 *   the top `topKPerClass` scores (Caffe applies its top-k before NMS, ONNX's max_output_boxes_per_class
 *   caps after it, so the graph masks all but each class's top k first), scores > threshold, IoU > 0.45
 *   suppressed; then the best keepTopK over all classes, padded (boxes clipped to [0, 1]; padding rows
 *   have score 0, class 0 and a zero box).
 * Only ops TensorRT's ONNX parser supports natively are used (no Mod: TensorRT < 8.6 lacks it).
 */
import { MAX_LOG_SCALE } from '../core/box-coding.js';
import { defaultBoxes } from '../core/default-boxes.js';
import type { OutputRole } from '../core/model-contract.js';
import { numClasses, type SsdSpec } from '../core/specs.js';
import type { OnnxGraph } from './onnx-builder.js';

/** Graph values of the decode outputs, by contract role. */
export type DecodedOutputs = Record<OutputRole<'decode'>, string>;
/** Graph values of the nms outputs, by contract role, and the K they were padded to. */
export type NmsOutputs = Record<OutputRole<'nms'>, string> & { keepTopK: number };

function slice(g: OnnxGraph, x: string, axis: number, start: number, end: number, hint: string): string {
  return g.op('Slice', [x, g.int64s(`${hint}_starts`, [start]), g.int64s(`${hint}_ends`, [end]), g.int64s(`${hint}_axes`, [axis])], {}, hint);
}

export function emitDecode(g: OnnxGraph, spec: SsdSpec, loc: string, conf: string): DecodedOutputs {
  const priors = defaultBoxes(spec);
  const P = priors.length / 4;
  const priorsXY = new Float32Array(P * 2);
  const priorsWH = new Float32Array(P * 2);
  for (let p = 0; p < P; p++) {
    priorsXY[2 * p] = priors[4 * p]!;
    priorsXY[2 * p + 1] = priors[4 * p + 1]!;
    priorsWH[2 * p] = priors[4 * p + 2]!;
    priorsWH[2 * p + 1] = priors[4 * p + 3]!;
  }
  const [v0, v1, v2, v3] = spec.variances;
  const pXY = g.floats('priors_cxcy', [1, P, 2], priorsXY);
  const pWH = g.floats('priors_wh', [1, P, 2], priorsWH);
  const locXY = slice(g, loc, 2, 0, 2, 'loc_xy');
  const locWH = slice(g, loc, 2, 2, 4, 'loc_wh');
  // Same operation order as core/box-coding decodeInto: (t * v) * d + c, and exp(min(t * v, max)) * d / 2.
  const centre = g.op('Add', [g.op('Mul', [g.op('Mul', [locXY, g.floats('var_xy', [2], [v0, v1])]), pWH]), pXY], {}, 'box_centre');
  const logScale = g.op('Min', [g.op('Mul', [locWH, g.floats('var_wh', [2], [v2, v3])]), g.floats('max_log_scale', [], [MAX_LOG_SCALE])], {}, 'box_log_scale');
  const half = g.op('Mul', [g.op('Mul', [g.op('Exp', [logScale]), pWH]), g.floats('half', [], [0.5])], {}, 'box_half_size');
  const x1y1 = g.op('Sub', [centre, half], {}, 'box_x1y1');
  const x2y2 = g.op('Add', [centre, half], {}, 'box_x2y2');
  let boxes = g.op('Concat', [x1y1, x2y2], { axis: 2 }, 'boxes_xyxy');
  // torchvision's convention (spec.postprocess.clipBeforeNms): NMS sees boxes clipped to the image.
  if (spec.postprocess.clipBeforeNms) boxes = g.op('Clip', [boxes, g.floats('decode_clip_min', [], [0]), g.floats('decode_clip_max', [], [1])], {}, 'boxes_xyxy_clipped');
  const scores = g.op('Softmax', [conf], { axis: 2 }, 'scores_softmax');
  return { boxes, scores };
}

export function emitNms(g: OnnxGraph, spec: SsdSpec, boxes: string, scores: string, keepTopK: number): NmsOutputs {
  const P = defaultBoxes(spec).length / 4;
  const C = numClasses(spec);
  const pp = spec.postprocess;
  const scoresNCP = g.op('Transpose', [scores], { perm: [0, 2, 1] }, 'scores_ncp');
  const fg = slice(g, scoresNCP, 1, 1, C, 'scores_fg');
  let candidates = fg;
  const topKPerClass = Math.min(pp.topKPerClass, P);
  if (topKPerClass < P) {
    const [values] = g.opN('TopK', [fg, g.int64s('top_k_per_class', [topKPerClass])], 2, { axis: 2, largest: 1, sorted: 1 }, 'class_topk');
    const kth = slice(g, values!, 2, topKPerClass - 1, topKPerClass, 'class_kth_score');
    const below = g.op('Less', [fg, kth], {}, 'below_class_topk');
    candidates = g.op('Where', [below, g.floats('zero', [], [0]), fg], {}, 'scores_candidates');
  }
  const selected = g.op('NonMaxSuppression', [
    boxes, candidates,
    g.int64s('max_output_boxes_per_class', [topKPerClass], []),
    g.floats('iou_threshold', [], [pp.nmsThreshold]),
    g.floats('score_threshold', [], [pp.confidenceThreshold]),
  ], { center_point_box: 0 }, 'nms_selected');
  // Kept (batch, class, box) triples back into a dense [N, C-1, P] score map, zero elsewhere, so that a
  // per-image TopK over classes x boxes gives the final ranking with static shapes.
  const keptScores = g.op('GatherND', [candidates, selected], {}, 'kept_scores');
  const zeros = g.op('Mul', [candidates, g.floats('zero_f', [], [0])], {}, 'zeros_ncp');
  const dense = g.op('ScatterND', [zeros, selected, keptScores], {}, 'kept_dense');
  const flat = g.op('Reshape', [dense, g.int64s('flat_shape', [0, -1])], {}, 'kept_flat');
  const K = Math.min(keepTopK, (C - 1) * P);
  const [topScores, topIdx] = g.opN('TopK', [flat, g.int64s('keep_top_k', [K])], 2, { axis: 1, largest: 1, sorted: 1 }, 'keep_topk');
  const numPriors = g.int64s('num_priors', [P], []);
  const classIdx = g.op('Div', [topIdx!, numPriors], {}, 'det_class_index');
  // boxIdx = topIdx - classIdx * P (Mod is not parsed by TensorRT before 8.6).
  const boxIdx = g.op('Sub', [topIdx!, g.op('Mul', [classIdx, numPriors])], {}, 'det_box_index');
  const valid = g.op('Greater', [topScores!, g.floats('zero_s', [], [0])], {}, 'det_valid');
  const validF = g.op('Cast', [valid], { to: 1 }, 'det_valid_f');
  const numDetections = g.op('Cast', [g.op('ReduceSum', [validF, g.int64s('sum_axes', [1])], { keepdims: 0 })], { to: 6 }, 'num_det');
  const gatherIdx = g.op('Expand', [g.op('Unsqueeze', [boxIdx, g.int64s('unsq_axes', [2])]), g.int64s('expand4', [1, 1, 4])], {}, 'det_box_gather_index');
  const rawBoxes = g.op('GatherElements', [boxes, gatherIdx], { axis: 1 }, 'det_boxes_raw');
  const clipped = g.op('Clip', [rawBoxes, g.floats('clip_min', [], [0]), g.floats('clip_max', [], [1])], {}, 'det_boxes_clipped');
  const detBoxes = g.op('Mul', [clipped, g.op('Unsqueeze', [validF, g.int64s('unsq_axes_v', [2])])], {}, 'det_boxes');
  const classes1 = g.op('Add', [classIdx, g.int64s('one', [1], [])], {}, 'det_class_1');
  const detClasses = g.op('Cast', [g.op('Mul', [classes1, g.op('Cast', [valid], { to: 7 })])], { to: 6 }, 'det_classes');
  return { numDetections, boxes: detBoxes, scores: topScores!, classes: detClasses, keepTopK: K };
}
