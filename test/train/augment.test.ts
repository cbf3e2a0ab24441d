import { describe, expect, it } from 'vitest';
import { createRng } from '../../core/rng.js';
import { SsdError } from '../../core/errors.js';
import { specByName } from '../../core/specs.js';
import { Expand } from '../../train/augment/expand.js';
import { iou } from '../../core/iou.js';
import { MinIoURandomCrop } from '../../train/augment/min-iou-random-crop.js';
import { Normalize } from '../../train/augment/normalize.js';
import { PhotoMetricDistortion, shiftHsv } from '../../train/augment/photometric-distortion.js';
import { buildPipeline, runPipeline, ssdTrainPipeline } from '../../train/augment/pipeline.js';
import { RandomFlip } from '../../train/augment/random-flip.js';
import { Resize } from '../../train/augment/resize.js';
import type { AugSample } from '../../train/augment/types.js';

const COLOURS: [number, number, number][] = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]];
const BG: [number, number, number] = [40, 40, 40];

/** A W x H image with solid, non-overlapping rectangles of distinct colours; boxes are their extents. */
function paintedSample(W = 120, H = 90): AugSample {
  const rects = [[10, 8, 50, 40], [60, 10, 110, 30], [20, 50, 45, 85], [70, 45, 118, 88]];
  const data = new Float32Array(W * H * 3);
  for (let i = 0; i < W * H; i++) data.set(BG, i * 3);
  rects.forEach(([x1, y1, x2, y2], k) => {
    for (let y = y1!; y < Math.min(y2!, H); y++) for (let x = x1!; x < Math.min(x2!, W); x++) data.set(COLOURS[k]!, (y * W + x) * 3);
  });
  return {
    image: { dataHWC: data, width: W, height: H },
    boxesXYXY: Float32Array.from(rects.flat()),
    labels: Int32Array.from([1, 2, 3, 4]),
    difficult: Uint8Array.from([0, 1, 0, 0]),
  };
}

/** Every pixel whose centre lies `inset` pixels inside a box has the box's colour (label k+1 -> COLOURS[k]). */
function expectBoxesOnColours(s: AugSample, inset = 0, tol = 1e-3): void {
  const { width: W, dataHWC } = s.image;
  for (let i = 0; i < s.labels.length; i++) {
    const [x1, y1, x2, y2] = Array.from(s.boxesXYXY.subarray(i * 4, i * 4 + 4));
    const want = COLOURS[s.labels[i]! - 1]!;
    let checked = 0;
    const bad: string[] = [];
    for (let y = Math.ceil(y1! + inset - 0.5); y + 0.5 <= y2! - inset; y++) {
      for (let x = Math.ceil(x1! + inset - 0.5); x + 0.5 <= x2! - inset; x++) {
        for (let c = 0; c < 3; c++) if (Math.abs(dataHWC[(y * W + x) * 3 + c]! - want[c]!) > tol) bad.push(`box ${i} (${x},${y})[${c}]=${dataHWC[(y * W + x) * 3 + c]}`);
        checked++;
      }
    }
    expect(bad.slice(0, 5)).toEqual([]);
    expect(checked).toBeGreaterThan(0);
  }
}

