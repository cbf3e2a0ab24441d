// The one preprocessing (core/preprocess.ts), against values computed by hand: channel order, mean,
// the three layouts, the bilinear resize (pixel centres, 8-bit rounding), letterbox placement and
// padding, box geometry back to pixels, and the EXIF orientation rule.
import { describe, expect, it } from 'vitest';
import {
  allocModelInput, applyExifOrientation, meanRGB, placement, resampleBilinearHWC, toOriginalPixels, writeChannels, writeModelInput,
  type ModelInputTarget, type PictureHWC,
} from '../../core/preprocess.js';
import type { InputSpec } from '../../core/specs.js';

// SSD-SPEC "Training recipe": mean (BGR) 104, 117, 123, BGR input.
const CAFFE: InputSpec = { channelOrder: 'bgr', mean: [104, 117, 123] };
const RGB0: InputSpec = { channelOrder: 'rgb', mean: [0, 0, 0] };
const target = (layout: ModelInputTarget['layout'], inputSize: number, input: InputSpec = CAFFE): ModelInputTarget => ({ layout, inputSize, input });

/** A grey picture (the same value in all three channels) from one row-major list of values. */
function grey(values: number[], width: number): PictureHWC {
  const data = new Uint8Array(values.length * 3);
  values.forEach((v, i) => data.fill(v, i * 3, i * 3 + 3));
  return { data, width, height: values.length / width, format: 'rgb' };
}

/** Channel 0 of a float-nhwc model input with a zero mean: the resized picture's values. */
function resized(pic: PictureHWC, S: number, mode: 'warp' | 'letterbox' = 'warp'): number[] {
  const t = target('float-nhwc', S, RGB0);
  const out = allocModelInput(t, 1);
  writeModelInput(pic, t, mode, out, 0);
  return Array.from({ length: S * S }, (_, i) => out[i * 3]!);
}

describe('colour order, mean, layout (writeChannels)', () => {
  it('float-nchw: BGR planes with the BGR mean subtracted, from RGB pixels', () => {
    // 2x2 picture; pixel (x=1, y=0) is RGB (10, 20, 30).
    const rgb = Uint8Array.from([0, 0, 0, 10, 20, 30, 255, 255, 255, 1, 2, 3]);
    const out = allocModelInput(target('float-nchw', 2), 1) as Float32Array;
    writeChannels(rgb, 'rgb', 6, target('float-nchw', 2), out, 0);
    // Plane 0 = B - 104, plane 1 = G - 117, plane 2 = R - 123; index 1 = (y 0, x 1).
    expect(out[0 * 4 + 1]).toBe(30 - 104);
    expect(out[1 * 4 + 1]).toBe(20 - 117);
    expect(out[2 * 4 + 1]).toBe(10 - 123);
    expect(Array.from(out.subarray(0, 4))).toEqual([0 - 104, 30 - 104, 255 - 104, 3 - 104]);
  });

  it('float-nhwc: the same values, channels adjacent (what TensorFlow.js trains on)', () => {
    const rgb = Uint8Array.from([0, 0, 0, 10, 20, 30, 255, 255, 255, 1, 2, 3]);
    const out = allocModelInput(target('float-nhwc', 2), 1) as Float32Array;
    writeChannels(rgb, 'rgb', 6, target('float-nhwc', 2), out, 0);
    expect(Array.from(out.subarray(3, 6))).toEqual([30 - 104, 20 - 117, 10 - 123]);
  });

  it('float-nchw: a BGR frame into an RGB network, second image of a batch, padded rows (stride)', () => {
    const rgbNet: InputSpec = { channelOrder: 'rgb', mean: [1, 2, 3] };
    // 2x1 picture, BGR, stride 8 (2 padding bytes per row).
    const bgr = Uint8Array.from([30, 20, 10, 60, 50, 40, 0, 0, 33, 22, 11, 66, 55, 44, 0, 0]);
    const t = target('float-nchw', 2, rgbNet);
    const out = allocModelInput(t, 2) as Float32Array;
    writeChannels(bgr, 'bgr', 8, t, out, 1);
    expect(Array.from(out.subarray(0, 12)).every((v) => v === 0)).toBe(true);
    const img = out.subarray(12);
    expect(Array.from(img.subarray(0, 4))).toEqual([10 - 1, 40 - 1, 11 - 1, 44 - 1]);
    expect(Array.from(img.subarray(8, 12))).toEqual([30 - 3, 60 - 3, 33 - 3, 66 - 3]);
  });

  it('uint8-nhwc: RGB as is (the graph reorders and subtracts), BGR swapped', () => {
    const t = target('uint8-nhwc', 1);
    const out = allocModelInput(t, 2) as Uint8Array;
    writeChannels(Uint8Array.from([1, 2, 3]), 'rgb', 3, t, out, 0);
    writeChannels(Uint8Array.from([1, 2, 3]), 'bgr', 3, t, out, 1);
    expect(Array.from(out)).toEqual([1, 2, 3, 3, 2, 1]);
  });

  it('meanRGB is the spec mean in RGB order', () => {
    expect(meanRGB(CAFFE)).toEqual([123, 117, 104]);
    expect(meanRGB({ channelOrder: 'rgb', mean: [1, 2, 3] })).toEqual([1, 2, 3]);
  });
});

