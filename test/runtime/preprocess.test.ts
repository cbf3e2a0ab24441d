// Image/frame -> tensor: channel order, mean, layouts, resizing, letterbox geometry, EXIF orientation and
// the mapping of boxes back to original pixels, against values computed by hand.
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { InputSpec } from '../../core/specs.js';
import {
  allocTensor, decodeImage, placement, toOriginalPixels, writeFrameTensor, writeTensor, type TensorTarget,
} from '../../runtime/preprocess.js';
import { encode, patternRgb } from './helpers.js';

// SSD-SPEC "Training recipe": mean (BGR) 104, 117, 123, BGR input.
const CAFFE: InputSpec = { channelOrder: 'bgr', mean: [104, 117, 123] };
const target = (layout: TensorTarget['layout'], inputSize: number, input: InputSpec = CAFFE): TensorTarget => ({ layout, inputSize, input });

describe('writeTensor', () => {
  it('float-nchw: BGR planes with the BGR mean subtracted, from RGB pixels', () => {
    // 2x2 picture; pixel (x=1, y=0) is RGB (10, 20, 30).
    const rgb = Uint8Array.from([0, 0, 0, 10, 20, 30, 255, 255, 255, 1, 2, 3]);
    const out = allocTensor(target('float-nchw', 2), 1) as Float32Array;
    writeTensor(rgb, 'rgb', 6, target('float-nchw', 2), out, 0);
    // Plane 0 = B - 104, plane 1 = G - 117, plane 2 = R - 123; index 1 = (y 0, x 1).
    expect(out[0 * 4 + 1]).toBe(30 - 104);
    expect(out[1 * 4 + 1]).toBe(20 - 117);
    expect(out[2 * 4 + 1]).toBe(10 - 123);
    expect(Array.from(out.subarray(0, 4))).toEqual([0 - 104, 30 - 104, 255 - 104, 3 - 104]);
  });

  it('float-nchw: a BGR frame into an RGB network, second image of a batch, padded rows (stride)', () => {
    const rgbNet: InputSpec = { channelOrder: 'rgb', mean: [1, 2, 3] };
    // 2x1 picture, BGR, stride 8 (2 padding bytes per row).
    const bgr = Uint8Array.from([30, 20, 10, 60, 50, 40, 0, 0, 33, 22, 11, 66, 55, 44, 0, 0]);
    const t = target('float-nchw', 2, rgbNet);
    const out = allocTensor(t, 2) as Float32Array;
    writeTensor(bgr, 'bgr', 8, t, out, 1);
    expect(Array.from(out.subarray(0, 12)).every((v) => v === 0)).toBe(true);
    const img = out.subarray(12);
    expect(Array.from(img.subarray(0, 4))).toEqual([10 - 1, 40 - 1, 11 - 1, 44 - 1]);
    expect(Array.from(img.subarray(8, 12))).toEqual([30 - 3, 60 - 3, 33 - 3, 66 - 3]);
  });

  it('uint8-nhwc: RGB as is (the graph reorders and subtracts), BGR swapped', () => {
    const t = target('uint8-nhwc', 1);
    const out = allocTensor(t, 2) as Uint8Array;
    writeTensor(Uint8Array.from([1, 2, 3]), 'rgb', 3, t, out, 0);
    writeTensor(Uint8Array.from([1, 2, 3]), 'bgr', 3, t, out, 1);
    expect(Array.from(out)).toEqual([1, 2, 3, 3, 2, 1]);
  });
});