describe('augmentation steps keep boxes on the same pixels (SSD-SPEC "Data augmentation")', () => {
  it('Expand: boxes move with the image, canvas filled with the mean, ratio in [1, 4]', () => {
    const step = new Expand({ meanRGB: [123, 117, 104], ratioRange: [1, 4], p: 1 });
    for (let seed = 0; seed < 20; seed++) {
      const src = paintedSample();
      const out = step.apply(src, createRng(seed));
      expect(out.image.width).toBeGreaterThanOrEqual(src.image.width);
      expect(out.image.width).toBeLessThanOrEqual(4 * src.image.width);
      expect(out.image.height / src.image.height).toBeCloseTo(out.image.width / src.image.width, 1);
      expectBoxesOnColours(out);
      expect(Array.from(out.image.dataHWC.subarray(0, 3)).concat(Array.from(out.image.dataHWC.subarray(-3)))
        .some((v, i) => v === [123, 117, 104][i % 3])).toBe(true);
      expect(Array.from(out.difficult)).toEqual([0, 1, 0, 0]);
    }
  });

  it('Expand fires with probability p', () => {
    const step = new Expand({ meanRGB: [0, 0, 0], p: 0.5 });
    const rng = createRng(7);
    const small: AugSample = { ...paintedSample(8, 8), boxesXYXY: new Float32Array(), labels: new Int32Array(), difficult: new Uint8Array() };
    let fired = 0;
    for (let i = 0; i < 2000; i++) if (step.apply(small, rng) !== small) fired++;
    expect(fired / 2000).toBeGreaterThan(0.45);
    expect(fired / 2000).toBeLessThan(0.55);
  });

  it('RandomFlip: mirrored boxes cover the same colours; flipping twice is the identity', () => {
    const step = new RandomFlip({ p: 1 });
    const src = paintedSample();
    const once = step.apply(src, createRng(1));
    expectBoxesOnColours(once);
    expect(once.boxesXYXY[0]).toBe(120 - 50);
    const twice = step.apply(once, createRng(2));
    expect(Buffer.compare(Buffer.from(twice.image.dataHWC.buffer), Buffer.from(src.image.dataHWC.buffer))).toBe(0);
    expect(Array.from(twice.boxesXYXY)).toEqual(Array.from(src.boxesXYXY));
    const never = new RandomFlip({ p: 0 }).apply(src, createRng(3));
    expect(never).toBe(src);
  });

  it('Resize: boxes scale with the warp and still cover their colour (1 px in from the edges)', () => {
    for (const size of [300, 64, 97]) {
      const out = new Resize({ size }).apply(paintedSample());
      expect(out.image.width).toBe(size);
      expect(out.image.height).toBe(size);
      expect(out.boxesXYXY[2]).toBeCloseTo((50 * size) / 120, 4);
      expect(out.boxesXYXY[3]).toBeCloseTo((40 * size) / 90, 4);
      // Bilinear taps reach one source pixel across the edge: size / 90 output pixels when upscaling.
      expectBoxesOnColours(out, Math.max(1, size / 90) + 0.5);
    }
  });

  it('Resize is the core\'s resize: an 8-bit picture (rounded, clamped) at size, also when already at size', () => {
    // 4x1 -> 2x1 samples x' = 0.5 and 2.5: (0 + 10) / 2 = 5, (20.4 + 300) / 2 = 160.2 -> 160.
    const img = Float32Array.from([0, 0, 0, 10, 10, 10, 20.4, 20.4, 20.4, 300, 300, 300]);
    const sample: AugSample = { image: { dataHWC: img, width: 4, height: 1 }, boxesXYXY: new Float32Array(0), labels: new Int32Array(0), difficult: new Uint8Array(0) };
    const out = new Resize({ size: 2 }).apply(sample);
    expect(out.image).toMatchObject({ width: 2, height: 2 });
    expect(Array.from(out.image.dataHWC.subarray(0, 6))).toEqual([5, 5, 5, 160, 160, 160]);
    // At size already: quantised to 8 bits too (photometric distortion leaves fractions).
    const at = new Resize({ size: 1 }).apply({ ...sample, image: { dataHWC: Float32Array.from([1.4, 1.5, 256]), width: 1, height: 1 } });
    expect(Array.from(at.image.dataHWC)).toEqual([1, 2, 255]);
    // Resize + Normalize: whole numbers minus the spec mean.
    const spec = specByName('ssd-tiny');
    const norm = new Normalize(spec.input).apply(new Resize({ size: 37 }).apply(paintedSample()));
    const m = spec.input.mean;
    expect(Array.from(norm.image.dataHWC).every((v, i) => Number.isInteger(v + m[i % 3]!))).toBe(true);
  });

  it('MinIoURandomCrop: each sampler meets its constraint; kept boxes are those with their centre in the patch, on their pixels', () => {
    // Encode each pixel's own coordinates in R and G so the patch position can be read back from the crop.
    const W = 200, H = 160;
    const base = paintedSample(W, H);
    const coords = new Float32Array(W * H * 3);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) coords.set([x, y, 7], (y * W + x) * 3);
    const gt = Float32Array.from([10, 10, 60, 50, 100, 20, 190, 150, 30, 90, 70, 140]);
    const gtNorm = gt.map((v, k) => v / (k % 2 === 0 ? W : H));
    const sample: AugSample = { image: { dataHWC: coords, width: W, height: H }, boxesXYXY: gt, labels: Int32Array.from([1, 2, 3]), difficult: new Uint8Array(3) };
    const step = new MinIoURandomCrop();
    expect(step.modes).toEqual(['whole', 0.1, 0.3, 0.5, 0.7, 0.9, 'random']);
    let cropped = 0;
    let empty = 0;
    for (const mode of [0.1, 0.3, 0.5, 0.7, 0.9, 'random'] as const) {
      for (let seed = 0; seed < 25; seed++) {
        // The constraint holds on the continuous patch (as in Caffe) ...
        const patch = step.findPatch(sample, createRng(seed * 31 + 1), mode);
        if (patch === undefined) continue;
        const [x1, y1, x2, y2] = patch;
        expect(x1).toBeGreaterThanOrEqual(0); expect(y1).toBeGreaterThanOrEqual(0);
        expect(x2).toBeLessThanOrEqual(1 + 1e-12); expect(y2).toBeLessThanOrEqual(1 + 1e-12);
        // Scale [0.3, 1] of the side (geometric mean), aspect ratio (relative to the image's) in [0.5, 2].
        expect(Math.sqrt((x2 - x1) * (y2 - y1))).toBeGreaterThanOrEqual(0.3 - 1e-9);
        expect((x2 - x1) / (y2 - y1)).toBeGreaterThanOrEqual(0.5 - 1e-9);
        expect((x2 - x1) / (y2 - y1)).toBeLessThanOrEqual(2 + 1e-9);
        if (typeof mode === 'number') {
          let best = 0;
          for (let i = 0; i < 3; i++) best = Math.max(best, iou(patch, gtNorm, 0, i));
          expect(best).toBeGreaterThanOrEqual(mode);
        }
        // ... and applyMode crops exactly that patch, truncated to whole pixels.
        const out = step.applyMode(sample, createRng(seed * 31 + 1), mode);
        cropped++;
        const px = out.image.dataHWC[0]!, py = out.image.dataHWC[1]!;
        expect(px).toBe(Math.floor(x1 * W));
        expect(py).toBe(Math.floor(y1 * H));
        expect(out.image.width).toBe(Math.floor((x2 - x1) * W));
        expect(out.image.height).toBe(Math.floor((y2 - y1) * H));
        const pix = [px, py, px + out.image.width, py + out.image.height];
        // Centre rule (Caffe's emit constraint CENTER): exactly the ground truth with its centre in the patch survives.
        const expected: number[] = [];
        for (let i = 0; i < 3; i++) {
          const cx = (gt[i * 4]! + gt[i * 4 + 2]!) / 2, cy = (gt[i * 4 + 1]! + gt[i * 4 + 3]!) / 2;
          if (cx >= pix[0]! && cx <= pix[2]! && cy >= pix[1]! && cy <= pix[3]!) expected.push(i + 1);
        }
        expect(Array.from(out.labels)).toEqual(expected);
        if (expected.length === 0) empty++;
        // Kept boxes are the originals clipped to the patch, in patch coordinates.
        out.labels.forEach((label, k) => {
          const i = label - 1;
          expect(out.boxesXYXY[k * 4]).toBe(Math.max(gt[i * 4]!, pix[0]!) - px);
          expect(out.boxesXYXY[k * 4 + 3]).toBe(Math.min(gt[i * 4 + 3]!, pix[3]!) - py);
        });
      }
    }
    expect(cropped).toBeGreaterThan(100);
    // As in Caffe, a patch that meets its constraint may still hold no object's centre (it trains as background).
    expect(empty).toBeGreaterThan(0);
    // No object: no sampler can succeed (each of Caffe's constraints needs one); the image stays whole.
    const none: AugSample = { ...sample, boxesXYXY: new Float32Array(), labels: new Int32Array(), difficult: new Uint8Array() };
    expect(step.samplePatches(none, createRng(1))).toEqual([{ mode: 'whole' }]);
    // Same check with solid colours.
    for (let seed = 0; seed < 30; seed++) expectBoxesOnColours(step.apply(base, createRng(seed)));
  });

  // SSD-SPEC "Data augmentation" 3: every sampler runs, then one patch is picked among those found.
  // The fixed image: 80 x 60 with objects at (10,10)-(40,30) and (50,30)-(75,55). Expected numbers from an
  // independent numpy re-implementation of Caffe's GenerateBatchSamples (ssd_pascal.py's samplers):
  //   python3 scripts/fixtures/caffe-batch-sampler.py 80 60 '[[10,10,40,30],[50,30,75,55]]'
  // -> one trial meets min Jaccard 0.1/0.3/0.5/0.7/0.9 with p = 0.9249/0.1656/0.0280/0.0025/0.0000;
  //    within 50 trials each sampler finds a patch with p = 1.0/0.9999/0.7579/0.1187/0.0010 (any patch: 1);
  //    uncropped share E[1 / (1 + K)] = 0.2076 (the reference's ~21%), against 0.4461 for the former
  //    "draw one of 7 modes, keep the whole image when it fails" (the 44% of the issue).
  describe('MinIoURandomCrop samples as Caffe does', () => {
    const W = 80, H = 60;
    const fixed: AugSample = {
      image: { dataHWC: new Float32Array(W * H * 3), width: W, height: H },
      boxesXYXY: Float32Array.from([10, 10, 40, 30, 50, 30, 75, 55]), labels: Int32Array.from([1, 2]), difficult: new Uint8Array(2),
    };
    const N = 6000;
    /** |observed - p| within 4.5 standard deviations of a binomial share over n draws (fixed seeds: deterministic). */
    const expectShare = (count: number, n: number, p: number) => {
      const sd = Math.sqrt(Math.max(p * (1 - p), 1e-4) / n);
      expect(Math.abs(count / n - p), `observed ${count / n}, expected ${p}`).toBeLessThanOrEqual(4.5 * sd);
    };

    it('a single trial: scale U(0.3, 1), ratio U(0.5, 2) clamped to [s^2, 1/s^2] meet each constraint as often as in Caffe', () => {
      const oneTrial = new MinIoURandomCrop({ maxTrials: 1 });
      const rng = createRng(3);
      const hits = new Array<number>(7).fill(0);
      for (let i = 0; i < N; i++) for (const f of oneTrial.samplePatches(fixed, rng)) hits[oneTrial.modes.indexOf(f.mode)]!++;
      [1, 0.9249, 0.1656, 0.028, 0.0025, 0, 1].forEach((p, k) => expectShare(hits[k]!, N, p));
    });

    it('every sampler runs (up to 50 trials each) and the whole image is always a candidate', () => {
      const step = new MinIoURandomCrop();
      const rng = createRng(2);
      const hits = new Array<number>(7).fill(0);
      for (let i = 0; i < N; i++) {
        const found = step.samplePatches(fixed, rng);
        expect(found[0]).toEqual({ mode: 'whole' });
        // In sampler order, each at most once.
        const order = found.map((f) => step.modes.indexOf(f.mode));
        expect(order).toEqual([...order].sort((a, b) => a - b));
        expect(new Set(order).size).toBe(order.length);
        for (const k of order) hits[k]!++;
      }
      [1, 1, 0.9999, 0.7579, 0.1187, 0.001, 1].forEach((p, k) => expectShare(hits[k]!, N, p));
    });

    it('one patch is picked uniformly among those found: 20.8% of images stay uncropped (the reference), not 44.6%', () => {
      const step = new MinIoURandomCrop();
      const rng = createRng(11);
      let whole = 0;
      for (let i = 0; i < N; i++) if (step.apply(fixed, rng) === fixed) whole++;
      expectShare(whole, N, 0.2076);
      expect(whole / N).toBeLessThan(0.3);
    });
  });

  it('PhotoMetricDistortion: boxes unchanged, values clamped to 0..255, brightness within +-32 and applied with p = 0.5', () => {
    const onlyBrightness = new PhotoMetricDistortion({ contrastRange: [1, 1], saturationRange: [1, 1], hueDelta: 0 });
    const flat: AugSample = { ...paintedSample(4, 4), boxesXYXY: Float32Array.from([0, 0, 2, 2]), labels: Int32Array.from([1]), difficult: new Uint8Array(1) };
    flat.image.dataHWC.fill(100);
    const rng = createRng(5);
    let changed = 0;
    let minDelta = 0, maxDelta = 0;
    for (let i = 0; i < 2000; i++) {
      const out = onlyBrightness.apply(flat, rng);
      expect(out.boxesXYXY).toBe(flat.boxesXYXY);
      const d = out.image.dataHWC[0]! - 100;
      expect(out.image.dataHWC.every((v) => Math.abs(v - 100 - d) < 1e-4)).toBe(true);
      if (d !== 0) changed++;
      minDelta = Math.min(minDelta, d); maxDelta = Math.max(maxDelta, d);
    }
    expect(changed / 2000).toBeGreaterThan(0.45);
    expect(changed / 2000).toBeLessThan(0.55);
    expect(minDelta).toBeGreaterThanOrEqual(-32);
    expect(maxDelta).toBeLessThanOrEqual(32);
    expect(maxDelta - minDelta).toBeGreaterThan(55);
    const full = new PhotoMetricDistortion({ p: 1 });
    for (let seed = 0; seed < 20; seed++) {
      const out = full.apply(paintedSample(), createRng(seed));
      expect(out.image.dataHWC.every((v) => v >= 0 && v <= 255)).toBe(true);
    }
    expect(new PhotoMetricDistortion({ p: 0 }).apply(flat, createRng(1)).image.dataHWC).toEqual(flat.image.dataHWC);
  });

  it('hue and saturation (hand-computed HSV)', () => {
    const close = (a: number[], b: number[]) => a.forEach((v, i) => expect(v).toBeCloseTo(b[i]!, 3));
    close(shiftHsv(255, 0, 0, 120, 1), [0, 255, 0]);
    close(shiftHsv(255, 0, 0, -120, 1), [0, 0, 255]);
    close(shiftHsv(255, 0, 0, 0, 0.5), [255, 127.5, 127.5]);
    close(shiftHsv(200, 100, 100, 0, 1.5), [200, 50, 50]);
    close(shiftHsv(90, 90, 90, 18, 1.5), [90, 90, 90]);
  });

  it('Normalize reorders to BGR and subtracts the mean (SSD-SPEC: BGR 104, 117, 123)', () => {
    const s = paintedSample(2, 1);
    s.image.dataHWC.set([200, 150, 100, 0, 0, 0]);
    const out = new Normalize({ channelOrder: 'bgr', mean: [104, 117, 123] }).apply(s);
    expect(Array.from(out.image.dataHWC)).toEqual([100 - 104, 150 - 117, 200 - 123, -104, -117, -123]);
  });
});

