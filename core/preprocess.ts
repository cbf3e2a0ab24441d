/**
 * Preprocessing: the one definition of what a model sees for a picture. The trainer (the augment
 * pipeline's final Resize + Normalize, validation), `ssd detect` (runtime/detector.ts) and streams
 * (raw frames) all end here, so an image gives the same network input in training and in serving
 * (test/runtime/preprocess-parity.test.ts: exactly equal).
 *
 * 1. Orientation. Pictures are upright: the EXIF orientation tag is applied before pixels reach this
 *    module, and every box (annotations, detections) is in upright pixels. The decoders (sharp with
 *    `autoOrient` in train/data-loader.ts and runtime/preprocess.ts) do it; `applyExifOrientation`
 *    below is the rule, against which the tests check sharp.
 * 2. Placement. `warp` (as SSD trains, SSD-SPEC: "images warped to 300x300") stretches the picture to
 *    S x S; `letterbox` scales it to fit, centred, and pads with the mean colour.
 * 3. Resize. Bilinear on pixel centres (OpenCV INTER_LINEAR's convention, no antialiasing): output
 *    pixel x samples source x' = (x + 0.5) * W / w - 0.5, clamped to [0, W - 1]; the two taps along x
 *    are blended first, then the two rows. The result is an 8-bit picture: rounded to the nearest
 *    integer (halves up), clamped to 0..255, as the reference's cv::resize of an 8-bit image gives.
 *    Padding is the mean colour rounded the same way. A picture already at S x S is used as it is.
 * 4. Colour order. Pictures are RGB or BGR (a camera pipeline may deliver either); the float layouts
 *    take the spec's `input.channelOrder` (Caffe VGG: BGR), `uint8-nhwc` always RGB (its graph
 *    reorders).
 * 5. Mean. The spec's `input.mean` (in its channel order) is subtracted, no scaling (SSD-SPEC); in
 *    `uint8-nhwc` models the graph subtracts it.
 * 6. Layout. `float-nchw` (ONNX), `float-nhwc` (TensorFlow.js training and validation), `uint8-nhwc`
 *    (ONNX models exported with `--input uint8-nhwc`).
 *
 * Pure TypeScript on typed arrays: the hot loop is one bilinear pass over the S x S output (only the
 * taps are read from the source, whatever its size); for the float layouts that pass also does order,
 * mean and layout, for uint8 a second pass reorders when the frame is BGR.
 */
import type { InputLayout } from './model-contract.js';
import type { InputSpec } from './specs.js';

export type PixelFormat = 'rgb' | 'bgr';

/** An upright 8-bit picture, channels interleaved: a decoded image or a camera frame. */
export interface PictureHWC {
  data: Uint8Array;
  width: number;
  height: number;
  format: PixelFormat;
  /** Bytes per row; default width * 3 (GStreamer pads RGB rows to a multiple of 4 bytes). */
  stride?: number;
}

export type ResizeMode = 'warp' | 'letterbox';

/** The network input layouts: ONNX's two (core/model-contract.ts) and TensorFlow.js's float NHWC. */
export type ModelInputLayout = InputLayout | 'float-nhwc';

export interface ModelInputTarget {
  layout: ModelInputLayout;
  inputSize: number;
  input: InputSpec;
}

/**
 * Where the picture sits in the network input: input pixel x = picture x * scaleX + offsetX.
 * width/height are the picture's (upright) size.
 */
export interface Geometry {
  width: number;
  height: number;
  scaleX: number;
  scaleY: number;
  offsetX: number;
  offsetY: number;
}

/** Placement of a w x h picture in the S x S input, and the size it is drawn at. */
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

/** A box from network coordinates ([0,1] of the input) to picture pixels, clipped to the picture. */
export function toOriginalPixels(x1: number, y1: number, x2: number, y2: number, S: number, g: Geometry): [number, number, number, number] {
  const cx = (v: number) => Math.min(Math.max((v * S - g.offsetX) / g.scaleX, 0), g.width);
  const cy = (v: number) => Math.min(Math.max((v * S - g.offsetY) / g.scaleY, 0), g.height);
  return [cx(x1), cy(y1), cx(x2), cy(y2)];
}

/** The spec's mean as an RGB colour (Expand's fill, letterbox padding). */
export function meanRGB(input: InputSpec): [number, number, number] {
  const [a, b, c] = input.mean;
  return input.channelOrder === 'rgb' ? [a, b, c] : [c, b, a];
}

