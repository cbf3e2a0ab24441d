import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { DIGIT_LABELS, renderDigitScene } from '../../core/datasets/digits.js';
import type { Dataset, Sample } from '../../core/datasets/types.js';
import { createRng } from '../../core/rng.js';

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `ssd-train-${prefix}-`));
}

/** `n` digit scenes written as PNG files, as a VOC-convention Dataset (boxes 1-based inclusive). */
export async function digitsDataset(dir: string, n: number, opts: { seed?: number; size?: number; minDigits?: number; maxDigits?: number; minDigitSize?: number; maxDigitSize?: number } = {}): Promise<Dataset> {
  mkdirSync(dir, { recursive: true });
  const samples: Sample[] = [];
  for (let i = 0; i < n; i++) {
    const scene = renderDigitScene(createRng((opts.seed ?? 1) * 1000 + i), {
      imageSize: opts.size ?? 96, minDigits: opts.minDigits ?? 1, maxDigits: opts.maxDigits ?? 3,
      minDigitSize: opts.minDigitSize ?? 24, maxDigitSize: opts.maxDigitSize ?? 48,
    });
    const imagePath = join(dir, `img${i}.png`);
    await sharp(Buffer.from(scene.rgb), { raw: { width: scene.width, height: scene.height, channels: 3 } }).png().toFile(imagePath);
    samples.push({ id: `img${i}`, imagePath, width: scene.width, height: scene.height, objects: scene.objects });
  }
  return { name: 'digits-test', labels: [...DIGIT_LABELS], samples, warnings: [] };
}

/** A dataset of solid rectangles on grey (VOC convention), one PNG per sample. */
export async function rectanglesDataset(dir: string, rects: [number, number, number, number][][], size = 64): Promise<Dataset> {
  mkdirSync(dir, { recursive: true });
  const samples: Sample[] = [];
  for (let i = 0; i < rects.length; i++) {
    const rgb = Buffer.alloc(size * size * 3, 90);
    for (const [x1, y1, x2, y2] of rects[i]!) for (let y = y1; y < y2; y++) for (let x = x1; x < x2; x++) rgb.set([250, 30, 30], (y * size + x) * 3);
    const imagePath = join(dir, `r${i}.png`);
    await sharp(rgb, { raw: { width: size, height: size, channels: 3 } }).png().toFile(imagePath);
    samples.push({ id: `r${i}`, imagePath, width: size, height: size, objects: rects[i]!.map(([x1, y1, x2, y2]) => ({ classId: 1, box: [x1 + 1, y1 + 1, x2, y2], difficult: false })) });
  }
  return { name: 'rects', labels: ['background', 'red'], samples, warnings: [] };
}

export function writeFile(path: string, content: string | Buffer): string {
  writeFileSync(path, content);
  return path;
}