describe('resize (bilinear on pixel centres, 8-bit result)', () => {
  it('a picture at the input size is used as it is', () => {
    const pic = grey([1, 2, 3, 4, 5, 6, 7, 8, 9], 3);
    expect(resized(pic, 3)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('4x4 -> 2x2 samples source (0.5, 0.5), (2.5, 0.5)...: the mean of each 2x2 block', () => {
    const pic = grey([0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150], 4);
    expect(resized(pic, 2)).toEqual([25, 45, 105, 125]);
  });

  it('rounds to the nearest integer, halves up: 3x3 -> 2x2 samples x\' = 0.25 and 1.75', () => {
    // Row values 0, 10, 20 in every row: x' = 0.25 -> 2.5 -> 3; x' = 1.75 -> 17.5 -> 18.
    const pic = grey([0, 10, 20, 0, 10, 20, 0, 10, 20], 3);
    expect(resized(pic, 2)).toEqual([3, 18, 3, 18]);
  });

  it('upscaling clamps at the edges: 2x2 -> 4x4 samples x\' = 0 (clamped), 0.25, 0.75, 1 (clamped)', () => {
    const pic = grey([0, 100, 0, 100], 2);
    expect(resized(pic, 4)).toEqual([0, 25, 75, 100, 0, 25, 75, 100, 0, 25, 75, 100, 0, 25, 75, 100]);
  });

  it('x is blended first, then y (the order fixes the float rounding)', () => {
    // Not at all hand-friendly sizes: a direct evaluation of the stated formula, taps clamped.
    const W = 7, H = 5, S = 3;
    const vals = Array.from({ length: W * H }, (_, i) => (i * 37) % 256);
    const got = resized(grey(vals, W), S);
    const tap = (d: number, n: number) => {
      const s = Math.min(Math.max((d + 0.5) * (n / S) - 0.5, 0), n - 1);
      const i = Math.floor(s);
      return [i, Math.min(i + 1, n - 1), s - i] as const;
    };
    const want: number[] = [];
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        const [x0, x1, wx] = tap(x, W);
        const [y0, y1, wy] = tap(y, H);
        const v = (xx: number, yy: number) => vals[yy * W + xx]!;
        const top = v(x0, y0) + (v(x1, y0) - v(x0, y0)) * wx;
        const bot = v(x0, y1) + (v(x1, y1) - v(x0, y1)) * wx;
        want.push(Math.floor(top + (bot - top) * wy + 0.5));
      }
    }
    expect(got).toEqual(want);
  });

  it('float sources (augmented pictures) come out as clamped 8-bit values', () => {
    const src = Float32Array.from([-5, -5, -5, 300, 300, 300, 10.5, 10.5, 10.5, 10.49, 10.49, 10.49]);
    const dst = new Float32Array(12);
    resampleBilinearHWC(src, 4, 1, 12, dst, 4, 1, 12);
    expect(Array.from(dst)).toEqual([0, 0, 0, 255, 255, 255, 11, 11, 11, 10, 10, 10]);
  });

  it('a resized BGR frame into a BGR network is the resized RGB picture, channels swapped', () => {
    const W = 9, H = 6, S = 4;
    const rgb = Uint8Array.from({ length: W * H * 3 }, (_, i) => (i * 53) % 256);
    const bgr = new Uint8Array(rgb.length);
    for (let i = 0; i < rgb.length; i += 3) bgr.set([rgb[i + 2]!, rgb[i + 1]!, rgb[i]!], i);
    for (const layout of ['float-nchw', 'float-nhwc', 'uint8-nhwc'] as const) {
      const t = target(layout, S);
      const a = allocModelInput(t, 1);
      const b = allocModelInput(t, 1);
      writeModelInput({ data: rgb, width: W, height: H, format: 'rgb' }, t, 'warp', a, 0);
      writeModelInput({ data: bgr, width: W, height: H, format: 'bgr' }, t, 'warp', b, 0);
      expect(b).toEqual(a);
    }
  });
});

describe('one pass for the float layouts', () => {
  it('gives what resampling into an S x S picture and then writeChannels gives, for both modes, orders, layouts and a padded stride', () => {
    const noise = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (Math.imul(i + seed, 2654435761) >>> 24) & 255);
    let cases = 0;
    for (const [W, H, S] of [[640, 480, 30], [17, 29, 12], [5, 3, 8], [300, 300, 7]] as const) {
      for (const mode of ['warp', 'letterbox'] as const) {
        for (const format of ['rgb', 'bgr'] as const) {
          for (const layout of ['float-nchw', 'float-nhwc'] as const) {
            for (const input of [CAFFE, { channelOrder: 'rgb', mean: [123.7, 116.3, 103.5] } satisfies InputSpec]) {
              const stride = W * 3 + 4; // GStreamer pads RGB rows to 4 bytes
              const pic: PictureHWC = { data: noise(stride * H, W + S), width: W, height: H, format, stride };
              const t = target(layout, S, input);
              const got = allocModelInput(t, 2) as Float32Array;
              writeModelInput(pic, t, mode, got, 1);
              // The two steps, spelled out.
              const g = placement(W, H, S, mode);
              const picture = new Uint8Array(S * S * 3);
              const m = meanRGB(input).map((v) => Math.min(255, Math.max(0, Math.floor(v + 0.5))));
              const pad = format === 'rgb' ? m : [m[2]!, m[1]!, m[0]!];
              for (let i = 0; i < picture.length; i += 3) picture.set(pad, i);
              resampleBilinearHWC(pic.data, W, H, stride, picture, g.drawWidth, g.drawHeight, S * 3, (g.offsetY * S + g.offsetX) * 3);
              const want = allocModelInput(t, 2) as Float32Array;
              writeChannels(picture, format, S * 3, t, want, 1);
              expect(got, `${W}x${H} -> ${S} ${mode} ${format} ${layout} ${input.channelOrder}`).toEqual(want);
              cases++;
            }
          }
        }
      }
    }
    expect(cases).toBe(64);
  });
});

