/**
 * Images and raw frames -> the network's input tensor, in one pass.
 *
 * Encoded images (any format sharp reads) are decoded, EXIF-oriented and resized by sharp to the
 * input size, warped as SSD trains (or letterboxed), giving raw 8-bit RGB; raw frames from a stream
 * (RGB or BGR, HWC, from a GStreamer appsink) skip sharp. Either way one loop then writes the tensor:
 * channel reorder, mean subtraction and HWC -> CHW for `float-nchw`, or a straight copy (none at all
 * for a single RGB image already at size) for `uint8-nhwc`, whose graph does that work itself.
 */
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { SsdError, oneLine } from '../core/errors.js';
import type { InputLayout } from '../core/model-metadata.js';
import type { InputSpec } from '../core/specs.js';

/** An uncompressed frame, e.g. a GStreamer appsink buffer with caps video/x-raw,format=RGB|BGR. */
export interface RawFrame {
  data: Uint8Array;
  width: number;
  height: number;
  format: 'rgb' | 'bgr';
  /** Bytes per row; default width * 3. GStreamer pads RGB rows to a multiple of 4 bytes. */
  stride?: number;
  /**
   * Size of the picture this frame was scaled from (e.g. the camera's 1920x1080 when the pipeline
   * scales to the model's 300x300 before appsink): boxes are then reported in those pixels.
   */
  sourceWidth?: number;
  sourceHeight?: number;
}

/** A file path, the bytes of an encoded image, or a raw frame. */
export type ImageInput = string | Uint8Array | RawFrame;

export type ResizeMode = 'warp' | 'letterbox';

/**
 * Where the picture sits in the network input: input pixel x = orig x * scaleX + offsetX. Original
 * pixels are those of the EXIF-oriented image (or the frame's source size).
 */
export interface Geometry {
  width: number;
  height: number;
  scaleX: number;
  scaleY: number;
  offsetX: number;
  offsetY: number;
}

export interface TensorTarget {
  layout: InputLayout;
  inputSize: number;
  input: InputSpec;
}

export type TensorData = Float32Array | Uint8Array;

export function isRawFrame(x: ImageInput): x is RawFrame {
  return typeof x === 'object' && !(x instanceof Uint8Array) && x !== null && 'data' in x && 'width' in x;
}

/** A short name for an input, for error messages. */
export function describeInput(x: ImageInput): string {
  if (typeof x === 'string') return `image ${x}`;
  if (x instanceof Uint8Array) return `image buffer (${x.byteLength} bytes)`;
  return `frame ${x.width}x${x.height} ${x.format}`;
}

export function elementsPerImage(t: TensorTarget): number {
  return t.inputSize * t.inputSize * 3;
}

export function allocTensor(t: TensorTarget, batch: number): TensorData {
  const n = elementsPerImage(t) * batch;
  return t.layout === 'float-nchw' ? new Float32Array(n) : new Uint8Array(n);
}

/** Placement of a w x h picture in the S x S input. */
export function placement(width: number, height: number, inputSize: number, mode: ResizeMode): Geometry & { drawWidth: number; drawHeight: number } {
  if (mode === 'warp') {
    return { width, height, scaleX: inputSize / width, scaleY: inputSize / height, offsetX: 0, offsetY: 0, drawWidth: inputSize, drawHeight: inputSize };
  }
  const s = Math.min(inputSize / width, inputSize / height);
  const drawWidth = Math.max(1, Math.min(inputSize, Math.round(width * s)));
  const drawHeight = Math.max(1, Math.min(inputSize, Math.round(height * s)));
  const offsetX = Math.floor((inputSize - drawWidth) / 2);
  const offsetY = Math.floor((inputSize - drawHeight) / 2);
  return { width, height, scaleX: drawWidth / width, scaleY: drawHeight / height, offsetX, offsetY, drawWidth, drawHeight };
}

/** The padding colour of a letterbox: the mean, so that padding is zero after mean subtraction. */
function meanRGB(input: InputSpec): [number, number, number] {
  const [a, b, c] = input.mean;
  return input.channelOrder === 'rgb' ? [a, b, c] : [c, b, a];
}

export interface DecodedImage {
  /** Raw RGB, HWC, inputSize x inputSize. */
  rgb: Buffer;
  geometry: Geometry;
}

async function readInputBytes(input: string | Uint8Array): Promise<Uint8Array> {
  if (typeof input !== 'string') return input;
  try {
    return await readFile(input);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SsdError(code === 'ENOENT' ? `image ${input}: file not found` : `image ${input}: cannot read (${code ?? oneLine(err)})`);
  }
}

/**
 * Decodes an encoded image with sharp: EXIF orientation applied, alpha dropped, greyscale/CMYK made
 * sRGB, resized to the input size (warped, or letterboxed with the mean as padding).
 */
