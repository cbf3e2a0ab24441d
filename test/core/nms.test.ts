// SSD-SPEC "Inference": per class keep scores > 0.01, top 400, NMS at Jaccard 0.45, keep the top 200 overall.
import { describe, expect, it } from 'vitest';
import { multiclassNms, nms, nmsCandidates } from '../../core/nms.js';
import { iou } from '../../core/iou.js';
import { createRng, type Rng } from '../../core/rng.js';

/** Brute force: full sort (score desc, index asc), then suppress every later box with IoU > thr against a kept one. */
function bruteNms(boxes: Float32Array, scores: Float32Array, cand: number[], thr: number, topK = Infinity): number[] {
  const order = cand.filter((i) => !Number.isNaN(scores[i]!)).sort((a, b) => scores[b]! - scores[a]! || a - b).slice(0, topK);
  const suppressed = new Array(order.length).fill(false);
  const keep: number[] = [];
  for (let i = 0; i < order.length; i++) {
    if (suppressed[i]) continue;
    keep.push(order[i]!);
    for (let j = i + 1; j < order.length; j++) if (iou(boxes, boxes, order[i]!, order[j]!) > thr) suppressed[j] = true;
  }
  return keep;
}

interface Det { score: number; cls: number; idx: number }
function bruteMulticlass(boxes: Float32Array, scoresPC: Float32Array, C: number, conf: number, topK: number, thr: number, keepTopK: number): Det[] {
  const P = boxes.length / 4;
  const all: Det[] = [];
  for (let c = 1; c < C; c++) {
    const s = new Float32Array(P);
    const cand: number[] = [];
    for (let p = 0; p < P; p++) {
      s[p] = scoresPC[p * C + c]!;
      if (s[p]! > conf) cand.push(p);
    }
    for (const idx of bruteNms(boxes, s, cand, thr, topK)) all.push({ score: s[idx]!, cls: c, idx });
  }
  all.sort((a, b) => b.score - a.score || a.cls - b.cls || a.idx - b.idx);
  return all.slice(0, keepTopK);
}

function randomBoxes(rng: Rng, n: number, clusters: number): Float32Array {
  const centres = Array.from({ length: clusters }, () => [0.1 + rng.next() * 0.8, 0.1 + rng.next() * 0.8]);
  const out = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) {
    const [cx, cy] = centres[rng.int(clusters)]!;
    const x = cx! + rng.normal() * 0.04, y = cy! + rng.normal() * 0.04;
    const w = 0.05 + rng.next() * 0.3, h = 0.05 + rng.next() * 0.3;
    out.set([x - w / 2, y - h / 2, x + w / 2, y + h / 2], i * 4);
  }
  // Exact duplicates and a degenerate box: IoU 1 and IoU 0 edge cases.
  if (n > 3) {
    out.copyWithin(4, 0, 4);
    out.set([0.5, 0.5, 0.5, 0.5], 8);
  }
  return out;
}

describe('nms (single class)', () => {
  it('a hand-made case: 0.45 threshold suppresses IoU 0.6 but keeps IoU 1/3', () => {
    const boxes = new Float32Array([
      0, 0, 1, 1, // 0: score 0.9
      0, 0, 1, 0.6, // 1: IoU with 0 = 0.6 -> suppressed
      0.5, 0, 1.5, 1, // 2: IoU with 0 = 0.5 / 1.5 = 1/3 -> kept
      2, 2, 3, 3, // 3: disjoint -> kept
    ]);
    const scores = new Float32Array([0.9, 0.8, 0.7, 0.1]);
    expect(Array.from(nms(boxes, scores, [0, 1, 2, 3], 0.45))).toEqual([0, 2, 3]);
    // topK applies before NMS: of the best 2 (0, 1) only 0 survives; of the best 3, 0 and 2.
    expect(Array.from(nms(boxes, scores, [3, 2, 1, 0], 0.45, 2))).toEqual([0]);
    expect(Array.from(nms(boxes, scores, [3, 2, 1, 0], 0.45, 3))).toEqual([0, 2]);
    expect(Array.from(nms(boxes, scores, [1, 3], 0.45))).toEqual([1, 3]); // only the candidates take part
    expect(Array.from(nms(boxes, scores, [], 0.45))).toEqual([]);
    // Equal scores: the lower index wins.
    expect(Array.from(nms(boxes, new Float32Array([0.5, 0.5, 0.5, 0.5]), [3, 2, 1, 0], 0.45))).toEqual([0, 2, 3]);
  });

  it('matches brute force on 300 seeded random inputs (clusters, ties, duplicates, negative scores)', () => {
    const rng = createRng(11);
    for (let t = 0; t < 300; t++) {
      const n = 1 + rng.int(120);
      const boxes = randomBoxes(rng, n, 1 + rng.int(5));
      // Quantised scores make ties common; some negative (logit-like) scores.
      const scores = Float32Array.from({ length: n }, () => Math.round((rng.next() * 2 - 0.3) * 40) / 40);
      const cand = Array.from({ length: n }, (_, i) => i).filter(() => rng.next() < 0.8);
      const thr = [0.3, 0.45, 0.5, 0.7][t % 4]!;
      const topK = t % 3 === 0 ? 1 + rng.int(30) : undefined;
      expect(Array.from(nms(boxes, scores, Int32Array.from(cand), thr, topK))).toEqual(bruteNms(boxes, scores, cand, thr, topK));
    }
  });
});