describe('placement and geometry', () => {
  it('letterbox: the picture centred, the padding the mean (zero after subtraction; the mean colour in uint8)', () => {
    // 4x2 picture into 4x4: scale 1, drawn 4x2 at offset y 1.
    const pic: PictureHWC = { data: new Uint8Array(4 * 2 * 3).fill(200), width: 4, height: 2, format: 'rgb' };
    const t = target('float-nchw', 4);
    const out = allocModelInput(t, 1) as Float32Array;
    const g = writeModelInput(pic, t, 'letterbox', out, 0);
    expect(g).toEqual({ width: 4, height: 2, scaleX: 1, scaleY: 1, offsetX: 0, offsetY: 1 });
    expect(Array.from(out.subarray(0, 16))).toEqual([...Array(4).fill(0), ...Array(8).fill(200 - 104), ...Array(4).fill(0)]);
    const t8 = target('uint8-nhwc', 4);
    const out8 = allocModelInput(t8, 1) as Uint8Array;
    writeModelInput(pic, t8, 'letterbox', out8, 0);
    expect(Array.from(out8.subarray(0, 3))).toEqual([123, 117, 104]);
    expect(Array.from(out8.subarray(4 * 3, 4 * 3 + 3))).toEqual([200, 200, 200]);
  });

  it('letterbox resizes the picture to its drawn size: 20x10 into 10 is drawn 10x5 at y 2', () => {
    const pic = grey(Array.from({ length: 200 }, (_, i) => (i % 20 < 10 ? 40 : 80)), 20);
    // Zero mean, so the padding is 0. Column x samples x' = 2x + 0.5: x 4 -> 8.5 (both taps 40),
    // x 5 -> 10.5 (both 80).
    const v = resized(pic, 10, 'letterbox');
    expect(v.slice(0, 20)).toEqual(Array(20).fill(0));
    for (let y = 2; y < 7; y++) expect(v.slice(y * 10, y * 10 + 10)).toEqual([40, 40, 40, 40, 40, 80, 80, 80, 80, 80]);
    expect(v.slice(70, 100)).toEqual(Array(30).fill(0));
  });

  it('warp maps [0,1] input coordinates to picture pixels per axis', () => {
    const g = placement(640, 480, 300, 'warp');
    expect(toOriginalPixels(0.5, 0.5, 1, 1, 300, g)).toEqual([320, 240, 640, 480]);
  });

  it('letterbox: 640x480 into 300 -> drawn 300x225 at y offset 37; boxes map back and clip', () => {
    const g = placement(640, 480, 300, 'letterbox');
    expect(g).toMatchObject({ drawWidth: 300, drawHeight: 225, offsetX: 0, offsetY: 37 });
    // The top edge of the picture is input y 37 -> original 0; input y 0 (padding) clips to 0.
    const [x1, y1, x2, y2] = toOriginalPixels(0, 37 / 300, 0.5, (37 + 112.5) / 300, 300, g);
    expect(x1).toBe(0);
    expect(y1).toBeCloseTo(0, 9);
    expect(x2).toBeCloseTo(320, 9);
    expect(y2).toBeCloseTo(240, 9);
    expect(toOriginalPixels(0, 0, 1, 1, 300, g)).toEqual([0, 0, 640, 480]);
  });

  it('a picture with too few bytes, or one that does not fit the batch, is a RangeError', () => {
    const t = target('float-nchw', 8);
    expect(() => writeModelInput({ data: new Uint8Array(10), width: 8, height: 8, format: 'rgb' }, t, 'warp', allocModelInput(t, 1), 0)).toThrow(/too short/);
    expect(() => writeModelInput({ data: new Uint8Array(192), width: 8, height: 8, format: 'rgb' }, t, 'warp', allocModelInput(t, 1), 1)).toThrow(RangeError);
  });
});

