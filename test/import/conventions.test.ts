// The two optional spec fields the PyTorch imports added (core/specs.ts): clampPriors (default boxes as
// torchvision resp. ssd.pytorch / lufficc clamp them) and postprocess.clipBeforeNms (torchvision's
// postprocess_detections). Absent, nothing changes; present, core/default-boxes.ts and
// core/postprocess.ts honour them (the exported graphs are checked against torchvision in
// torchvision.test.ts).
import { describe, expect, it } from 'vitest';
import { defaultBoxes } from '../../core/default-boxes.js';
import { postprocess } from '../../core/postprocess.js';
import { specByName, validateSpec, type SsdSpec } from '../../core/specs.js';

const changed = (a: Float32Array, b: Float32Array): number[] => {
  const boxes = new Set<number>();
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) boxes.add(i >> 2);
  return [...boxes];
};

describe('spec.clampPriors', () => {
  it("'wh' changes exactly SSD300-COCO's two last-map ratio-2 boxes (w or h 1.23 -> 1)", () => {
    const ref = specByName('ssd300-coco');
    const boxes = defaultBoxes({ ...ref, clampPriors: 'wh' });
    expect(changed(defaultBoxes(ref), boxes)).toEqual([8730, 8731]);
    expect(boxes[8730 * 4 + 2]).toBe(1);
    expect(boxes[8731 * 4 + 3]).toBe(1);
  });

  it("'cxcywh' also clamps centres past 1 (SSD300's 10x10 map at step 32 reaches 1.013)", () => {
    const ref = specByName('ssd300');
    const boxes = defaultBoxes({ ...ref, clampPriors: 'cxcywh' });
    for (let i = 0; i < boxes.length; i++) expect(boxes[i]).toBeLessThanOrEqual(1);
    // The last row and column of the 10x10 map: 19 cells x 6 boxes.
    expect(changed(defaultBoxes({ ...ref, clampPriors: 'wh' }), boxes).length).toBe(114);
  });

  it('validateSpec accepts the fields and names a bad value', () => {
    const s = specByName('ssd300');
    expect(() => validateSpec({ ...s, clampPriors: 'wh' })).not.toThrow();
    expect(() => validateSpec({ ...s, clampPriors: 'yes' } as unknown as SsdSpec)).toThrow(/clampPriors must be "wh" or "cxcywh"/);
    expect(() => validateSpec({ ...s, postprocess: { ...s.postprocess, clipBeforeNms: 1 } } as unknown as SsdSpec)).toThrow(/postprocess\.clipBeforeNms must be true or false/);
  });
});

describe('spec.postprocess.clipBeforeNms', () => {
  it('two boxes that overlap > 0.45 only once clipped: NMS keeps both without it, one with it', () => {
    // Two default boxes at the same place; box A decodes to x -0.9..0.5, box B to x 0..0.5 (y 0.3..0.7
    // both): unclipped IoU 0.2 / 0.56 = 0.36 keeps both, clipped A is B (IoU 1) and only one stays.
    const spec: SsdSpec = { ...specByName('ssd-tiny'), labels: ['background', 'a'] };
    const priors = new Float32Array([0.5, 0.5, 0.4, 0.4, 0.5, 0.5, 0.4, 0.4]);
    const s = { ...spec, postprocess: { ...spec.postprocess } };
    const enc = (x1: number, x2: number): number[] => {
      const cx = (x1 + x2) / 2, w = x2 - x1;
      return [(cx - 0.5) / (0.1 * 0.4), 0, Math.log(w / 0.4) / 0.2, 0];
    };
    const loc = new Float32Array([...enc(-0.9, 0.5), ...enc(0, 0.5)]);
    const conf = new Float32Array([0, 3, 0, 2.9]); // logits: background, a
    const run = (clip: boolean) => postprocess(loc, conf, priors, { ...s, postprocess: { ...s.postprocess, clipBeforeNms: clip } }).count;
    expect(run(false)).toBe(2);
    expect(run(true)).toBe(1);
  });
});

describe('importStateDict', () => {
  it('strips the "module." prefix nn.DataParallel adds, and refuses an unknown layout in one line', async () => {
    const { importStateDict } = await import('../../train/import/layouts.js');
    const { paramSpecs } = await import('../../core/specs.js');
    const { pthSpec } = await import('../../train/import/layouts.js');
    // An ssd.pytorch state dict with zero weights of the right shapes, under "module.".
    const spec = pthSpec('ssd-pytorch', 300, 21);
    const keys = new Map<string, number[]>();
    const vgg = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28, 31, 33];
    const convs = paramSpecs(spec).filter((p) => p.name.endsWith('/kernel')).map((p) => p.shape as [number, number, number, number]);
    convs.forEach(([kh, kw, ci, co], i) => {
      const key = i < 15 ? `vgg.${vgg[i]}` : i < 23 ? `extras.${i - 15}` : (i - 23) % 2 === 0 ? `loc.${(i - 23) >> 1}` : `conf.${(i - 23) >> 1}`;
      keys.set(`${key}.weight`, [co, ci, kh, kw]);
      keys.set(`${key}.bias`, [co]);
    });
    keys.set('L2Norm.weight', [512]);
    const sd = new Map([...keys].map(([k, shape]) => [`module.${k}`, { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) }]));
    const m = importStateDict(sd, 'x.pth');
    expect(m.format).toBe('ssd-pytorch');
    expect(m.unused).toEqual([]);
    expect(() => importStateDict(new Map([['fc.weight', { shape: [1], data: new Float32Array(1) }]]), 'x.pth')).toThrow(/^x\.pth: unknown layout \(keys fc\.weight, \.\.\.\)/);
  });
});
