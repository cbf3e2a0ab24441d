// Cross-check of core/ against torchvision 0.14 (an independent SSD implementation): DefaultBoxGenerator,
// BoxCoder(weights 10, 10, 5, 5) and batched_nms. Fixtures: scripts/fixtures/make-torchvision-fixtures.py.
//
// torchvision's ssd300_vgg16 is the COCO model, and its anchor configuration is our 'ssd300-coco' spec:
// scales [0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05] of 300 px are min sizes 21, 45, 99, 153, 207, 261 with
// max size = the next scale (45 ... 315), exactly the Caffe ssd_coco.py derivation (conv4_3 at 7%,
// min_ratio 15, step floor(75 / 4) = 18); steps 8..300 and ratios [2], [2,3] x3, [2], [2] are the same.
// One difference: torchvision clips w and h of default boxes to 1 (clip=True) while the reference does not;
// that only changes the last map's ratio-2 boxes (0.87 * sqrt(2) = 1.23 -> 1).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { defaultBoxes } from '../../core/default-boxes.js';
import { decodeBoxes, encodeBoxes } from '../../core/box-coding.js';
import { multiclassNms } from '../../core/nms.js';
import { postprocess } from '../../core/postprocess.js';
import { paramCount, specByName, type SsdSpec } from '../../core/specs.js';

const dir = new URL('../fixtures/torchvision/', import.meta.url);
const load = <T>(name: string): T => JSON.parse(readFileSync(new URL(name, dir), 'utf8')) as T;

interface BoxCase { name: string; inputSize: number; total: number; scales: number[]; clip: boolean; indices: number[]; boxesCXCYWH: number[][] }
interface DefaultBoxFixture {
  ssd300_vgg16: {
    scales: number[]; steps: number[]; aspectRatios: number[][]; clip: boolean; imageMean: number[]; scoreThresh: number; nmsThresh: number;
    topkCandidates: number; detectionsPerImg: number; boxCoderWeights: number[]; paramCountVoc21: number; numAnchorsPerLocation: number[];
  };
  cases: BoxCase[];
}
interface DetFixture { boxesXYXY: number[]; scores: number[]; classIds: number[] }

const fx = load<DefaultBoxFixture>('default-boxes.json');

function compareBoxes(ours: Float32Array, c: BoxCase, clipWH: boolean): void {
  expect(ours.length / 4).toBe(c.total);
  let worst = 0;
  c.indices.forEach((idx, k) => {
    for (let j = 0; j < 4; j++) {
      let v = ours[idx * 4 + j]!;
      if (clipWH && j >= 2) v = Math.min(1, v);
      worst = Math.max(worst, Math.abs(v - c.boxesCXCYWH[k]![j]!));
    }
  });
  expect(worst).toBeLessThan(1e-6);
}

describe('default boxes vs torchvision DefaultBoxGenerator', () => {
  const byName = (prefix: string) => fx.cases.find((c) => c.name.startsWith(prefix))!;

  it("torchvision's ssd300_vgg16 configuration is our ssd300-coco spec", () => {
    const tv = fx.ssd300_vgg16;
    const coco = specByName('ssd300-coco');
    expect(coco.maps.map((m) => m.minSize / 300)).toEqual(tv.scales.slice(0, 6).map((s) => expect.closeTo(s, 6)));
    expect(coco.maps.map((m) => m.maxSize / 300)).toEqual(tv.scales.slice(1).map((s) => expect.closeTo(s, 6)));
    expect(coco.maps.map((m) => m.step)).toEqual(tv.steps);
    expect(coco.maps.map((m) => m.aspectRatios)).toEqual(tv.aspectRatios);
    expect(tv.numAnchorsPerLocation).toEqual([4, 6, 6, 6, 4, 4]);
  });

  it('ssd300-coco equals torchvision (clip=False) and, with w/h clipped to 1, torchvision as shipped (clip=True)', () => {
    const ours = defaultBoxes(specByName('ssd300-coco'));
    compareBoxes(ours, byName('ssd300-coco'), false);
    expect(fx.ssd300_vgg16.clip).toBe(true);
    compareBoxes(ours, byName('ssd300_vgg16'), true);
  });

  it('SSD300 (VOC) and SSD512 (COCO) equal DefaultBoxGenerator given the SSD-SPEC sizes as scales', () => {
    compareBoxes(defaultBoxes(specByName('ssd300')), byName('ssd300 (VOC)'), false);
    compareBoxes(defaultBoxes(specByName('ssd512-coco')), byName('ssd512-coco'), false);
  });

  it("torchvision's SSD300 hyper-parameters agree with SSD-SPEC", () => {
    const tv = fx.ssd300_vgg16;
    const spec = specByName('ssd300');
    expect(paramCount(spec)).toBe(tv.paramCountVoc21); // 26,285,486
    expect(tv.boxCoderWeights).toEqual(spec.variances.map((v) => 1 / v)); // 10, 10, 5, 5
    expect([tv.scoreThresh, tv.nmsThresh, tv.topkCandidates, tv.detectionsPerImg])
      .toEqual([spec.postprocess.confidenceThreshold, spec.postprocess.nmsThreshold, spec.postprocess.topKPerClass, spec.postprocess.keepTopK]);
    // torchvision normalises RGB in 0..1: mean (0.48235, 0.45882, 0.40784) * 255 = RGB 123, 117, 104 = BGR 104, 117, 123.
    expect(tv.imageMean.map((m) => Math.round(m * 255)).reverse()).toEqual(spec.input.mean);
  });
});

