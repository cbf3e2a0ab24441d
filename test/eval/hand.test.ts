import { describe, expect, it } from 'vitest';
import type { Dataset, GroundTruthObject } from '../../core/datasets/types.js';
import type { DetectionAnnotationXYXY } from '../../core/model-contract.js';
import { COCO_IOU_THRESHOLDS, COCO_RECALL_THRESHOLDS, evalCoco } from '../../core/eval/coco.js';
import { evalVoc, vocAp07, vocAp12 } from '../../core/eval/voc.js';

type Box = [number, number, number, number];
const LABELS = ['background', 'a', 'b'];

function dataset(images: Record<string, GroundTruthObject[]>): Dataset {
  return {
    name: 'hand',
    labels: LABELS,
    warnings: [],
    samples: Object.entries(images).map(([id, objects]) => ({ id, imagePath: `${id}.jpg`, width: 500, height: 500, objects })),
  };
}
const gtA = (box: Box, extra: Partial<GroundTruthObject> = {}): GroundTruthObject => ({ classId: 1, box, difficult: false, ...extra });
const det = (imageId: string, score: number, box: Box, classId = 1): DetectionAnnotationXYXY => ({ imageId, classId, score, box });

describe('VOC evaluator on hand-computed cases', () => {
  it('uses inclusive pixels (+1): a 2x2 ground truth and a 2x3 detection overlap 4/6', () => {
    // +1 areas: gt 2*2 = 4, det 2*3 = 6, inter 2*2 = 4 -> IoU 4/6 > .5: a hit, AP 1.
    // (Without the +1 it would be 1*1 / (1 + 2 - 1) = .5, not > .5: a miss, AP 0.)
    const r = evalVoc(dataset({ i: [gtA([1, 1, 2, 2])] }), [det('i', 0.9, [1, 1, 2, 3])], { metric: 'voc12' });
    expect(r.ap.a).toBe(1);
  });

  it('IoU exactly at the threshold: a miss as in voc_eval (>), a hit with inclusiveThreshold (devkit >=)', () => {
    // gt 10x10 = 100 px, det 10x20 = 200 px, inter 100 -> IoU 100 / 200 = .5 exactly.
    const gt = dataset({ i: [gtA([1, 1, 10, 10])] });
    const d = [det('i', 0.9, [1, 1, 10, 20])];
    expect(evalVoc(gt, d, { metric: 'voc12' }).ap.a).toBe(0);
    expect(evalVoc(gt, d, { metric: 'voc12', inclusiveThreshold: true }).ap.a).toBe(1);
  });

  it('duplicates are false positives, difficult objects neither hit nor miss', () => {
    const gt = dataset({ i: [gtA([1, 1, 20, 20]), gtA([40, 40, 60, 60]), gtA([100, 100, 120, 120], { difficult: true })] });
    const dets = [
      det('i', 0.9, [1, 1, 20, 20]), // TP
      det('i', 0.85, [100, 100, 120, 120]), // on the difficult one: ignored
      det('i', 0.8, [2, 2, 20, 20]), // duplicate of the first: FP
      det('i', 0.7, [40, 40, 60, 60]), // TP
    ];
    // Counted: TP, FP, TP over 2 positives: rec .5 .5 1, prec 1 .5 2/3.
    // voc12 = .5 * 1 + .5 * 2/3 = 5/6; voc07 = (6 * 1 + 5 * 2/3) / 11 = 28/33.
    const r12 = evalVoc(gt, dets, { metric: 'voc12' });
    expect(r12.ap.a).toBeCloseTo(5 / 6, 14);
    expect(r12.perClass.a).toEqual({ ap: r12.ap.a, gt: 2, dets: 4, tp: 2, fp: 1 });
    expect(evalVoc(gt, dets, { metric: 'voc07' }).ap.a).toBeCloseTo(28 / 33, 14);
    // Class b has no ground truth: undefined, -1, out of the mean.
    expect(r12.ap.b).toBe(-1);
    expect(r12.map).toBeCloseTo(5 / 6, 14);
  });

  it('equal scores keep their input order (stable sort, as Matlab sort)', () => {
    const gt = dataset({ i: [gtA([1, 1, 20, 20])] });
    const hit = det('i', 0.5, [1, 1, 20, 20]);
    const miss = det('i', 0.5, [300, 300, 320, 320]);
    // hit first: prec 1, .5 at rec 1, 1 -> AP 1; miss first: prec 0, .5 at rec 0, 1 -> envelope .5 -> AP .5.
    expect(evalVoc(gt, [hit, miss], { metric: 'voc12' }).ap.a).toBe(1);
    expect(evalVoc(gt, [miss, hit], { metric: 'voc12' }).ap.a).toBe(0.5);
  });

  it('11-point thresholds are k * 0.1 in floating point: recall 3/10 is below 3 * 0.1', () => {
    // 3/10 = 0.29999999999999998 < 3 * 0.1 = 0.30000000000000004, so recall .3 counts for t = 0, .1, .2 only.
    expect(vocAp07([0.1, 0.2, 0.3], [1, 1, 1])).toBeCloseTo(3 / 11, 15);
    expect(vocAp07([0.1, 0.2, 0.4], [1, 1, 1])).toBeCloseTo(5 / 11, 15);
    expect(vocAp07([], [])).toBe(0);
    // All-point AP: rec .5 at prec 1, then rec 1 at prec .5 -> .5 + .25.
    expect(vocAp12([0.5, 1], [1, 0.5])).toBe(0.75);
    // Precision made monotone: the dip to 1/3 is lifted to the later .5.
    expect(vocAp12([0.25, 0.25, 0.5], [1, 1 / 3, 0.5])).toBe(0.25 + 0.25 * 0.5);
  });
});

