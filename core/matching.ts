/**
 * Matching of ground truth to default boxes (SSD-SPEC "Matching and loss").
 *
 * 1. Bipartite step: every ground truth gets a default box of its own, even below the threshold. It is
 *    done greedily as Caffe's MatchBBox (BIPARTITE) does: repeatedly take the highest remaining overlap
 *    among (unmatched ground truth, unclaimed default box) pairs and match that pair. So when two ground
 *    truths want the same default box, the one that overlaps it more gets it and the other takes its
 *    next best box; exact ties go to the lower ground-truth index, then the lower box index. (ssd.pytorch
 *    instead lets the later ground truth overwrite, which can leave the other one without any box.)
 *    A ground truth that overlaps no default box at all (degenerate, or outside the image) stays unmatched.
 * 2. Per-prediction step: every default box not claimed in step 1 whose best overlap is at least the
 *    threshold (0.5) is matched to the ground truth it overlaps most (ties: lower index). ">=" as in
 *    Caffe's MatchBBox (`overlap >= overlap_threshold`), ssd.pytorch and torchvision: an overlap of
 *    exactly 0.5 (a ground truth covering half of a default box that contains it) is a positive.
 */
import { encodeInto, type Variances } from './box-coding.js';
import { cxcywhToXYXY } from './box-coding.js';
import { iouMatrix } from './iou.js';

export interface MatchOptions {
  /** Overlap a default box needs (at least) in the per-prediction step; SSD-SPEC: 0.5, compared with >=. */
  threshold?: number;
  variances: Variances;
  /** The priors as xyxy, if the caller keeps them (saves one conversion per image). */
  priorsXYXY?: Float32Array;
}

export interface MatchResult {
  /** Encoded offsets of each prior to its ground truth (P * 4); zeros for background priors. */
  locTargets: Float32Array;
  /** Class per prior (P), 0 = background. */
  labels: Int32Array;
  /** Index of the matched ground truth per prior (P), -1 = none. */
  matchedGt: Int32Array;
  /** Overlap of each prior with its matched ground truth (P), 0 for background. */
  matchedIou: Float32Array;
  numPositive: number;
}

export const DEFAULT_MATCH_THRESHOLD = 0.5;

export function matchDefaultBoxes(gtXYXY: Float32Array, gtLabels: Int32Array, priorsCXCYWH: Float32Array, opts: MatchOptions): MatchResult {
  const threshold = opts.threshold ?? DEFAULT_MATCH_THRESHOLD;
  const P = priorsCXCYWH.length >> 2;
  const G = gtXYXY.length >> 2;
  if (gtXYXY.length % 4 !== 0) throw new RangeError(`matchDefaultBoxes: ground-truth array length ${gtXYXY.length} is not a multiple of 4`);
  if (gtLabels.length !== G) throw new RangeError(`matchDefaultBoxes: ${G} ground-truth boxes but ${gtLabels.length} labels`);
  for (let g = 0; g < G; g++) {
    if (!(gtLabels[g]! >= 1)) throw new RangeError(`matchDefaultBoxes: label ${gtLabels[g]} of ground truth ${g} is not a foreground class (>= 1)`);
  }
  const locTargets = new Float32Array(P * 4);
  const labels = new Int32Array(P);
  const matchedGt = new Int32Array(P).fill(-1);
  const matchedIou = new Float32Array(P);
  if (G === 0) return { locTargets, labels, matchedGt, matchedIou, numPositive: 0 };

  const priorsXYXY = opts.priorsXYXY ?? cxcywhToXYXY(priorsCXCYWH);
  const overlaps = iouMatrix(gtXYXY, priorsXYXY); // [G * P]

  // Step 1: greedy bipartite matching. bestPrior[g] is g's best still-unclaimed prior.
  const claimed = new Uint8Array(P);
  const bestPrior = new Int32Array(G);
  const bestOverlap = new Float64Array(G);
  const gtDone = new Uint8Array(G);
  const rescan = (g: number): void => {
    let best = -1;
    let bestV = 0; // only overlaps > 0 count (Caffe keeps overlaps > 1e-6 only)
    const row = g * P;
    for (let p = 0; p < P; p++) {
      const v = overlaps[row + p]!;
      if (v > bestV && claimed[p] === 0) {
        bestV = v;
        best = p;
      }
    }
    bestPrior[g] = best;
    bestOverlap[g] = bestV;
  };
  for (let g = 0; g < G; g++) rescan(g);
  for (let round = 0; round < G; round++) {
    let pick = -1;
    for (let g = 0; g < G; g++) {
      if (gtDone[g] === 0 && bestPrior[g]! >= 0 && (pick < 0 || bestOverlap[g]! > bestOverlap[pick]!)) pick = g;
    }
    if (pick < 0) break;
    const p = bestPrior[pick]!;
    gtDone[pick] = 1;
    claimed[p] = 1;
    matchedGt[p] = pick;
    matchedIou[p] = overlaps[pick * P + p]!;
    for (let g = 0; g < G; g++) if (gtDone[g] === 0 && bestPrior[g] === p) rescan(g);
  }

  // Step 2: per-prediction matching of the remaining priors at or above the threshold.
  const bestGtOverlap = new Float32Array(P);
  const bestGt = new Int32Array(P).fill(-1);
  for (let g = 0; g < G; g++) {
    const row = g * P;
    for (let p = 0; p < P; p++) {
      const v = overlaps[row + p]!;
      if (v > bestGtOverlap[p]!) {
        bestGtOverlap[p] = v;
        bestGt[p] = g;
      }
    }
  }
  for (let p = 0; p < P; p++) {
    if (claimed[p] === 0 && bestGt[p]! >= 0 && bestGtOverlap[p]! >= threshold) {
      matchedGt[p] = bestGt[p]!;
      matchedIou[p] = bestGtOverlap[p]!;
    }
  }

  let numPositive = 0;
  for (let p = 0; p < P; p++) {
    const g = matchedGt[p]!;
    if (g < 0) continue;
    numPositive++;
    labels[p] = gtLabels[g]!;
    encodeInto(gtXYXY, g, priorsCXCYWH, p, opts.variances, locTargets, p, 1);
  }
  return { locTargets, labels, matchedGt, matchedIou, numPositive };
}
