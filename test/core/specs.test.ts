// Every number of the model tables of SSD-SPEC ("Base network", "Extra layers", "Default boxes",
// "Box coding", "Inference", "Training recipe") asserted against core/specs.ts.
import { describe, expect, it } from 'vitest';
import {
  boxesPerLocation, caffeBoxSizes, CAFFE_INPUT, DEFAULT_POSTPROCESS, DEFAULT_VARIANCES, layerShapes, numDefaultBoxes, outputSize,
  l2NormScaleFor, paperBoxSizes, paramCount, paramSpecs, specByName, SPECS, ssd300, ssdTiny, validateSpec, type ConvLayer, type LayerSpec, type SsdSpec,
} from '../../core/specs.js';
import { VOC_CLASSES, withBackground } from '../../core/labels.js';
import { SsdError } from '../../core/errors.js';

const ssd300Voc = specByName('ssd300');
const ssd512Voc = specByName('ssd512');

function layer(spec: SsdSpec, name: string): LayerSpec {
  const l = spec.layers.find((x) => x.name === name);
  if (!l) throw new Error(`no layer ${name}`);
  return l;
}
const convOf = (spec: SsdSpec, name: string): ConvLayer => layer(spec, name) as ConvLayer;
const shapeOf = (spec: SsdSpec, name: string) => layerShapes(spec).find((s) => s.layer.name === name)!;

describe('SSD-SPEC "Base network": VGG16 atrous', () => {
  it('conv1_1..conv5_3 are 3x3 convs with 64,64 / 128,128 / 256x3 / 512x3 / 512x3 channels and ReLU', () => {
    const expected: Record<string, number> = {
      conv1_1: 64, conv1_2: 64, conv2_1: 128, conv2_2: 128, conv3_1: 256, conv3_2: 256, conv3_3: 256,
      conv4_1: 512, conv4_2: 512, conv4_3: 512, conv5_1: 512, conv5_2: 512, conv5_3: 512,
    };
    for (const spec of [ssd300Voc, ssd512Voc]) {
      for (const [name, out] of Object.entries(expected)) {
        const c = convOf(spec, name);
        expect(c.kind, name).toBe('conv');
        expect([c.out, c.kernel, c.stride, c.pad, c.dilation, c.relu], name).toEqual([out, 3, 1, 1, 1, true]);
      }
    }
  });

  it('pool1..pool4 are 2x2/s2 max pools, pool3 in ceil mode (75 -> 38 at 300 input)', () => {
    for (const name of ['pool1', 'pool2', 'pool3', 'pool4']) {
      const p = layer(ssd300Voc, name);
      expect(p.kind).toBe('maxpool');
      expect([p.kernel, p.stride, p.pad]).toEqual([2, 2, 0]);
      expect(p.kind === 'maxpool' && p.ceil).toBe(name === 'pool3');
    }
    const pool3 = shapeOf(ssd300Voc, 'pool3');
    expect([pool3.inSize, pool3.outSize]).toEqual([75, 38]);
    // Without ceil mode the same pool would give floor((75 - 2) / 2) + 1 = 37.
    expect(outputSize({ ...(layer(ssd300Voc, 'pool3') as LayerSpec), ceil: false } as LayerSpec, 75)).toBe(37);
  });

  it('pool5 is 3x3, stride 1, pad 1 (keeps 19x19)', () => {
    const p = layer(ssd300Voc, 'pool5');
    expect([p.kind, p.kernel, p.stride, p.pad]).toEqual(['maxpool', 3, 1, 1]);
    expect(shapeOf(ssd300Voc, 'pool5').outSize).toBe(19);
  });

  it('fc6 is a 3x3 conv to 1024 with dilation 6 and pad 6; fc7 a 1x1 conv to 1024; both ReLU', () => {
    const fc6 = convOf(ssd300Voc, 'fc6');
    expect([fc6.out, fc6.kernel, fc6.stride, fc6.pad, fc6.dilation, fc6.relu]).toEqual([1024, 3, 1, 6, 6, true]);
    const fc7 = convOf(ssd300Voc, 'fc7');
    expect([fc7.out, fc7.kernel, fc7.stride, fc7.pad, fc7.dilation, fc7.relu]).toEqual([1024, 1, 1, 0, 1, true]);
    expect(shapeOf(ssd300Voc, 'fc7').outSize).toBe(19);
  });

  it('conv4_3 is the first source, L2-normalised with a learned scale initialised to 20', () => {
    for (const spec of [ssd300Voc, ssd512Voc, specByName('ssd300-coco')]) {
      expect(spec.sources[0]).toEqual({ layer: 'conv4_3', l2NormScale: 20 });
      expect(spec.sources.slice(1).every((s) => s.l2NormScale === undefined)).toBe(true);
    }
    expect(paramSpecs(ssd300Voc).find((p) => p.name === 'conv4_3_norm/scale')).toEqual({ name: 'conv4_3_norm/scale', shape: [512], trainable: true });
  });
});

