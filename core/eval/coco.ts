import { SsdError } from '../errors.js';
import type { Dataset } from '../datasets/types.js';
import type { DetectionAnnotationXYXY } from '../model-contract.js';

/**
 * COCO bounding-box AP/AR, step for step as pycocotools' COCOeval (evaluate, accumulate,
 * summarize) with its default parameters, so the 12 numbers agree with it:
 * - IoU thresholds 0.50:0.05:0.95 and recall points 0:0.01:1, both as numpy's linspace computes them;
 * - area ranges all [0, 1e10], small [0, 32^2], medium [32^2, 96^2], large [96^2, 1e10] on the
 *   ground truth's `area` field (w*h when absent) and on the detection's w*h;
 * - per image and class the detections are sorted by score (stable) and cut to 100; each is matched
 *   greedily to the best unmatched ground truth, non-ignored ones first; crowd ground truths use
 *   intersection / detection area, can take any number of detections, and are ignored, as are
 *   ground truths outside the area range; unmatched detections outside the range are ignored;
 * - precision is made monotone and sampled at the 101 recall points (the first detection reaching
 *   each); categories or ranges with no non-ignored ground truth are -1 and left out of the means.
 * Boxes are x1,y1,x2,y2 (converted from COCO's x,y,w,h by addition; widths are x2 - x1, no +1).
 * A VOC "difficult" object counts as ignored (like a crowd, but with the ordinary IoU).
 */

export interface CocoEvalResult {
  metric: 'coco';
  /** AP@[.50:.95], all areas, 100 detections (= stats[0]). */
  map: number;
  /** AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl; -1 where undefined. */
  stats: number[];
  /** AP@[.50:.95] per class name (all areas, 100 detections); -1 for a class with no ground truth. */
  ap: Record<string, number>;
  /** AP@.50 per class name. */
  ap50: Record<string, number>;
}

export const COCO_STAT_NAMES = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm', 'ARl'] as const;

/** numpy.linspace(start, stop, num): i * step + start, the last one set to stop. */
function linspace(start: number, stop: number, num: number): number[] {
  const step = (stop - start) / (num - 1);
  const out = Array.from({ length: num }, (_, i) => i * step + start);
  out[num - 1] = stop;
  return out;
}

export const COCO_IOU_THRESHOLDS = linspace(0.5, 0.95, Math.round((0.95 - 0.5) / 0.05) + 1);
export const COCO_RECALL_THRESHOLDS = linspace(0, 1, Math.round(1 / 0.01) + 1);
export const COCO_MAX_DETS = [1, 10, 100] as const;
export const COCO_AREA_RANGES: readonly (readonly [number, number])[] = [
  [0, 1e5 ** 2],
  [0, 32 ** 2],
  [32 ** 2, 96 ** 2],
  [96 ** 2, 1e5 ** 2],
];

const SPACING_1 = 2.220446049250313e-16; // numpy.spacing(1)

interface GtSet {
  boxesXYWH: number[];
  area: number[];
  crowd: boolean[];
  ignore: boolean[];
  id: number[];
}

interface DtSet {
  boxesXYWH: number[];
  area: number[];
  score: number[];
}

/** Per image, class and area range: what accumulate() needs of evaluateImg(). */
interface ImgEval {
  scores: number[];
  /** T x D: matched to a ground truth whose id is non-zero (pycocotools tests the id's truth). */
  matched: Uint8Array;
  /** T x D */
  ignored: Uint8Array;
  /** Non-ignored ground truths. */
  numPositives: number;
}

function compareIds(ids: string[]): string[] {
  const numeric = ids.every((id) => /^-?\d+$/.test(id));
  return [...ids].sort((a, b) => (numeric ? Number(a) - Number(b) : a < b ? -1 : a > b ? 1 : 0));
}

