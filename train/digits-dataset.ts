/**
 * Writes the MNIST digit-detection dataset in VOC layout:
 *   <out>/VOC2007/JPEGImages/*.jpg|png, Annotations/*.xml, ImageSets/Main/{train,test,trainval}.txt, labels.txt
 * Entry point: scripts/make-digits-dataset.ts; `ssd train --data digits` calls makeDigitsDataset itself.
 */
import { mkdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { writeFileAtomic } from '../core/atomic-write.js';
import { DIGIT_LABELS, DIGIT_SCENE_DEFAULTS, renderDigitScene, type DigitSceneOptions, type MnistSplit } from '../core/datasets/digits.js';
import { vocAnnotationXml } from '../core/datasets/voc.js';
import { SsdError } from '../core/errors.js';
import { createRng } from '../core/rng.js';

export { renderDigitScene, loadMnist, DIGIT_LABELS, DIGIT_SCENE_DEFAULTS } from '../core/datasets/digits.js';
export type { DigitScene, DigitSceneOptions } from '../core/datasets/digits.js';

export interface MakeDigitsOptions {
  outDir: string;
  train: number;
  test: number;
  imageSize?: number;
  minDigits?: number;
  maxDigits?: number;
  minDigitSize?: number;
  maxDigitSize?: number;
  seed?: number;
  format?: 'jpg' | 'png';
  onProgress?: (done: number, total: number) => void;
}

/** Each image's random stream depends only on (seed, split, index): any subset renders the same. */
function sceneSeed(seed: number, split: MnistSplit, index: number): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b) ^ (split === 'test' ? 0x5bd1e995 : 0)) >>> 0;
}

export async function makeDigitsDataset(opts: MakeDigitsOptions): Promise<{ root: string; train: number; test: number }> {
  const root = join(opts.outDir, 'VOC2007');
  const seed = opts.seed ?? 1;
  const format = opts.format ?? 'jpg';
  for (const [k, v] of [['train', opts.train], ['test', opts.test]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new SsdError(`digits dataset: --${k} must be a whole number >= 0, got ${v}`);
  }
  for (const d of ['JPEGImages', 'Annotations', join('ImageSets', 'Main')]) mkdirSync(join(root, d), { recursive: true });
  const sceneOpts: DigitSceneOptions = {
    ...(opts.imageSize !== undefined ? { imageSize: opts.imageSize } : {}),
    ...(opts.minDigits !== undefined ? { minDigits: opts.minDigits } : {}),
    ...(opts.maxDigits !== undefined ? { maxDigits: opts.maxDigits } : {}),
    ...(opts.minDigitSize !== undefined ? { minDigitSize: opts.minDigitSize } : {}),
    ...(opts.maxDigitSize !== undefined ? { maxDigitSize: opts.maxDigitSize } : {}),
  };
  const total = opts.train + opts.test;
  let done = 0;
  const ids: Record<MnistSplit, string[]> = { train: [], test: [] };
  const jobs: { split: MnistSplit; index: number }[] = [];
  for (let i = 0; i < opts.train; i++) jobs.push({ split: 'train', index: i });
  for (let i = 0; i < opts.test; i++) jobs.push({ split: 'test', index: i });
  // Rendering is synchronous JS; encoding runs on sharp's thread pool, so keep a few encodes in flight.
  const inFlight = new Set<Promise<void>>();
  for (const { split, index } of jobs) {
    const id = `${split}_${String(index).padStart(6, '0')}`;
    ids[split].push(id);
    const scene = renderDigitScene(createRng(sceneSeed(seed, split, index)), { ...sceneOpts, split });
    const file = `${id}.${format}`;
    const img = sharp(Buffer.from(scene.rgb.buffer, scene.rgb.byteOffset, scene.rgb.byteLength), {
      raw: { width: scene.width, height: scene.height, channels: 3 },
    });
    const p = (format === 'png' ? img.png({ compressionLevel: 6 }) : img.jpeg({ quality: 92 }))
      .toBuffer()
      .then(async (buf) => {
        // Plain writes for the thousands of small files (an fsync each would dominate the run); the
        // split lists below are written last and atomically, so an interrupted run lists nothing half-written.
        const sample = { id, imagePath: join(root, 'JPEGImages', file), width: scene.width, height: scene.height, objects: scene.objects };
        await Promise.all([
          writeFile(join(root, 'JPEGImages', file), buf),
          writeFile(join(root, 'Annotations', `${id}.xml`), vocAnnotationXml(sample, DIGIT_LABELS)),
        ]);
        done++;
        opts.onProgress?.(done, total);
      });
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
    if (inFlight.size >= 8) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  const main = join(root, 'ImageSets', 'Main');
  writeFileAtomic(join(root, 'labels.txt'), DIGIT_LABELS.slice(1).join('\n') + '\n');
  const list = (xs: string[]): string => xs.map((x) => `${x}\n`).join('');
  writeFileAtomic(join(main, 'train.txt'), list(ids.train));
  writeFileAtomic(join(main, 'trainval.txt'), list(ids.train));
  writeFileAtomic(join(main, 'test.txt'), list(ids.test));
  return { root, train: opts.train, test: opts.test };
}
