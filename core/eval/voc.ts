import { SsdError } from '../errors.js';
import type { Dataset } from '../datasets/types.js';
import type { DetectionAnnotationXYXY } from '../model-contract.js';

/**
 * PASCAL VOC detection AP, computed as the VOC devkit (VOCevaldet.m) and py-faster-rcnn's voc_eval
 * do, so that numbers can be compared with published ones:
 * - boxes are inclusive pixel ranges, so widths, heights and intersections get the "+1";
 * - per class, detections are sorted by descending score (stable: ties keep file order, as Matlab's
 *   sort does) and each is matched to the ground truth of its image with the highest IoU; above the
 *   threshold it is a true positive if that ground truth is not yet taken, a false positive
 *   (duplicate) if it is, and neither if that ground truth is "difficult";
 * - recall is over the non-difficult ground truths;
 * - voc07: 11-point interpolated AP (max precision at recall >= 0, 0.1, ..., 1, the thresholds
 *   being k * 0.1 in floating point as numpy's arange gives them); voc12 (VOC2010+): the area under
 *   the monotone precision envelope at every recall change.
 * A class with no non-difficult ground truth has no defined AP (the devkit divides by zero there):
 * it is reported as -1 and left out of the mean.
 */

export type VocMetric = 'voc07' | 'voc12';

export interface VocEvalOptions {
  metric: VocMetric;
  /** IoU a detection needs to count (default 0.5). */
  iouThreshold?: number;
  /**
   * Match at exactly the threshold too (IoU >= t, as the Matlab devkit does) instead of IoU > t
   * (py-faster-rcnn's voc_eval, the default). Differs only when an IoU equals the threshold exactly.
   */
  inclusiveThreshold?: boolean;
}

export interface VocClassResult {
  ap: number;
  /** Non-difficult ground truths (the recall denominator). */
  gt: number;
  dets: number;
  tp: number;
  fp: number;
}

export interface VocEvalResult {
  metric: VocMetric;
  /** Mean AP over classes with ground truth; -1 when no class has any. */
  map: number;
  /** AP per class name (all classes but background); -1 where undefined. */
  ap: Record<string, number>;
  perClass: Record<string, VocClassResult>;
}

const EPS = 2.220446049250313e-16; // numpy's finfo(float64).eps, as voc_eval uses it

/** 11-point interpolated AP (VOC2007). */
export function vocAp07(rec: ArrayLike<number>, prec: ArrayLike<number>): number {
  let ap = 0;
  for (let k = 0; k <= 10; k++) {
    const t = k * 0.1;
    let p = 0;
    for (let i = 0; i < rec.length; i++) if (rec[i]! >= t && prec[i]! > p) p = prec[i]!;
    ap += p / 11;
  }
  return ap;
}

/** Area under the monotone precision envelope (VOC2010+). */
export function vocAp12(rec: ArrayLike<number>, prec: ArrayLike<number>): number {
  const n = rec.length;
  const mrec = new Float64Array(n + 2);
  const mpre = new Float64Array(n + 2);
  for (let i = 0; i < n; i++) {
    mrec[i + 1] = rec[i]!;
    mpre[i + 1] = prec[i]!;
  }
  mrec[n + 1] = 1;
  for (let i = n + 1; i > 0; i--) if (mpre[i]! > mpre[i - 1]!) mpre[i - 1] = mpre[i]!;
  let ap = 0;
  for (let i = 0; i <= n; i++) if (mrec[i + 1] !== mrec[i]) ap += (mrec[i + 1]! - mrec[i]!) * mpre[i + 1]!;
  return ap;
}

interface ImageGt {
  boxesXYXY: number[];
  difficult: boolean[];
  taken: boolean[];
}

