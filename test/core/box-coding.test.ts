// SSD-SPEC "Box coding": tx = (gcx - dcx) / (0.1 dw), ty = (gcy - dcy) / (0.1 dh), tw = log(gw / dw) / 0.2, th = log(gh / dh) / 0.2.
import { describe, expect, it } from 'vitest';
import { cxcywhToXYXY, decodeBoxes, decodeInto, encodeBoxes, MAX_LOG_SCALE, xyxyToCXCYWH } from '../../core/box-coding.js';
import { defaultBoxes } from '../../core/default-boxes.js';
import { specByName } from '../../core/specs.js';
import { createRng } from '../../core/rng.js';

const V = [0.1, 0.1, 0.2, 0.2] as const;

describe('encode / decode with variances 0.1, 0.1, 0.2, 0.2', () => {
  it('hand-computed encoding', () => {
    // Default box centre (0.5, 0.5), size 0.2 x 0.4. Ground truth [0.45, 0.35, 0.65, 0.95]: centre (0.55, 0.65), size 0.2 x 0.6.
    const prior = new Float32Array([0.5, 0.5, 0.2, 0.4]);
    const gt = new Float32Array([0.45, 0.35, 0.65, 0.95]);
    const t = encodeBoxes(gt, prior, V);
    expect(t[0]).toBeCloseTo((0.55 - 0.5) / (0.1 * 0.2), 5); // 2.5
    expect(t[1]).toBeCloseTo((0.65 - 0.5) / (0.1 * 0.4), 5); // 3.75
    expect(t[2]).toBeCloseTo(Math.log(0.2 / 0.2) / 0.2, 5); // 0
    expect(t[3]).toBeCloseTo(Math.log(0.6 / 0.4) / 0.2, 5); // 2.0273
    const back = decodeBoxes(t, prior, V);
    Array.from(gt).forEach((v, i) => expect(back[i]).toBeCloseTo(v, 6));
  });

  it('decode is the inverse of encode on every SSD300 default box (random ground truth)', () => {
    const priors = defaultBoxes(specByName('ssd300'));
    const P = priors.length / 4;
    const rng = createRng(3);
    const gt = new Float32Array(P * 4);
    for (let i = 0; i < P; i++) {
      const cx = rng.next(), cy = rng.next(), w = 0.01 + rng.next() * 0.9, h = 0.01 + rng.next() * 0.9;
      gt.set([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], i * 4);
    }
    const back = decodeBoxes(encodeBoxes(gt, priors, V), priors, V);
    let worst = 0;
    for (let i = 0; i < gt.length; i++) worst = Math.max(worst, Math.abs(back[i]! - gt[i]!));
    expect(worst).toBeLessThan(2e-6);
  });

  it('zero regressions decode to the default box itself', () => {
    const priors = defaultBoxes(specByName('ssd300'));
    const dec = decodeBoxes(new Float32Array(priors.length), priors, V);
    const xyxy = cxcywhToXYXY(priors);
    for (let i = 0; i < dec.length; i += 13) expect(dec[i]).toBeCloseTo(xyxy[i]!, 6);
  });

  it('clamps huge log-scales at log(1000/16) instead of overflowing to Infinity', () => {
    const prior = new Float32Array([0.5, 0.5, 0.1, 0.1]);
    const dec = decodeBoxes(new Float32Array([0, 0, 1e4, 1e4]), prior, V);
    expect(dec.every(Number.isFinite)).toBe(true);
    expect(dec[2]! - dec[0]!).toBeCloseTo(0.1 * Math.exp(MAX_LOG_SCALE), 4); // 6.25
  });

  it('batch offsets: decodeInto reads regressions of image b against shared priors', () => {
    const priors = new Float32Array([0.5, 0.5, 0.2, 0.2, 0.25, 0.25, 0.1, 0.1]);
    const loc = new Float32Array(2 * 2 * 4);
    loc.set([1, -1, 0, 0], 2 * 4 + 4); // image 1, prior 1
    const out = new Float32Array(2 * 4);
    decodeInto(loc, 2, priors, 0, V, out, 0, 2);
    // prior 1 shifted by 0.1 * 0.1 right and up: centre (0.26, 0.24), side 0.1.
    expect(Array.from(out.subarray(4))).toEqual(Array.from(new Float32Array([0.21, 0.19, 0.31, 0.29])));
  });

  it('rejects mismatched lengths', () => {
    expect(() => encodeBoxes(new Float32Array(4), new Float32Array(8), V)).toThrow(/one per prior/);
    expect(() => decodeBoxes(new Float32Array(4), new Float32Array(8), V)).toThrow(/regressions/);
  });

  it('xyxy <-> cxcywh round trip', () => {
    const b = new Float32Array([0.1, 0.2, 0.5, 0.9]);
    const c = xyxyToCXCYWH(b);
    expect(Array.from(c).map((v) => +v.toFixed(6))).toEqual([0.3, 0.55, 0.4, 0.7]);
    expect(Array.from(cxcywhToXYXY(c)).map((v) => +v.toFixed(6))).toEqual([0.1, 0.2, 0.5, 0.9]);
  });
});