describe('SSD-SPEC "Extra layers"', () => {
  it('SSD300: conv6..conv9 channels, kernels, strides, pads and output sizes 10, 5, 3, 1', () => {
    const expected: Array<[string, number, number, number, number, number]> = [
      // name, out, kernel, stride, pad, output side
      ['conv6_1', 256, 1, 1, 0, 19], ['conv6_2', 512, 3, 2, 1, 10],
      ['conv7_1', 128, 1, 1, 0, 10], ['conv7_2', 256, 3, 2, 1, 5],
      ['conv8_1', 128, 1, 1, 0, 5], ['conv8_2', 256, 3, 1, 0, 3],
      ['conv9_1', 128, 1, 1, 0, 3], ['conv9_2', 256, 3, 1, 0, 1],
    ];
    for (const [name, out, k, s, p, side] of expected) {
      const c = convOf(ssd300Voc, name);
      expect([c.out, c.kernel, c.stride, c.pad, c.relu], name).toEqual([out, k, s, p, true]);
      expect(shapeOf(ssd300Voc, name).outSize, name).toBe(side);
    }
    expect(ssd300Voc.layers.some((l) => l.name.startsWith('conv10'))).toBe(false);
  });

  it('SSD512: conv8_2 and conv9_2 are s2 p1, plus conv10_1 1x1 128 and conv10_2 4x4 256 s1 p1 -> 1x1', () => {
    const expected: Array<[string, number, number, number, number, number]> = [
      ['conv6_2', 512, 3, 2, 1, 16], ['conv7_2', 256, 3, 2, 1, 8], ['conv8_2', 256, 3, 2, 1, 4],
      ['conv9_2', 256, 3, 2, 1, 2], ['conv10_1', 128, 1, 1, 0, 2], ['conv10_2', 256, 4, 1, 1, 1],
    ];
    for (const [name, out, k, s, p, side] of expected) {
      const c = convOf(ssd512Voc, name);
      expect([c.out, c.kernel, c.stride, c.pad], name).toEqual([out, k, s, p]);
      expect(shapeOf(ssd512Voc, name).outSize, name).toBe(side);
    }
  });
});

