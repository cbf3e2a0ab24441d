import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCocoDataset } from '../../core/datasets/coco.js';
import { categoryIdOf, imageIdResolver, readCocoResults, toCocoResults, writeCocoResults } from '../../core/datasets/results.js';
import { cocoResultsWithIds, resultsIdsFromGroundTruth, type GroundTruthIds } from '../../core/datasets/results-ids.js';
import type { Dataset } from '../../core/datasets/types.js';
import { SsdError } from '../../core/errors.js';
import { tempDir } from '../helpers/temp-dir.js';

const tmp = tempDir('ssd-coco-');

function write(name: string, value: unknown): string {
  const p = join(tmp, name);
  writeFileSync(p, typeof value === 'string' ? value : JSON.stringify(value));
  return p;
}

const GT = {
  images: [
    { id: 42, file_name: 'a.jpg', width: 640, height: 480 },
    { id: 7, file_name: 'b.jpg', width: 320, height: 240 },
  ],
  categories: [
    { id: 18, name: 'dog' },
    { id: 1, name: 'person' },
    { id: 3, name: 'car' },
  ],
  annotations: [
    { id: 1, image_id: 42, category_id: 18, bbox: [10, 20, 30, 40], area: 900.5, iscrowd: 0 },
    { id: 2, image_id: 42, category_id: 1, bbox: [0, 0, 100, 200], area: 15000, iscrowd: 1 },
    { id: 3, image_id: 7, category_id: 3, bbox: [5.5, 6.5, 10, 0] },
    { id: 4, image_id: 99, category_id: 3, bbox: [1, 1, 1, 1] },
    { id: 5, image_id: 7, category_id: 2, bbox: [1, 1, 1, 1] },
    { id: 6, image_id: 7, category_id: 3, bbox: [1, 1, -1, 1] },
    { id: 7, image_id: 7, category_id: 3, bbox: [1, 1] },
  ],
};

describe('COCO loader', () => {
  const path = write('instances.json', GT);

  it('maps category ids to contiguous class ids in id order and keeps iscrowd, area and ids', () => {
    const ds = loadCocoDataset(path, '/data/images');
    expect(ds.labels).toEqual(['background', 'person', 'car', 'dog']);
    expect(ds.cocoCategoryIds).toEqual([-1, 1, 3, 18]);
    expect(ds.samples.map((s) => [s.id, s.imagePath, s.width, s.height])).toEqual([
      ['42', '/data/images/a.jpg', 640, 480],
      ['7', '/data/images/b.jpg', 320, 240],
    ]);
    expect(ds.samples[0]!.objects).toEqual([
      { classId: 3, box: [10, 20, 40, 60], difficult: false, iscrowd: false, area: 900.5, annotationId: 1 },
      { classId: 1, box: [0, 0, 100, 200], difficult: false, iscrowd: true, area: 15000, annotationId: 2 },
    ]);
    // No area field: w * h (here a zero-height box, which pycocotools keeps too).
    expect(ds.samples[1]!.objects).toEqual([{ classId: 2, box: [5.5, 6.5, 15.5, 6.5], difficult: false, iscrowd: false, area: 0, annotationId: 3 }]);
    expect(ds.warnings).toHaveLength(4);
    expect(ds.warnings.join('\n')).toMatch(/instances\.json: annotation 4: image_id 99 is not in "images"; skipped/);
    expect(ds.warnings.join('\n')).toMatch(/annotation 5: unknown category_id 2/);
    expect(ds.warnings.join('\n')).toMatch(/annotation 6: negative box size/);
    expect(ds.warnings.join('\n')).toMatch(/annotation 7: "bbox" is not \[x, y, w, h\]/);
  });

  it('strict mode and malformed files give an SsdError naming the file', () => {
    expect(() => loadCocoDataset(path, undefined, { strict: true })).toThrow(/instances\.json: annotation 4: image_id 99/);
    expect(() => loadCocoDataset(write('bad.json', '{"images": ['))).toThrow(/bad\.json: malformed JSON/);
    expect(() => loadCocoDataset(write('arr.json', '[]'))).toThrow(/arr\.json: not a COCO annotations file/);
    expect(() => loadCocoDataset(join(tmp, 'none.json'))).toThrow(SsdError);
    expect(() => loadCocoDataset(join(tmp, 'none.json'))).toThrow(/none\.json: no such file/);
  });

  it('keeps only the labels asked for, in their order', () => {
    const ds = loadCocoDataset(path, undefined, { labels: ['dog', 'person', 'bicycle'] });
    expect(ds.labels).toEqual(['background', 'dog', 'person', 'bicycle']);
    expect(ds.cocoCategoryIds).toEqual([-1, 18, 1, -1]);
    expect(ds.samples[0]!.objects.map((o) => o.classId)).toEqual([1, 2]);
    expect(ds.samples[1]!.objects).toEqual([]);
    expect(ds.samples[0]!.imagePath).toBe(join(tmp, 'a.jpg'));
  });
});

