// Images and frames into the runtime (runtime/preprocess.ts): sharp's decode (EXIF orientation as the
// core's rule says, greyscale/alpha/16-bit to 8-bit RGB, errors naming the input) and the raw-frame
// wrapper (source size folded into the geometry). The preprocessing itself is core/preprocess.ts
// (test/core/preprocess.test.ts); test/runtime/preprocess-parity.test.ts checks train = detect = stream.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { applyExifOrientation } from '../../core/preprocess.js';
import type { InputSpec } from '../../core/specs.js';
import {
  allocTensor, decodeImage, decodeSlots, jpegShrinkFactor, toOriginalPixels, writeFrameTensor, type TensorTarget,
} from '../../runtime/preprocess.js';
import { tempDir } from '../helpers/temp-dir.js';
import { encode, patternRgb } from './helpers.js';

const tmp = tempDir('ssd-preprocess-');

const CAFFE: InputSpec = { channelOrder: 'bgr', mean: [104, 117, 123] };
const target = (layout: TensorTarget['layout'], inputSize: number, input: InputSpec = CAFFE): TensorTarget => ({ layout, inputSize, input });

describe('decodeImage (sharp)', () => {
  it('a PNG decodes to exactly its pixels, at its own size', async () => {
    const rgb = patternRgb(30, 20);
    const img = await decodeImage(await encode(rgb, 30, 20));
    expect({ width: img.width, height: img.height, format: img.format }).toEqual({ width: 30, height: 20, format: 'rgb' });
    expect(img.data).toEqual(rgb);
  });

  it('applies EXIF orientation 1-8 exactly as the core rule says (same decoded pixels, moved)', async () => {
    // Asymmetric content, so that every orientation differs.
    const W = 24, H = 10;
    const rgb = patternRgb(W, H, 0.3);
    for (let o = 1; o <= 8; o++) {
      const jpeg = await sharp(rgb, { raw: { width: W, height: H, channels: 3 } }).jpeg({ quality: 90 }).withMetadata({ orientation: o }).toBuffer();
      expect((await sharp(jpeg).metadata()).orientation).toBe(o);
      // The stored pixels as decoded without orientation, then the rule.
      const storedBuf = await sharp(jpeg, { autoOrient: false }).raw().toBuffer();
      const want = applyExifOrientation({ data: new Uint8Array(storedBuf), width: W, height: H, format: 'rgb' }, o);
      const got = await decodeImage(jpeg);
      expect({ o, w: got.width, h: got.height }).toEqual({ o, w: want.width, h: want.height });
      expect(Buffer.compare(Buffer.from(got.data), Buffer.from(want.data))).toBe(0);
    }
  });

  it('greyscale and alpha images come out as 3-channel RGB', async () => {
    const grey = await sharp(Buffer.alloc(10 * 10, 77), { raw: { width: 10, height: 10, channels: 1 } }).png().toBuffer();
    const g = await decodeImage(grey);
    expect(Array.from(g.data.subarray(0, 3))).toEqual([77, 77, 77]);
    const rgba = await sharp(Buffer.alloc(10 * 10 * 4, 200), { raw: { width: 10, height: 10, channels: 4 } }).png().toBuffer();
    expect((await decodeImage(rgba)).data.length).toBe(300);
  });

  it('a 16-bit PNG decodes to 8-bit RGB', async () => {
    const px = new Uint16Array(4 * 4 * 3).fill(65535);
    const png16 = await sharp(Buffer.from(px.buffer), { raw: { width: 4, height: 4, channels: 3, premultiplied: false } }).toColourspace('rgb16').png().toBuffer();
    expect((await sharp(png16).metadata()).depth).toBe('ushort');
    const img = await decodeImage(png16);
    expect(img.data.length).toBe(4 * 4 * 3);
    expect(Array.from(img.data.subarray(0, 3))).toEqual([255, 255, 255]);
  });

  it('a truncated JPEG, a text file and a missing file are one-line SsdErrors naming the input', async () => {
    const jpeg = await encode(patternRgb(64, 64), 64, 64, 'jpeg');
    await expect(decodeImage(jpeg.subarray(0, jpeg.length >> 1))).rejects.toThrow(/image buffer .*cannot decode/);
    await expect(decodeImage(Buffer.from('hello'))).rejects.toThrow(/cannot decode/);
    await expect(decodeImage('/nonexistent/x.jpg')).rejects.toThrow('image /nonexistent/x.jpg: file not found');
  });
});

describe('writeFrameTensor (raw frames and decoded images)', () => {
  it('sourceWidth/sourceHeight report boxes in the pixels of the picture the frame was scaled from', () => {
    const t = target('float-nchw', 8);
    const g = writeFrameTensor({ data: new Uint8Array(8 * 8 * 3), width: 8, height: 8, format: 'bgr', sourceWidth: 1920, sourceHeight: 1080 }, t, 'warp', allocTensor(t, 1), 0);
    expect(toOriginalPixels(0.25, 0.5, 1, 1, 8, g)).toEqual([480, 540, 1920, 1080]);
  });

  it('letterboxed decoded image: padded with the mean colour, geometry in the image pixels', async () => {
    const img = await decodeImage(await encode(new Uint8Array(20 * 10 * 3).fill(9), 20, 10));
    const t = target('uint8-nhwc', 10);
    const out = allocTensor(t, 1);
    const g = writeFrameTensor(img, t, 'letterbox', out, 0);
    expect(g).toEqual({ width: 20, height: 10, scaleX: 0.5, scaleY: 0.5, offsetX: 0, offsetY: 2 });
    expect(Array.from(out.subarray(0, 3))).toEqual([123, 117, 104]);
    expect(Array.from(out.subarray(5 * 30, 5 * 30 + 3))).toEqual([9, 9, 9]);
  });

  it('a frame with too few bytes is an SsdError naming the frame', () => {
    const t = target('float-nchw', 8);
    expect(() => writeFrameTensor({ data: new Uint8Array(10), width: 8, height: 8, format: 'rgb' }, t, 'warp', allocTensor(t, 1), 0)).toThrow(/^frame 8x8 rgb: 10 bytes is too short/);
  });
});