/**
 * A value of the 8-bit picture: nearest integer (halves up), clamped to 0..255. `| 0` truncates,
 * which is the floor for the positive values that reach it, and cheaper than Math.floor.
 */
const to8bit = (v: number): number => (v <= 0 ? 0 : v >= 255 ? 255 : (v + 0.5) | 0);

/**
 * Per output index along one axis: the two source taps (as element offsets: index * `step`) and the
 * weight of the second.
 */
function bilinearTaps(srcSize: number, dstSize: number, step: number): { i0: Int32Array; i1: Int32Array; w: Float64Array } {
  const i0 = new Int32Array(dstSize);
  const i1 = new Int32Array(dstSize);
  const w = new Float64Array(dstSize);
  const scale = srcSize / dstSize;
  for (let d = 0; d < dstSize; d++) {
    const s = Math.min(Math.max((d + 0.5) * scale - 0.5, 0), srcSize - 1);
    const i = Math.floor(s);
    i0[d] = i * step;
    i1[d] = Math.min(i + 1, srcSize - 1) * step;
    w[d] = s - i;
  }
  return { i0, i1, w };
}

/**
 * The resize of step 3: `src` (srcW x srcH, 3 channels, `srcStride` elements per row) resampled to
 * dstW x dstH and written as 8-bit values into `dst` (rows of `dstStride` elements starting at
 * `dstOffset`), channels kept in their order. `src` may be a float picture (augmentation works in
 * float32 0..255); the output is 8-bit values either way.
 */
export function resampleBilinearHWC(
  src: Uint8Array | Float32Array, srcW: number, srcH: number, srcStride: number,
  dst: Uint8Array | Float32Array, dstW: number, dstH: number, dstStride: number, dstOffset = 0,
): void {
  const tx = bilinearTaps(srcW, dstW, 3);
  const ty = bilinearTaps(srcH, dstH, srcStride);
  for (let y = 0; y < dstH; y++) {
    const r0 = ty.i0[y]!;
    const r1 = ty.i1[y]!;
    const wy = ty.w[y]!;
    let o = dstOffset + y * dstStride;
    for (let x = 0; x < dstW; x++, o += 3) {
      const a = r0 + tx.i0[x]!, b = r0 + tx.i1[x]!, c = r1 + tx.i0[x]!, d = r1 + tx.i1[x]!;
      const wx = tx.w[x]!;
      dst[o] = lerp8(src[a]!, src[b]!, src[c]!, src[d]!, wx, wy);
      dst[o + 1] = lerp8(src[a + 1]!, src[b + 1]!, src[c + 1]!, src[d + 1]!, wx, wy);
      dst[o + 2] = lerp8(src[a + 2]!, src[b + 2]!, src[c + 2]!, src[d + 2]!, wx, wy);
    }
  }
}

/** One resampled value: the two taps along x blended, then the two rows; 8-bit (to8bit). */
function lerp8(a: number, b: number, c: number, d: number, wx: number, wy: number): number {
  const top = a + (b - a) * wx;
  const bot = c + (d - c) * wx;
  return to8bit(top + (bot - top) * wy);
}

/**
 * Steps 3-6 in one pass for the float layouts: every value is the 8-bit value resampleBilinearHWC
 * gives, in the spec's channel order, minus its mean, written straight into image `index` of `out`.
 * The same numbers as resampling into an S x S picture and then writeChannels (tested), without the
 * picture: one pass over the input less per frame, CPU that a 2-core stream takes from inference.
 */