describe('box coding vs torchvision BoxCoder', () => {
  const f = load<{ priorsCXCYWH: number[]; gtXYXY: number[]; encoded: number[]; loc: number[]; decodedXYXY: number[] }>('box-coding.json');
  const priors = Float32Array.from(f.priorsCXCYWH);
  const V = specByName('ssd300').variances;

  it('encode', () => {
    const ours = encodeBoxes(Float32Array.from(f.gtXYXY), priors, V);
    ours.forEach((v, i) => expect(v).toBeCloseTo(f.encoded[i]!, 4));
  });

  it('decode (including regressions past the log(1000/16) clamp)', () => {
    const ours = decodeBoxes(Float32Array.from(f.loc), priors, V);
    ours.forEach((v, i) => expect(v).toBeCloseTo(f.decodedXYXY[i]!, 5));
  });
});

describe('detection output vs torchvision (score threshold, top-k per class, batched_nms, keep)', () => {
  function expectSame(ours: { count: number; boxesXYXY: Float32Array; scores: Float32Array; classIds: Int32Array }, ref: DetFixture): void {
    expect(ours.count).toBe(ref.scores.length);
    expect(Array.from(ours.classIds)).toEqual(ref.classIds);
    ours.scores.forEach((s, i) => expect(s).toBeCloseTo(ref.scores[i]!, 6));
    ours.boxesXYXY.forEach((v, i) => expect(v).toBeCloseTo(ref.boxesXYXY[i]!, 5));
  }

  it('multiclassNms on three random cases', () => {
    const f = load<{ cases: Array<{ P: number; C: number; confidenceThreshold: number; topKPerClass: number; nmsThreshold: number; keepTopK: number; boxesXYXY: number[]; scoresPC: number[]; expected: DetFixture }> }>('nms.json');
    for (const c of f.cases) {
      const ours = multiclassNms(Float32Array.from(c.boxesXYXY), Float32Array.from(c.scoresPC), c.C, c);
      expect(ours.count).toBeGreaterThan(5);
      expectSame(ours, c.expected);
    }
  });

  it('postprocess (softmax + decode + NMS) on raw head outputs for the first 200 SSD300 default boxes', () => {
    const f = load<{ P: number; C: number; priorsCXCYWH: number[]; loc: number[]; logits: number[]; expected: DetFixture }>('postprocess.json');
    const spec: SsdSpec = { ...specByName('ssd300'), labels: ['background', 'a', 'b', 'c', 'd', 'e'] };
    expect(spec.labels.length).toBe(f.C);
    const ours = postprocess(Float32Array.from(f.loc), Float32Array.from(f.logits), Float32Array.from(f.priorsCXCYWH), spec, { clip: false });
    expect(ours.count).toBeGreaterThan(10);
    expectSame(ours, f.expected);
    // The stored priors are our SSD300 default boxes 0..199.
    const mine = defaultBoxes(specByName('ssd300')).subarray(0, f.P * 4);
    mine.forEach((v, i) => expect(v).toBeCloseTo(f.priorsCXCYWH[i]!, 6));
  });
});