describe('multiclassNms', () => {
  it('skips background, applies the thresholds and sorts by score (hand-made case)', () => {
    const C = 3;
    const boxes = new Float32Array([0, 0, 1, 1, 0, 0, 1, 0.6, 2, 2, 3, 3]);
    const scoresPC = new Float32Array([
      0.05, 0.9, 0.05, // box 0: class 1 0.9
      0.1, 0.8, 0.1, // box 1: class 1 0.8 (suppressed by box 0 at IoU 0.6), class 2 0.1 (kept: other class)
      0.985, 0.005, 0.01, // box 2: both at or below 0.01 -> nothing (and background is never a detection)
    ]);
    const det = multiclassNms(boxes, scoresPC, C);
    expect(det.count).toBe(2);
    expect(Array.from(det.classIds)).toEqual([1, 2]);
    expect(Array.from(det.scores)).toEqual([Math.fround(0.9), Math.fround(0.1)]);
    expect(Array.from(det.boxesXYXY)).toEqual([0, 0, 1, 1, 0, 0, 1, Math.fround(0.6)]);
    const one = multiclassNms(boxes, scoresPC, C, { keepTopK: 1 });
    expect(one.count).toBe(1);
    expect(one.classIds[0]).toBe(1);
  });

  it('matches brute force on seeded random inputs (SSD-like score distributions, 21 classes)', () => {
    const rng = createRng(99);
    for (let t = 0; t < 25; t++) {
      const P = 50 + rng.int(600), C = 21;
      const boxes = randomBoxes(rng, P, 1 + rng.int(6));
      const scoresPC = new Float32Array(P * C);
      for (let p = 0; p < P; p++) {
        let sum = 0;
        for (let c = 0; c < C; c++) {
          const logit = (c === 0 ? 4 : 0) + rng.normal() * 2;
          scoresPC[p * C + c] = Math.exp(logit);
          sum += scoresPC[p * C + c]!;
        }
        for (let c = 0; c < C; c++) scoresPC[p * C + c] = Math.round((scoresPC[p * C + c]! / sum) * 5000) / 5000; // ties
      }
      const opts = t % 2 === 0
        ? { confidenceThreshold: 0.01, topKPerClass: 400, nmsThreshold: 0.45, keepTopK: 200 }
        : { confidenceThreshold: 0.02, topKPerClass: 7, nmsThreshold: 0.3, keepTopK: 25 };
      const det = multiclassNms(boxes, scoresPC, C, opts);
      const ref = bruteMulticlass(boxes, scoresPC, C, opts.confidenceThreshold, opts.topKPerClass, opts.nmsThreshold, opts.keepTopK);
      expect(det.count).toBe(ref.length);
      expect(Array.from(det.classIds)).toEqual(ref.map((d) => d.cls));
      expect(Array.from(det.scores)).toEqual(ref.map((d) => d.score));
      expect(Array.from(det.boxesXYXY)).toEqual(ref.flatMap((d) => Array.from(boxes.subarray(d.idx * 4, d.idx * 4 + 4))));
    }
  });

  it('defaults are SSD-SPEC: 0.01, 400 per class, 0.45, keep 200', () => {
    // 300 disjoint boxes, each with one class above 0.01: 300 survive NMS, the default keeps 200.
    const P = 300, C = 2;
    const boxes = new Float32Array(P * 4);
    const scoresPC = new Float32Array(P * C);
    for (let p = 0; p < P; p++) {
      boxes.set([p, 0, p + 0.5, 1], p * 4);
      scoresPC[p * C + 1] = 0.011 + p * 1e-4;
      scoresPC[p * C] = 1 - scoresPC[p * C + 1]!;
    }
    const det = multiclassNms(boxes, scoresPC, C);
    expect(det.count).toBe(200);
    expect(det.boxesXYXY[0]).toBe(299);
    // 0.01 itself is not kept (strictly greater).
    scoresPC.fill(0.01);
    expect(multiclassNms(boxes, scoresPC, C).count).toBe(0);
    // 500 candidates of one class: only the top 400 take part.
    const P2 = 500;
    const b2 = new Float32Array(P2 * 4);
    const s2 = new Float32Array(P2 * C);
    for (let p = 0; p < P2; p++) {
      b2.set([p, 0, p + 0.5, 1], p * 4);
      s2[p * C + 1] = 0.5 + p * 1e-4;
    }
    expect(multiclassNms(b2, s2, C, { keepTopK: 1000 }).count).toBe(400);
  });

  it('takes the comparator path for negative thresholds and for more than 2^22 (box, class) positions, with the same results', () => {
    const rng = createRng(5);
    const P = 300, C = 4;
    const boxes = randomBoxes(rng, P, 3);
    const scoresPC = Float32Array.from({ length: P * C }, () => Math.round(rng.next() * 50) / 50);
    for (let p = 0; p < 40; p++) scoresPC[p * C + 1] = -rng.next(); // negative scores, allowed by a negative threshold
    const opts = { confidenceThreshold: -0.5, topKPerClass: 100, nmsThreshold: 0.45, keepTopK: 150 };
    const det = multiclassNms(boxes, scoresPC, C, opts);
    const ref = bruteMulticlass(boxes, scoresPC, C, -0.5, 100, 0.45, 150);
    expect(Array.from(det.classIds)).toEqual(ref.map((d) => d.cls));
    expect(Array.from(det.scores)).toEqual(ref.map((d) => d.score));
    // 2^21 + 1 boxes x 2 classes > 2^22 positions; only a few score above the threshold.
    const big = 2 ** 21 + 1;
    const bigBoxes = new Float32Array(big * 4);
    const bigScores = new Float32Array(big * 2);
    const picks = [0, 17, 2 ** 20, big - 2, big - 1];
    picks.forEach((p, i) => {
      bigBoxes.set([i, 0, i + 1, 1], p * 4);
      bigScores[p * 2 + 1] = 0.5 + (i % 2) * 0.25;
    });
    const d2 = multiclassNms(bigBoxes, bigScores, 2);
    expect(Array.from(d2.boxesXYXY.filter((_, k) => k % 4 === 0))).toEqual([1, 3, 0, 2, 4]); // score desc, then box index
  });

  it('nmsCandidates reads only the candidates it is given', () => {
    const C = 3;
    const boxes = new Float32Array([0, 0, 1, 1, 5, 5, 6, 6, NaN, NaN, NaN, NaN]);
    const scoresPC = new Float32Array([0, 0.9, NaN, 0, 0.2, 0.7, NaN, NaN, NaN]); // box 2 and (0, class 2) are garbage
    const P = 3;
    const det = nmsCandidates(boxes, scoresPC, C, Int32Array.from([2 * P + 1, 1 * P + 0, 1 * P + 1]), 3);
    expect(Array.from(det.classIds)).toEqual([1, 2, 1]);
    expect(Array.from(det.scores)).toEqual([0.9, 0.7, 0.2].map(Math.fround));
  });

  it('rejects a score matrix of the wrong size', () => {
    expect(() => multiclassNms(new Float32Array(8), new Float32Array(5), 3)).toThrow(/scores/);
  });
});