/** pycocotools' bbIou: IoU of each detection with each ground truth, crowd ones over the detection's area. */
function bboxIou(dt: DtSet, nd: number, gt: GtSet): Float64Array {
  const ng = gt.crowd.length;
  const out = new Float64Array(nd * ng);
  for (let g = 0; g < ng; g++) {
    const gx = gt.boxesXYWH[4 * g]!;
    const gy = gt.boxesXYWH[4 * g + 1]!;
    const gw = gt.boxesXYWH[4 * g + 2]!;
    const gh = gt.boxesXYWH[4 * g + 3]!;
    const ga = gw * gh;
    for (let d = 0; d < nd; d++) {
      const dx = dt.boxesXYWH[4 * d]!;
      const dy = dt.boxesXYWH[4 * d + 1]!;
      const dw = dt.boxesXYWH[4 * d + 2]!;
      const dh = dt.boxesXYWH[4 * d + 3]!;
      const da = dw * dh;
      const w = Math.min(dw + dx, gw + gx) - Math.max(dx, gx);
      if (w <= 0) continue;
      const h = Math.min(dh + dy, gh + gy) - Math.max(dy, gy);
      if (h <= 0) continue;
      const i = w * h;
      const u = gt.crowd[g] ? da : da + ga - i;
      out[d * ng + g] = i / u;
    }
  }
  return out;
}

function evaluateImg(gt: GtSet, dt: DtSet, nd: number, ious: Float64Array, range: readonly [number, number]): ImgEval {
  const T = COCO_IOU_THRESHOLDS.length;
  const ng = gt.crowd.length;
  const [lo, hi] = range;
  const gIgnore = gt.area.map((a, g) => gt.ignore[g]! || a < lo || a > hi);
  // Non-ignored ground truths first, stable.
  const order = [...Array(ng).keys()].sort((a, b) => Number(gIgnore[a]) - Number(gIgnore[b]));
  const igSorted = order.map((g) => gIgnore[g]!);
  const matched = new Uint8Array(T * nd);
  const ignored = new Uint8Array(T * nd);
  const dtmZero = new Uint8Array(T * nd).fill(1);
  const gtTaken = new Uint8Array(T * ng);
  if (ng > 0 && nd > 0) {
    for (let t = 0; t < T; t++) {
      for (let d = 0; d < nd; d++) {
        let iou = Math.min(COCO_IOU_THRESHOLDS[t]!, 1 - 1e-10);
        let m = -1;
        for (let gi = 0; gi < ng; gi++) {
          const g = order[gi]!;
          if (gtTaken[t * ng + gi] && !gt.crowd[g]) continue;
          if (m > -1 && !igSorted[m] && igSorted[gi]) break;
          const v = ious[d * ng + g]!;
          if (v < iou) continue;
          iou = v;
          m = gi;
        }
        if (m === -1) continue;
        ignored[t * nd + d] = igSorted[m] ? 1 : 0;
        const id = gt.id[order[m]!]!;
        matched[t * nd + d] = id !== 0 ? 1 : 0;
        dtmZero[t * nd + d] = id === 0 ? 1 : 0;
        gtTaken[t * ng + m] = 1;
      }
    }
  }
  for (let d = 0; d < nd; d++) {
    const a = dt.area[d]!;
    if (a < lo || a > hi) for (let t = 0; t < T; t++) if (dtmZero[t * nd + d]) ignored[t * nd + d] = 1;
  }
  return { scores: dt.score.slice(0, nd), matched, ignored, numPositives: igSorted.filter((x) => !x).length };
}

