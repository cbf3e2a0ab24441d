/**
 * Images and raw frames -> the network's input tensor. What the model sees is defined once, in
 * core/preprocess.ts (orientation, warp/letterbox, the bilinear resize, colour order, mean, layout),
 * and is what training fed it; this module only gets pixels there:
 *
 * - Encoded images (any format sharp reads) are decoded by imageio/decode.ts, the decode training and
 *   export verification share (libjpeg-turbo for plain JPEGs, sharp for the rest): EXIF orientation
 *   applied (the core's "pictures are upright" rule), alpha dropped, greyscale/CMYK made sRGB, 8 bits
 *   per channel, at full size. The core then resizes them: sharp's own resize kernel is not used, so
 *   `ssd detect` gives the model exactly the tensor the trainer's validation gives it for the same file.
 * - Raw frames (RGB or BGR, HWC, from a GStreamer appsink or the demo source) skip sharp and go to
 *   the core as they are; their `sourceWidth`/`sourceHeight` fold into the geometry so that boxes come
 *   out in the camera's pixels.
 * - Opt-in shrink-on-load (`DecodeOptions.shrinkOnLoad`): a JPEG file at least 2x/4x/8x the model
 *   input in both dimensions is decoded by libjpeg at 1/2, 1/4 or 1/8 size (DCT scaling) and the core
 *   resizes that. Much cheaper for big photos, but not the training pixels (a block average, then the
 *   bilinear taps): docs/runtime.md gives the measured difference and mAP.
 * - Decodes are limited to `decodeSlots()` at once (default one per core beyond the first): big
 *   pictures decode on libuv pool threads, and on a 2-core machine whose cores onnxruntime's intra-op
 *   threads already use, more decodes at once only time-slice against the inference.
 */
import { availableParallelism } from 'node:os';
import { SsdError } from '../core/errors.js';
import type { InputLayout } from '../core/model-contract.js';
import {
  allocModelInput, modelInputElements, writeModelInput,
  type Geometry, type ModelInputTarget, type PictureHWC, type ResizeMode,
} from '../core/preprocess.js';
import { decodePicture, describePicture, type DecodePictureOptions } from '../imageio/decode.js';

export { placement, toOriginalPixels, type Geometry, type ResizeMode } from '../core/preprocess.js';
export { jpegDecoder, jpegShrinkFactor } from '../imageio/decode.js';

/** An uncompressed frame, e.g. a GStreamer appsink buffer with caps video/x-raw,format=RGB|BGR. */
export interface RawFrame extends PictureHWC {
  /**
   * Size of the picture this frame was scaled from (e.g. the camera's 1920x1080 when the pipeline
   * scales to the model's 300x300 before appsink): boxes are then reported in those pixels.
   */
  sourceWidth?: number;
  sourceHeight?: number;
}

/** A file path, the bytes of an encoded image, or a raw frame. */
export type ImageInput = string | Uint8Array | RawFrame;

/** The ONNX model's input: the core's target with one of the two ONNX layouts. */
export interface TensorTarget extends ModelInputTarget {
  layout: InputLayout;
}

export type TensorData = Float32Array | Uint8Array;

export function isRawFrame(x: ImageInput): x is RawFrame {
  return typeof x === 'object' && !(x instanceof Uint8Array) && x !== null && 'data' in x && 'width' in x;
}

/** A short name for an input, for error messages. */
export function describeInput(x: ImageInput): string {
  return isRawFrame(x) ? `frame ${x.width}x${x.height} ${x.format}` : describePicture(x);
}

export const elementsPerImage = (t: TensorTarget): number => modelInputElements(t);

export function allocTensor(t: TensorTarget, batch: number): TensorData {
  return allocModelInput(t, batch);
}

/** How an encoded image is decoded (imageio/decode.ts). */
export type DecodeOptions = DecodePictureOptions;

let slots = Math.max(1, availableParallelism() - 1);
let active = 0;
const waiting: Array<() => void> = [];

/** How many decodes run at once (default: cores - 1, at least 1); `n` sets it. */
export function decodeSlots(n?: number): number {
  if (n !== undefined) {
    if (!(Number.isInteger(n) && n >= 1)) throw new RangeError(`decode slots must be an integer >= 1, got ${n}`);
    slots = n;
    while (active < slots && waiting.length) { active++; waiting.shift()!(); }
  }
  return slots;
}

async function withDecodeSlot<T>(f: () => Promise<T>): Promise<T> {
  if (active < slots) active++;
  else await new Promise<void>((resolve) => waiting.push(resolve));
  try {
    return await f();
  } finally {
    active--;
    if (active < slots && waiting.length) { active++; waiting.shift()!(); }
  }
}

/**
 * Decodes an encoded image (imageio/decode.ts: the decode training and export verification share)
 * into the upright 8-bit RGB picture at its own size, in a decode slot. With `shrinkOnLoad`, a big
 * JPEG file comes out smaller (DecodeOptions), its full size in sourceWidth/Height.
 */
export async function decodeImage(input: string | Uint8Array, opts: DecodeOptions = {}): Promise<RawFrame> {
  return withDecodeSlot(async () => {
    const pic = await decodePicture(input, opts);
    const frame: RawFrame = { data: pic.data, width: pic.width, height: pic.height, format: 'rgb' };
    if (pic.fullWidth !== undefined && pic.fullHeight !== undefined) { frame.sourceWidth = pic.fullWidth; frame.sourceHeight = pic.fullHeight; }
    return frame;
  });
}

/**
 * A decoded image or raw frame of any size into image `index` of the batch tensor (the core's
 * writeModelInput). Returns where it sits, in the pixels of the frame's source picture.
 */
export function writeFrameTensor(frame: RawFrame, t: TensorTarget, mode: ResizeMode, out: TensorData, index: number): Geometry {
  let g: Geometry;
  try {
    g = writeModelInput(frame, t, mode, out, index);
  } catch (err) {
    if (err instanceof RangeError) throw new SsdError(`${describeInput(frame)}: ${err.message}`, { cause: err });
    throw err;
  }
  const srcW = frame.sourceWidth ?? frame.width;
  const srcH = frame.sourceHeight ?? frame.height;
  // Report boxes in the source picture's pixels: fold the frame's own scaling into the geometry.
  return { ...g, width: srcW, height: srcH, scaleX: g.scaleX * (frame.width / srcW), scaleY: g.scaleY * (frame.height / srcH) };
}