describe('SSD-SPEC "Default boxes": the map table', () => {
  it('SSD300: sources, map sizes 38,19,10,5,3,1 (as the trunk computes them), steps, min/max sizes, ratios', () => {
    expect(ssd300Voc.inputSize).toBe(300);
    expect(ssd300Voc.sources.map((s) => s.layer)).toEqual(['conv4_3', 'fc7', 'conv6_2', 'conv7_2', 'conv8_2', 'conv9_2']);
    expect(ssd300Voc.sources.map((s) => shapeOf(ssd300Voc, s.layer).outSize)).toEqual([38, 19, 10, 5, 3, 1]);
    expect(ssd300Voc.maps.map((m) => m.size)).toEqual([38, 19, 10, 5, 3, 1]);
    expect(ssd300Voc.maps.map((m) => m.step)).toEqual([8, 16, 32, 64, 100, 300]);
    expect(ssd300Voc.maps.map((m) => m.minSize)).toEqual([30, 60, 111, 162, 213, 264]);
    expect(ssd300Voc.maps.map((m) => m.maxSize)).toEqual([60, 111, 162, 213, 264, 315]);
    expect(ssd300Voc.maps.map((m) => m.aspectRatios)).toEqual([[2], [2, 3], [2, 3], [2, 3], [2], [2]]);
    expect(ssd300Voc.maps.map(boxesPerLocation)).toEqual([4, 6, 6, 6, 4, 4]);
    // 38²·4 + 19²·6 + 10²·6 + 5²·6 + 3²·4 + 1²·4 = 5776 + 2166 + 600 + 150 + 36 + 4
    expect(numDefaultBoxes(ssd300Voc)).toBe(5776 + 2166 + 600 + 150 + 36 + 4);
    expect(numDefaultBoxes(ssd300Voc)).toBe(8732);
  });

  it('SSD512: + conv10_2, map sizes 64..1, steps, min/max sizes, ratios, 24564 boxes', () => {
    expect(ssd512Voc.inputSize).toBe(512);
    expect(ssd512Voc.sources.map((s) => s.layer)).toEqual(['conv4_3', 'fc7', 'conv6_2', 'conv7_2', 'conv8_2', 'conv9_2', 'conv10_2']);
    expect(ssd512Voc.sources.map((s) => shapeOf(ssd512Voc, s.layer).outSize)).toEqual([64, 32, 16, 8, 4, 2, 1]);
    expect(ssd512Voc.maps.map((m) => m.size)).toEqual([64, 32, 16, 8, 4, 2, 1]);
    expect(ssd512Voc.maps.map((m) => m.step)).toEqual([8, 16, 32, 64, 128, 256, 512]);
    // VOC (ssd_pascal_512.py): conv4_3 at 7%, then 15%, 30%, ..., 90% of 512; max up to 105%.
    expect(ssd512Voc.maps.map((m) => m.minSize)).toEqual([35.84, 76.8, 153.6, 230.4, 307.2, 384.0, 460.8]);
    expect(ssd512Voc.maps.map((m) => m.maxSize)).toEqual([76.8, 153.6, 230.4, 307.2, 384.0, 460.8, 537.6]);
    expect(ssd512Voc.maps.map((m) => m.aspectRatios)).toEqual([[2], [2, 3], [2, 3], [2, 3], [2, 3], [2], [2]]);
    expect(ssd512Voc.maps.map(boxesPerLocation)).toEqual([4, 6, 6, 6, 6, 4, 4]);
    // 64²·4 + 32²·6 + 16²·6 + 8²·6 + 4²·6 + 2²·4 + 1²·4
    expect(numDefaultBoxes(ssd512Voc)).toBe(16384 + 6144 + 1536 + 384 + 96 + 16 + 4);
    expect(numDefaultBoxes(ssd512Voc)).toBe(24564);
  });

  it('the configuration derivation: min_ratio 20, max_ratio 90, step floor((90 - 20) / 4) = 17, conv4_3 at 10%', () => {
    expect(Math.floor((90 - 20) / (6 - 2))).toBe(17);
    // min: 10%, 20%, 37%, 54%, 71%, 88% of 300; max: 20%, 37%, ..., 105%.
    expect(caffeBoxSizes(300, 6, 20, 90, 10)).toEqual({ minSizes: [30, 60, 111, 162, 213, 264], maxSizes: [60, 111, 162, 213, 264, 315] });
    // SSD512 VOC: min_ratio 15, step floor(75 / 5) = 15, conv4_3 at 7%: 7, 15, 30, 45, 60, 75, 90 (max up to 105) % of 512.
    expect(caffeBoxSizes(512, 7, 15, 90, 7)).toEqual({
      minSizes: [35.84, 76.8, 153.6, 230.4, 307.2, 384.0, 460.8],
      maxSizes: [76.8, 153.6, 230.4, 307.2, 384.0, 460.8, 537.6],
    });
    // SSD512 COCO: min_ratio 10, step floor(80 / 5) = 16, conv4_3 at 4%: 4, 10, 26, 42, 58, 74, 90 (max up to 106) % of 512.
    expect(caffeBoxSizes(512, 7, 10, 90, 4)).toEqual({
      minSizes: [20.48, 51.2, 133.12, 215.04, 296.96, 378.88, 460.8],
      maxSizes: [51.2, 133.12, 215.04, 296.96, 378.88, 460.8, 542.72],
    });
  });

  it("the paper's formula as an option: s_k = 0.2 + 0.7 (k - 1) / 5 -> 0.2, 0.34, 0.48, 0.62, 0.76, 0.9 (max: s_{k+1}, s_7 = 1.04)", () => {
    const { minSizes, maxSizes } = paperBoxSizes(300, 6);
    const s = [0.2, 0.34, 0.48, 0.62, 0.76, 0.9, 1.04];
    minSizes.forEach((v, i) => expect(v).toBeCloseTo(300 * s[i]!, 9));
    maxSizes.forEach((v, i) => expect(v).toBeCloseTo(300 * s[i + 1]!, 9));
    const paper = ssd300(withBackground(VOC_CLASSES), paperBoxSizes(300, 6));
    expect(paper.maps.map((m) => m.minSize)).toEqual(minSizes);
    expect(numDefaultBoxes(paper)).toBe(8732);
    expect(() => validateSpec(paper)).not.toThrow();
  });

  it('COCO variant: 81 classes, conv4_3 at 7% (21 px), min_ratio 15 -> 45, 99, 153, 207, 261 (max 315)', () => {
    const coco = specByName('ssd300-coco');
    expect(coco.labels).toHaveLength(81);
    expect(coco.labels[0]).toBe('background');
    expect(coco.maps.map((m) => m.minSize)).toEqual([21, 45, 99, 153, 207, 261]);
    expect(coco.maps.map((m) => m.maxSize)).toEqual([45, 99, 153, 207, 261, 315]);
    expect(numDefaultBoxes(coco)).toBe(8732);
  });

  it('SSD512 COCO keeps conv4_3 at 4% and 10%..90% (20.48 ... 460.8, max 542.72); only the sizes differ from VOC SSD512', () => {
    const coco = specByName('ssd512-coco');
    expect(coco.labels).toHaveLength(81);
    expect(coco.maps.map((m) => m.minSize)).toEqual([20.48, 51.2, 133.12, 215.04, 296.96, 378.88, 460.8]);
    expect(coco.maps.map((m) => m.maxSize)).toEqual([51.2, 133.12, 215.04, 296.96, 378.88, 460.8, 542.72]);
    expect(numDefaultBoxes(coco)).toBe(24564);
    const strip = (s: SsdSpec) => ({ ...s, name: '', labels: [], maps: s.maps.map((m) => ({ ...m, minSize: 0, maxSize: 0 })) });
    expect(strip(coco)).toEqual(strip(ssd512Voc));
  });
});

