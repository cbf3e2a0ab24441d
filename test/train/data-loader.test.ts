import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeBoxes } from '../../core/box-coding.js';
import { defaultBoxes } from '../../core/default-boxes.js';
import { applyExifOrientation } from '../../core/preprocess.js';
import { ssdTiny } from '../../core/specs.js';
import { buildPipeline, evalPipeline, ssdTrainPipeline } from '../../train/augment/pipeline.js';
import { DataLoader, ImageSource, sampleBoxesXYXY, toDatasetBox } from '../../train/data-loader.js';
import { rectanglesDataset, writeFile } from './helpers.js';
import { tempDir } from '../helpers/temp-dir.js';

const spec = { ...ssdTiny(['background', 'red'], 64), name: 'tiny64' };

describe('data loader', () => {
  it('VOC boxes (1-based inclusive) become continuous pixels and back', () => {
    const s = { id: 'a', imagePath: '', width: 10, height: 10, objects: [{ classId: 1, box: [1, 2, 5, 6] as [number, number, number, number], difficult: false }] };
    expect(Array.from(sampleBoxesXYXY(s, true))).toEqual([0, 1, 5, 6]);
    expect(toDatasetBox(0, 1, 5, 6, true)).toEqual([1, 2, 5, 6]);
    expect(Array.from(sampleBoxesXYXY(s, false))).toEqual([1, 2, 5, 6]);
  });

  it('targets decode back to the ground truth (no augmentation), matching as SSD-SPEC', async () => {
    const dir = tempDir('ssd-train-loader-');
    const ds = await rectanglesDataset(dir, [[[8, 8, 40, 40]], [[30, 10, 60, 30], [4, 40, 20, 62]]]);
    const priors = defaultBoxes(spec);
    const P = priors.length / 4;
    const loader = new DataLoader({ dataset: ds, spec, steps: buildPipeline(evalPipeline(), spec), batchSize: 2, seed: 3, shuffle: false }, priors);
    const b = await loader.batch(0);
    expect(b.size).toBe(2);
    expect(b.ids).toEqual(['r0', 'r1']);
    for (let i = 0; i < 2; i++) {
      const dec = decodeBoxes(b.locTargets.subarray(i * P * 4, (i + 1) * P * 4), priors, spec.variances);
      const gts = ds.samples[i]!.objects.map((o) => [(o.box[0] - 1) / 64, (o.box[1] - 1) / 64, o.box[2] / 64, o.box[3] / 64]);
      let pos = 0;
      for (let p = 0; p < P; p++) {
        if (b.labels[i * P + p] === 0) continue;
        pos++;
        const box = Array.from(dec.subarray(p * 4, p * 4 + 4));
        const close = gts.some((g) => g.every((v, k) => Math.abs(v - box[k]!) < 1e-4));
        expect(close).toBe(true);
      }
      expect(pos).toBeGreaterThanOrEqual(gts.length);
    }
    // The normalised image: BGR minus mean; a red pixel inside the first box.
    const S = 64;
    const px = (20 * S + 20) * 3;
    expect(b.imagesNHWC[px]).toBeCloseTo(30 - 104, 3);
    expect(b.imagesNHWC[px + 2]).toBeCloseTo(250 - 123, 3);
  });

  it('batches are a pure function of (seed, position): prefetching or not gives the same batch', async () => {
    const dir = tempDir('ssd-train-loader-det-');
    const ds = await rectanglesDataset(dir, Array.from({ length: 6 }, (_, i) => [[4 + i, 6, 30 + i, 40]] as [number, number, number, number][]));
    const steps = buildPipeline(ssdTrainPipeline(), spec);
    const a = new DataLoader({ dataset: ds, spec, steps, batchSize: 2, seed: 9, prefetch: 3 }, defaultBoxes(spec));
    const b = new DataLoader({ dataset: ds, spec, steps, batchSize: 2, seed: 9, prefetch: 0 }, defaultBoxes(spec));
    const a0 = await a.batch(0); await a.batch(1); await a.batch(2);
    const a4 = await a.batch(4);
    const b4 = await b.batch(4);
    expect(b4.ids).toEqual(a4.ids);
    expect(Buffer.compare(Buffer.from(a4.imagesNHWC.buffer), Buffer.from(b4.imagesNHWC.buffer))).toBe(0);
    expect(Array.from(a4.labels)).toEqual(Array.from(b4.labels));
    // An epoch visits every sample once (6 samples = 3 batches), in a seed-dependent order.
    const epoch = [a0, await a.batch(1), await a.batch(2)].flatMap((x) => x.ids).sort();
    expect(epoch).toEqual(ds.samples.map((s) => s.id).sort());
    const c = new DataLoader({ dataset: ds, spec, steps, batchSize: 6, seed: 10 }, defaultBoxes(spec));
    const d = new DataLoader({ dataset: ds, spec, steps, batchSize: 6, seed: 9 }, defaultBoxes(spec));
    expect((await c.batch(0)).ids).not.toEqual((await d.batch(0)).ids);
  });

  it('decodes upright per EXIF orientation (as ssd detect does) and 16-bit PNGs to 8 bits', async () => {
    const dir = tempDir('ssd-train-loader-exif-');
    // Stored 40x20, left half red, right half blue, tagged "rotate 90 clockwise to view".
    const W = 40, H = 20;
    const rgb = new Uint8Array(W * H * 3);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) rgb.set(x < W / 2 ? [255, 0, 0] : [0, 0, 255], (y * W + x) * 3);
    const jpeg = writeFile(join(dir, 'rotated.jpg'), await sharp(rgb, { raw: { width: W, height: H, channels: 3 } }).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer());
    const img = (await new ImageSource().load(jpeg))!;
    const stored = await sharp(jpeg, { autoOrient: false }).raw().toBuffer();
    const want = applyExifOrientation({ data: new Uint8Array(stored), width: W, height: H, format: 'rgb' }, 6);
    expect({ width: img.width, height: img.height }).toEqual({ width: 20, height: 40 });
    expect(Buffer.compare(Buffer.from(img.dataHWC), Buffer.from(want.data))).toBe(0);
    // The left (red) half is now on top.
    expect(img.dataHWC[(2 * 20 + 10) * 3]).toBeGreaterThan(200);
    expect(img.dataHWC[(37 * 20 + 10) * 3 + 2]).toBeGreaterThan(200);
    const png16 = writeFile(join(dir, 'deep.png'), await sharp(Buffer.from(new Uint16Array(4 * 4 * 3).fill(65535).buffer), { raw: { width: 4, height: 4, channels: 3 } }).toColourspace('rgb16').png().toBuffer());
    const deep = (await new ImageSource().load(png16))!;
    expect(deep.dataHWC.length).toBe(4 * 4 * 3);
    expect(Array.from(deep.dataHWC.subarray(0, 3))).toEqual([255, 255, 255]);
  });

  it('a missing or corrupt image is skipped with one warning naming the file and reason, not a crash', async () => {
    const dir = tempDir('ssd-train-loader-bad-');
    const ds = await rectanglesDataset(dir, [[[8, 8, 40, 40]], [[10, 10, 30, 30]], [[5, 5, 50, 50]]]);
    const corrupt = writeFile(join(dir, 'corrupt.png'), Buffer.from('this is not a png'));
    ds.samples[1] = { ...ds.samples[1]!, imagePath: corrupt };
    ds.samples[2] = { ...ds.samples[2]!, imagePath: join(dir, 'missing.jpg') };
    const warnings: string[] = [];
    const loader = new DataLoader({ dataset: ds, spec, steps: buildPipeline(evalPipeline(), spec), batchSize: 3, seed: 1, shuffle: false, warn: (w) => warnings.push(w) }, defaultBoxes(spec));
    const b = await loader.batch(0);
    expect(b.size).toBe(1);
    expect(b.ids).toEqual(['r0']);
    expect(warnings).toHaveLength(2);
    expect(warnings.some((w) => w.includes('corrupt.png'))).toBe(true);
    expect(warnings.some((w) => w.includes('missing.jpg'))).toBe(true);
    // The next epoch skips them again without repeating the warnings.
    const again = await loader.batch(1);
    expect(again.size).toBe(1);
    expect(warnings).toHaveLength(2);
  });
});
