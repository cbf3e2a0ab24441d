// Images and frames into the runtime (runtime/preprocess.ts): sharp's decode (EXIF orientation as the
// core's rule says, greyscale/alpha/16-bit to 8-bit RGB, errors naming the input) and the raw-frame
// wrapper (source size folded into the geometry). The preprocessing itself is core/preprocess.ts
// (test/core/preprocess.test.ts); test/runtime/preprocess-parity.test.ts checks train = detect = stream.
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { applyExifOrientation } from '../../core/preprocess.js';
import type { InputSpec } from '../../core/specs.js';
import { allocTensor, decodeImage, toOriginalPixels, writeFrameTensor, type TensorTarget } from '../../runtime/preprocess.js';
import { encode, patternRgb } from './helpers.js';

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