describe('writeFrameTensor (raw frames, no sharp)', () => {
  it('a frame at the input size is written exactly as writeTensor writes it', () => {
    const rgb = patternRgb(16, 16);
    const t = target('float-nchw', 16);
    const a = allocTensor(t, 1);
    const b = allocTensor(t, 1);
    writeTensor(rgb, 'rgb', 48, t, a, 0);
    const g = writeFrameTensor({ data: rgb, width: 16, height: 16, format: 'rgb' }, t, 'warp', b, 0);
    expect(b).toEqual(a);
    expect(g).toEqual({ width: 16, height: 16, scaleX: 1, scaleY: 1, offsetX: 0, offsetY: 0 });
  });

  it('2x downscale with aligned pixel centres averages each 2x2 block (hand-computed)', () => {
    // 4x2 frame, one channel pattern repeated: values v(x, y); output 2x1... use a 4x4 -> 2x2.
    const W = 4;
    const vals = [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150];
    const data = new Uint8Array(W * W * 3);
    vals.forEach((v, i) => data.fill(v, i * 3, i * 3 + 3));
    const t = target('float-nchw', 2, { channelOrder: 'rgb', mean: [0, 0, 0] });
    const out = allocTensor(t, 1) as Float32Array;
    writeFrameTensor({ data, width: 4, height: 4, format: 'rgb' }, t, 'warp', out, 0);
    // Output pixel (0,0) samples source (0.5, 0.5): mean of 0, 10, 40, 50 = 25.
    expect(Array.from(out.subarray(0, 4))).toEqual([25, 45, 105, 125]);
  });

  it('letterbox: the picture centred, the padding equal to the mean (zero after subtraction)', () => {
    // 4x2 frame into 4x4: scale 1, drawn 4x2 at offset y 1.
    const data = new Uint8Array(4 * 2 * 3).fill(200);
    const t = target('float-nchw', 4);
    const out = allocTensor(t, 1) as Float32Array;
    const g = writeFrameTensor({ data, width: 4, height: 2, format: 'rgb' }, t, 'letterbox', out, 0);
    expect(g).toEqual({ width: 4, height: 2, scaleX: 1, scaleY: 1, offsetX: 0, offsetY: 1 });
    const plane0 = Array.from(out.subarray(0, 16));
    expect(plane0).toEqual([...Array(4).fill(0), ...Array(8).fill(200 - 104), ...Array(4).fill(0)]);
    // uint8: padding is the mean colour in RGB (123, 117, 104).
    const t8 = target('uint8-nhwc', 4);
    const out8 = allocTensor(t8, 1) as Uint8Array;
    writeFrameTensor({ data, width: 4, height: 2, format: 'rgb' }, t8, 'letterbox', out8, 0);
    expect(Array.from(out8.subarray(0, 3))).toEqual([123, 117, 104]);
    expect(Array.from(out8.subarray(4 * 3, 4 * 3 + 3))).toEqual([200, 200, 200]);
  });

  it('sourceWidth/sourceHeight report boxes in the pixels of the picture the frame was scaled from', () => {
    const t = target('float-nchw', 8);
    const g = writeFrameTensor({ data: new Uint8Array(8 * 8 * 3), width: 8, height: 8, format: 'bgr', sourceWidth: 1920, sourceHeight: 1080 }, t, 'warp', allocTensor(t, 1), 0);
    expect(toOriginalPixels(0.25, 0.5, 1, 1, 8, g)).toEqual([480, 540, 1920, 1080]);
  });

  it('a frame with too few bytes is an SsdError', () => {
    const t = target('float-nchw', 8);
    expect(() => writeFrameTensor({ data: new Uint8Array(10), width: 8, height: 8, format: 'rgb' }, t, 'warp', allocTensor(t, 1), 0)).toThrow(/too short/);
  });
});

