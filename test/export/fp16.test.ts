import { describe, expect, it } from 'vitest';
import { fromFloat16Bits, toFloat16Bits } from '../../export/fp16.js';

describe('float16 conversion (IEEE 754 binary16)', () => {
  it('encodes hand-checked values', () => {
    const cases: [number, number][] = [
      [0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [0.5, 0x3800], [65504, 0x7bff],
      [65520, 0x7c00], // rounds up past the largest finite value: infinity
      [1e6, 0x7c00], [-Infinity, 0xfc00],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -26, 0x0000], // underflows to zero
      [0.1, 0x2e66], [1 / 3, 0x3555],
      [1 + 2 ** -11, 0x3c00], // tie: to even (down)
      [1 + 3 * 2 ** -11, 0x3c02], // tie: to even (up)
      [1 + 2 ** -11 + 2 ** -20, 0x3c01], // above the tie: up
    ];
    const bits = toFloat16Bits(cases.map((c) => c[0]));
    cases.forEach(([v, b], i) => expect(bits[i], `${v}`).toBe(b));
    expect(Number.isNaN(fromFloat16Bits(toFloat16Bits([NaN]))[0])).toBe(true);
  });

  it('round-trips every finite float16 exactly, and float32 values within half an ulp', () => {
    const all = Uint16Array.from({ length: 0x10000 }, (_, i) => i).filter((h) => (h & 0x7c00) !== 0x7c00);
    const back = toFloat16Bits(fromFloat16Bits(all));
    for (let i = 0; i < all.length; i++) if (back[i] !== all[i] && !(all[i] === 0x8000 && back[i] === 0x8000)) expect(back[i]).toBe(all[i]);
    for (const v of [3.14159, -123.456, 0.000123, 7777.7]) {
      const r = fromFloat16Bits(toFloat16Bits([v]))[0]!;
      const ulp = 2 ** (Math.floor(Math.log2(Math.abs(v))) - 10);
      expect(Math.abs(r - v)).toBeLessThanOrEqual(ulp / 2);
    }
  });
});
