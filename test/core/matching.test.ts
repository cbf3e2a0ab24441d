// SSD-SPEC "Matching and loss": each ground truth takes its best default box (bipartite, even below the
// threshold), then every other default box with overlap >= 0.5 takes the ground truth it overlaps best
// (Caffe's MatchBBox `overlap >= overlap_threshold`; ssd.pytorch and torchvision also use >=).
import { describe, expect, it } from 'vitest';
import { DEFAULT_MATCH_THRESHOLD, matchDefaultBoxes } from '../../core/matching.js';
import { decodeBoxes, xyxyToCXCYWH } from '../../core/box-coding.js';
import { defaultBoxes, defaultBoxesXYXY } from '../../core/default-boxes.js';
import { iou } from '../../core/iou.js';
import { createRng } from '../../core/rng.js';
import { specByName } from '../../core/specs.js';

const V = [0.1, 0.1, 0.2, 0.2] as const;
const spec300 = specByName('ssd300');
const priors300 = defaultBoxes(spec300);
const priors300XYXY = defaultBoxesXYXY(spec300);
const P300 = priors300.length / 4;

/** The documented algorithm written the slow, obvious way (global max over all pairs, repeated). */
function referenceMatch(gt: Float32Array, priorsXYXY: Float32Array, threshold: number): Int32Array {
  const G = gt.length / 4, P = priorsXYXY.length / 4;
  const ov = (g: number, p: number) => iou(gt, priorsXYXY, g, p);
  const matched = new Int32Array(P).fill(-1);
  const gtDone = new Set<number>();
  for (;;) {
    let best = 0, bg = -1, bp = -1;
    for (let g = 0; g < G; g++) {
      if (gtDone.has(g)) continue;
      for (let p = 0; p < P; p++) {
        if (matched[p] !== -1) continue;
        const v = Math.fround(ov(g, p));
        if (v > best) { best = v; bg = g; bp = p; }
      }
    }
    if (bg < 0) break;
    matched[bp] = bg;
    gtDone.add(bg);
  }
  for (let p = 0; p < P; p++) {
    if (matched[p] !== -1) continue;
    let best = 0, bg = -1;
    for (let g = 0; g < G; g++) {
      const v = Math.fround(ov(g, p));
      if (v > best) { best = v; bg = g; }
    }
    if (bg >= 0 && best >= threshold) matched[p] = bg;
  }
  return matched;
}

