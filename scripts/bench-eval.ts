/**
 * Times the evaluators on synthetic COCO-val-sized and VOC07-test-sized inputs (random boxes,
 * 100 detections per image, 70% of them near a ground truth).
 * Usage: npx tsx scripts/bench-eval.ts [--images 5000] [--classes 80] [--dets 100] [--seed 1] [--dump DIR]
 * --dump writes gt.json (COCO instances), dt.json (COCO results) and ts.json (this evaluator's
 * numbers); `scripts/fixtures/make-eval-fixtures.py --check-dump DIR` runs the same input through
 * pycocotools and the Python voc_eval and prints the largest differences.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { intFlag, parseFlags } from '../cli/args.js';
import { writeFileAtomic } from '../core/atomic-write.js';
import { toCocoResults } from '../core/datasets/results.js';
import type { Dataset, GroundTruthObject } from '../core/datasets/types.js';
import type { DetectionAnnotationXYXY } from '../core/model-contract.js';
import { evalCoco } from '../core/eval/coco.js';
import { evalVoc } from '../core/eval/voc.js';
import { createRng } from '../core/rng.js';

const { values } = parseFlags('bench-eval', process.argv.slice(2), {
  images: { type: 'string' },
  classes: { type: 'string' },
  dets: { type: 'string' },
  seed: { type: 'string' },
  dump: { type: 'string' },
}, false);
const N = intFlag('images', values.images, 5000, 1);
const K = intFlag('classes', values.classes, 80, 1);
const D = intFlag('dets', values.dets, 100, 0);
const rng = createRng(intFlag('seed', values.seed, 1, 0));
const round2 = (v: number): number => Math.round(v * 100) / 100;

const labels = ['background', ...Array.from({ length: K }, (_, k) => `c${k + 1}`)];
const gt: Dataset = { name: 'synthetic', labels, warnings: [], samples: [], cocoCategoryIds: labels.map((_, k) => (k === 0 ? -1 : k)) };
const dets: DetectionAnnotationXYXY[] = [];
let annId = 1;
for (let i = 0; i < N; i++) {
  const objects: GroundTruthObject[] = [];
  const G = 1 + rng.int(12);
  for (let g = 0; g < G; g++) {
    const side = Math.exp(rng.uniform(Math.log(6), Math.log(400)));
    const w = round2(side * rng.uniform(0.6, 1.4));
    const h = round2(side * rng.uniform(0.6, 1.4));
    const x = round2(rng.uniform(0, 640 - Math.min(w, 600)));
    const y = round2(rng.uniform(0, 480 - Math.min(h, 440)));
    const crowd = rng.next() < 0.01;
    objects.push({ classId: 1 + rng.int(K), box: [x, y, round2(x + w), round2(y + h)], difficult: false, iscrowd: crowd, area: round2(w * h * rng.uniform(0.5, 1)), annotationId: annId++ });
  }
  gt.samples.push({ id: String(i + 1), imagePath: `${i + 1}.jpg`, width: 640, height: 480, objects });
  for (let d = 0; d < D; d++) {
    const o = objects[rng.int(G)]!;
    const [x1, y1, x2, y2] = o.box;
    const jw = (x2 - x1) * 0.25;
    const jh = (y2 - y1) * 0.25;
    const near = rng.next() < 0.7;
    const bx1 = near ? x1 + rng.uniform(-jw, jw) : rng.uniform(0, 600);
    const by1 = near ? y1 + rng.uniform(-jh, jh) : rng.uniform(0, 440);
    const bx2 = near ? x2 + rng.uniform(-jw, jw) : bx1 + rng.uniform(4, 200);
    const by2 = near ? y2 + rng.uniform(-jh, jh) : by1 + rng.uniform(4, 200);
    dets.push({
      imageId: String(i + 1),
      classId: near && rng.next() < 0.8 ? o.classId : 1 + rng.int(K),
      score: Math.round(rng.next() * 1e6) / 1e6,
      box: [round2(bx1), round2(by1), round2(Math.max(bx1, bx2)), round2(Math.max(by1, by2))],
    });
  }
}

/** Wall and CPU seconds: on a shared machine the CPU time is the steadier number. */
function time<T>(f: () => T): [T, string] {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const r = f();
  const c = process.cpuUsage(c0);
  return [r, `${((performance.now() - t0) / 1000).toFixed(2)} | ${((c.user + c.system) / 1e6).toFixed(2)}`];
}
const [coco, tCoco] = time(() => evalCoco(gt, dets));
const [voc07, tVoc07] = time(() => evalVoc(gt, dets, { metric: 'voc07' }));
const [voc12, tVoc12] = time(() => evalVoc(gt, dets, { metric: 'voc12' }));
console.log(`input: ${N} images, ${K} classes, ${gt.samples.reduce((s, x) => s + x.objects.length, 0)} ground truths, ${dets.length} detections`);
console.log('| evaluator | wall (s) | CPU (s) | mAP |');
console.log('| --- | --- | --- | --- |');
console.log(`| coco (12 stats) | ${tCoco} | ${coco.map.toFixed(4)} |`);
console.log(`| voc07 | ${tVoc07} | ${voc07.map.toFixed(4)} |`);
console.log(`| voc12 | ${tVoc12} | ${voc12.map.toFixed(4)} |`);
if (values.dump) {
  const dir = resolve(values.dump);
  mkdirSync(dir, { recursive: true });
  const instances = {
    images: gt.samples.map((s) => ({ id: Number(s.id), width: s.width, height: s.height, file_name: `${s.id}.jpg` })),
    categories: labels.slice(1).map((name, k) => ({ id: k + 1, name })),
    annotations: gt.samples.flatMap((s) =>
      s.objects.map((o) => ({ id: o.annotationId, image_id: Number(s.id), category_id: o.classId, bbox: [o.box[0], o.box[1], o.box[2] - o.box[0], o.box[3] - o.box[1]], area: o.area, iscrowd: o.iscrowd ? 1 : 0 })),
    ),
  };
  writeFileAtomic(join(dir, 'gt.json'), JSON.stringify(instances));
  writeFileAtomic(join(dir, 'dt.json'), JSON.stringify(toCocoResults(dets, gt)));
  writeFileAtomic(join(dir, 'ts.json'), JSON.stringify({ stats: coco.stats, ap: coco.ap, voc07: voc07.ap, voc12: voc12.ap }));
  console.log(`wrote ${dir}/{gt,dt,ts}.json`);
}