function resampleIntoFloat(pic: PictureHWC, stride: number, t: ModelInputTarget, g: { offsetX: number; offsetY: number; drawWidth: number; drawHeight: number }, out: Float32Array, index: number): void {
  const S = t.inputSize;
  const plane = S * S;
  const base = index * plane * 3;
  const nchw = t.layout === 'float-nchw';
  const step = nchw ? 1 : 3;
  const cstep = nchw ? plane : 1;
  const [m0, m1, m2] = t.input.mean;
  // Network channel 0 comes from source channel 0, or 2 when the orders differ.
  const swap = pic.format !== t.input.channelOrder;
  const { offsetX, offsetY, drawWidth, drawHeight } = g;
  if (drawWidth !== S || drawHeight !== S) {
    // Padding: the mean rounded to 8 bits, minus the mean (what the padded picture gives).
    const p0 = to8bit(m0!) - m0!, p1 = to8bit(m1!) - m1!, p2 = to8bit(m2!) - m2!;
    for (let i = 0, di = base; i < plane; i++, di += step) { out[di] = p0; out[di + cstep] = p1; out[di + 2 * cstep] = p2; }
  }
  const src = pic.data;
  const tx = bilinearTaps(pic.width, drawWidth, 3);
  const ty = bilinearTaps(pic.height, drawHeight, stride);
  for (let y = 0; y < drawHeight; y++) {
    const r0 = ty.i0[y]!;
    const r1 = ty.i1[y]!;
    const wy = ty.w[y]!;
    let di = base + ((y + offsetY) * S + offsetX) * step;
    for (let x = 0; x < drawWidth; x++, di += step) {
      const a = r0 + tx.i0[x]!, b = r0 + tx.i1[x]!, c = r1 + tx.i0[x]!, d = r1 + tx.i1[x]!;
      const wx = tx.w[x]!;
      const v0 = lerp8(src[a]!, src[b]!, src[c]!, src[d]!, wx, wy);
      const v1 = lerp8(src[a + 1]!, src[b + 1]!, src[c + 1]!, src[d + 1]!, wx, wy);
      const v2 = lerp8(src[a + 2]!, src[b + 2]!, src[c + 2]!, src[d + 2]!, wx, wy);
      out[di] = (swap ? v2 : v0) - m0!;
      out[di + cstep] = v1 - m1!;
      out[di + 2 * cstep] = (swap ? v0 : v2) - m2!;
    }
  }
}

/**
 * Steps 4-6 on an S x S picture: writes image `index` of the batch `out` in the target's layout,
 * channel order and mean. `src` rows are `srcStride` bytes apart.
 */
export function writeChannels(src: Uint8Array, format: PixelFormat, srcStride: number, t: ModelInputTarget, out: Float32Array | Uint8Array, index: number): void {
  const S = t.inputSize;
  const plane = S * S;
  const base = index * plane * 3;
  if (t.layout === 'uint8-nhwc') {
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
    return;
  }
  const o = out as Float32Array;
  // Source channel feeding network channel c (0 and 2 swap when the orders differ).
  const swap = format !== t.input.channelOrder;
  const s0 = swap ? 2 : 0;
  const s2 = swap ? 0 : 2;
  const [m0, m1, m2] = t.input.mean;
  const nchw = t.layout === 'float-nchw';
  // NCHW: the channels are planes `plane` apart; NHWC: adjacent.
  const step = nchw ? 1 : 3;
  const cstep = nchw ? plane : 1;
  for (let y = 0; y < S; y++) {
    let si = y * srcStride;
    let di = base + y * S * step;
    for (let x = 0; x < S; x++, si += 3, di += step) {
      o[di] = src[si + s0]! - m0;
      o[di + cstep] = src[si + 1]! - m1;
      o[di + 2 * cstep] = src[si + s2]! - m2;
    }
  }
}

/**
 * The model input for one picture (steps 2-6): image `index` of the batch `out` (allocModelInput).
 * Returns where the picture sits, for mapping boxes back (toOriginalPixels).
 */
export function writeModelInput(pic: PictureHWC, t: ModelInputTarget, mode: ResizeMode, out: Float32Array | Uint8Array, index: number): Geometry {
  const { width: W, height: H, format } = pic;
  const stride = pic.stride ?? W * 3;
  // RangeErrors name no input: callers know what the picture was (runtime: "frame 640x480 rgb: ...").
  if (!(W > 0 && H > 0) || !Number.isInteger(W) || !Number.isInteger(H)) throw new RangeError(`bad size ${W}x${H}`);
  if (stride < W * 3 || pic.data.byteLength < stride * (H - 1) + W * 3) {
    throw new RangeError(`${pic.data.byteLength} bytes is too short for ${H} rows of ${W} pixels, stride ${stride}`);
  }
  const S = t.inputSize;
  if (out.length < (index + 1) * S * S * 3) throw new RangeError(`model input: image ${index} does not fit a buffer of ${out.length} values`);
  const { drawWidth, drawHeight, ...geometry } = placement(W, H, S, mode);
  if (W === S && H === S) {
    writeChannels(pic.data, format, stride, t, out, index);
    return geometry;
  }
  if (t.layout !== 'uint8-nhwc') {
    resampleIntoFloat(pic, stride, t, { ...geometry, drawWidth, drawHeight }, out as Float32Array, index);
    return geometry;
  }
  // The S x S 8-bit picture, in the source's channel order; an RGB picture for a uint8 model is
  // resampled straight into the batch (that layout is the picture itself).
  const direct = format === 'rgb';
  const row = S * 3;
  const picture = direct ? (out as Uint8Array).subarray(index * S * row, (index + 1) * S * row) : new Uint8Array(S * row);
  if (drawWidth !== S || drawHeight !== S) {
    const m = meanRGB(t.input).map(to8bit);
    const pad = format === 'rgb' ? m : [m[2]!, m[1]!, m[0]!];
    for (let i = 0; i < picture.length; i += 3) { picture[i] = pad[0]!; picture[i + 1] = pad[1]!; picture[i + 2] = pad[2]!; }
  }
  resampleBilinearHWC(pic.data, W, H, stride, picture, drawWidth, drawHeight, row, geometry.offsetY * row + geometry.offsetX * 3);
  if (!direct) writeChannels(picture, format, row, t, out, index);
  return geometry;
}