export function evalCoco(gt: Dataset, dets: readonly DetectionAnnotationXYXY[]): CocoEvalResult {
  const K = gt.labels.length - 1;
  const T = COCO_IOU_THRESHOLDS.length;
  const R = COCO_RECALL_THRESHOLDS.length;
  const A = COCO_AREA_RANGES.length;
  const M = COCO_MAX_DETS.length;
  const maxDetLast = COCO_MAX_DETS[M - 1]!;
  const imgIds = compareIds(gt.samples.map((s) => s.id));
  const imgIndex = new Map(imgIds.map((id, i) => [id, i]));
  if (imgIndex.size !== imgIds.length) throw new SsdError(`${gt.name}: image ids are not unique`);
  const I = imgIds.length;

  // Ground truths and detections by (image, class), in file order.
  const gts = new Map<number, GtSet>();
  const dts = new Map<number, DtSet>();
  const key = (i: number, k: number): number => i * K + k;
  let nextGtId = 1;
  for (const s of gt.samples) {
    const i = imgIndex.get(s.id)!;
    for (const o of s.objects) {
      const k = o.classId - 1;
      const gid = o.annotationId ?? nextGtId;
      nextGtId++;
      let set = gts.get(key(i, k));
      if (!set) gts.set(key(i, k), (set = { boxesXYWH: [], area: [], crowd: [], ignore: [], id: [] }));
      const [x1, y1, x2, y2] = o.box;
      const w = x2 - x1;
      const h = y2 - y1;
      set.boxesXYWH.push(x1, y1, w, h);
      set.area.push(o.area ?? w * h);
      set.crowd.push(o.iscrowd === true);
      set.ignore.push(o.iscrowd === true || o.difficult);
      set.id.push(gid);
    }
  }
  for (const d of dets) {
    const i = imgIndex.get(d.imageId);
    if (i === undefined) throw new SsdError(`detection on image "${d.imageId}", which is not in the ground truth (${gt.name})`);
    if (!Number.isInteger(d.classId) || d.classId < 1 || d.classId > K) {
      throw new SsdError(`detection of class id ${d.classId}, which is not in the label map (1..${K})`);
    }
    const k = d.classId - 1;
    let set = dts.get(key(i, k));
    if (!set) dts.set(key(i, k), (set = { boxesXYWH: [], area: [], score: [] }));
    const [x1, y1, x2, y2] = d.box;
    set.boxesXYWH.push(x1, y1, x2 - x1, y2 - y1);
    set.area.push((x2 - x1) * (y2 - y1));
    set.score.push(d.score);
  }

  // evaluate(): per (image, class) the sorted, truncated detections and their IoUs; per area range the matches.
  const emptyGt: GtSet = { boxesXYWH: [], area: [], crowd: [], ignore: [], id: [] };
  const evals = new Map<number, ImgEval[]>();
  for (const k0 of new Set([...gts.keys(), ...dts.keys()])) {
    const g = gts.get(k0) ?? emptyGt;
    const raw = dts.get(k0);
    let dt: DtSet = { boxesXYWH: [], area: [], score: [] };
    if (raw) {
      const order = [...raw.score.keys()].sort((a, b) => raw.score[b]! - raw.score[a]!).slice(0, maxDetLast);
      dt = {
        boxesXYWH: order.flatMap((d) => raw.boxesXYWH.slice(4 * d, 4 * d + 4)),
        area: order.map((d) => raw.area[d]!),
        score: order.map((d) => raw.score[d]!),
      };
    }
    const nd = dt.score.length;
    const ious = bboxIou(dt, nd, g);
    evals.set(k0, COCO_AREA_RANGES.map((range) => evaluateImg(g, dt, nd, ious, range)));
  }

  // accumulate()
  const precision = new Float64Array(T * R * K * A * M).fill(-1);
  const recall = new Float64Array(T * K * A * M).fill(-1);
  const pIdx = (t: number, r: number, k: number, a: number, m: number): number => (((t * R + r) * K + k) * A + a) * M + m;
  const rIdx = (t: number, k: number, a: number, m: number): number => ((t * K + k) * A + a) * M + m;
  for (let k = 0; k < K; k++) {
    const E: ImgEval[][] = [];
    for (let i = 0; i < I; i++) {
      const e = evals.get(key(i, k));
      if (e) E.push(e);
    }
    if (E.length === 0) continue;
    for (let a = 0; a < A; a++) {
      // Every image's detections laid end to end (image order, then score order within the image);
      // rank = position within its image, which decides whether a maxDets cut keeps it.
      let total = 0;
      let npig = 0;
      for (const per of E) {
        total += per[a]!.scores.length;
        npig += per[a]!.numPositives;
      }
      if (npig === 0) continue;
      const scores = new Float64Array(total);
      const rank = new Int32Array(total);
      const matchedTP = new Uint8Array(T * total);
      const ignoredTP = new Uint8Array(T * total);
      let pos = 0;
      for (const per of E) {
        const e = per[a]!;
        const D = e.scores.length;
        for (let d = 0; d < D; d++) {
          scores[pos + d] = e.scores[d]!;
          rank[pos + d] = d;
        }
        for (let t = 0; t < T; t++) {
          for (let d = 0; d < D; d++) {
            matchedTP[t * total + pos + d] = e.matched[t * D + d]!;
            ignoredTP[t * total + pos + d] = e.ignored[t * D + d]!;
          }
        }
        pos += D;
      }
      // One stable sort by descending score serves every maxDets: dropping the entries a cut removes
      // leaves exactly the order a stable sort of the shorter list would give.
      const order = [...Array(total).keys()].sort((x, y) => scores[y]! - scores[x]!);
      const rc = new Float64Array(total);
      const pr = new Float64Array(total);
      for (let m = 0; m < M; m++) {
        const maxDet = COCO_MAX_DETS[m]!;
        for (let t = 0; t < T; t++) {
          let tp = 0;
          let fp = 0;
          let nd = 0;
          const base = t * total;
          for (let j = 0; j < total; j++) {
            const p = order[j]!;
            if (rank[p]! >= maxDet) continue;
            const isMatched = matchedTP[base + p] === 1;
            const isIgnored = ignoredTP[base + p] === 1;
            if (isMatched && !isIgnored) tp++;
            if (!isMatched && !isIgnored) fp++;
            rc[nd] = tp / npig;
            pr[nd] = tp / (fp + tp + SPACING_1);
            nd++;
          }
          recall[rIdx(t, k, a, m)] = nd > 0 ? rc[nd - 1]! : 0;
          for (let j = nd - 1; j > 0; j--) if (pr[j]! > pr[j - 1]!) pr[j - 1] = pr[j]!;
          // searchsorted(rc, recThrs, 'left'): the first detection whose recall reaches each point.
          let j = 0;
          for (let r = 0; r < R; r++) {
            const thr = COCO_RECALL_THRESHOLDS[r]!;
            while (j < nd && rc[j]! < thr) j++;
            // Past the last detection pycocotools stops filling and leaves zeros: the same.
            precision[pIdx(t, r, k, a, m)] = j < nd ? pr[j]! : 0;
          }
        }
      }
    }
  }

  // summarize()
  const meanDefined = (values: number[]): number => {
    let sum = 0;
    let n = 0;
    for (const v of values) {
      if (v > -1) {
        sum += v;
        n++;
      }
    }
    return n === 0 ? -1 : sum / n;
  };
  const areaIndex = { all: 0, small: 1, medium: 2, large: 3 } as const;
  const apOf = (iouThr: number | undefined, area: keyof typeof areaIndex, maxDets: number, ks: number[] = [...Array(K).keys()]): number => {
    const a = areaIndex[area];
    const m = (COCO_MAX_DETS as readonly number[]).indexOf(maxDets);
    const ts = iouThr === undefined ? [...Array(T).keys()] : COCO_IOU_THRESHOLDS.flatMap((v, t) => (v === iouThr ? [t] : []));
    const vals: number[] = [];
    for (const t of ts) for (let r = 0; r < R; r++) for (const k of ks) vals.push(precision[pIdx(t, r, k, a, m)]!);
    return meanDefined(vals);
  };
  const arOf = (area: keyof typeof areaIndex, maxDets: number): number => {
    const a = areaIndex[area];
    const m = (COCO_MAX_DETS as readonly number[]).indexOf(maxDets);
    const vals: number[] = [];
    for (let t = 0; t < T; t++) for (let k = 0; k < K; k++) vals.push(recall[rIdx(t, k, a, m)]!);
    return meanDefined(vals);
  };
  const stats = [
    apOf(undefined, 'all', 100),
    apOf(0.5, 'all', 100),
    apOf(0.75, 'all', 100),
    apOf(undefined, 'small', 100),
    apOf(undefined, 'medium', 100),
    apOf(undefined, 'large', 100),
    arOf('all', 1),
    arOf('all', 10),
    arOf('all', 100),
    arOf('small', 100),
    arOf('medium', 100),
    arOf('large', 100),
  ];
  const ap: Record<string, number> = {};
  const ap50: Record<string, number> = {};
  for (let k = 0; k < K; k++) {
    const name = gt.labels[k + 1]!;
    ap[name] = apOf(undefined, 'all', 100, [k]);
    ap50[name] = apOf(0.5, 'all', 100, [k]);
  }
  return { metric: 'coco', map: stats[0]!, stats, ap, ap50 };
}