// Precision is tp / (tp + fp + spacing(1)) as in pycocotools, so a perfect score is 1 - 2.2e-16.
function close(actual: number[], expected: number[]): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((v, i) => expect(Math.abs(v - expected[i]!), `index ${i}`).toBeLessThan(1e-12));
}

describe('COCO evaluator on hand-computed cases', () => {
  const one = (objects: GroundTruthObject[]) => dataset({ '1': objects });

  it('uses numpy linspace thresholds', () => {
    expect(COCO_IOU_THRESHOLDS).toHaveLength(10);
    expect(COCO_IOU_THRESHOLDS[8]).toBe(0.8999999999999999); // numpy gives the same
    expect(COCO_RECALL_THRESHOLDS).toHaveLength(101);
    expect(COCO_RECALL_THRESHOLDS[35]).toBe(0.35000000000000003);
  });

  it('a perfect small detection: every AP/AR 1 where defined, -1 for empty area ranges', () => {
    const r = evalCoco(one([gtA([0, 0, 10, 10])]), [det('1', 0.9, [0, 0, 10, 10])]);
    close(r.stats, [1, 1, 1, 1, -1, -1, 1, 1, 1, 1, -1, -1]);
    close([r.ap.a!, r.ap.b!], [1, -1]);
  });

  it('IoU .6 passes the thresholds .50, .55 and .60 only: AP 3/10', () => {
    // inter 10*6 = 60, union 100 -> IoU .6 (no +1 in COCO); .6 is not < thresholds[2] = .6.
    const r = evalCoco(one([gtA([0, 0, 10, 10])]), [det('1', 0.9, [0, 0, 10, 6])]);
    expect(r.stats[0]).toBeCloseTo(0.3, 15);
    expect(r.stats[1]).toBeCloseTo(1, 15);
    expect(r.stats[2]).toBe(0);
    expect(r.stats[8]).toBeCloseTo(0.3, 15);
  });

  it('a higher-scored false positive: precision .5 up to recall .5; maxDets=1 sees only the false positive', () => {
    const gt = one([gtA([0, 0, 10, 10]), gtA([20, 0, 30, 10])]);
    const r = evalCoco(gt, [det('1', 0.9, [50, 50, 60, 60]), det('1', 0.8, [0, 0, 10, 10])]);
    // rc = [0, .5], pr = [0, 1/2] -> monotone [.5, .5]; recall points 0, .01, ..., .50 (51 of 101) get .5.
    expect(r.stats[0]).toBeCloseTo((51 * 0.5) / 101, 12);
    expect(r.stats[6]).toBe(0); // AR1
    expect(r.stats[7]).toBe(0.5); // AR10
  });

  it('crowd regions take any number of detections, by intersection over the detection area, and are ignored', () => {
    const gt = one([gtA([0, 0, 100, 100], { iscrowd: true }), gtA([200, 200, 210, 210])]);
    const dets = [det('1', 0.9, [10, 10, 20, 20]), det('1', 0.8, [50, 50, 90, 90]), det('1', 0.5, [200, 200, 210, 210])];
    // Both crowd hits are ignored (inter / det area = 1), so the only counted detection is a TP: AP 1.
    expect(evalCoco(gt, dets).stats[0]).toBeCloseTo(1, 15);
    // Without the crowd flag they would be false positives ranked first.
    const plain = one([gtA([0, 0, 100, 100]), gtA([200, 200, 210, 210])]);
    expect(evalCoco(plain, dets).stats[0]).toBeLessThan(0.5);
  });

  it('area ranges use the annotation area, not the box', () => {
    // A 40x40 box (1600, medium) whose annotation area is 900 (< 32^2: small).
    const r = evalCoco(one([gtA([0, 0, 40, 40], { area: 900 })]), [det('1', 0.9, [0, 0, 40, 40])]);
    close(r.stats.slice(3, 6), [1, -1, -1]);
    close(r.stats.slice(9, 12), [1, -1, -1]);
  });

  it('at most 100 detections per image and class', () => {
    // 101 gts on a grid; 101 exact detections with falling scores: the last is cut, recall 100/101.
    const objs: GroundTruthObject[] = [];
    const dets: DetectionAnnotationXYXY[] = [];
    for (let k = 0; k < 101; k++) {
      const b: Box = [(k % 11) * 40, Math.floor(k / 11) * 40, (k % 11) * 40 + 30, Math.floor(k / 11) * 40 + 30];
      objs.push(gtA(b));
      dets.push(det('1', 1 - k / 1000, b));
    }
    const r = evalCoco(one(objs), dets);
    expect(r.stats[8]).toBeCloseTo(100 / 101, 12);
    expect(r.stats[7]).toBeCloseTo(10 / 101, 12);
    expect(r.stats[6]).toBeCloseTo(1 / 101, 12);
  });
});
