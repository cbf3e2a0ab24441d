/**
 * Encoded pictures -> upright 8-bit RGB: the one decode that training (train/data-loader.ts), export
 * verification (export/verify.ts) and the runtime (runtime/preprocess.ts) share, so that all three
 * give the network the same pixels for the same file (the core's resize then does the rest).
 *
 * Two decoders, chosen per file from its header (core/jpeg-header.ts):
 * - the system's libjpeg-turbo through our small addon (imageio/turbojpeg, TurboJPEG API, accurate
 *   integer IDCT) for a plain JPEG: 8-bit, greyscale or YCbCr, upright (EXIF orientation 1 or none),
 *   no ICC profile. That is nearly every camera frame and dataset picture, and it costs a fifth of
 *   sharp's CPU (a 640x480 JPEG here: ~0.8 vs ~4.5 ms; libvips spends ~1 ms per call before it decodes
 *   anything): on a 2-core machine that time is taken from the inference (README, `ssd bench`).
 * - sharp for everything else: other formats, EXIF rotation, ICC profiles (made sRGB), CMYK, 12-bit
 *   samples, the opt-in shrink-on-load; and for every JPEG where the addon is not built (no
 *   libturbojpeg0-dev or compiler there: `jpegDecoder()` says why, the detector's log repeats it).
 * Both decode a plain JPEG to the same pixels, bit for bit (both are libjpeg-turbo's ISLOW IDCT and
 * fancy upsampling; tested), so which one ran changes the speed, never what the model sees.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import sharp from 'sharp';
import { SsdError, oneLine } from '../core/errors.js';
import { readJpegHeader, type JpegHeader } from '../core/jpeg-header.js';

/** An upright 8-bit RGB picture, rows of width * 3 bytes. */
export interface DecodedPicture {
  data: Uint8Array;
  width: number;
  height: number;
  /** The upright size of the encoded picture when it was decoded smaller (shrink-on-load). */
  fullWidth?: number;
  fullHeight?: number;
  decoder: 'libjpeg-turbo' | 'sharp';
}

export interface DecodePictureOptions {
  /**
   * The model input size: a JPEG file at least 2x, 4x or 8x this in both dimensions is decoded at
   * 1/2, 1/4 or 1/8 size (libjpeg's DCT scaling, through sharp), fullWidth/fullHeight keeping the
   * full size. Off (undefined) by default: the pixels then differ from training's full decode.
   */
  shrinkOnLoad?: number;
}

/** A decode that failed: `reason` is the why without the name, for callers that phrase their own line. */
export class PictureError extends SsdError {
  constructor(readonly input: string, readonly reason: string, cause?: unknown) {
    super(`${input}: ${reason}`, { cause });
    this.name = 'PictureError';
  }
}

/** A short name for an input, for error messages. */
export function describePicture(input: string | Uint8Array): string {
  return typeof input === 'string' ? `image ${input}` : `image buffer (${input.byteLength} bytes)`;
}

/** imageio/turbojpeg/turbojpeg.c */
interface TurboJpeg {
  decodeSync(bytes: Uint8Array): { data: Buffer; width: number; height: number };
  decode(bytes: Uint8Array, done: (err: Error | null, result?: { data: Buffer; width: number; height: number }) => void): void;
}

let turbo: { binding?: TurboJpeg; why?: string } | undefined;

function loadTurbo(): TurboJpeg | undefined {
  if (turbo === undefined) {
    try {
      // An optional addon that npm builds at install (node-gyp, against libturbojpeg0-dev); where it
      // could not be built, sharp decodes everything, to the same pixels.
      const require = createRequire(import.meta.url);
      turbo = { binding: require('ssd-turbojpeg') as TurboJpeg };
    } catch (err) {
      turbo = { why: oneLine(err) };
    }
  }
  return turbo.binding;
}

/** SSD_JPEG_DECODER=sharp sends plain JPEGs to sharp too: the A/B of the README's table. */
function forcedDecoder(): 'sharp' | undefined {
  const v = process.env.SSD_JPEG_DECODER?.trim();
  if (v === undefined || v === '' || v === 'libjpeg-turbo') return undefined;
  if (v === 'sharp') return 'sharp';
  throw new SsdError(`SSD_JPEG_DECODER=${v}: expected libjpeg-turbo (the default) or sharp`);
}

/** The addon when plain JPEGs go to it: built, and not overridden by SSD_JPEG_DECODER=sharp. */
function chosenTurbo(): TurboJpeg | undefined {
  return forcedDecoder() === 'sharp' ? undefined : loadTurbo();
}

/** Which decoder plain JPEGs get on this machine, and why not libjpeg-turbo when it is sharp. */
export function jpegDecoder(): { name: 'libjpeg-turbo' | 'sharp'; why?: string } {
  if (chosenTurbo()) return { name: 'libjpeg-turbo' };
  if (forcedDecoder() === 'sharp') return { name: 'sharp', why: 'SSD_JPEG_DECODER=sharp' };
  return { name: 'sharp', why: `the ssd-turbojpeg addon did not load (${turbo?.why}); npm builds it at install where libturbojpeg0-dev and a compiler are present` };
}

