// `ssd detect` -> `ssd eval` on any dataset: the results of detect --gt score on that ground truth as
// they are. The ground truths here are built from the detector's own detections (taken from a run
// without --gt), so a correct round trip scores exactly 1 and any id or pixel mix-up scores less.
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEMO_MODEL_PATH } from '../../runtime/stream/demo.js';
import { tempDir } from '../helpers/temp-dir.js';
import { encode, patternRgb, writeTinyModel } from '../runtime/helpers.js';
import { ROOT, expectOk, runNode, ssd } from './helpers.js';

interface CocoEntry { image_id: number | string; category_id: number; bbox: [number, number, number, number]; score: number }
interface Mapping { images: Array<{ id: number; file_name: string }>; categories: Array<{ id: number; name: string }> }

const dir = tempDir('ssd-roundtrip-');
const STEMS = ['000011', '000012', '000013', '000014'];
const SIZES: Array<[number, number]> = [[200, 100], [120, 160], [160, 160], [90, 140]];
let model: string;
let imagesDir: string;
/** The detections of a run without --gt, per image stem: class name, COCO bbox, score. */
const found = new Map<string, Array<{ name: string; bbox: [number, number, number, number]; score: number }>>();

beforeAll(async () => {
  // Batch 1: every run computes each image alone, so every run returns the same detections.
  model = writeTinyModel(dir, { batch: 1 });
  imagesDir = join(dir, 'images');
  mkdirSync(imagesDir);
  for (const [i, stem] of STEMS.entries()) {
    const [w, h] = SIZES[i]!;
    writeFileSync(join(imagesDir, `${stem}.png`), await encode(patternRgb(w, h, i), w, h));
  }
  const json = join(dir, 'numbered.json');
  expectOk(await ssd(['detect', model, imagesDir, '--threshold', '0.5', '--coco-results', json]), 'detect without --gt');
  const mapping = JSON.parse(readFileSync(join(dir, 'numbered.ids.json'), 'utf8')) as Mapping;
  const stemOf = new Map(mapping.images.map((im) => [im.id, im.file_name.replace(/^.*\//, '').replace(/\.png$/, '')]));
  const nameOf = new Map(mapping.categories.map((c) => [c.id, c.name]));
  for (const e of JSON.parse(readFileSync(json, 'utf8')) as CocoEntry[]) {
    const stem = stemOf.get(e.image_id as number)!;
    if (!found.has(stem)) found.set(stem, []);
    found.get(stem)!.push({ name: nameOf.get(e.category_id)!, bbox: e.bbox, score: e.score });
  }
  // Every image has detections, and class "3" (left out of the COCO ground truth below) is among them.
  expect([...found.keys()].sort()).toEqual(STEMS);
  expect([...found.values()].flat().some((d) => d.name === '3')).toBe(true);
}, 300_000);

describe('ssd detect --gt -> ssd eval', { timeout: 300_000 }, () => {
  it('COCO ground truth with numeric, non-contiguous category ids and numeric image ids', async () => {
    // Three of the four images (with their own numeric ids, out of order), classes 0-9 but "3"
    // under ids with gaps, and a class the model does not have.
    const imageIds: Record<string, number> = { '000011': 9001, '000012': 17, '000013': 523 };
    const catIds: Record<string, number> = { '0': 3, '1': 7, '2': 12, '4': 40, '5': 41, '6': 90, '7': 91, '8': 200, '9': 1000 };
    const annotations: object[] = [];
    for (const [stem, id] of Object.entries(imageIds)) {
      for (const d of found.get(stem)!) {
        if (catIds[d.name] === undefined) continue;
        annotations.push({ id: annotations.length + 1, image_id: id, category_id: catIds[d.name], bbox: d.bbox, area: d.bbox[2] * d.bbox[3], iscrowd: 0 });
      }
    }
    const categories = [{ id: 5, name: 'zebra' }, ...Object.entries(catIds).map(([name, id]) => ({ id, name })).reverse()];
    const gt = join(dir, 'instances.json');
    writeFileSync(gt, JSON.stringify({
      images: Object.entries(imageIds).map(([stem, id], i) => ({ id, file_name: `val2017/${stem}.png`, width: SIZES[i]![0], height: SIZES[i]![1] })),
      annotations, categories,
    }));

    const dt = join(dir, 'coco-dt.json');
    const r = expectOk(await ssd(['detect', model, imagesDir, '--gt', gt, '--threshold', '0.5', '--coco-results', dt]), 'detect --gt coco');
    expect(r.stdout).toContain('3 of the 4 images are in it; the others are skipped');
    expect(r.stdout).toContain('has no class 3; those detections are left out of the results');
    expect(r.stdout).not.toContain('000014.png:');
    expect(existsSync(join(dir, 'coco-dt.ids.json'))).toBe(false);

    // The ids are the ground truth's, as numbers; the entries are the detections of the run without --gt.
    const entries = JSON.parse(readFileSync(dt, 'utf8')) as CocoEntry[];
    const expected = Object.entries(imageIds).flatMap(([stem, id]) => found.get(stem)!
      .filter((d) => catIds[d.name] !== undefined)
      .map((d) => ({ image_id: id, category_id: catIds[d.name]!, bbox: d.bbox, score: d.score })));
    const key = (e: CocoEntry) => JSON.stringify([e.image_id, e.category_id, e.bbox, e.score]);
    expect(entries.map(key).sort()).toEqual(expected.map(key).sort());
    expect(entries.every((e) => typeof e.image_id === 'number')).toBe(true);

    const ev = expectOk(await ssd(['eval', '--gt', gt, '--dt', dt, '--json']), 'eval coco');
    const j = JSON.parse(ev.stdout) as { metric: string; map: number; stats: number[]; ap: Record<string, number> };
    expect(j.metric).toBe('coco');
    expect(j.map).toBeCloseTo(1, 12);
    expect(j.stats[1]).toBeCloseTo(1, 12);
    expect(j.ap.zebra).toBe(-1);
  });

  it('VOC ground truth with --split: only that split\'s images run; COCO results and comp4 files both score', async () => {
    // JPEGImages holds both splits, as a VOC year directory does.
    const voc = join(dir, 'VOC2007');
    for (const sub of ['Annotations', 'JPEGImages', join('ImageSets', 'Main')]) mkdirSync(join(voc, sub), { recursive: true });
    writeFileSync(join(voc, 'labels.txt'), '0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n');
    writeFileSync(join(voc, 'ImageSets', 'Main', 'test.txt'), '000012\n000014\n');
    writeFileSync(join(voc, 'ImageSets', 'Main', 'train.txt'), '000011\n000013\n');
    for (const [i, stem] of STEMS.entries()) {
      writeFileSync(join(voc, 'JPEGImages', `${stem}.png`), readFileSync(join(imagesDir, `${stem}.png`)));
      // VOC's 1-based inclusive pixels: the 0-based continuous box [x, y, x + w, y + h] is
      // [x + 1, y + 1, x + w, y + h].
      const objs = found.get(stem)!.map((d) => {
        const [x, y, w, h] = d.bbox;
        return `<object><name>${d.name}</name><difficult>0</difficult><bndbox><xmin>${x + 1}</xmin><ymin>${y + 1}</ymin><xmax>${x + w}</xmax><ymax>${y + h}</ymax></bndbox></object>`;
      });
      writeFileSync(join(voc, 'Annotations', `${stem}.xml`), `<annotation><filename>${stem}.png</filename><size><width>${SIZES[i]![0]}</width><height>${SIZES[i]![1]}</height></size>${objs.join('')}</annotation>`);
    }
    const dt = join(dir, 'voc-dt.json');
    const comp4 = join(dir, 'comp4');
    const r = expectOk(await ssd(['detect', model, join(voc, 'JPEGImages'), '--gt', voc, '--split', 'test', '--threshold', '0.5', '--coco-results', dt, '--voc-results', comp4]), 'detect --gt voc');
    expect(r.stdout.split('\n').filter((l) => / \d+ detections?: /.test(l)).map((l) => l.replace(/^.*\/(\d+)\.png:.*$/, '$1'))).toEqual(['000012', '000014']);
    expect(r.stdout).toContain('2 of the 4 images are in it; the others are skipped');

    // comp4: one file per class (empty ones too), the test split's name, 1-based boxes.
    const files = (await import('node:fs')).readdirSync(comp4).sort();
    expect(files).toEqual(Array.from({ length: 10 }, (_, k) => `comp4_det_test_${k}.txt`).sort());
    const first = found.get('000012')!.sort((a, b) => b.score - a.score)[0]!;
    const line = readFileSync(join(comp4, `comp4_det_test_${first.name}.txt`), 'utf8').split('\n').find((l) => l.startsWith(`000012 ${first.score} `))!;
    const [x1, y1] = line.split(' ').slice(2).map(Number) as [number, number];
    expect(x1).toBeCloseTo(first.bbox[0] + 1, 3);
    expect(y1).toBeCloseTo(first.bbox[1] + 1, 3);

    for (const d of [dt, comp4]) {
      const ev = expectOk(await ssd(['eval', '--gt', voc, '--split', 'test', '--dt', d, '--metric', 'voc07', '--json']), `eval ${d}`);
      const j = JSON.parse(ev.stdout) as { map: number };
      expect(j.map, d).toBeCloseTo(1, 12);
    }
  });

  it.skipIf(!existsSync(DEMO_MODEL_PATH))('the digits recipe of docs/eval.md runs as written (on a small generated set)', async () => {
    const doc = readFileSync(join(ROOT, 'docs', 'eval.md'), 'utf8');
    const block = /<!-- round-trip recipe -->\n```\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(block, 'the recipe block in docs/eval.md').toBeDefined();
    const cwd = join(dir, 'recipe');
    mkdirSync(cwd);
    // The recipe runs in a checkout: its models/ is the repository's.
    symlinkSync(join(ROOT, 'models'), join(cwd, 'models'));
    const maps: number[] = [];
    for (const line of block!.trim().split('\n')) {
      const words = line.trim().split(/\s+/);
      if (words[0] === 'npx' && words[2] === 'scripts/make-digits-dataset.ts') {
        // The same command on 20 + 10 scenes instead of 2000 + 300.
        const args = words.slice(3).map((w, i, a) => (a[i - 1] === '--train' ? '20' : a[i - 1] === '--test' ? '10' : w));
        expectOk(await runNode(args, { cwd, script: join(ROOT, 'scripts', 'make-digits-dataset.ts') }), line);
      } else {
        expect(words[0], line).toBe('ssd');
        const r = expectOk(await ssd(words.slice(1), cwd), line);
        const map = /^mAP \(VOC07 11-point\) = ([\d.]+)$/m.exec(r.stdout)?.[1];
        if (words[1] === 'eval') maps.push(Number(map));
      }
    }
    // Both results files score the same, and the shipped model finds the digits (0.92 on the full
    // test split; on 10 scenes well above what mismatched ids or classes would give, ~0).
    expect(maps).toHaveLength(2);
    expect(maps[0]).toBe(maps[1]);
    expect(maps[0]).toBeGreaterThan(0.5);
  });
});
