// Train/serve parity: the same image files through the trainer (validation, and the data loader with
// the evaluation pipeline Resize + Normalize), `ssd detect` (Detector.prepare, float-nchw and
// uint8-nhwc models) and the stream's raw-frame path (Detector.prepare on an RGB or BGR frame with
// padded rows) give the same model input.
//
// Bound: exactly equal (max |difference| 0) for every path and image, a JPEG with EXIF orientation 6
// included. All paths share core/preprocess.ts, and the trainer and the runtime decode files with the
// same function (imageio/decode.ts), so the JPEG decode adds no difference either. A
// uint8-nhwc model's input is the 8-bit picture itself; minus the mean in the spec's order it is the
// float input exactly. Frames that GStreamer scales before the appsink (stream pipelines in warp mode)
// are resampled by videoscale, not the core: its 2-tap bilinear has the same pixel-centre convention
// and is checked here to stay within 1 (8-bit fixed-point rounding) of the core's picture, on the
// exact convert/scale text of the CPU pipelines. Jetson's nvvidconv is not measured (no device here).
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Dataset } from '../../core/datasets/types.js';
import { defaultBoxes } from '../../core/default-boxes.js';
import { writeModelInput } from '../../core/preprocess.js';
import { decodePicture } from '../../imageio/decode.js';
import { Detector, type RawFrame } from '../../runtime/detector.js';
import { CPU_GST, convertTail } from '../../runtime/stream/pipelines.js';
import { buildPipeline, evalPipeline } from '../../train/augment/pipeline.js';
import { DataLoader, ImageSource } from '../../train/data-loader.js';
import { validationInput } from '../../train/validate.js';
import { tempDir } from '../helpers/temp-dir.js';
import { encode, patternRgb, tinySpec, writeTinyModel } from './helpers.js';

const dir = tempDir('ssd-parity-');
const spec = tinySpec();
const S = spec.inputSize;
const quiet = { log: () => {}, thread: 'main' as const, warmup: false };

/** name -> file; the upright size each should decode to. */
const files: Array<{ name: string; path: string; width: number; height: number }> = [];

beforeAll(async () => {
  const add = (name: string, bytes: Buffer, width: number, height: number) => {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    files.push({ name, path, width, height });
  };
  add('wide.png', await encode(patternRgb(200, 100), 200, 100), 200, 100);
  // Stored 160x120, EXIF orientation 6 (rotate 90 clockwise to view): upright 120x160.
  const stored = patternRgb(160, 120, 1.7);
  add('rotated.jpg', await sharp(stored, { raw: { width: 160, height: 120, channels: 3 } }).jpeg({ quality: 85 }).withMetadata({ orientation: 6 }).toBuffer(), 120, 160);
  add('plain.jpg', await encode(patternRgb(77, 131, 0.4), 77, 131, 'jpeg'), 77, 131);
  add('at-size.png', await encode(patternRgb(S, S, 2.2), S, S), S, S);
  add('grey.png', await sharp(Buffer.from(patternRgb(50, 70).filter((_, i) => i % 3 === 0)), { raw: { width: 50, height: 70, channels: 1 } }).png().toBuffer(), 50, 70);
});

/** The trainer's validation input (float NHWC, spec order minus mean) for one file. */
async function trainerValidation(path: string): Promise<{ nhwc: Float32Array; width: number; height: number }> {
  const img = await new ImageSource().load(path);
  if (!img) throw new Error(`trainer could not read ${path}`);
  return { nhwc: validationInput([img], S, spec.input).inputNHWC, width: img.width, height: img.height };
}

/** The same picture as a camera would deliver it: upright, BGR or RGB, rows padded to 4 bytes. */
async function asFrame(path: string, format: 'rgb' | 'bgr'): Promise<RawFrame> {
  const pic = await decodePicture(path);
  const data = pic.data;
  const info = { width: pic.width, height: pic.height };
  const row = info.width * 3;
  const stride = (row + 3) & ~3;
  const out = new Uint8Array(stride * info.height).fill(0xee);
  for (let y = 0; y < info.height; y++) {
    for (let x = 0; x < info.width; x++) {
      const s = y * row + x * 3;
      const d = y * stride + x * 3;
      out[d] = data[s + (format === 'bgr' ? 2 : 0)]!;
      out[d + 1] = data[s + 1]!;
      out[d + 2] = data[s + (format === 'bgr' ? 0 : 2)]!;
    }
  }
  return { data: out, width: info.width, height: info.height, format, stride };
}

/** NCHW -> NHWC for one image. */
function nchwToNhwc(nchw: Float32Array): Float32Array {
  const plane = S * S;
  const out = new Float32Array(plane * 3);
  for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) out[p * 3 + c] = nchw[c * plane + p]!;
  return out;
}

/** Largest |a - b| (0 when equal), NaN-safe. */
function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= m)) m = d;
  }
  return m;
}

