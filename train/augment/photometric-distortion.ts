/**
 * PhotoMetricDistortion (SSD-SPEC "Data augmentation" 1): each with p = 0.5, brightness delta 32,
 * contrast [0.5, 1.5], saturation [0.5, 1.5], hue delta 18 degrees. As in the reference, contrast runs
 * either before or after the HSV part (chosen at random), and the result is clamped to 0..255.
 * Boxes are untouched.
 */
import { checkProbability, type AugRng, type AugSample, type AugStep } from './types.js';

export interface PhotoMetricDistortionParams {
  brightnessDelta: number;
  contrastRange: [number, number];
  saturationRange: [number, number];
  hueDelta: number;
  /** Probability of each of the four distortions. */
  p: number;
}

export const PHOTOMETRIC_DEFAULTS: PhotoMetricDistortionParams = {
  brightnessDelta: 32, contrastRange: [0.5, 1.5], saturationRange: [0.5, 1.5], hueDelta: 18, p: 0.5,
};

export class PhotoMetricDistortion implements AugStep {
  readonly name = 'PhotoMetricDistortion';
  readonly params: PhotoMetricDistortionParams;

  constructor(params: Partial<PhotoMetricDistortionParams> = {}) {
    this.params = { ...PHOTOMETRIC_DEFAULTS, ...params };
    checkProbability(this.name, this.params.p);
  }

  apply(sample: AugSample, rng: AugRng): AugSample {
    const { brightnessDelta, contrastRange, saturationRange, hueDelta, p } = this.params;
    // Draw every decision first so that the random stream does not depend on the image.
    const brightness = rng.next() < p ? rng.uniform(-brightnessDelta, brightnessDelta) : 0;
    const contrastFirst = rng.next() < 0.5;
    const contrast = rng.next() < p ? rng.uniform(contrastRange[0], contrastRange[1]) : 1;
    const saturation = rng.next() < p ? rng.uniform(saturationRange[0], saturationRange[1]) : 1;
    const hue = rng.next() < p ? rng.uniform(-hueDelta, hueDelta) : 0;
    const src = sample.image.dataHWC;
    const out = new Float32Array(src.length);
    const hsv = saturation !== 1 || hue !== 0;
    for (let i = 0; i < src.length; i += 3) {
      let r = src[i]! + brightness, g = src[i + 1]! + brightness, b = src[i + 2]! + brightness;
      if (contrastFirst && contrast !== 1) { r *= contrast; g *= contrast; b *= contrast; }
      if (hsv) [r, g, b] = shiftHsv(clamp(r), clamp(g), clamp(b), hue, saturation);
      if (!contrastFirst && contrast !== 1) { r *= contrast; g *= contrast; b *= contrast; }
      out[i] = clamp(r); out[i + 1] = clamp(g); out[i + 2] = clamp(b);
    }
    return { ...sample, image: { ...sample.image, dataHWC: out } };
  }
}

const clamp = (v: number): number => (v < 0 ? 0 : v > 255 ? 255 : v);

/** Hue rotated by `hueDeg` degrees and saturation scaled by `satScale` (clamped to 1), value kept. */
export function shiftHsv(r: number, g: number, b: number, hueDeg: number, satScale: number): [number, number, number] {
  const max = Math.max(r, g, b);
  const min = Math.min(r, g, b);
  const v = max;
  const delta = max - min;
  if (max <= 0 || delta <= 0) return [r, g, b];
  let s = delta / max;
  let h: number;
  if (max === r) h = (60 * (g - b)) / delta;
  else if (max === g) h = 120 + (60 * (b - r)) / delta;
  else h = 240 + (60 * (r - g)) / delta;
  h = (((h + hueDeg) % 360) + 360) % 360;
  s = Math.min(1, s * satScale);
  const c = v * s;
  const hp = h / 60;
  const x = c * (1 - Math.abs((hp % 2) - 1));
  const m = v - c;
  let rgb: [number, number, number];
  if (hp < 1) rgb = [c, x, 0];
  else if (hp < 2) rgb = [x, c, 0];
  else if (hp < 3) rgb = [0, c, x];
  else if (hp < 4) rgb = [0, x, c];
  else if (hp < 5) rgb = [x, 0, c];
  else rgb = [c, 0, x];
  return [rgb[0] + m, rgb[1] + m, rgb[2] + m];
}
