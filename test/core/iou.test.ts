import { describe, expect, it } from 'vitest';
import { iou, iouMatrix } from '../../core/iou.js';
import { createRng } from '../../core/rng.js';

describe('iou (continuous coordinates, no +1 pixel)', () => {
  it('hand-computed overlaps', () => {
    // [0,0,2,2] and [1,1,3,3]: intersection 1, union 4 + 4 - 1 = 7.
    expect(iou([0, 0, 2, 2], [1, 1, 3, 3])).toBeCloseTo(1 / 7, 12);
    // Identical boxes: 1. Touching edges: 0. Disjoint: 0. Containment: 0.25 / 1.
    expect(iou([0.1, 0.2, 0.5, 0.6], [0.1, 0.2, 0.5, 0.6])).toBe(1);
    expect(iou([0, 0, 1, 1], [1, 0, 2, 1])).toBe(0);
    expect(iou([0, 0, 1, 1], [2, 2, 3, 3])).toBe(0);
    expect(iou([0, 0, 1, 1], [0.25, 0.25, 0.75, 0.75])).toBe(0.25);
    // Pixel boxes stay continuous: [0,0,10,10] vs [5,0,15,10] = 50 / 150 (the VOC devkit's +1 would give 66 / 176 = 0.375).
    expect(iou([0, 0, 10, 10], [5, 0, 15, 10])).toBeCloseTo(1 / 3, 12);
  });

  it('degenerate boxes give 0, never NaN', () => {
    expect(iou([0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5])).toBe(0);
    expect(iou([0.5, 0.5, 0.4, 0.4], [0, 0, 1, 1])).toBe(0);
  });

  it('indexes into packed arrays', () => {
    const a = new Float32Array([9, 9, 9, 9, 0, 0, 2, 2]);
    const b = new Float32Array([1, 1, 3, 3]);
    expect(iou(a, b, 1, 0)).toBeCloseTo(1 / 7, 7);
  });
});

describe('iouMatrix', () => {
  it('is row-major [na * nb] and equals the scalar iou everywhere (random boxes)', () => {
    const rng = createRng(7);
    const make = (n: number): Float32Array => {
      const out = new Float32Array(n * 4);
      for (let i = 0; i < n; i++) {
        const x = rng.next(), y = rng.next(), w = rng.next() * 0.5, h = rng.next() * 0.5;
        out.set([x, y, x + w, y + h], i * 4);
      }
      return out;
    };
    const a = make(13);
    const b = make(29);
    const m = iouMatrix(a, b);
    expect(m.length).toBe(13 * 29);
    for (let i = 0; i < 13; i++) for (let j = 0; j < 29; j++) expect(m[i * 29 + j]).toBeCloseTo(iou(a, b, i, j), 6);
    const symmetric = iouMatrix(b, a);
    for (let i = 0; i < 13; i++) for (let j = 0; j < 29; j++) expect(symmetric[j * 13 + i]).toBe(m[i * 29 + j]);
  });

  it('handles empty inputs and reuses an out buffer', () => {
    expect(iouMatrix(new Float32Array(0), new Float32Array(8)).length).toBe(0);
    const out = new Float32Array(4);
    const res = iouMatrix(new Float32Array([0, 0, 1, 1, 0, 0, 0.5, 1]), new Float32Array([0, 0, 1, 1, 0.5, 0, 1, 1]), out);
    expect(res).toBe(out);
    expect(Array.from(out)).toEqual([1, 0.5, 0.5, 0]);
  });
});
