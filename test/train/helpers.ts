import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { DIGIT_LABELS, renderDigitScene } from '../../core/datasets/digits.js';
import type { Dataset, Sample } from '../../core/datasets/types.js';
import { vocAnnotationXml } from '../../core/datasets/voc.js';
import { createRng } from '../../core/rng.js';

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

/** Side of the images of vocTree and writeImage. */
export const SIZE = 64;

/** A 64x64 PNG: grey with one coloured square per box (x1, y1, x2, y2 in 0-based pixels, end exclusive). */
export async function writeImage(path: string, boxes: number[][]): Promise<void> {
  const rgb = Buffer.alloc(SIZE * SIZE * 3, 90);
  for (const [x1, y1, x2, y2] of boxes) for (let y = y1!; y < y2!; y++) for (let x = x1!; x < x2!; x++) rgb.set([250, 30, 30], (y * SIZE + x) * 3);
  await sharp(rgb, { raw: { width: SIZE, height: SIZE, channels: 3 } }).png().toFile(path);
}

/**
 * A VOC year directory `<dir>/VOC2007` with custom classes: `splits` maps a split name to its images,
 * each a list of objects [class name, 0-based box]; a labels.txt only when `labelsTxt` is given.
 */
export async function vocTree(dir: string, splits: Record<string, [string, number[]][][]>, labelsTxt?: string[]): Promise<string> {
  const root = join(dir, 'VOC2007');
  for (const d of ['Annotations', 'JPEGImages', 'ImageSets/Main']) mkdirSync(join(root, d), { recursive: true });
  const names = [...new Set(Object.values(splits).flat(3).filter((v): v is string => typeof v === 'string'))];
  const labels = ['background', ...names];
  let n = 0;
  for (const [split, images] of Object.entries(splits)) {
    const ids: string[] = [];
    for (const objects of images) {
      const id = `img${n++}`;
      ids.push(id);
      const imagePath = join(root, 'JPEGImages', `${id}.png`);
      await writeImage(imagePath, objects.map(([, b]) => b));
      const sample: Sample = {
        id, imagePath, width: SIZE, height: SIZE,
        objects: objects.map(([name, [x1, y1, x2, y2]]) => ({ classId: labels.indexOf(name), box: [x1! + 1, y1! + 1, x2!, y2!], difficult: false })),
      };
      writeFileSync(join(root, 'Annotations', `${id}.xml`), vocAnnotationXml(sample, labels));
    }
    writeFileSync(join(root, 'ImageSets', 'Main', `${split}.txt`), `${ids.join('\n')}\n`);
  }
  if (labelsTxt) writeFileSync(join(root, 'labels.txt'), `${labelsTxt.join('\n')}\n`);
  return root;
}
