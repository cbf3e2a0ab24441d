/**
 * Non-maximum suppression and SSD's per-class detection output (SSD-SPEC "Inference"): per foreground
 * class keep scores > 0.01, take the top 400 by score, suppress every box whose Jaccard overlap with a
 * higher-scored kept box is > 0.45, then keep the 200 best over all classes.
 *
 * Ordering is total and deterministic: score descending, ties by lower class id, then lower box index.
 * Sorting packs (score bits, index) into one float64 key and sorts a Float64Array natively, which is
 * many times faster than sorting with a comparator.
 */
import { DEFAULT_POSTPROCESS } from './specs.js';

export interface Detections {
  count: number;
  /** count * 4, xyxy, in the coordinates of the input boxes. */
  boxesXYXY: Float32Array;
  scores: Float32Array;
  /** Class id per detection (1..C-1; 0 = background never appears). */
  classIds: Int32Array;
}

export interface MulticlassNmsOptions {
  confidenceThreshold?: number;
  topKPerClass?: number;
  nmsThreshold?: number;
  keepTopK?: number;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const INDEX_BITS = 2 ** 21;

/** A uint32 whose order is the order of the float32 value (negatives flipped, as in radix sorts). */
function orderedBits(x: number): number {
  f32[0] = x + 0; // -0 + 0 = +0: the two zeros must tie
  const b = u32[0]!;
  return b & 0x80000000 ? ~b >>> 0 : (b | 0x80000000) >>> 0;
}

function valueOfBits(bits: number): number {
  u32[0] = bits & 0x80000000 ? bits & 0x7fffffff : ~bits >>> 0;
  return f32[0]!;
}

let keyScratch = new Float64Array(1024);
function keys(n: number): Float64Array {
  if (keyScratch.length < n) keyScratch = new Float64Array(Math.max(n, keyScratch.length * 2));
  return keyScratch;
}

/**
 * Sorts `n` candidate indices (out of `candidates`) by score descending, lower index first on ties,
 * and writes at most `limit` of them to `out`; returns how many. NaN scores are dropped.
 */
function sortCandidates(candidates: ArrayLike<number>, n: number, scores: ArrayLike<number>, stride: number, offset: number, limit: number, out: Int32Array): number {
  const k = keys(n);
  let m = 0;
  let packable = true;
  for (let i = 0; i < n; i++) {
    const idx = candidates[i]!;
    const s = scores[idx * stride + offset]!;
    if (s !== s) continue;
    if (idx >= INDEX_BITS) packable = false;
    k[m++] = orderedBits(s) * INDEX_BITS + (INDEX_BITS - 1 - idx);
  }
  const take = Math.min(m, limit);
  if (packable) {
    const view = k.subarray(0, m);
    view.sort();
    for (let i = 0; i < take; i++) {
      const key = view[m - 1 - i]!;
      out[i] = INDEX_BITS - 1 - (key % INDEX_BITS);
    }
    return take;
  }
  // Very large inputs (> 2M boxes): fall back to a comparator sort.
  const idxs: number[] = [];
  for (let i = 0; i < n; i++) {
    const idx = candidates[i]!;
    const s = scores[idx * stride + offset]!;
    if (s === s) idxs.push(idx);
  }
  idxs.sort((a, b) => scores[b * stride + offset]! - scores[a * stride + offset]! || a - b);
  for (let i = 0; i < take; i++) out[i] = idxs[i]!;
  return take;
}

let keptArea = new Float64Array(512);

/**
 * Greedy NMS over `order` (already sorted by score), writing kept indices to `out` in score order.
 * A box is suppressed when its IoU with an already kept box is > iouThreshold.
 */
function greedy(boxesXYXY: ArrayLike<number>, order: Int32Array, n: number, iouThreshold: number, out: Int32Array, outAt: number): number {
  if (keptArea.length < n) keptArea = new Float64Array(Math.max(n, keptArea.length * 2));
  let kept = 0;
  for (let i = 0; i < n; i++) {
    const b = order[i]! * 4;
    const x1 = boxesXYXY[b]!, y1 = boxesXYXY[b + 1]!, x2 = boxesXYXY[b + 2]!, y2 = boxesXYXY[b + 3]!;
    const area = Math.max(0, x2 - x1) * Math.max(0, y2 - y1);
    let keep = true;
    for (let j = 0; j < kept; j++) {
      const q = out[outAt + j]! * 4;
      const iw = Math.min(x2, boxesXYXY[q + 2]!) - Math.max(x1, boxesXYXY[q]!);
      if (iw <= 0) continue;
      const ih = Math.min(y2, boxesXYXY[q + 3]!) - Math.max(y1, boxesXYXY[q + 1]!);
      if (ih <= 0) continue;
      const inter = iw * ih;
      const union = area + keptArea[j]! - inter;
      if (union > 0 && inter / union > iouThreshold) {
        keep = false;
        break;
      }
    }
    if (keep) {
      out[outAt + kept] = order[i]!;
      keptArea[kept] = area;
      kept++;
    }
  }
  return kept;
}

/**
 * Single-class NMS: sorts `candidates` (indices into the boxes) by score, keeps the best `topK`
 * (all if omitted), and suppresses boxes with IoU > iouThreshold against a higher-scored kept box.
 * Returns the kept indices in score order (descending; ties by lower index).
 */
export function nms(boxesXYXY: Float32Array, scores: Float32Array, candidates: Int32Array | number[], iouThreshold: number, topK?: number): Int32Array {
  const n = candidates.length;
  const order = new Int32Array(n);
  const m = sortCandidates(candidates, n, scores, 1, 0, topK ?? n, order);
  const out = new Int32Array(m);
  const kept = greedy(boxesXYXY, order, m, iouThreshold, out, 0);
  return out.slice(0, kept);
}

let classScratch = new Int32Array(0);
let orderScratch = new Int32Array(0);
let keptScratch = new Int32Array(0);
let keptClassScratch = new Int32Array(0);

/**
 * SSD detection output over P boxes and C classes (scoresPC row-major [P * C], probabilities).
 * Class 0 (background) is skipped. Returns detections sorted by score descending.
 */
export function multiclassNms(boxesXYXY: Float32Array, scoresPC: Float32Array, numClasses: number, opts: MulticlassNmsOptions = {}): Detections {
  const thr = opts.confidenceThreshold ?? DEFAULT_POSTPROCESS.confidenceThreshold;
  const topK = opts.topKPerClass ?? DEFAULT_POSTPROCESS.topKPerClass;
  const nmsThr = opts.nmsThreshold ?? DEFAULT_POSTPROCESS.nmsThreshold;
  const keepTopK = opts.keepTopK ?? DEFAULT_POSTPROCESS.keepTopK;
  const C = numClasses;
  const P = boxesXYXY.length >> 2;
  if (scoresPC.length !== P * C) throw new RangeError(`multiclassNms: ${scoresPC.length} scores for ${P} boxes x ${C} classes`);

  // Candidates of each class, bucketed in one pass over the score matrix: class c at [c * P, c * P + count[c]).
  if (classScratch.length < P * C) classScratch = new Int32Array(P * C);
  const buckets = classScratch;
  const counts = new Int32Array(C);
  for (let p = 0, row = 0; p < P; p++, row += C) {
    for (let c = 1; c < C; c++) {
      if (scoresPC[row + c]! > thr) buckets[c * P + counts[c]!++] = p;
    }
  }

  const maxPerClass = Math.min(P, topK);
  if (orderScratch.length < maxPerClass) orderScratch = new Int32Array(maxPerClass);
  if (keptScratch.length < maxPerClass * C) {
    keptScratch = new Int32Array(maxPerClass * C);
    keptClassScratch = new Int32Array(maxPerClass * C);
  }
  let total = 0;
  for (let c = 1; c < C; c++) {
    const n = counts[c]!;
    if (n === 0) continue;
    const m = sortCandidates(buckets.subarray(c * P, c * P + n), n, scoresPC, C, c, topK, orderScratch);
    const kept = greedy(boxesXYXY, orderScratch, m, nmsThr, keptScratch, total);
    keptClassScratch.fill(c, total, total + kept);
    total += kept;
  }

  // Merge the classes: kept items are in (class asc, score desc) order, so their position breaks score ties.
  const k = keys(total);
  for (let i = 0; i < total; i++) {
    k[i] = orderedBits(scoresPC[keptScratch[i]! * C + keptClassScratch[i]!]!) * INDEX_BITS + (INDEX_BITS - 1 - i);
  }
  const view = k.subarray(0, total);
  view.sort();
  const count = Math.min(total, keepTopK);
  const det: Detections = { count, boxesXYXY: new Float32Array(count * 4), scores: new Float32Array(count), classIds: new Int32Array(count) };
  for (let r = 0; r < count; r++) {
    const key = view[total - 1 - r]!;
    const pos = INDEX_BITS - 1 - (key % INDEX_BITS);
    const p = keptScratch[pos]!;
    const c = keptClassScratch[pos]!;
    det.scores[r] = valueOfBits(Math.floor(key / INDEX_BITS));
    det.classIds[r] = c;
    det.boxesXYXY[r * 4] = boxesXYXY[p * 4]!;
    det.boxesXYXY[r * 4 + 1] = boxesXYXY[p * 4 + 1]!;
    det.boxesXYXY[r * 4 + 2] = boxesXYXY[p * 4 + 2]!;
    det.boxesXYXY[r * 4 + 3] = boxesXYXY[p * 4 + 3]!;
  }
  return det;
}