describe('shrink-on-load (opt-in; the default decodes whole, as training does)', () => {
  it('takes the largest of 8, 4, 2 that both sides reach', () => {
    expect(jpegShrinkFactor(640, 480, 300)).toBe(1); // 480 < 600: the README benchmark's picture
    expect(jpegShrinkFactor(600, 600, 300)).toBe(2);
    expect(jpegShrinkFactor(4000, 3000, 300)).toBe(8);
    expect(jpegShrinkFactor(4000, 1199, 300)).toBe(2);
    expect(jpegShrinkFactor(640, 480, 96)).toBe(4);
  });

  it('a JPEG file >= 2x the input decodes at 1/k with its full upright size as the source size (EXIF 6 too)', async () => {
    const rgb = patternRgb(400, 200);
    const plain = join(tmp, 'big.jpg');
    writeFileSync(plain, await encode(rgb, 400, 200, 'jpeg'));
    const rotated = join(tmp, 'big-rot6.jpg');
    writeFileSync(rotated, await sharp(rgb, { raw: { width: 400, height: 200, channels: 3 } }).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer());
    const a = await decodeImage(plain, { shrinkOnLoad: 48 }); // 200 >= 4 * 48
    expect({ w: a.width, h: a.height, sw: a.sourceWidth, sh: a.sourceHeight }).toEqual({ w: 100, h: 50, sw: 400, sh: 200 });
    const r = await decodeImage(rotated, { shrinkOnLoad: 48 });
    expect({ w: r.width, h: r.height, sw: r.sourceWidth, sh: r.sourceHeight }).toEqual({ w: 50, h: 100, sw: 200, sh: 400 });
    // Boxes come back in the full picture's pixels.
    const t = target('float-nchw', 48);
    const g = writeFrameTensor(a, t, 'warp', allocTensor(t, 1), 0);
    expect(toOriginalPixels(0, 0, 1, 1, 48, g)).toEqual([0, 0, 400, 200]);
    expect(toOriginalPixels(0.5, 0.25, 0.75, 0.5, 48, g)).toEqual([200, 50, 300, 100]);
  });

  it('buffers, non-JPEG files, small JPEGs and names with brackets decode whole', async () => {
    const jpeg = await encode(patternRgb(400, 200), 400, 200, 'jpeg');
    const png = join(tmp, 'big.png');
    writeFileSync(png, await encode(patternRgb(400, 200), 400, 200));
    const bracket = join(tmp, 'big[1].jpg');
    writeFileSync(bracket, jpeg);
    for (const input of [jpeg, png, bracket]) {
      const f = await decodeImage(input, { shrinkOnLoad: 48 });
      expect({ w: f.width, sw: f.sourceWidth }).toEqual({ w: 400, sw: undefined });
    }
    expect((await decodeImage(bracket.replace('[1]', ''), { shrinkOnLoad: 101 })).width).toBe(400); // 200 < 2 * 101
  });

  it('stays close to the full decode + the core resize (the bound docs/runtime.md gives)', async () => {
    // A smooth picture, as photos mostly are; the digits scenes measured in docs/runtime.md are sharper.
    const W = 640, H = 480, S = 96;
    const rgb = new Uint8Array(W * H * 3);
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const i = (y * W + x) * 3;
        rgb[i] = 128 + 100 * Math.sin(x / 23); rgb[i + 1] = 128 + 100 * Math.sin(y / 17); rgb[i + 2] = 128 + 90 * Math.sin((x + y) / 31);
      }
    }
    const path = join(tmp, 'smooth.jpg');
    writeFileSync(path, await encode(rgb, W, H, 'jpeg'));
    const t = target('uint8-nhwc', S);
    const full = allocTensor(t, 1);
    const small = allocTensor(t, 1);
    writeFrameTensor(await decodeImage(path), t, 'warp', full, 0);
    const shrunk = await decodeImage(path, { shrinkOnLoad: S });
    expect(shrunk.width).toBe(W / 4);
    writeFrameTensor(shrunk, t, 'warp', small, 0);
    let sum = 0, max = 0;
    for (let i = 0; i < full.length; i++) { const d = Math.abs(full[i]! - small[i]!); sum += d; max = Math.max(max, d); }
    expect(sum / full.length).toBeLessThan(1.5);
    expect(max).toBeLessThanOrEqual(12);
  });
});

describe('decode slots', () => {
  it('many decodes through one slot all finish, in order; a bad count is refused', async () => {
    const before = decodeSlots();
    try {
      expect(decodeSlots(1)).toBe(1);
      const jpeg = await encode(patternRgb(64, 48), 64, 48, 'jpeg');
      const done: number[] = [];
      await Promise.all(Array.from({ length: 6 }, (_, i) => decodeImage(jpeg).then((f) => { expect(f.width).toBe(64); done.push(i); })));
      expect(done).toEqual([0, 1, 2, 3, 4, 5]);
      expect(() => decodeSlots(0)).toThrow(RangeError);
    } finally {
      decodeSlots(before);
    }
  });
});