describe('EXIF orientation (the rule decoders are checked against)', () => {
  // Stored 3x2 picture, pixel value = 10 * (stored x) + stored y + 1:
  //   11 21 31
  //   12 22 32
  const stored = grey([11, 21, 31, 12, 22, 32], 3);
  const view = (o: number) => {
    const p = applyExifOrientation(stored, o);
    return { w: p.width, h: p.height, rows: Array.from({ length: p.height }, (_, y) => Array.from({ length: p.width }, (_, x) => p.data[(y * p.width + x) * 3]!)) };
  };

  it('1 keeps, 2 mirrors, 3 turns 180, 4 flips', () => {
    expect(view(1)).toEqual({ w: 3, h: 2, rows: [[11, 21, 31], [12, 22, 32]] });
    expect(view(2)).toEqual({ w: 3, h: 2, rows: [[31, 21, 11], [32, 22, 12]] });
    expect(view(3)).toEqual({ w: 3, h: 2, rows: [[32, 22, 12], [31, 21, 11]] });
    expect(view(4)).toEqual({ w: 3, h: 2, rows: [[12, 22, 32], [11, 21, 31]] });
  });

  it('5-8 swap width and height: 6 turns 90 clockwise (the stored left column becomes the top row)', () => {
    expect(view(5)).toEqual({ w: 2, h: 3, rows: [[11, 12], [21, 22], [31, 32]] });
    expect(view(6)).toEqual({ w: 2, h: 3, rows: [[12, 11], [22, 21], [32, 31]] });
    expect(view(7)).toEqual({ w: 2, h: 3, rows: [[32, 31], [22, 21], [12, 11]] });
    expect(view(8)).toEqual({ w: 2, h: 3, rows: [[31, 32], [21, 22], [11, 12]] });
  });

  it('an unknown orientation reads as 1', () => {
    expect(view(0)).toEqual(view(1));
    expect(view(9)).toEqual(view(1));
  });
});
