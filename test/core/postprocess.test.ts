// SSD-SPEC "Inference": softmax over classes, then per-class threshold / top-k / NMS / keep.
import { describe, expect, it } from 'vitest';
import { postprocess, softmaxRows } from '../../core/postprocess.js';
import { decodeBoxes } from '../../core/box-coding.js';
import { defaultBoxes } from '../../core/default-boxes.js';
import { multiclassNms } from '../../core/nms.js';
import { createRng } from '../../core/rng.js';
import { specByName } from '../../core/specs.js';

describe('softmaxRows', () => {
  it('hand-computed rows, numerically stable for large logits', () => {
    const p = softmaxRows(new Float32Array([0, 0, Math.log(2), 1000, 1000, 1000]), 3);
    expect(Array.from(p.subarray(0, 3)).map((v) => +v.toFixed(6))).toEqual([0.25, 0.25, 0.5]);
    expect(Array.from(p.subarray(3)).map((v) => +v.toFixed(6))).toEqual([0.333333, 0.333333, 0.333333]);
    expect(() => softmaxRows(new Float32Array(5), 3)).toThrow(/rows of 3/);
  });
});

describe('postprocess', () => {
  const spec = specByName('ssd300');
  const priors = defaultBoxes(spec);
  const P = priors.length / 4, C = 21;

  function heads(seed: number): { loc: Float32Array; logits: Float32Array } {
    const rng = createRng(seed);
    const loc = Float32Array.from({ length: P * 4 }, () => rng.normal() * 0.5);
    const logits = new Float32Array(P * C);
    for (let p = 0; p < P; p++) {
      logits[p * C] = 5 + rng.normal();
      for (let c = 1; c < C; c++) logits[p * C + c] = rng.normal() * 1.5;
    }
    return { loc, logits };
  }

  it('equals softmax + full decode + multiclassNms with the spec thresholds (it only skips decoding unused boxes)', () => {
    const { loc, logits } = heads(1);
    const det = postprocess(loc, logits, priors, spec, { clip: false });
    const ref = multiclassNms(decodeBoxes(loc, priors, spec.variances), softmaxRows(logits, C), C, spec.postprocess);
    expect(det.count).toBeGreaterThan(50);
    expect(det.count).toBeLessThanOrEqual(200);
    expect(det).toEqual(ref);
  });

  it('fromLogits: false takes probabilities as they are; clip (default) keeps boxes in [0, 1]', () => {
    const { loc, logits } = heads(2);
    const probs = softmaxRows(logits, C);
    const a = postprocess(loc, logits, priors, spec);
    const b = postprocess(loc, probs, priors, spec, { fromLogits: false });
    expect(b).toEqual(a);
    expect(a.boxesXYXY.every((v) => v >= 0 && v <= 1)).toBe(true);
    for (let i = 1; i < a.count; i++) expect(a.scores[i]).toBeLessThanOrEqual(a.scores[i - 1]!);
  });

  it('rows skipped without a softmax are exactly those that cannot pass (logits on both sides of the bound)', () => {
    // p_c <= e^d / (1 + e^d) with d = l_c - l_0, a bound reached when the other classes vanish: class 1 sits
    // within 1e-3 of d = log(thr / (1 - thr)), the other classes 30+ below, so about half the rows pass.
    const rng = createRng(8);
    const n = 600; // the first 600 default boxes keep the exhaustive comparison (no NMS, no top-k) quick
    const some = priors.subarray(0, n * 4);
    const logits = new Float32Array(n * C);
    for (let p = 0; p < n; p++) {
      logits[p * C] = rng.normal() * 3;
      const thr = [0.01, 0.005, 0.3][p % 3]!;
      for (let c = 1; c < C; c++) logits[p * C + c] = logits[p * C]! + (c === 1 ? Math.log(thr / (1 - thr)) + (rng.next() - 0.5) * 2e-3 : -30 - rng.next());
      if (p % 7 === 0) logits[p * C + 2] = logits[p * C]! + 1; // a foreground class wins the row
    }
    const loc = new Float32Array(n * 4);
    for (const confidenceThreshold of [0.01, 0.005, 0.3, 0]) {
      const opts = { confidenceThreshold, keepTopK: 100000, topKPerClass: 100000, nmsThreshold: 1 };
      const det = postprocess(loc, logits, some, spec, { ...opts, clip: false });
      const ref = multiclassNms(decodeBoxes(loc, some, spec.variances), softmaxRows(logits, C), C, opts);
      expect(det.count).toBeGreaterThan(n / 7 + (confidenceThreshold > 0 ? n / 3 / 4 : n));
      expect(det.count).toBe(ref.count);
      // Byte-wise comparison: toEqual on tens of thousands of elements is slow.
      for (const key of ['boxesXYXY', 'scores', 'classIds'] as const) {
        expect(Buffer.from(det[key].buffer, det[key].byteOffset, det[key].byteLength).equals(Buffer.from(ref[key].buffer, ref[key].byteOffset, ref[key].byteLength)), key).toBe(true);
      }
    }
  });

  it('options override the spec thresholds', () => {
    const { loc, logits } = heads(3);
    const det = postprocess(loc, logits, priors, spec, { confidenceThreshold: 0.2, keepTopK: 5 });
    expect(det.count).toBeLessThanOrEqual(5);
    expect(det.scores.every((s) => s > 0.2)).toBe(true);
    const spec2 = specByName('ssd300');
    spec2.postprocess.keepTopK = 3;
    expect(postprocess(loc, logits, priors, spec2).count).toBe(3);
  });

  it('a confident object yields its box, decoded against its default box', () => {
    const loc = new Float32Array(P * 4);
    const logits = new Float32Array(P * C);
    for (let p = 0; p < P; p++) logits[p * C] = 10;
    const idx = 5776 + (9 * 19 + 9) * 6; // fc7 centre location, square box of side 60/300
    logits[idx * C] = 0;
    logits[idx * C + 15] = 10; // 'person' (label index 15 with background at 0)
    loc.set([1, 0, 0, Math.log(2) / 0.2], idx * 4); // shift right by 0.1 * 0.2, twice as tall
    const det = postprocess(loc, logits, priors, spec);
    expect(det.count).toBe(1);
    expect(spec.labels[det.classIds[0]!]).toBe('person');
    expect(det.scores[0]).toBeCloseTo(Math.exp(10) / (Math.exp(10) + 20), 6); // the other 20 logits are 0
    const cx = (9.5 * 16) / 300 + 0.02, cy = (9.5 * 16) / 300;
    expect(Array.from(det.boxesXYXY).map((v) => +v.toFixed(5))).toEqual([cx - 0.1, cy - 0.2, cx + 0.1, cy + 0.2].map((v) => +v.toFixed(5)));
  });

  it('rejects outputs that do not fit the default boxes', () => {
    expect(() => postprocess(new Float32Array(8), new Float32Array(P * C), priors, spec)).toThrow(/box regressions/);
    expect(() => postprocess(new Float32Array(P * 4), new Float32Array(P * 20), priors, spec)).toThrow(/class scores/);
  });
});
