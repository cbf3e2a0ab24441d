/**
 * Non-maximum suppression and SSD's per-class detection output (SSD-SPEC "Inference"): per foreground
 * class keep scores > 0.01, take the top 400 by score, suppress every box whose Jaccard overlap with a
 * higher-scored kept box is > 0.45, then keep the 200 best over all classes.
 *
 * Ordering is total and deterministic: score descending, ties by lower class id, then lower box index.
 * Sorting packs (score bits, index) into one exact float64 key and sorts a Float64Array natively, which
 * is many times faster than sorting with a comparator.
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

let keptBoxes = new Float64Array(512 * 5);

/**
 * Greedy NMS over `order` (already sorted by score), writing kept indices to `out` in score order.
 * A box is suppressed when its IoU with an already kept box is > iouThreshold. The kept boxes are copied
 * side by side (x1, y1, x2, y2, area) so the inner loop reads memory sequentially.
 */
function greedy(boxesXYXY: Float32Array, order: Int32Array, n: number, iouThreshold: number, out: Int32Array, outAt: number): number {
  if (keptBoxes.length < n * 5) keptBoxes = new Float64Array(Math.max(n * 5, keptBoxes.length * 2));
  const kb = keptBoxes;
  let kept = 0;
  for (let i = 0; i < n; i++) {
    const b = order[i]! * 4;
    const x1 = boxesXYXY[b]!, y1 = boxesXYXY[b + 1]!, x2 = boxesXYXY[b + 2]!, y2 = boxesXYXY[b + 3]!;
    const area = Math.max(0, x2 - x1) * Math.max(0, y2 - y1);
    let keep = true;
    for (let j = 0, q = 0; j < kept; j++, q += 5) {
      const iw = (x2 < kb[q + 2]! ? x2 : kb[q + 2]!) - (x1 > kb[q]! ? x1 : kb[q]!);
      if (iw <= 0) continue;
      const ih = (y2 < kb[q + 3]! ? y2 : kb[q + 3]!) - (y1 > kb[q + 1]! ? y1 : kb[q + 1]!);
      if (ih <= 0) continue;
      const inter = iw * ih;
      const union = area + kb[q + 4]! - inter;
      if (union > 0 && inter / union > iouThreshold) {
        keep = false;
        break;
      }
    }
    if (keep) {
      out[outAt + kept] = order[i]!;
      const q = kept * 5;
      kb[q] = x1;
      kb[q + 1] = y1;
      kb[q + 2] = x2;
      kb[q + 3] = y2;
      kb[q + 4] = area;
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

let candScratch = new Int32Array(0);
let keptIdx = new Int32Array(0);
let keptCls = new Int32Array(0);
let keptNext = new Int32Array(0);
let keptGeom = new Float64Array(0);
const POS_BITS = 2 ** 22;

/**
 * SSD detection output over P boxes and C classes (scoresPC row-major [P * C], probabilities).
 * Class 0 (background) is skipped. Returns detections sorted by score descending (ties: lower class id,
 * then lower box index).
 */
export function multiclassNms(boxesXYXY: Float32Array, scoresPC: Float32Array, numClasses: number, opts: MulticlassNmsOptions = {}): Detections {
  const thr = opts.confidenceThreshold ?? DEFAULT_POSTPROCESS.confidenceThreshold;
  const C = numClasses;
  const P = boxesXYXY.length >> 2;
  if (scoresPC.length !== P * C) throw new RangeError(`multiclassNms: ${scoresPC.length} scores for ${P} boxes x ${C} classes`);
  if (candScratch.length < P * C) candScratch = new Int32Array(P * C);
  const cand = candScratch;
  let n = 0;
  // Row-major scan: one pass over memory (a class-major scan would stride through the matrix C times).
  for (let p = 0, row = 0; p < P; p++, row += C) {
    for (let c = 1; c < C; c++) if (scoresPC[row + c]! > thr) cand[n++] = c * P + p;
  }
  return nmsCandidates(boxesXYXY, scoresPC, C, cand, n, opts);
}

/**
 * The detection output given its candidates: `candidates[0..n)` are positions c * P + p (class c, box p)
 * whose score is above the confidence threshold, in any order. Only the candidates' scores and boxes are
 * read, so a caller that found them itself (postprocess) need not fill the rest of scoresPC / boxesXYXY.
 *
 * Rather than running NMS class by class and merging, the candidates are visited once in the final
 * order (score desc, class asc, box asc), each class keeping its own NMS state and its own top-k count;
 * the walk stops as soon as keepTopK boxes are kept, because every later candidate ranks below all of
 * them. That is exactly per-class NMS followed by a global top-k, but the candidates come off a binary
 * heap only as far as the walk goes, and most low-score ones are never sorted or compared.
 */
export function nmsCandidates(
  boxesXYXY: Float32Array, scoresPC: Float32Array, numClasses: number, candidates: Int32Array, n: number, opts: MulticlassNmsOptions = {},
): Detections {
  const thr = opts.confidenceThreshold ?? DEFAULT_POSTPROCESS.confidenceThreshold;
  const topK = opts.topKPerClass ?? DEFAULT_POSTPROCESS.topKPerClass;
  const nmsThr = opts.nmsThreshold ?? DEFAULT_POSTPROCESS.nmsThreshold;
  const keepTopK = opts.keepTopK ?? DEFAULT_POSTPROCESS.keepTopK;
  const C = numClasses;
  const P = boxesXYXY.length >> 2;

  // Fast path: non-negative scores (threshold >= 0) and positions < 2^22 pack with the score's float32
  // bits into one exact float64 key; otherwise a comparator sort orders the positions.
  const packed = thr >= 0 && P * C < POS_BITS;
  const heap = packed ? keys(n) : undefined;
  let order: Int32Array | undefined;
  let size = n;
  if (heap) {
    for (let i = 0; i < n; i++) {
      const pos = candidates[i]!;
      const c = (pos / P) | 0;
      f32[0] = scoresPC[(pos - c * P) * C + c]!;
      heap[i] = u32[0]! * POS_BITS + (POS_BITS - 1 - pos);
    }
    for (let i = (size >> 1) - 1; i >= 0; i--) siftDown(heap, i, size);
  } else {
    const scoreAt = (pos: number): number => {
      const c = (pos / P) | 0;
      return scoresPC[(pos - c * P) * C + c]!;
    };
    order = Int32Array.from(Array.from(candidates.subarray(0, n)).sort((a, b) => scoreAt(b) - scoreAt(a) || a - b));
  }

  const cap = Math.max(0, Math.min(keepTopK, n));
  if (keptIdx.length < cap) {
    keptIdx = new Int32Array(cap);
    keptCls = new Int32Array(cap);
    keptNext = new Int32Array(cap);
    keptGeom = new Float64Array(cap * 5);
  }
  const head = new Int32Array(C).fill(-1);
  const seen = new Int32Array(C);
  let kept = 0;
  for (let i = 0; i < n && kept < cap; i++) {
    let pos: number;
    if (heap) {
      const top = heap[0]!;
      size--;
      heap[0] = heap[size]!;
      siftDown(heap, 0, size);
      pos = POS_BITS - 1 - (top % POS_BITS);
    } else {
      pos = order![i]!;
    }
    const c = (pos / P) | 0;
    const p = pos - c * P;
    if (seen[c]! >= topK) continue;
    seen[c]!++;
    const b = p * 4;
    const x1 = boxesXYXY[b]!, y1 = boxesXYXY[b + 1]!, x2 = boxesXYXY[b + 2]!, y2 = boxesXYXY[b + 3]!;
    const area = Math.max(0, x2 - x1) * Math.max(0, y2 - y1);
    let keep = true;
    for (let k = head[c]!; k >= 0; k = keptNext[k]!) {
      const q = k * 5;
      const iw = (x2 < keptGeom[q + 2]! ? x2 : keptGeom[q + 2]!) - (x1 > keptGeom[q]! ? x1 : keptGeom[q]!);
      if (iw <= 0) continue;
      const ih = (y2 < keptGeom[q + 3]! ? y2 : keptGeom[q + 3]!) - (y1 > keptGeom[q + 1]! ? y1 : keptGeom[q + 1]!);
      if (ih <= 0) continue;
      const inter = iw * ih;
      const union = area + keptGeom[q + 4]! - inter;
      if (union > 0 && inter / union > nmsThr) {
        keep = false;
        break;
      }
    }
    if (!keep) continue;
    const q = kept * 5;
    keptGeom[q] = x1;
    keptGeom[q + 1] = y1;
    keptGeom[q + 2] = x2;
    keptGeom[q + 3] = y2;
    keptGeom[q + 4] = area;
    keptIdx[kept] = p;
    keptCls[kept] = c;
    keptNext[kept] = head[c]!;
    head[c] = kept;
    kept++;
  }

  const det: Detections = { count: kept, boxesXYXY: new Float32Array(kept * 4), scores: new Float32Array(kept), classIds: new Int32Array(kept) };
  for (let r = 0; r < kept; r++) {
    const p = keptIdx[r]!;
    const c = keptCls[r]!;
    det.scores[r] = scoresPC[p * C + c]!;
    det.classIds[r] = c;
    det.boxesXYXY[r * 4] = boxesXYXY[p * 4]!;
    det.boxesXYXY[r * 4 + 1] = boxesXYXY[p * 4 + 1]!;
    det.boxesXYXY[r * 4 + 2] = boxesXYXY[p * 4 + 2]!;
    det.boxesXYXY[r * 4 + 3] = boxesXYXY[p * 4 + 3]!;
  }
  return det;
}

/** Max-heap sift-down on heap[0..size). */
function siftDown(heap: Float64Array, at: number, size: number): void {
  const v = heap[at]!;
  let i = at;
  for (;;) {
    let child = 2 * i + 1;
    if (child >= size) break;
    if (child + 1 < size && heap[child + 1]! > heap[child]!) child++;
    if (heap[child]! <= v) break;
    heap[i] = heap[child]!;
    i = child;
  }
  heap[i] = v;
}
