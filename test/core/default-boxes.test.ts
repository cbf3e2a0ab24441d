// Default boxes against numbers computed by hand from SSD-SPEC "Default boxes": per location a square of
// side min, a square of side sqrt(min * max), then min*sqrt(r) x min/sqrt(r) and its flip per ratio;
// centres ((x + 0.5) * step, (y + 0.5) * step) / input; (cx, cy, w, h) in [0, 1], no clipping.
import { describe, expect, it } from 'vitest';
import { defaultBoxes, defaultBoxesXYXY } from '../../core/default-boxes.js';
import { paperBoxSizes, specByName, ssd300 } from '../../core/specs.js';
import { VOC_CLASSES, withBackground } from '../../core/labels.js';

const R2 = Math.SQRT2;
const R3 = Math.sqrt(3);

function expectBox(boxes: Float32Array, index: number, expected: [number, number, number, number]): void {
  const got = Array.from(boxes.subarray(index * 4, index * 4 + 4));
  // Float32 storage: 7 significant digits.
  expected.forEach((v, i) => expect(got[i], `box ${index} coordinate ${i}`).toBeCloseTo(v, 6));
}

describe('SSD300 (VOC) default boxes', () => {
  const spec = specByName('ssd300');
  const boxes = defaultBoxes(spec);
  // Map offsets in boxes: 38²·4 = 5776, + 19²·6 = 2166, + 10²·6 = 600, + 5²·6 = 150, + 3²·4 = 36, + 1·4.
  const off = [0, 5776, 5776 + 2166, 5776 + 2166 + 600, 5776 + 2166 + 600 + 150, 5776 + 2166 + 600 + 150 + 36];

  it('has 8732 boxes', () => {
    expect(boxes.length).toBe(8732 * 4);
    expect(off[5]! + 4).toBe(8732);
  });

  it('conv4_3 (38x38, step 8, min 30, max 60, ratio 2): location (0,0) and (y=1, x=2)', () => {
    const c = 0.5 * 8 / 300; // 0.013333
    expectBox(boxes, 0, [c, c, 30 / 300, 30 / 300]); // 0.1 x 0.1
    expectBox(boxes, 1, [c, c, Math.sqrt(30 * 60) / 300, Math.sqrt(30 * 60) / 300]); // 42.43 px
    expectBox(boxes, 2, [c, c, (30 * R2) / 300, 30 / R2 / 300]); // 42.43 x 21.21 px
    expectBox(boxes, 3, [c, c, 30 / R2 / 300, (30 * R2) / 300]);
    const loc = (1 * 38 + 2) * 4; // box index ((y * W + x) * k + a)
    expectBox(boxes, loc, [(2.5 * 8) / 300, (1.5 * 8) / 300, 0.1, 0.1]);
    expectBox(boxes, loc + 3, [20 / 300, 12 / 300, 30 / R2 / 300, (30 * R2) / 300]);
    // Last location of the map: (37.5 * 8) / 300 = 1.0 exactly.
    expectBox(boxes, off[1]! - 4, [1, 1, 0.1, 0.1]);
  });

  it('fc7 (19x19, step 16, min 60, max 111, ratios 2 and 3): first location, all six boxes', () => {
    const c = 8 / 300;
    const o = off[1]!;
    expectBox(boxes, o, [c, c, 0.2, 0.2]);
    expectBox(boxes, o + 1, [c, c, Math.sqrt(60 * 111) / 300, Math.sqrt(60 * 111) / 300]); // sqrt(6660) = 81.61 px
    expectBox(boxes, o + 2, [c, c, (60 * R2) / 300, 60 / R2 / 300]);
    expectBox(boxes, o + 3, [c, c, 60 / R2 / 300, (60 * R2) / 300]);
    expectBox(boxes, o + 4, [c, c, (60 * R3) / 300, 60 / R3 / 300]); // 103.9 x 34.6 px
    expectBox(boxes, o + 5, [c, c, 60 / R3 / 300, (60 * R3) / 300]);
  });

  it('conv6_2 (10x10, step 32): the last location centres at 9.5 * 32 / 300 = 1.0133, outside the image (no clip)', () => {
    const o = off[2]! + (9 * 10 + 9) * 6;
    expectBox(boxes, o, [304 / 300, 304 / 300, 111 / 300, 111 / 300]);
    expectBox(boxes, o + 1, [304 / 300, 304 / 300, Math.sqrt(111 * 162) / 300, Math.sqrt(111 * 162) / 300]);
  });

  it('conv7_2 (5x5, step 64, min 162, max 213): location (y=0, x=4), ratio-3 box', () => {
    const o = off[3]! + 4 * 6;
    expectBox(boxes, o + 4, [(4.5 * 64) / 300, 32 / 300, (162 * R3) / 300, 162 / R3 / 300]); // cx 0.96
  });

  it('conv8_2 (3x3, step 100, min 213, max 264): location (y=2, x=1)', () => {
    const o = off[4]! + (2 * 3 + 1) * 4;
    expectBox(boxes, o, [0.5, 2.5 / 3, 0.71, 0.71]);
    expectBox(boxes, o + 1, [0.5, 2.5 / 3, Math.sqrt(213 * 264) / 300, Math.sqrt(213 * 264) / 300]);
  });

  it('conv9_2 (1x1, step 300, min 264, max 315): centred, and the ratio-2 box is wider than the image (1.2445)', () => {
    const o = off[5]!;
    expectBox(boxes, o, [0.5, 0.5, 0.88, 0.88]);
    expectBox(boxes, o + 1, [0.5, 0.5, Math.sqrt(264 * 315) / 300, Math.sqrt(264 * 315) / 300]); // 288.4 px
    expectBox(boxes, o + 2, [0.5, 0.5, (264 * R2) / 300, 264 / R2 / 300]);
    expect(boxes[(o + 2) * 4 + 2]).toBeGreaterThan(1);
  });

  it('order: maps in source order, then y, then x, then the k boxes (centres are non-decreasing in y within a map)', () => {
    for (let m = 0; m < 6; m++) {
      const end = m < 5 ? off[m + 1]! : 8732;
      for (let i = off[m]! + 1; i < end; i++) {
        const dy = boxes[i * 4 + 1]! - boxes[(i - 1) * 4 + 1]!;
        expect(dy).toBeGreaterThanOrEqual(0);
        if (dy === 0 && (i - off[m]!) % (m === 0 || m >= 4 ? 4 : 6) !== 0) expect(boxes[i * 4]).toBe(boxes[(i - 1) * 4]);
      }
    }
  });
});