describe('geometry', () => {
  it('warp maps [0,1] input coordinates to original pixels per axis', () => {
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
});

describe('decodeImage (sharp)', () => {
  it('a PNG already at the input size decodes to exactly its pixels', async () => {
    const rgb = patternRgb(24, 24);
    const img = await decodeImage(await encode(rgb, 24, 24), 24, CAFFE);
    expect(new Uint8Array(img.rgb)).toEqual(rgb);
  });

  it('applies EXIF orientation: a 40x20 image tagged "rotate 90 CW" is 20x40, left half on top', async () => {
    // Stored pixels: left half red, right half blue.
    const W = 40, H = 20;
    const rgb = new Uint8Array(W * H * 3);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) rgb.set(x < W / 2 ? [255, 0, 0] : [0, 0, 255], (y * W + x) * 3);
    const jpeg = await sharp(rgb, { raw: { width: W, height: H, channels: 3 } }).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toBuffer();
    expect((await sharp(jpeg).metadata()).orientation).toBe(6);
    const img = await decodeImage(jpeg, 8, CAFFE);
    expect(img.geometry).toMatchObject({ width: 20, height: 40 });
    // Orientation 6 turns the left (red) half into the top half.
    const top = img.rgb.subarray(1 * 8 * 3 + 4 * 3, 1 * 8 * 3 + 4 * 3 + 3);
    const bottom = img.rgb.subarray(6 * 8 * 3 + 4 * 3, 6 * 8 * 3 + 4 * 3 + 3);
    expect(top[0]).toBeGreaterThan(200);
    expect(top[2]).toBeLessThan(60);
    expect(bottom[2]).toBeGreaterThan(200);
    expect(bottom[0]).toBeLessThan(60);
  });

  it('greyscale and alpha images come out as 3-channel RGB', async () => {
    const grey = await sharp(Buffer.alloc(10 * 10, 77), { raw: { width: 10, height: 10, channels: 1 } }).png().toBuffer();
    const g = await decodeImage(grey, 10, CAFFE);
    expect(Array.from(g.rgb.subarray(0, 3))).toEqual([77, 77, 77]);
    const rgba = await sharp(Buffer.alloc(10 * 10 * 4, 200), { raw: { width: 10, height: 10, channels: 4 } }).png().toBuffer();
    expect((await decodeImage(rgba, 10, CAFFE)).rgb.length).toBe(300);
  });

  it('letterbox pads with the mean colour', async () => {
    const img = await decodeImage(await encode(new Uint8Array(20 * 10 * 3).fill(9), 20, 10), 10, CAFFE, 'letterbox');
    expect(img.geometry).toEqual({ width: 20, height: 10, scaleX: 0.5, scaleY: 0.5, offsetX: 0, offsetY: 2 });
    expect(Array.from(img.rgb.subarray(0, 3))).toEqual([123, 117, 104]);
    expect(Array.from(img.rgb.subarray(5 * 30, 5 * 30 + 3))).toEqual([9, 9, 9]);
  });

  it('a truncated JPEG, a text file and a missing file are one-line SsdErrors naming the input', async () => {
    const jpeg = await encode(patternRgb(64, 64), 64, 64, 'jpeg');
    await expect(decodeImage(jpeg.subarray(0, jpeg.length >> 1), 8, CAFFE)).rejects.toThrow(/image buffer .*cannot decode/);
    await expect(decodeImage(Buffer.from('hello'), 8, CAFFE)).rejects.toThrow(/cannot decode/);
    await expect(decodeImage('/nonexistent/x.jpg', 8, CAFFE)).rejects.toThrow('image /nonexistent/x.jpg: file not found');
  });
});

describe('decodeImage bit depth', () => {
  it('a 16-bit PNG decodes to 8-bit RGB', async () => {
    const px = new Uint16Array(4 * 4 * 3).fill(65535);
    const png16 = await sharp(Buffer.from(px.buffer), { raw: { width: 4, height: 4, channels: 3, premultiplied: false } }).toColourspace('rgb16').png().toBuffer();
    expect((await sharp(png16).metadata()).depth).toBe('ushort');
    const img = await decodeImage(png16, 4, CAFFE);
    expect(img.rgb.length).toBe(4 * 4 * 3);
    expect(Array.from(img.rgb.subarray(0, 3))).toEqual([255, 255, 255]);
  });
});