export function evalVoc(gt: Dataset, dets: readonly DetectionAnnotationXYXY[], opts: VocEvalOptions): VocEvalResult {
  const thr = opts.iouThreshold ?? 0.5;
  const inclusive = opts.inclusiveThreshold ?? false;
  const numClasses = gt.labels.length;
  const imageIds = new Set(gt.samples.map((s) => s.id));
  for (const d of dets) {
    if (!imageIds.has(d.imageId)) throw new SsdError(`detection on image "${d.imageId}", which is not in the ground truth (${gt.name})`);
    if (!Number.isInteger(d.classId) || d.classId < 1 || d.classId >= numClasses) {
      throw new SsdError(`detection of class id ${d.classId}, which is not in the label map (1..${numClasses - 1})`);
    }
  }
  const detsByClass: DetectionAnnotationXYXY[][] = Array.from({ length: numClasses }, () => []);
  for (const d of dets) detsByClass[d.classId]!.push(d);

  const ap: Record<string, number> = {};
  const perClass: Record<string, VocClassResult> = {};
  let sum = 0;
  let defined = 0;
  for (let c = 1; c < numClasses; c++) {
    const recs = new Map<string, ImageGt>();
    let npos = 0;
    for (const s of gt.samples) {
      const r: ImageGt = { boxesXYXY: [], difficult: [], taken: [] };
      for (const o of s.objects) {
        if (o.classId !== c) continue;
        r.boxesXYXY.push(...o.box);
        r.difficult.push(o.difficult);
        r.taken.push(false);
        if (!o.difficult) npos++;
      }
      recs.set(s.id, r);
    }
    // Array.prototype.sort is stable: equal scores keep their input order.
    const sorted = [...detsByClass[c]!].sort((a, b) => b.score - a.score);
    const nd = sorted.length;
    const tp = new Float64Array(nd);
    const fp = new Float64Array(nd);
    for (let d = 0; d < nd; d++) {
      const det = sorted[d]!;
      const r = recs.get(det.imageId)!;
      const [bx1, by1, bx2, by2] = det.box;
      let ovmax = -Infinity;
      let jmax = -1;
      const g = r.boxesXYXY;
      for (let j = 0; j < r.taken.length; j++) {
        const gx1 = g[4 * j]!;
        const gy1 = g[4 * j + 1]!;
        const gx2 = g[4 * j + 2]!;
        const gy2 = g[4 * j + 3]!;
        const iw = Math.max(Math.min(bx2, gx2) - Math.max(bx1, gx1) + 1, 0);
        const ih = Math.max(Math.min(by2, gy2) - Math.max(by1, gy1) + 1, 0);
        const inters = iw * ih;
        const uni = (bx2 - bx1 + 1) * (by2 - by1 + 1) + (gx2 - gx1 + 1) * (gy2 - gy1 + 1) - inters;
        const ov = inters / uni;
        if (ov > ovmax) {
          ovmax = ov;
          jmax = j;
        }
      }
      if (jmax >= 0 && (inclusive ? ovmax >= thr : ovmax > thr)) {
        if (!r.difficult[jmax]) {
          if (!r.taken[jmax]) {
            tp[d] = 1;
            r.taken[jmax] = true;
          } else {
            fp[d] = 1;
          }
        }
      } else {
        fp[d] = 1;
      }
    }
    let ctp = 0;
    let cfp = 0;
    const rec = new Float64Array(nd);
    const prec = new Float64Array(nd);
    for (let d = 0; d < nd; d++) {
      ctp += tp[d]!;
      cfp += fp[d]!;
      rec[d] = ctp / npos;
      prec[d] = ctp / Math.max(ctp + cfp, EPS);
    }
    const name = gt.labels[c]!;
    const a = npos === 0 ? -1 : opts.metric === 'voc07' ? vocAp07(rec, prec) : vocAp12(rec, prec);
    ap[name] = a;
    perClass[name] = { ap: a, gt: npos, dets: nd, tp: ctp, fp: cfp };
    if (a >= 0) {
      sum += a;
      defined++;
    }
  }
  return { metric: opts.metric, map: defined === 0 ? -1 : sum / defined, ap, perClass };
}