export async function decodeImage(input: string | Uint8Array, inputSize: number, inputSpec: InputSpec, mode: ResizeMode = 'warp'): Promise<DecodedImage> {
  const bytes = await readInputBytes(input);
  const name = describeInput(input);
  try {
    const meta = await sharp(bytes).metadata();
    const width = meta.autoOrient?.width ?? meta.width;
    const height = meta.autoOrient?.height ?? meta.height;
    if (!width || !height) throw new SsdError(`${name}: image has no size`);
    const g = placement(width, height, inputSize, mode);
    let pipe = sharp(bytes, { autoOrient: true }).removeAlpha().toColourspace('srgb')
      .resize(g.drawWidth, g.drawHeight, { fit: 'fill', kernel: 'linear' });
    if (mode === 'letterbox' && (g.drawWidth !== inputSize || g.drawHeight !== inputSize)) {
      const [r, gg, b] = meanRGB(inputSpec).map((v) => Math.max(0, Math.min(255, Math.round(v))));
      pipe = pipe.extend({
        left: g.offsetX, top: g.offsetY,
        right: inputSize - g.drawWidth - g.offsetX, bottom: inputSize - g.drawHeight - g.offsetY,
        background: { r: r!, g: gg!, b: b!, alpha: 1 },
      });
    }
    // 16-bit PNGs/TIFFs would otherwise come out as 16-bit samples.
    const { data, info } = await pipe.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || info.width !== inputSize || info.height !== inputSize) {
      throw new SsdError(`${name}: decoded to ${info.width}x${info.height}x${info.channels}, expected ${inputSize}x${inputSize}x3`);
    }
    const { drawWidth: _w, drawHeight: _h, ...geometry } = g;
    return { rgb: data, geometry };
  } catch (err) {
    if (err instanceof SsdError) throw err;
    throw new SsdError(`${name}: cannot decode (${oneLine(err)})`);
  }
}

/**
 * Writes one S x S HWC 8-bit picture into `out` at image `index` of the batch. For float-nchw: the
 * spec's channel order, mean subtracted, CHW. For uint8-nhwc: RGB HWC (the graph reorders and
 * subtracts the mean).
 */
export function writeTensor(src: Uint8Array, format: 'rgb' | 'bgr', srcStride: number, t: TensorTarget, out: TensorData, index: number): void {
  const S = t.inputSize;
  const plane = S * S;
  const base = index * plane * 3;
  if (t.layout === 'float-nchw') {
    const o = out as Float32Array;
    // Source channel feeding network channel c.
    const swap = (format === 'rgb') !== (t.input.channelOrder === 'rgb');
    const s0 = swap ? 2 : 0;
    const s2 = swap ? 0 : 2;
    const [m0, m1, m2] = t.input.mean;
    for (let y = 0; y < S; y++) {
      let si = y * srcStride;
      let di = base + y * S;
      for (let x = 0; x < S; x++, si += 3, di++) {
        o[di] = src[si + s0]! - m0;
        o[di + plane] = src[si + 1]! - m1;
        o[di + 2 * plane] = src[si + s2]! - m2;
      }
    }
    return;
  }
  const o = out as Uint8Array;
  const row = S * 3;
  if (format === 'rgb') {
    if (srcStride === row) o.set(src.subarray(0, plane * 3), base);
    else for (let y = 0; y < S; y++) o.set(src.subarray(y * srcStride, y * srcStride + row), base + y * row);
    return;
  }
  for (let y = 0; y < S; y++) {
    let si = y * srcStride;
    let di = base + y * row;
    for (let x = 0; x < S; x++, si += 3, di += 3) {
      o[di] = src[si + 2]!;
      o[di + 1] = src[si + 1]!;
      o[di + 2] = src[si]!;
    }
  }
}

/**
 * A raw frame of any size into the tensor, without sharp: bilinear resampling (pixel centres aligned,
 * as OpenCV's INTER_LINEAR) fused with the channel/mean/layout conversion, so a frame that is not yet
 * at the input size still costs one pass. Frames already at S x S (the pipeline scaled them) go
 * through writeTensor.
 */