describe('SSD512 (VOC) default boxes', () => {
  const spec = specByName('ssd512');
  const boxes = defaultBoxes(spec);
  it('has 24564 boxes with hand-computed first and last ones', () => {
    expect(boxes.length / 4).toBe(24564);
    // SSD-SPEC's VOC SSD512: conv4_3 at 7% (35.84 px, max 76.8), then 76.8, 153.6, ..., 460.8 (max up to 537.6).
    const c = 4 / 512;
    expectBox(boxes, 0, [c, c, 0.07, 0.07]); // 35.84 / 512
    expectBox(boxes, 1, [c, c, Math.sqrt(35.84 * 76.8) / 512, Math.sqrt(35.84 * 76.8) / 512]);
    expectBox(boxes, 2, [c, c, (35.84 * R2) / 512, 35.84 / R2 / 512]);
    // conv8_2 (4x4, step 128, min 307.2 = 60%, ratios 2, 3) starts at 16384 + 6144 + 1536 + 384 = 24448.
    expectBox(boxes, 24448 + 5, [64 / 512, 64 / 512, 307.2 / R3 / 512, (307.2 * R3) / 512]);
    // conv10_2 (1x1, step 512, min 460.8 = 0.9 of 512, max 537.6): the last four boxes.
    expectBox(boxes, 24560, [0.5, 0.5, 0.9, 0.9]);
    expectBox(boxes, 24561, [0.5, 0.5, Math.sqrt(460.8 * 537.6) / 512, Math.sqrt(460.8 * 537.6) / 512]);
    expectBox(boxes, 24563, [0.5, 0.5, 460.8 / R2 / 512, (460.8 * R2) / 512]);
  });
});

describe('SSD512 (COCO) default boxes', () => {
  it('conv4_3 at 4% (20.48 px, max 51.2) and the last map at 460.8 (max 542.72)', () => {
    const boxes = defaultBoxes(specByName('ssd512-coco'));
    expect(boxes.length / 4).toBe(24564);
    const c = 4 / 512;
    expectBox(boxes, 0, [c, c, 20.48 / 512, 20.48 / 512]);
    expectBox(boxes, 1, [c, c, Math.sqrt(20.48 * 51.2) / 512, Math.sqrt(20.48 * 51.2) / 512]);
    expectBox(boxes, 24448 + 5, [64 / 512, 64 / 512, 296.96 / R3 / 512, (296.96 * R3) / 512]);
    expectBox(boxes, 24561, [0.5, 0.5, Math.sqrt(460.8 * 542.72) / 512, Math.sqrt(460.8 * 542.72) / 512]);
  });
});

describe('options and contract', () => {
  it("the paper's formula: first box side 0.2, second sqrt(0.2 * 0.34)", () => {
    const boxes = defaultBoxes(ssd300(withBackground(VOC_CLASSES), paperBoxSizes(300, 6)));
    expect(boxes.length / 4).toBe(8732);
    expectBox(boxes, 0, [4 / 300, 4 / 300, 0.2, 0.2]);
    expectBox(boxes, 1, [4 / 300, 4 / 300, Math.sqrt(0.2 * 0.34), Math.sqrt(0.2 * 0.34)]);
  });

  it('clipBoxes clips the corners to [0, 1] and returns to centre-size', () => {
    const spec = specByName('ssd300');
    spec.clipBoxes = true;
    const boxes = defaultBoxes(spec);
    // First box: corners (4 - 15, 4 + 15) / 300 -> clipped to (0, 19/300): centre 9.5/300, side 19/300.
    expectBox(boxes, 0, [9.5 / 300, 9.5 / 300, 19 / 300, 19 / 300]);
    // Last map's ratio-2 box: 1.2445 wide -> [0, 1].
    expectBox(boxes, 8730, [0.5, 0.5, 1, 264 / R2 / 300]);
    const xyxy = defaultBoxesXYXY(spec);
    expect(Math.min(...xyxy)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xyxy)).toBeLessThanOrEqual(1);
  });

  it('returns a fresh copy each call (callers may write to it) and the xyxy form agrees', () => {
    const spec = specByName('ssd300');
    const a = defaultBoxes(spec);
    a[0] = 42;
    const b = defaultBoxes(spec);
    expect(b[0]).toBeCloseTo(4 / 300, 7);
    const xyxy = defaultBoxesXYXY(spec);
    for (let i = 0; i < 8732; i += 97) {
      expect(xyxy[i * 4]).toBeCloseTo(b[i * 4]! - b[i * 4 + 2]! / 2, 6);
      expect(xyxy[i * 4 + 3]).toBeCloseTo(b[i * 4 + 1]! + b[i * 4 + 3]! / 2, 6);
    }
  });
});