describe('results files', () => {
  const coco = loadCocoDataset(write('gt2.json', GT));

  it('COCO results round-trip with the dataset category ids', () => {
    const dets = [
      { imageId: '42', classId: 3, score: 0.75, box: [10, 20, 40, 60] as [number, number, number, number] },
      { imageId: '7', classId: 1, score: 0.5, box: [1.5, 2, 3.5, 7] as [number, number, number, number] },
    ];
    expect(toCocoResults(dets, coco)).toEqual([
      { image_id: 42, category_id: 18, bbox: [10, 20, 30, 40], score: 0.75 },
      { image_id: 7, category_id: 1, bbox: [1.5, 2, 2, 5], score: 0.5 },
    ]);
    const p = join(tmp, 'res.json');
    writeCocoResults(p, dets, coco);
    expect(readCocoResults(p, coco)).toEqual(dets);
    expect(JSON.parse(readFileSync(p, 'utf8'))).toHaveLength(2);
  });

  it('without COCO ids, category_id is the class id and VOC ids stay strings', () => {
    const voc: Dataset = { name: 'v', labels: ['background', 'a', 'b'], warnings: [], samples: [{ id: '000005', imagePath: 'x', width: 1, height: 1, objects: [] }] };
    expect(categoryIdOf(voc, 2)).toBe(2);
    // VOC box x 1..3, y 2..4 (1-based inclusive: 3x3 pixels) is COCO's continuous [0, 1, 3, 3].
    expect(toCocoResults([{ imageId: '000005', classId: 2, score: 1, box: [1, 2, 3, 4] }], voc)[0]).toEqual({ image_id: '000005', category_id: 2, bbox: [0, 1, 3, 3], score: 1 });
    const resolve = imageIdResolver(voc);
    expect(resolve('000005')).toBe('000005');
    expect(resolve(5)).toBe('000005');
    expect(resolve('000005.jpg')).toBe('000005');
    expect(resolve(6)).toBeUndefined();
  });

  it('bad entries name the file and the entry', () => {
    const bad = (name: string, v: unknown) => () => readCocoResults(write(name, v), coco);
    expect(bad('r1.json', { a: 1 })).toThrow(/r1\.json: not a COCO results file/);
    expect(bad('r2.json', [{ image_id: 5, category_id: 1, bbox: [0, 0, 1, 1], score: 1 }])).toThrow(/r2\.json: entry 0: image_id 5 is not in the ground truth/);
    expect(bad('r3.json', [{ image_id: 42, category_id: 2, bbox: [0, 0, 1, 1], score: 1 }])).toThrow(/r3\.json: entry 0: unknown class: category_id 2/);
    expect(bad('r4.json', [{ image_id: 42, category_id: 1, bbox: [0, 0, 1, -1], score: 1 }])).toThrow(/r4\.json: entry 0: inverted box: negative size/);
    expect(bad('r5.json', [{ image_id: 42, category_id: 1, bbox: [0, 0, 1, 1] }])).toThrow(/r5\.json: entry 0: no numeric "score"/);
  });
});

