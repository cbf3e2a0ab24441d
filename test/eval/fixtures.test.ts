import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../cli/main.js';
import { cocoDatasetFromJson } from '../../core/datasets/coco.js';
import type { Dataset } from '../../core/datasets/types.js';
import type { DetectionAnnotationXYXY } from '../../core/model-contract.js';
import { evalCoco } from '../../core/eval/coco.js';
import { evalVoc } from '../../core/eval/voc.js';
import { tempDir } from '../helpers/temp-dir.js';

// Fixtures written by scripts/fixtures/make-eval-fixtures.py: random cases whose expected numbers come
// from pycocotools' COCOeval and from an independent Python (numpy) implementation of voc_eval.
const FIX = join(import.meta.dirname, '..', 'fixtures', 'eval');
const TOL = 1e-6;

type Box = [number, number, number, number];
interface VocCase {
  name: string;
  labels: string[];
  images: { id: string; width: number; height: number }[];
  objects: { imageId: string; classId: number; box: Box; difficult: boolean }[];
  detections: DetectionAnnotationXYXY[];
  expected: Record<'voc07' | 'voc12' | 'voc12_iou0.7', { map: number; ap: Record<string, number> }>;
}
interface CocoCase {
  name: string;
  gt: unknown;
  results: { image_id: number; category_id: number; bbox: Box; score: number }[];
  expected: { stats: number[]; ap: Record<string, number>; ap50: Record<string, number> };
}

function vocDataset(c: VocCase): Dataset {
  return {
    name: c.name,
    labels: c.labels,
    warnings: [],
    samples: c.images.map((im) => ({
      id: im.id,
      imagePath: `${im.id}.jpg`,
      width: im.width,
      height: im.height,
      objects: c.objects.filter((o) => o.imageId === im.id).map((o) => ({ classId: o.classId, box: o.box, difficult: o.difficult })),
    })),
  };
}

function expectClose(actual: Record<string, number>, expected: Record<string, number>): void {
  expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort());
  for (const k of Object.keys(expected)) expect(Math.abs(actual[k]! - expected[k]!), k).toBeLessThanOrEqual(TOL);
}

describe('VOC evaluator against the Python reference', () => {
  const cases = (JSON.parse(readFileSync(join(FIX, 'voc-cases.json'), 'utf8')) as { cases: VocCase[] }).cases;
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const gt = vocDataset(c);
    for (const [key, metric, iou] of [['voc07', 'voc07', 0.5], ['voc12', 'voc12', 0.5], ['voc12_iou0.7', 'voc12', 0.7]] as const) {
      const r = evalVoc(gt, c.detections, { metric, iouThreshold: iou });
      expectClose(r.ap, c.expected[key].ap);
      expect(Math.abs(r.map - c.expected[key].map)).toBeLessThanOrEqual(TOL);
    }
  });
});

describe('COCO evaluator against pycocotools', () => {
  const cases = (JSON.parse(readFileSync(join(FIX, 'coco-cases.json'), 'utf8')) as { cases: CocoCase[] }).cases;
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const gt = cocoDatasetFromJson(c.gt, c.name, '/images', { strict: true });
    const dets: DetectionAnnotationXYXY[] = c.results.map((r) => ({
      imageId: String(r.image_id),
      classId: gt.cocoCategoryIds!.indexOf(r.category_id),
      score: r.score,
      box: [r.bbox[0], r.bbox[1], r.bbox[0] + r.bbox[2], r.bbox[1] + r.bbox[3]],
    }));
    const r = evalCoco(gt, dets);
    expect(r.stats).toHaveLength(12);
    r.stats.forEach((v, i) => expect(Math.abs(v - c.expected.stats[i]!), `stat ${i}`).toBeLessThanOrEqual(TOL));
    expectClose(r.ap, c.expected.ap);
    expectClose(r.ap50, c.expected.ap50);
    expect(r.map).toBe(r.stats[0]);
  });
});

describe('ssd eval on COCO files against pycocotools', () => {
  const cases = (JSON.parse(readFileSync(join(FIX, 'coco-cases.json'), 'utf8')) as { cases: CocoCase[] }).cases.slice(0, 4);
  const tmp = tempDir('ssd-evalfix-');
  it.each(cases.map((c) => [c.name, c] as const))('%s through --gt/--dt files and --json', async (_name, c) => {
    const gtPath = join(tmp, `${c.name}-gt.json`);
    const dtPath = join(tmp, `${c.name}-dt.json`);
    writeFileSync(gtPath, JSON.stringify(c.gt));
    writeFileSync(dtPath, JSON.stringify(c.results));
    const out: string[] = [];
    const log = console.log;
    console.log = (...a: unknown[]) => void out.push(a.join(' '));
    let code: number;
    try {
      code = await main(['eval', '--gt', gtPath, '--dt', dtPath, '--metric', 'coco', '--json']);
    } finally {
      console.log = log;
    }
    expect(code).toBe(0);
    const j = JSON.parse(out.join('\n')) as { metric: string; map: number; ap: Record<string, number>; stats: number[] };
    expect(Object.keys(j)).toEqual(['metric', 'map', 'ap', 'stats']);
    j.stats.forEach((v, i) => expect(Math.abs(v - c.expected.stats[i]!)).toBeLessThanOrEqual(TOL));
    expectClose(j.ap, c.expected.ap);
  });
});
