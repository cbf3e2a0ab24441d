import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { main } from '../../cli/main.js';
import { loadVocDataset } from '../../core/datasets/voc.js';
import { readVocComp4Dir, writeCocoResults, writeVocComp4 } from '../../core/datasets/results.js';
import type { DetectionAnnotationXYXY } from '../../core/model-contract.js';
import { evalVoc } from '../../core/eval/voc.js';
import { tempDir } from '../helpers/temp-dir.js';

const tmp = tempDir('ssd-evalcli-');

/** Runs `ssd eval` in this process, capturing what it prints. */
async function ssd(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  try {
    const code = await main(['eval', ...args]);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

// A two-class VOC tree: 3 images, one difficult object.
const voc = join(tmp, 'VOC2007');
mkdirSync(join(voc, 'Annotations'), { recursive: true });
mkdirSync(join(voc, 'ImageSets', 'Main'), { recursive: true });
const objXml = (n: string, b: number[], d = 0) =>
  `<object><name>${n}</name><difficult>${d}</difficult><bndbox><xmin>${b[0]}</xmin><ymin>${b[1]}</ymin><xmax>${b[2]}</xmax><ymax>${b[3]}</ymax></bndbox></object>`;
const annXml = (objs: string[]) => `<annotation><size><width>100</width><height>100</height></size>${objs.join('')}</annotation>`;
writeFileSync(join(voc, 'Annotations', '000001.xml'), annXml([objXml('cat', [1, 1, 10, 10]), objXml('dog', [20, 20, 40, 40])]));
writeFileSync(join(voc, 'Annotations', '000002.xml'), annXml([objXml('cat', [5, 5, 50, 50]), objXml('cat', [60, 60, 70, 70], 1)]));
writeFileSync(join(voc, 'Annotations', '000003.xml'), annXml([objXml('dog', [1, 1, 30, 30])]));
writeFileSync(join(voc, 'ImageSets', 'Main', 'test.txt'), '000001\n000002\n000003\n');
writeFileSync(join(voc, 'labels.txt'), 'cat\ndog\n');

const dets: DetectionAnnotationXYXY[] = [
  { imageId: '000001', classId: 1, score: 0.9, box: [1, 1, 10, 10] }, // cat TP
  { imageId: '000002', classId: 1, score: 0.8, box: [60, 60, 70, 70] }, // on the difficult cat: ignored
  { imageId: '000002', classId: 1, score: 0.7, box: [80, 80, 90, 90] }, // cat FP
  { imageId: '000002', classId: 1, score: 0.6, box: [5, 5, 50, 50] }, // cat TP
  { imageId: '000003', classId: 2, score: 0.5, box: [1, 1, 30, 30] }, // dog TP
];
// cat: ranked TP, FP, TP over 2 positives -> rec .5,.5,1; prec 1,.5,2/3.
//   voc12: envelope 1 up to .5 then 2/3 -> .5*1 + .5*2/3 = 5/6. voc07: t=0..0.5 -> 1 (6 points), 0.6..1 -> 2/3 (5 points) = (6 + 10/3)/11 = 28/33.
// dog: one TP of 2 positives -> rec .5, prec 1. voc12: .5. voc07: 6/11.
const CAT12 = 5 / 6;
const DOG12 = 0.5;
const CAT07 = 28 / 33;
const DOG07 = 6 / 11;

describe('ssd eval', () => {
  const comp4 = join(tmp, 'comp4');
  const gt = loadVocDataset(voc, 'test', { checkImages: false });
  writeVocComp4(comp4, dets, gt.labels);
  const cocoJson = join(tmp, 'dets.json');
  writeCocoResults(cocoJson, dets, gt);

  it('comp4 files round-trip', () => {
    expect(readVocComp4Dir(comp4, gt)).toEqual([...dets].sort((a, b) => a.classId - b.classId));
    // py-faster-rcnn's salted names read the same.
    const salted = join(tmp, 'salted');
    writeVocComp4(salted, dets, gt.labels, { prefix: 'comp4_2f9c1a7e-58d1-4c1b-9d43-0a6c7b2e1f00' });
    expect(readVocComp4Dir(salted, gt)).toEqual(readVocComp4Dir(comp4, gt));
  });

  it('prints one JSON object with --json (comp4 dir and COCO results agree)', async () => {
    for (const dt of [comp4, cocoJson]) {
      const r = await ssd(['--gt', voc, '--dt', dt, '--metric', 'voc12', '--json']);
      expect(r.code).toBe(0);
      const lines = r.out.trim().split('\n');
      expect(lines).toHaveLength(1);
      const j = JSON.parse(lines[0]!) as { metric: string; map: number; ap: Record<string, number> };
      expect(Object.keys(j)).toEqual(['metric', 'map', 'ap']);
      expect(j.metric).toBe('voc12');
      expect(j.ap.cat).toBeCloseTo(CAT12, 12);
      expect(j.ap.dog).toBeCloseTo(DOG12, 12);
      expect(j.map).toBeCloseTo((CAT12 + DOG12) / 2, 12);
    }
    const r07 = await ssd(['--gt', voc, '--dt', comp4, '--metric', 'voc07', '--json']);
    const j07 = JSON.parse(r07.out) as { map: number; ap: Record<string, number> };
    expect(j07.ap.cat).toBeCloseTo(CAT07, 12);
    expect(j07.ap.dog).toBeCloseTo(DOG07, 12);
  });

  it('prints a per-class table by default and coco stats with --metric coco', async () => {
    const r = await ssd(['--gt', voc, '--dt', comp4]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/cat\s+0\.8485\s+2\s+4\s+2\s+1/);
    expect(r.out).toMatch(/mAP \(VOC07 11-point\) = 0\.6970/);
    const c = await ssd(['--gt', voc, '--dt', comp4, '--metric', 'coco', '--json']);
    const j = JSON.parse(c.out) as { metric: string; stats: number[]; map: number };
    expect(j.metric).toBe('coco');
    expect(j.stats).toHaveLength(12);
    expect(j.map).toBe(j.stats[0]);
  });

  it('bad input: one line naming the file, non-zero exit', async () => {
    const cases: [string[], RegExp][] = [
      [['--gt', join(tmp, 'nope'), '--dt', comp4], /nope: no such file or directory/],
      [['--gt', voc, '--dt', join(tmp, 'missing.json')], /missing\.json: no such file/],
      [['--gt', voc, '--dt', comp4, '--metric', 'map'], /--metric must be one of voc07, voc12, coco/],
      [['--gt', voc], /--dt is required/],
      [['--gt', `${voc},${join(tmp, 'other')}`, '--dt', comp4], /other: no such file or directory/],
    ];
    const bad = (name: string, text: string) => {
      const p = join(tmp, name);
      writeFileSync(p, text);
      return p;
    };
    cases.push([['--gt', voc, '--dt', bad('bad.json', '[{"image_id": "000001", ')], /bad\.json: malformed JSON/]);
    cases.push([['--gt', voc, '--dt', bad('cls.json', '[{"image_id":"000001","category_id":7,"bbox":[1,1,2,2],"score":1}]')], /cls\.json: entry 0: unknown class/]);
    cases.push([['--gt', voc, '--dt', bad('neg.json', '[{"image_id":"000001","category_id":1,"bbox":[1,1,-2,2],"score":1}]')], /neg\.json: entry 0: inverted box: negative size \(w=-2, h=2\)/]);
    cases.push([['--gt', voc, '--dt', bad('null.json', '[{"image_id":"000001","category_id":1,"bbox":[1,1,2,2],"score":1},{"image_id":"000001","category_id":1,"bbox":[1,null,2,2],"score":1}]')], /null\.json: entry 1: "bbox" \[1,null,2,2\] is not four finite numbers/]);
    cases.push([['--gt', voc, '--dt', bad('huge.json', '[{"image_id":"000001","category_id":1,"bbox":[1,1,1e999,2],"score":1}]')], /huge\.json: entry 0: "bbox" .* is not four finite numbers/]);
    const comp4Case = (name: string, text: string): string => {
      const d = join(tmp, name);
      mkdirSync(d);
      writeFileSync(join(d, 'comp4_det_test_cat.txt'), `000001 0.9 1 1 10 10\n${text}\n`);
      writeFileSync(join(d, 'comp4_det_test_dog.txt'), '');
      return d;
    };
    cases.push([['--gt', voc, '--dt', comp4Case('c4nan', '000002 0.5 nan 1 5 5')], /c4nan\/comp4_det_test_cat\.txt:2: score and box must be finite numbers, got "000002 0\.5 nan 1 5 5"/]);
    cases.push([['--gt', voc, '--dt', comp4Case('c4inf', '000002 0.5 1 1 inf 5')], /c4inf\/comp4_det_test_cat\.txt:2: score and box must be finite numbers/]);
    cases.push([['--gt', voc, '--dt', comp4Case('c4inv', '000002 0.5 20 1 10 5')], /c4inv\/comp4_det_test_cat\.txt:2: inverted box 20 1 10 5/]);
    const badComp = join(tmp, 'badcomp');
    mkdirSync(badComp);
    writeFileSync(join(badComp, 'comp4_det_test_horse.txt'), '000001 0.5 1 1 5 5\n');
    cases.push([['--gt', voc, '--dt', badComp], /comp4_det_test_horse\.txt: unknown class/]);
    const badLine = join(tmp, 'badline');
    mkdirSync(badLine);
    writeFileSync(join(badLine, 'comp4_det_test_cat.txt'), '000001 0.5 1 1 5\n');
    cases.push([['--gt', voc, '--dt', badLine], /comp4_det_test_cat\.txt:1: expected/]);
    const badVoc = (name: string, xml: string): string => {
      const root = join(tmp, name, 'VOC2007');
      mkdirSync(join(root, 'Annotations'), { recursive: true });
      mkdirSync(join(root, 'ImageSets', 'Main'), { recursive: true });
      writeFileSync(join(root, 'ImageSets', 'Main', 'test.txt'), 'a\n');
      writeFileSync(join(root, 'Annotations', 'a.xml'), xml);
      return root;
    };
    cases.push([['--gt', badVoc('v1', '<annotation><object><name>cat</name>'), '--dt', comp4], /a\.xml: malformed XML/]);
    cases.push([['--gt', badVoc('v2', annXml([objXml('cat', [-1, 1, 5, 5])])), '--dt', comp4], /a\.xml: object 1 \("cat"\): negative box coordinate/]);
    cases.push([['--gt', badVoc('v3', annXml([objXml('zebra', [1, 1, 5, 5])])), '--dt', comp4], /a\.xml: object 1 \("zebra"\): unknown class/]);
    const badCoco = bad('gt.json', '{"images": [], "categories": 3}');
    cases.push([['--gt', badCoco, '--dt', cocoJson], /gt\.json: not a COCO annotations file/]);
    for (const [args, re] of cases) {
      const r = await ssd(args);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.err.split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.err, args.join(' ')).toMatch(/^ssd eval: /);
      expect(r.err).toMatch(re);
      expect(r.err).not.toMatch(/internal error|\n\s+at /);
    }
  });

  it('any finite box is scored: boxes that leave the image, sub-pixel comp4 boxes', async () => {
    // The cat of image 1 is [1, 1, 10, 10] (1-based): a detection reaching 3 pixels past the top-left
    // corner (COCO 0-based [-3, -3, 10, 10]) has IoU 100/169 with it: a TP at 0.5. The dog of image 3
    // is [1, 1, 30, 30]: [-5, -5, 30, 30] gives 900/1225, a TP too. A 0.5-pixel detection elsewhere
    // (comp4 x2 = x1 - 0.5: width 0.5 under the devkit's +1) is a FP, not an error.
    const coco = join(tmp, 'outside.json');
    writeFileSync(coco, JSON.stringify([
      { image_id: '000001', category_id: 1, bbox: [-3, -3, 13, 13], score: 0.9 },
      { image_id: '000003', category_id: 2, bbox: [-5, -5, 35, 35], score: 0.8 },
    ]));
    const c4 = join(tmp, 'outside-comp4');
    mkdirSync(c4);
    writeFileSync(join(c4, 'comp4_det_test_cat.txt'), '000001 0.9 -2 -2 10 10\n000002 0.1 90 90 89.5 89.5\n');
    writeFileSync(join(c4, 'comp4_det_test_dog.txt'), '000003 0.8 -4 -4 30 30\n');
    for (const dt of [coco, c4]) {
      const r = await ssd(['--gt', voc, '--dt', dt, '--metric', 'voc12', '--json']);
      expect(r.err, dt).toBe('');
      expect(r.code).toBe(0);
      const j = JSON.parse(r.out) as { ap: Record<string, number> };
      // cat: one TP of 2 positives (recall .5, precision 1) -> voc12 AP .5; dog: likewise.
      expect(j.ap.cat, dt).toBeCloseTo(0.5, 12);
      expect(j.ap.dog, dt).toBeCloseTo(0.5, 12);
    }
  });

  it('runs as `npx ssd eval` from the repo root', async () => {
    const run = promisify(execFile);
    const { stdout } = await run(process.execPath, ['bin/ssd.js', 'eval', '--gt', voc, '--dt', comp4, '--json'], { cwd: join(import.meta.dirname, '..', '..') });
    expect((JSON.parse(stdout) as { map: number }).map).toBeCloseTo((CAT07 + DOG07) / 2, 12);
  });

  it('a class with no ground truth is -1 and left out of the mean', () => {
    const only = evalVoc({ ...gt, samples: gt.samples.filter((s) => s.id !== '000001' && s.id !== '000003') }, dets.filter((d) => d.classId === 1 && d.imageId === '000002'), { metric: 'voc12' });
    expect(only.ap.dog).toBe(-1);
    // cat in image 2 alone: ignored, FP, TP over 1 positive -> prec 0, .5 at rec 0, 1 -> AP .5
    expect(only.ap.cat).toBeCloseTo(0.5, 12);
    expect(only.map).toBeCloseTo(0.5, 12);
  });
});
