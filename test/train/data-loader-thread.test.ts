// The loader thread (train/data-loader-thread.ts) builds exactly the batches the in-thread DataLoader
// builds (batch m is a function of m, the seed and the data), in any request order; a missing image
// is a warning there as here; the thread ends when disposed.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultBoxes } from '../../core/default-boxes.js';
import { ssdTiny } from '../../core/specs.js';
import { buildPipeline } from '../../train/augment/pipeline.js';
import { DataLoader, ImageSource } from '../../train/data-loader.js';
import { LoaderThread } from '../../train/data-loader-thread.js';
import { tempDir } from '../helpers/temp-dir.js';
import { digitsDataset } from './helpers.js';

describe('data loader thread', () => {
  it('gives the DataLoader\'s batches, in any order, and passes on warnings', async () => {
    const dir = tempDir('ssd-loader-thread-');
    const ds = await digitsDataset(dir, 10, { size: 64, minDigitSize: 16, maxDigitSize: 30 });
    // One sample's file is not an image: both loaders warn and drop it from its batch.
    writeFileSync(join(dir, 'broken.png'), 'not a png');
    ds.samples[3] = { ...ds.samples[3]!, imagePath: join(dir, 'broken.png') };
    const spec = { ...ssdTiny(ds.labels, 64), name: 'tiny64' };
    const augment = [{ type: 'PhotoMetricDistortion', p: 0.5 }, { type: 'MinIoURandomCrop' }, { type: 'RandomFlip' }, { type: 'Resize' }, { type: 'Normalize' }];
    const here = new DataLoader({ dataset: ds, spec, steps: buildPipeline(augment, spec), batchSize: 4, seed: 7, prefetch: 0, images: new ImageSource() }, defaultBoxes(spec));
    const warnings: string[] = [];
    const thread = await LoaderThread.start({ dataset: ds, spec, augment, batchSize: 4, seed: 7 }, { prefetch: 2, warn: (l) => warnings.push(l) });
    try {
      // 10 images, batches of 4: the stream crosses an epoch (a new permutation) at batch 2.
      for (const m of [0, 1, 2, 5, 3, 4]) {
        const [a, b] = [await here.batch(m), await thread.batch(m)];
        expect(b.size, `batch ${m}`).toBe(a.size);
        expect(b.ids).toEqual(a.ids);
        expect(b.numPositive).toBe(a.numPositive);
        expect(b.imagesNHWC).toEqual(a.imagesNHWC);
        expect(b.locTargets).toEqual(a.locTargets);
        expect(b.labels).toEqual(a.labels);
      }
      // The broken sample was in some batch, and the thread said so once, naming the file.
      expect(warnings.some((w) => w.includes('broken.png'))).toBe(true);
    } finally {
      await thread.dispose();
    }
    await expect(thread.batch(6)).rejects.toThrow(/data loader thread: disposed/);
  });
});