describe('COCO results against VOC ground truth (pixel conventions)', () => {
  it('a perfect box in COCO continuous pixels (what ssd detect --json writes) scores AP 1 under the devkit +1 arithmetic', async () => {
    const { evalVoc } = await import('../../core/eval/voc.js');
    // VOC object over pixels 1..10 x 1..20 (1-based inclusive): 10 x 20 pixels, COCO bbox [0, 0, 10, 20].
    const voc: Dataset = {
      name: 'v', labels: ['background', 'a'], warnings: [],
      samples: [{ id: '000001', imagePath: 'x', width: 32, height: 32, objects: [{ classId: 1, box: [1, 1, 10, 20], difficult: false }] }],
    };
    const dir = tempDir('ssd-voc-px-');
    const p = join(dir, 'dt.json');
    writeFileSync(p, JSON.stringify([{ image_id: '000001', category_id: 1, bbox: [0, 0, 10, 20], score: 0.9 }]));
    const dets = readCocoResults(p, voc);
    expect(dets[0]!.box).toEqual([1, 1, 10, 20]);
    expect(evalVoc(voc, dets, { metric: 'voc12' }).map).toBe(1);
    // Read as-is (no shift), the devkit would see an 11 x 21 box: IoU 200/231 < 1, still a hit at
    // 0.5 but a wrong box; a small object shows the difference as a miss.
    const small: Dataset = { ...voc, samples: [{ ...voc.samples[0]!, objects: [{ classId: 1, box: [1, 1, 2, 2], difficult: false }] }] };
    writeFileSync(p, JSON.stringify([{ image_id: '000001', category_id: 1, bbox: [0, 0, 2, 2], score: 0.9 }]));
    expect(evalVoc(small, readCocoResults(p, small), { metric: 'voc12' }).map).toBe(1);
    expect(evalVoc(small, [{ imageId: '000001', classId: 1, score: 0.9, box: [0, 0, 2, 2] }], { metric: 'voc12' }).map).toBe(0);
  });

  it("ssd detect's writer (Pixels, ids from the ground truth) and ssd eval's reader agree: a perfect box scores 1", async () => {
    const { evalVoc } = await import('../../core/eval/voc.js');
    const { evalCoco } = await import('../../core/eval/coco.js');
    const dir = tempDir('ssd-writer-reader-');
    // The model knows the classes in another order than the ground truth: ids follow the names.
    const modelLabels = ['background', 'b', 'a'];
    const detected = [{ path: '/elsewhere/000001.jpg', detections: [{ classId: 2, score: 0.9, box: [0, 0, 10, 20] as [number, number, number, number] }] }];
    // VOC ground truth: the object over pixels 1..10 x 1..20.
    const voc: Dataset = {
      name: 'v', labels: ['background', 'a', 'b'], warnings: [],
      samples: [{ id: '000001', imagePath: '/data/VOC/JPEGImages/000001.jpg', width: 32, height: 32, objects: [{ classId: 1, box: [1, 1, 10, 20], difficult: false }] }],
    };
    const vocIds: GroundTruthIds = { name: 'v', format: 'voc', labels: voc.labels, categoryIds: [-1, 1, 2], images: [{ id: '000001', path: voc.samples[0]!.imagePath }] };
    const p = join(dir, 'voc.json');
    writeFileSync(p, JSON.stringify(cocoResultsWithIds(detected, resultsIdsFromGroundTruth(vocIds, modelLabels))));
    expect(JSON.parse(readFileSync(p, 'utf8'))).toEqual([{ image_id: '000001', category_id: 1, bbox: [0, 0, 10, 20], score: 0.9 }]);
    expect(readCocoResults(p, voc)[0]!.box).toEqual([1, 1, 10, 20]);
    expect(evalVoc(voc, readCocoResults(p, voc), { metric: 'voc12' }).map).toBe(1);
    // COCO ground truth with numeric image ids and non-contiguous category ids: no shift, its ids.
    const coco: Dataset = {
      name: 'c', labels: ['background', 'a', 'b'], warnings: [], cocoCategoryIds: [-1, 18, 3],
      samples: [{ id: '397133', imagePath: '/coco/val/000000397133.jpg', width: 32, height: 32, objects: [{ classId: 1, box: [0, 0, 10, 20], difficult: false }] }],
    };
    const cocoIds: GroundTruthIds = { name: 'c', format: 'coco', labels: coco.labels, categoryIds: [-1, 18, 3], images: [{ id: 397133, path: coco.samples[0]!.imagePath }] };
    const q = join(dir, 'coco.json');
    writeFileSync(q, JSON.stringify(cocoResultsWithIds([{ ...detected[0]!, path: '/x/000000397133.jpg' }], resultsIdsFromGroundTruth(cocoIds, modelLabels))));
    expect(JSON.parse(readFileSync(q, 'utf8'))).toEqual([{ image_id: 397133, category_id: 18, bbox: [0, 0, 10, 20], score: 0.9 }]);
    expect(readCocoResults(q, coco)[0]!.box).toEqual([0, 0, 10, 20]);
    expect(evalCoco(coco, readCocoResults(q, coco)).map).toBeCloseTo(1, 10);
    // The dataset-side writer is the same writer: what it writes reads back unchanged.
    expect(toCocoResults(readCocoResults(p, voc), voc)).toEqual(JSON.parse(readFileSync(p, 'utf8')));
  });
});