describe('pipeline as data', () => {
  const spec = specByName('ssd300');

  it('the SSD recipe keeps boxes inside the image, is deterministic per seed, and ends at the input size', () => {
    const steps = buildPipeline(ssdTrainPipeline(), spec);
    expect(steps.map((s) => s.name)).toEqual(['PhotoMetricDistortion', 'Expand', 'MinIoURandomCrop', 'RandomFlip', 'Resize', 'Normalize']);
    for (let seed = 0; seed < 15; seed++) {
      const a = runPipeline(steps, paintedSample(), createRng(seed));
      const b = runPipeline(steps, paintedSample(), createRng(seed));
      expect(a.image.width).toBe(300);
      expect(a.image.height).toBe(300);
      expect(Array.from(a.boxesXYXY)).toEqual(Array.from(b.boxesXYXY));
      expect(Buffer.compare(Buffer.from(a.image.dataHWC.buffer), Buffer.from(b.image.dataHWC.buffer))).toBe(0);
      // (A crop may keep no object, as in the reference; the boxes it keeps stay inside the image.)
      for (let i = 0; i < a.labels.length; i++) {
        const [x1, y1, x2, y2] = Array.from(a.boxesXYXY.subarray(i * 4, i * 4 + 4));
        expect(x1).toBeGreaterThanOrEqual(0); expect(y1).toBeGreaterThanOrEqual(0);
        expect(x2).toBeLessThanOrEqual(300 + 1e-3); expect(y2).toBeLessThanOrEqual(300 + 1e-3);
        expect(x2! > x1! && y2! > y1!).toBe(true);
      }
    }
  });

  it('geometric part of the recipe keeps boxes on their colours', () => {
    const steps = buildPipeline([{ type: 'Expand', p: 1 }, { type: 'MinIoURandomCrop' }, { type: 'RandomFlip' }], spec);
    for (let seed = 0; seed < 30; seed++) expectBoxesOnColours(runPipeline(steps, paintedSample(), createRng(seed)));
  });

  it('validation names the step and the field', () => {
    expect(() => buildPipeline({}, spec)).toThrow(SsdError);
    expect(() => buildPipeline([{ type: 'Zoom' }], spec)).toThrow(/augment\[0\]\.type must be one of/);
    expect(() => buildPipeline([{ type: 'RandomFlip', prob: 0.5 }], spec)).toThrow(/augment\[0\]: RandomFlip has no parameter "prob"/);
    expect(() => buildPipeline([{ type: 'Resize' }, { type: 'RandomFlip', p: 2 }], spec)).toThrow(/augment\[1\]: RandomFlip: probability/);
    expect(() => buildPipeline([{ type: 'Expand', ratioRange: 'big' }], spec)).toThrow(/augment\[0\]\.ratioRange must be/);
  });
});
