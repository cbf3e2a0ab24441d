/**
 * Expand, the "zoom-out" of SSD* (SSD-SPEC "Data augmentation" 2): with probability p the image is
 * placed at a random position in a canvas `ratio` times its size (ratio uniform in [1, maxRatio],
 * maxRatio 4), the rest filled with the mean colour. Boxes move with the image.
 */
import { checkProbability, type AugRng, type AugSample, type AugStep } from './types.js';

export interface ExpandParams {
  /** Fill colour, RGB 0..255 (the training mean, in RGB order). */
  meanRGB: [number, number, number];
  ratioRange: [number, number];
  p: number;
}

export class Expand implements AugStep {
  readonly name = 'Expand';
  readonly params: ExpandParams;

  constructor(params: Partial<ExpandParams> & Pick<ExpandParams, 'meanRGB'>) {
    this.params = { ratioRange: [1, 4], p: 0.5, ...params };
    checkProbability(this.name, this.params.p);
    const [lo, hi] = this.params.ratioRange;
    if (!(lo >= 1 && hi >= lo)) throw new RangeError(`Expand: ratioRange must satisfy 1 <= lo <= hi, got [${lo}, ${hi}]`);
  }

  apply(sample: AugSample, rng: AugRng): AugSample {
    const { meanRGB, ratioRange, p } = this.params;
    if (rng.next() >= p) return sample;
    const ratio = rng.uniform(ratioRange[0], ratioRange[1]);
    const { width: w, height: h, dataHWC: src } = sample.image;
    const cw = Math.floor(w * ratio);
    const ch = Math.floor(h * ratio);
    const left = Math.floor(rng.uniform(0, cw - w + 1));
    const top = Math.floor(rng.uniform(0, ch - h + 1));
    const out = new Float32Array(cw * ch * 3);
    for (let i = 0; i < out.length; i += 3) { out[i] = meanRGB[0]; out[i + 1] = meanRGB[1]; out[i + 2] = meanRGB[2]; }
    for (let y = 0; y < h; y++) out.set(src.subarray(y * w * 3, (y + 1) * w * 3), ((top + y) * cw + left) * 3);
    const boxes = new Float32Array(sample.boxesXYXY);
    for (let i = 0; i < boxes.length; i += 4) { boxes[i]! += left; boxes[i + 1]! += top; boxes[i + 2]! += left; boxes[i + 3]! += top; }
    return { ...sample, image: { dataHWC: out, width: cw, height: ch }, boxesXYXY: boxes };
  }
}