/** JPEG shrink factor (1, 2, 4 or 8) for a w x h picture and model input S: the largest k with both sides >= k * S. */
export function jpegShrinkFactor(width: number, height: number, inputSize: number): 1 | 2 | 4 | 8 {
  for (const k of [8, 4, 2] as const) if (width >= k * inputSize && height >= k * inputSize) return k;
  return 1;
}

/** A JPEG that libjpeg-turbo decodes to exactly what the picture means: no rotation, no colour management. */
export const isPlainJpeg = (h: JpegHeader): boolean =>
  (h.frameMarker === 0xc0 || h.frameMarker === 0xc1 || h.frameMarker === 0xc2) && h.precision === 8 &&
  (h.components === 1 || h.components === 3) && h.orientation === 1 && !h.icc;

/**
 * Up to ~1 MP the decode runs on the calling thread: the hop to libuv's pool and back costs ~0.4 ms,
 * half of a 640x480 decode. Bigger pictures decode on the pool, so that several decode at once and
 * the event loop stays free.
 */
const SYNC_DECODE_MAX_PIXELS = 1 << 20;

async function readBytes(input: string | Uint8Array): Promise<Uint8Array> {
  if (typeof input !== 'string') return input;
  try {
    return await readFile(input);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new PictureError(describePicture(input), code === 'ENOENT' ? 'file not found' : `cannot read (${code ?? oneLine(err)})`, err);
  }
}

/**
 * Decodes a file or the bytes of an encoded image (any format sharp reads) into the upright 8-bit
 * RGB picture at its own size: EXIF orientation applied, alpha dropped, greyscale/CMYK/ICC made
 * sRGB, 16-bit samples reduced to 8. Throws a PictureError naming the input.
 */
export async function decodePicture(input: string | Uint8Array, opts: DecodePictureOptions = {}): Promise<DecodedPicture> {
  const bytes = await readBytes(input);
  const name = describePicture(input);
  const header = readJpegHeader(bytes);
  const t = chosenTurbo();
  if (t && header && isPlainJpeg(header) && shrinkOf(input, header, opts) === 1) {
    try {
      const r = header.width * header.height <= SYNC_DECODE_MAX_PIXELS
        ? t.decodeSync(bytes)
        : await new Promise<{ data: Buffer; width: number; height: number }>((resolve, reject) => t.decode(bytes, (err, v) => (err || !v ? reject(err) : resolve(v))));
      if (r.data.byteLength === r.width * r.height * 3) {
        return { data: new Uint8Array(r.data.buffer, r.data.byteOffset, r.data.byteLength), width: r.width, height: r.height, decoder: 'libjpeg-turbo' };
      }
    } catch {
      // sharp decodes the file again and either succeeds (a header this parser misread) or says what
      // is wrong with it, in the words every other format's errors have.
    }
  }
  return decodeWithSharp(input, bytes, name, header, opts);
}

/**
 * The shrink-on-load factor for this input. libvips takes jpegload's shrink only through a file name
 * ("x.jpg[shrink=2]"); a name that has brackets of its own would be misparsed, so such files (and
 * buffers) are decoded whole.
 */
function shrinkOf(input: string | Uint8Array, header: JpegHeader, opts: DecodePictureOptions): 1 | 2 | 4 | 8 {
  if (opts.shrinkOnLoad === undefined || typeof input !== 'string' || /[[\]]/.test(input)) return 1;
  return jpegShrinkFactor(header.width, header.height, opts.shrinkOnLoad);
}

async function decodeWithSharp(input: string | Uint8Array, bytes: Uint8Array, name: string, header: JpegHeader | undefined, opts: DecodePictureOptions): Promise<DecodedPicture> {
  try {
    let source: string | Uint8Array = bytes;
    let full: { width: number; height: number } | undefined;
    if (header) {
      const k = shrinkOf(input, header, opts);
      if (k > 1) {
        source = `${input}[shrink=${k}]`;
        // Upright size: orientations 5-8 swap the sides.
        full = header.orientation >= 5 ? { width: header.height, height: header.width } : { width: header.width, height: header.height };
      }
    }
    // 16-bit PNGs/TIFFs would otherwise come out as 16-bit samples.
    const { data, info } = await sharp(source, { autoOrient: true }).removeAlpha().toColourspace('srgb')
      .raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || !(info.width > 0 && info.height > 0)) throw new PictureError(name, `decoded to ${info.width}x${info.height}x${info.channels}, expected 3 channels`);
    const pic: DecodedPicture = { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height, decoder: 'sharp' };
    if (full) { pic.fullWidth = full.width; pic.fullHeight = full.height; }
    return pic;
  } catch (err) {
    if (err instanceof PictureError) throw err;
    throw new PictureError(name, `cannot decode (${oneLine(err)})`, err);
  }
}