describe('SSD-SPEC "Prediction heads", "Box coding", "Inference", "Training recipe"', () => {
  it('heads: 3x3 convs with k*4 box outputs and k*C class outputs, C = 21 for VOC', () => {
    expect(ssd300Voc.labels).toHaveLength(21);
    const params = paramSpecs(ssd300Voc);
    const k = [4, 6, 6, 6, 4, 4];
    const inCh = [512, 1024, 512, 256, 256, 256];
    k.forEach((ki, i) => {
      expect(params.find((p) => p.name === `loc${i}/kernel`)!.shape).toEqual([3, 3, inCh[i], ki * 4]);
      expect(params.find((p) => p.name === `conf${i}/kernel`)!.shape).toEqual([3, 3, inCh[i], ki * 21]);
    });
  });

  it('SSD300 VOC has 26,285,486 trainable parameters (torchvision ssd300_vgg16(num_classes=21) counts the same)', () => {
    expect(paramCount(ssd300Voc)).toBe(26_285_486);
  });

  it('variances 0.1, 0.1, 0.2, 0.2; inference 0.01 / 0.45 / top 400 / keep 200; mean BGR 104, 117, 123; no clipping', () => {
    expect(DEFAULT_VARIANCES).toEqual([0.1, 0.1, 0.2, 0.2]);
    expect(DEFAULT_POSTPROCESS).toEqual({ confidenceThreshold: 0.01, nmsThreshold: 0.45, topKPerClass: 400, keepTopK: 200 });
    expect(CAFFE_INPUT).toEqual({ channelOrder: 'bgr', mean: [104, 117, 123] });
    for (const name of Object.keys(SPECS)) {
      const spec = specByName(name);
      expect(spec.variances, name).toEqual([0.1, 0.1, 0.2, 0.2]);
      expect(spec.postprocess, name).toEqual(DEFAULT_POSTPROCESS);
      expect(spec.input, name).toEqual({ channelOrder: 'bgr', mean: [104, 117, 123] });
      expect(spec.clipBoxes, name).toBe(false);
    }
  });

  it('specs are independent copies: mutating one does not leak into the next', () => {
    const a = specByName('ssd300');
    a.variances[0] = 9;
    a.input.mean[0] = 9;
    a.postprocess.keepTopK = 9;
    const b = specByName('ssd300');
    expect(b.variances[0]).toBe(0.1);
    expect(b.input.mean[0]).toBe(104);
    expect(b.postprocess.keepTopK).toBe(200);
    expect(DEFAULT_VARIANCES[0]).toBe(0.1);
  });
});

