import { describe, expect, it } from 'vitest';
import { createRng } from '../../core/rng.js';

describe('createRng', () => {
  it('is deterministic per seed and differs between seeds', () => {
    const a = createRng(42), b = createRng(42), c = createRng(43);
    const sa = Array.from({ length: 20 }, () => a.next());
    expect(Array.from({ length: 20 }, () => b.next())).toEqual(sa);
    expect(Array.from({ length: 20 }, () => c.next())).not.toEqual(sa);
  });

  it('getState / setState resumes the exact stream (what a trainer checkpoint needs)', () => {
    const r = createRng(5);
    for (let i = 0; i < 100; i++) r.next();
    const state = r.getState();
    expect(state).toHaveLength(4);
    expect(JSON.parse(JSON.stringify(state))).toEqual(state);
    const expected = [r.next(), r.normal(), r.int(10), r.uniform(-2, 3)];
    const resumed = createRng(999);
    resumed.setState(state);
    expect([resumed.next(), resumed.normal(), resumed.int(10), resumed.uniform(-2, 3)]).toEqual(expected);
    expect(() => resumed.setState([1, 2, 3])).toThrow(RangeError);
    expect(() => resumed.setState([1, 2, 3, -1])).toThrow(RangeError);
  });

  it('has the right ranges and moments (100k draws)', () => {
    const r = createRng(1);
    const n = 100_000;
    let sum = 0, sumN = 0, sumN2 = 0, min = 1, max = 0, vMin = Infinity, vMax = -Infinity;
    const ints = new Array(7).fill(0);
    for (let i = 0; i < n; i++) {
      const u = r.next();
      min = Math.min(min, u);
      max = Math.max(max, u);
      sum += u;
      const z = r.normal();
      sumN += z;
      sumN2 += z * z;
      ints[r.int(7)]++;
      const v = r.uniform(2, 5);
      vMin = Math.min(vMin, v);
      vMax = Math.max(vMax, v);
    }
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThan(1);
    expect(vMin).toBeGreaterThanOrEqual(2);
    expect(vMax).toBeLessThan(5);
    expect(sum / n).toBeCloseTo(0.5, 2);
    expect(sumN / n).toBeCloseTo(0, 1);
    expect(sumN2 / n).toBeCloseTo(1, 1);
    for (const k of ints) expect(Math.abs(k / n - 1 / 7)).toBeLessThan(0.01);
  });

  it('seeds above 32 bits still differ (Date.now()-style seeds)', () => {
    expect(createRng(2 ** 40).next()).not.toBe(createRng(2 ** 40 + 2 ** 33).next());
  });
});