describe('matchDefaultBoxes', () => {
  it('the threshold is 0.5 (SSD-SPEC)', () => {
    expect(DEFAULT_MATCH_THRESHOLD).toBe(0.5);
  });

  it('no ground truth: every default box is background', () => {
    const m = matchDefaultBoxes(new Float32Array(0), new Int32Array(0), priors300, { variances: V });
    expect(m.numPositive).toBe(0);
    expect(m.labels.length).toBe(P300);
    expect(m.labels.every((l) => l === 0)).toBe(true);
    expect(m.matchedGt.every((g) => g === -1)).toBe(true);
    expect(m.locTargets.every((t) => t === 0)).toBe(true);
  });

  it('a ground truth equal to a default box takes it (IoU 1) with zero offsets, plus the boxes above 0.5', () => {
    const idx = 5776 + (7 * 19 + 9) * 6 + 2; // fc7, location (y=7, x=9), ratio-2 box
    const gt = priors300XYXY.slice(idx * 4, idx * 4 + 4);
    const m = matchDefaultBoxes(gt, new Int32Array([12]), priors300, { variances: V });
    expect(m.matchedGt[idx]).toBe(0);
    expect(m.labels[idx]).toBe(12);
    expect(m.matchedIou[idx]).toBeCloseTo(1, 6);
    for (let k = 0; k < 4; k++) expect(Math.abs(m.locTargets[idx * 4 + k]!)).toBeLessThan(1e-4);
    let above = 0;
    for (let p = 0; p < P300; p++) if (Math.fround(iou(gt, priors300XYXY, 0, p)) >= 0.5) above++;
    expect(m.numPositive).toBe(above);
    expect(above).toBeGreaterThan(1);
  });

  it('a tiny box (2x2 px at 300) overlaps every default box below 0.5 but still gets its best one', () => {
    const gt = new Float32Array([0.5, 0.5, 0.5 + 2 / 300, 0.5 + 2 / 300]);
    const m = matchDefaultBoxes(gt, new Int32Array([3]), priors300, { variances: V });
    expect(m.numPositive).toBe(1);
    let best = -1, bestV = 0;
    for (let p = 0; p < P300; p++) {
      const v = Math.fround(iou(gt, priors300XYXY, 0, p));
      if (v > bestV) { bestV = v; best = p; }
    }
    expect(bestV).toBeLessThan(0.5);
    expect(m.matchedGt[best]).toBe(0);
    expect(m.labels[best]).toBe(3);
    expect(m.matchedIou[best]).toBeCloseTo(bestV, 6);
    // Its encoded offsets decode back to the tiny box.
    const dec = decodeBoxes(m.locTargets.slice(best * 4, best * 4 + 4), priors300.slice(best * 4, best * 4 + 4), V);
    for (let k = 0; k < 4; k++) expect(dec[k]).toBeCloseTo(gt[k]!, 5);
  });

  it('a thin box whose best overlap is below 0.5 is matched by the bipartite step only', () => {
    const gt = new Float32Array([0.3, 0.05, 0.32, 0.95]); // 6 x 270 px
    const m = matchDefaultBoxes(gt, new Int32Array([1]), priors300, { variances: V });
    expect(m.numPositive).toBe(1);
    const p = m.matchedGt.indexOf(0);
    expect(m.matchedIou[p]).toBeGreaterThan(0);
    expect(m.matchedIou[p]).toBeLessThan(0.5);
  });

  // Hand-made default boxes so that every overlap is known:
  //   A = [0, 0, 1, 1] (area 1), B = [0, 0, 0.5, 1] (area 0.5).
  //   g0 = [0, 0, 0.9, 1]: IoU(g0, A) = 0.9, IoU(g0, B) = 0.5 / 0.9 = 0.556
  //   g1 = [0, 0, 0.8, 1]: IoU(g1, A) = 0.8, IoU(g1, B) = 0.5 / 0.8 = 0.625
  const A = [0, 0, 1, 1], B = [0, 0, 0.5, 1];
  const priorsAB = xyxyToCXCYWH(new Float32Array([...A, ...B]));

  it('two ground truths wanting the same default box: the higher overlap wins it, the other takes its next best', () => {
    const gt = new Float32Array([0, 0, 0.9, 1, 0, 0, 0.8, 1]);
    const m = matchDefaultBoxes(gt, new Int32Array([1, 2]), priorsAB, { variances: V });
    // Both want A; g0 overlaps it more (0.9 > 0.8) so A -> g0; g1 falls back to B (0.625), below A but its only box.
    expect(Array.from(m.matchedGt)).toEqual([0, 1]);
    expect(Array.from(m.labels)).toEqual([1, 2]);
    expect(m.numPositive).toBe(2);
    // Swapping the order of the ground truths swaps nothing but the indices.
    const swapped = matchDefaultBoxes(new Float32Array([0, 0, 0.8, 1, 0, 0, 0.9, 1]), new Int32Array([2, 1]), priorsAB, { variances: V });
    expect(Array.from(swapped.matchedGt)).toEqual([1, 0]);
    expect(Array.from(swapped.labels)).toEqual([1, 2]);
  });

  it('identical ground truths: the lower index takes the best box, the next one the second best', () => {
    const gt = new Float32Array([0, 0, 0.9, 1, 0, 0, 0.9, 1]);
    const m = matchDefaultBoxes(gt, new Int32Array([4, 5]), priorsAB, { variances: V });
    expect(Array.from(m.matchedGt)).toEqual([0, 1]);
    expect(Array.from(m.labels)).toEqual([4, 5]);
  });

  it('the per-box step takes an overlap of exactly 0.5 (>=, as Caffe MatchBBox, ssd.pytorch, torchvision)', () => {
    // g = B exactly: bipartite takes B (IoU 1); A overlaps g by 0.5 / 1 = 0.5 exactly -> matched.
    const m = matchDefaultBoxes(new Float32Array(B), new Int32Array([7]), priorsAB, { variances: V });
    expect(Array.from(m.matchedGt)).toEqual([0, 0]);
    expect(m.matchedIou[0]).toBe(0.5);
    expect(m.numPositive).toBe(2);
    // Just above the overlap it is not.
    const m2 = matchDefaultBoxes(new Float32Array(B), new Int32Array([7]), priorsAB, { variances: V, threshold: 0.51 });
    expect(Array.from(m2.matchedGt)).toEqual([-1, 0]);
  });

  it('a degenerate ground truth (zero area) matches nothing instead of producing log(0) targets', () => {
    const m = matchDefaultBoxes(new Float32Array([0.5, 0.5, 0.5, 0.7]), new Int32Array([2]), priors300, { variances: V });
    expect(m.numPositive).toBe(0);
    expect(m.locTargets.every(Number.isFinite)).toBe(true);
  });

  it('agrees with the obvious reference on random images (SSD-tiny default boxes, up to 12 objects)', () => {
    const tiny = specByName('ssd-tiny');
    const priors = defaultBoxes(tiny);
    const priorsXYXY = defaultBoxesXYXY(tiny);
    const rng = createRng(2024);
    for (let img = 0; img < 40; img++) {
      const G = rng.int(13);
      const gt = new Float32Array(G * 4);
      for (let g = 0; g < G; g++) {
        const w = 0.02 + rng.next() * 0.7, h = 0.02 + rng.next() * 0.7;
        const x = rng.next() * (1 - w), y = rng.next() * (1 - h);
        gt.set([x, y, x + w, y + h], g * 4);
      }
      if (G >= 2 && img % 5 === 0) gt.set(gt.subarray(0, 4), 4); // duplicate objects happen in real data
      const labels = Int32Array.from({ length: G }, () => 1 + rng.int(10));
      const m = matchDefaultBoxes(gt, labels, priors, { variances: V, priorsXYXY });
      const ref = referenceMatch(gt, priorsXYXY, 0.5);
      expect(Array.from(m.matchedGt)).toEqual(Array.from(ref));
      // Every ground truth owns at least one default box; labels follow the matches.
      for (let g = 0; g < G; g++) expect(m.matchedGt.includes(g)).toBe(true);
      let pos = 0;
      m.matchedGt.forEach((g, p) => {
        expect(m.labels[p]).toBe(g < 0 ? 0 : labels[g]);
        if (g >= 0) pos++;
      });
      expect(m.numPositive).toBe(pos);
    }
  });

  it('rejects background labels and mismatched lengths', () => {
    expect(() => matchDefaultBoxes(new Float32Array([0, 0, 1, 1]), new Int32Array([0]), priorsAB, { variances: V })).toThrow(/foreground/);
    expect(() => matchDefaultBoxes(new Float32Array([0, 0, 1, 1]), new Int32Array([1, 2]), priorsAB, { variances: V })).toThrow(/labels/);
  });
});