describe('train/serve parity of the model input (bound: exactly equal)', () => {
  it('trainer validation = data loader with the evaluation pipeline (Resize + Normalize)', async () => {
    const dataset: Dataset = {
      name: 'parity', labels: spec.labels, warnings: [],
      samples: files.map((f, i) => ({ id: `s${i}`, imagePath: f.path, width: f.width, height: f.height, objects: [{ classId: 1, box: [2, 2, 20, 20], difficult: false }] })),
    };
    const loader = new DataLoader({ dataset, spec, steps: buildPipeline(evalPipeline(), spec), batchSize: files.length, seed: 1, shuffle: false }, defaultBoxes(spec));
    const batch = await loader.batch(0);
    expect(batch.size).toBe(files.length);
    const n = S * S * 3;
    for (const [i, f] of files.entries()) {
      const val = await trainerValidation(f.path);
      expect({ file: f.name, width: val.width, height: val.height }).toEqual({ file: f.name, width: f.width, height: f.height });
      expect({ file: f.name, diff: maxAbsDiff(batch.imagesNHWC.subarray(i * n, (i + 1) * n), val.nhwc) }).toEqual({ file: f.name, diff: 0 });
    }
  });

  it('ssd detect (float-nchw and uint8-nhwc models) and the stream raw-frame path (RGB and BGR frames) = trainer validation', async () => {
    const float = await Detector.load(writeTinyModel(dir, { input: 'float-nchw' }), quiet);
    const uint8 = await Detector.load(writeTinyModel(dir, { input: 'uint8-nhwc' }), quiet);
    const [m0, m1, m2] = spec.input.mean;
    const bgrNet = spec.input.channelOrder === 'bgr';
    try {
      for (const f of files) {
        const want = (await trainerValidation(f.path)).nhwc;
        // A varied picture, so that equality means something.
        expect(new Set(want).size).toBeGreaterThan(50);
        const detect = await float.prepare(f.path);
        expect(detect.tensor.dims).toEqual([1, 3, S, S]);
        expect(detect.geometries[0]).toMatchObject({ width: f.width, height: f.height });
        expect({ file: f.name, path: 'detect float-nchw', diff: maxAbsDiff(nchwToNhwc(detect.tensor.data as Float32Array), want) }).toEqual({ file: f.name, path: 'detect float-nchw', diff: 0 });

        // uint8-nhwc: RGB bytes; the graph reorders and subtracts the mean.
        const rgb = (await uint8.prepare(f.path)).tensor.data as Uint8Array;
        const fromBytes = new Float32Array(rgb.length);
        for (let i = 0; i < rgb.length; i += 3) {
          fromBytes[i] = rgb[i + (bgrNet ? 2 : 0)]! - m0;
          fromBytes[i + 1] = rgb[i + 1]! - m1;
          fromBytes[i + 2] = rgb[i + (bgrNet ? 0 : 2)]! - m2;
        }
        expect({ file: f.name, path: 'detect uint8-nhwc', diff: maxAbsDiff(fromBytes, want) }).toEqual({ file: f.name, path: 'detect uint8-nhwc', diff: 0 });

        for (const format of ['rgb', 'bgr'] as const) {
          const frame = await asFrame(f.path, format);
          const stream = await float.prepare(frame);
          expect({ file: f.name, path: `stream ${format} frame`, diff: maxAbsDiff(nchwToNhwc(stream.tensor.data as Float32Array), want) }).toEqual({ file: f.name, path: `stream ${format} frame`, diff: 0 });
          expect(Buffer.compare(Buffer.from((await uint8.prepare(frame)).tensor.data as Uint8Array), Buffer.from(rgb))).toBe(0);
        }
      }
    } finally {
      await float.dispose();
      await uint8.dispose();
    }
  });

  it('letterbox (a runtime option; training warps): ssd detect = raw frame, padding = the mean', async () => {
    const d = await Detector.load(writeTinyModel(dir, { input: 'float-nchw' }), { ...quiet, resize: 'letterbox' });
    try {
      for (const f of files) {
        const a = await d.prepare(f.path);
        const b = await d.prepare(await asFrame(f.path, 'bgr'));
        expect({ file: f.name, diff: maxAbsDiff(a.tensor.data as Float32Array, b.tensor.data as Float32Array) }).toEqual({ file: f.name, diff: 0 });
        expect(a.geometries[0]).toEqual(b.geometries[0]);
        // The first input pixel is padding unless the picture is square: zero after the mean (integer means).
        if (f.width !== f.height) expect((a.tensor.data as Float32Array)[0]).toBe(0);
      }
    } finally {
      await d.dispose();
    }
  });
});

describe('stream pipelines that scale in GStreamer (outside the exact bound)', () => {
  it('videoscale (the CPU profile\'s convert + scale) is within 1 of the core\'s 8-bit picture', async () => {
    // A picture with smooth gradients, hard edges and noise, at camera-like and scene-like sizes.
    for (const [W, H, size] of [[640, 480, 300], [1280, 720, 300], [128, 128, 96]] as const) {
      const rgb = new Uint8Array(W * H * 3);
      for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < 3; c++) {
        const v = 128 + 90 * Math.sin(x / (7 + c) + y / 11) + (((x >> 4) + (y >> 4)) % 2) * 30 + (((x * 7919 + y * 104729 + c * 31) % 17) - 8);
        rgb[(y * W + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
      const png = join(dir, `gst-${W}.png`);
      const raw = join(dir, `gst-${W}.rgb`);
      writeFileSync(png, await encode(rgb, W, H));
      const tail = convertTail({ gst: CPU_GST, format: 'rgb', width: size, height: size });
      const r = spawnSync('gst-launch-1.0', ['-q', ...`filesrc location=${png} ! pngdec ! ${tail} ! filesink location=${raw}`.split(' ')], { timeout: 60_000 });
      expect(r.status, r.stderr?.toString()).toBe(0);
      const gst = readFileSync(raw);
      const core = new Uint8Array(size * size * 3);
      writeModelInput({ data: rgb, width: W, height: H, format: 'rgb' }, { layout: 'uint8-nhwc', inputSize: size, input: spec.input }, 'warp', core, 0);
      // RGB rows at these widths are multiples of 4 bytes: no padding.
      expect(gst.length).toBe(core.length);
      expect({ size: `${W}x${H}`, diff: maxAbsDiff(gst, core) <= 1 }).toEqual({ size: `${W}x${H}`, diff: true });
    }
  });
});