export function writeFrameTensor(frame: RawFrame, t: TensorTarget, mode: ResizeMode, out: TensorData, index: number): Geometry {
  const { width: W, height: H } = frame;
  const stride = frame.stride ?? W * 3;
  if (!(W > 0 && H > 0) || !Number.isInteger(W) || !Number.isInteger(H)) throw new SsdError(`frame: bad size ${W}x${H}`);
  if (stride < W * 3 || frame.data.byteLength < stride * (H - 1) + W * 3) {
    throw new SsdError(`frame ${W}x${H} ${frame.format}: ${frame.data.byteLength} bytes is too short for stride ${stride}`);
  }
  const S = t.inputSize;
  const g = placement(W, H, S, mode);
  const srcW = frame.sourceWidth ?? W;
  const srcH = frame.sourceHeight ?? H;
  // Report boxes in the source picture's pixels: fold the frame's own scaling into the geometry.
  const geometry: Geometry = { width: srcW, height: srcH, scaleX: g.scaleX * (W / srcW), scaleY: g.scaleY * (H / srcH), offsetX: g.offsetX, offsetY: g.offsetY };
  if (W === S && H === S) {
    writeTensor(frame.data, frame.format, stride, t, out, index);
    return geometry;
  }
  const plane = S * S;
  const base = index * plane * 3;
  const pad = meanRGB(t.input);
  const rgbOut = t.layout === 'uint8-nhwc';
  // Network channel c reads frame channel srcCh[c]; float mean per network channel.
  const netOrder = rgbOut ? 'rgb' : t.input.channelOrder;
  const srcCh = netOrder === frame.format ? [0, 1, 2] : [2, 1, 0];
  const mean = rgbOut ? [0, 0, 0] : t.input.mean;
  const padNet = rgbOut ? pad.map((v) => Math.round(v)) : [0, 0, 0];
  // Column tables: left source offset (bytes) and weight, per output column.
  const x0 = new Int32Array(g.drawWidth);
  const x1 = new Int32Array(g.drawWidth);
  const wx = new Float32Array(g.drawWidth);
  for (let x = 0; x < g.drawWidth; x++) {
    const sx = Math.min(Math.max((x + 0.5) * (W / g.drawWidth) - 0.5, 0), W - 1);
    const xi = Math.floor(sx);
    x0[x] = xi * 3;
    x1[x] = Math.min(xi + 1, W - 1) * 3;
    wx[x] = sx - xi;
  }
  const src = frame.data;
  const [c0, c1, c2] = srcCh as [number, number, number];
  const [m0, m1, m2] = mean as [number, number, number];
  const [p0, p1, p2] = padNet as [number, number, number];
  for (let y = 0; y < S; y++) {
    const dy = y - g.offsetY;
    const inside = dy >= 0 && dy < g.drawHeight;
    let r0 = 0;
    let r1 = 0;
    let wy = 0;
    if (inside) {
      const sy = Math.min(Math.max((dy + 0.5) * (H / g.drawHeight) - 0.5, 0), H - 1);
      const yi = Math.floor(sy);
      r0 = yi * stride;
      r1 = Math.min(yi + 1, H - 1) * stride;
      wy = sy - yi;
    }
    const rowPix = y * S;
    for (let x = 0; x < S; x++) {
      const dx = x - g.offsetX;
      let v0: number, v1: number, v2: number;
      if (inside && dx >= 0 && dx < g.drawWidth) {
        const a = r0 + x0[dx]!, b = r0 + x1[dx]!, c = r1 + x0[dx]!, d = r1 + x1[dx]!;
        const w = wx[dx]!;
        // Bilinear: lerp along x in both rows, then along y.
        let t = src[a + c0]! + (src[b + c0]! - src[a + c0]!) * w;
        v0 = t + (src[c + c0]! + (src[d + c0]! - src[c + c0]!) * w - t) * wy - m0;
        t = src[a + c1]! + (src[b + c1]! - src[a + c1]!) * w;
        v1 = t + (src[c + c1]! + (src[d + c1]! - src[c + c1]!) * w - t) * wy - m1;
        t = src[a + c2]! + (src[b + c2]! - src[a + c2]!) * w;
        v2 = t + (src[c + c2]! + (src[d + c2]! - src[c + c2]!) * w - t) * wy - m2;
      } else {
        v0 = p0;
        v1 = p1;
        v2 = p2;
      }
      const pix = rowPix + x;
      if (rgbOut) {
        const o = base + pix * 3;
        out[o] = Math.round(v0);
        out[o + 1] = Math.round(v1);
        out[o + 2] = Math.round(v2);
      } else {
        out[base + pix] = v0;
        out[base + plane + pix] = v1;
        out[base + 2 * plane + pix] = v2;
      }
    }
  }
  return geometry;
}

/** A box from network coordinates ([0,1] of the input) to original pixels, clipped to the picture. */
export function toOriginalPixels(x1: number, y1: number, x2: number, y2: number, S: number, g: Geometry): [number, number, number, number] {
  const cx = (v: number) => Math.min(Math.max((v * S - g.offsetX) / g.scaleX, 0), g.width);
  const cy = (v: number) => Math.min(Math.max((v * S - g.offsetY) / g.scaleY, 0), g.height);
  return [cx(x1), cy(y1), cx(x2), cy(y2)];
}