describe('validateSpec and specByName', () => {
  it('every built-in spec is valid and its maps match the trunk', () => {
    for (const name of Object.keys(SPECS)) expect(() => validateSpec(specByName(name)), name).not.toThrow();
  });

  it('the tiny spec exercises the same layer kinds (ceil pool3, pool5 3x3/s1, dilated fc6) at 96 px: maps 12, 6, 3', () => {
    const tiny = specByName('ssd-tiny');
    expect(tiny.maps.map((m) => m.size)).toEqual([12, 6, 3]);
    expect(tiny.sources.map((s) => shapeOf(tiny, s.layer).outSize)).toEqual([12, 6, 3]);
    expect(convOf(tiny, 'fc6').dilation).toBe(6);
    expect(numDefaultBoxes(tiny)).toBe(12 * 12 * 4 + 6 * 6 * 6 + 3 * 3 * 4);
  });

  it("the tiny spec's conv4_3 L2Norm keeps the reference's per-channel scale: 20 on 512 channels -> 20 * sqrt(64/512) = 7.07 on 64", () => {
    const tiny = specByName('ssd-tiny');
    expect(shapeOf(tiny, 'conv4_3').outChannels).toBe(64);
    expect(tiny.sources[0]!.l2NormScale).toBeCloseTo(20 / Math.sqrt(8), 12);
    expect(l2NormScaleFor(512)).toBe(20);
    expect(specByName('ssd300').sources[0]!.l2NormScale).toBe(20);
  });

  it('the tiny spec is valid at any input size (its map sizes come from the trunk: 100 px -> 13, 6, 3)', () => {
    for (const size of [64, 96, 100, 112, 150, 200, 300]) expect(() => validateSpec(ssdTiny(['background', 'a'], size)), String(size)).not.toThrow();
    expect(ssdTiny(['background', 'a'], 100).maps.map((m) => m.size)).toEqual([13, 6, 3]);
  });

  it('unknown names and broken fields give an SsdError naming the field', () => {
    expect(() => specByName('ssd999')).toThrow(SsdError);
    expect(() => specByName('ssd999')).toThrow(/unknown model config "ssd999"/);
    const bad = specByName('ssd300');
    bad.maps[2]!.size = 11;
    expect(() => validateSpec(bad)).toThrow(/maps\[2\]\.size is 11 but layer conv6_2 outputs 10x10/);
    const bad2 = specByName('ssd300');
    bad2.variances = [0.1, 0.1, 0, 0.2];
    expect(() => validateSpec(bad2)).toThrow(/variances/);
    const bad3 = specByName('ssd300');
    bad3.maps[0]!.aspectRatios = [1];
    expect(() => validateSpec(bad3)).toThrow(/maps\[0\]\.aspectRatios/);
  });
});