/** Values per image of the model input. */
export const modelInputElements = (t: ModelInputTarget): number => t.inputSize * t.inputSize * 3;

/** A zeroed model input for `batch` images: Float32Array for the float layouts, Uint8Array for uint8-nhwc. */
export function allocModelInput(t: ModelInputTarget, batch: number): Float32Array | Uint8Array {
  const n = modelInputElements(t) * batch;
  return t.layout === 'uint8-nhwc' ? new Uint8Array(n) : new Float32Array(n);
}

/**
 * Steps 4-5 for the training pipeline's Normalize: an RGB float HWC picture (the Resize step's
 * output) to the spec's channel order minus its mean. On an 8-bit picture it gives exactly what
 * writeModelInput writes for `float-nhwc`.
 */
export function normalizeHWC(rgbHWC: Float32Array, input: InputSpec): Float32Array {
  const out = new Float32Array(rgbHWC.length);
  const [m0, m1, m2] = input.mean;
  const bgr = input.channelOrder === 'bgr';
  for (let i = 0; i < rgbHWC.length; i += 3) {
    const r = rgbHWC[i]!, g = rgbHWC[i + 1]!, b = rgbHWC[i + 2]!;
    out[i] = (bgr ? b : r) - m0; out[i + 1] = g - m1; out[i + 2] = (bgr ? r : b) - m2;
  }
  return out;
}

/**
 * Step 1, the rule: the upright picture for pixels stored with EXIF orientation `orientation`
 * (1 upright, 2 mirrored, 3 rotated 180, 4 flipped, 5 transposed, 6 rotated 90 clockwise to view,
 * 7 transversed, 8 rotated 90 counter-clockwise; anything else is read as 1, as decoders do).
 * Decoders apply it themselves (sharp's autoOrient); this is what they are checked against.
 */
export function applyExifOrientation(pic: PictureHWC, orientation: number): PictureHWC {
  const { width: W, height: H } = pic;
  const stride = pic.stride ?? W * 3;
  const o = Number.isInteger(orientation) && orientation >= 1 && orientation <= 8 ? orientation : 1;
  const swap = o >= 5;
  const w = swap ? H : W;
  const h = swap ? W : H;
  const data = new Uint8Array(w * h * 3);
  // Stored pixel (sx, sy) feeding upright pixel (x, y).
  const from: (x: number, y: number) => [number, number] = [
    (x: number, y: number): [number, number] => [x, y],
    (x: number, y: number): [number, number] => [W - 1 - x, y],
    (x: number, y: number): [number, number] => [W - 1 - x, H - 1 - y],
    (x: number, y: number): [number, number] => [x, H - 1 - y],
    (x: number, y: number): [number, number] => [y, x],
    (x: number, y: number): [number, number] => [y, H - 1 - x],
    (x: number, y: number): [number, number] => [W - 1 - y, H - 1 - x],
    (x: number, y: number): [number, number] => [W - 1 - y, x],
  ][o - 1]!;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const [sx, sy] = from(x, y);
      const si = sy * stride + sx * 3;
      const di = (y * w + x) * 3;
      data[di] = pic.data[si]!; data[di + 1] = pic.data[si + 1]!; data[di + 2] = pic.data[si + 2]!;
    }
  }
  return { data, width: w, height: h, format: pic.format };
}
