/**
 * Patch sampling (SSD-SPEC "Data augmentation" 3). One mode is drawn among: the whole image, a patch
 * whose Jaccard overlap with some ground truth is at least 0.1, 0.3, 0.5, 0.7 or 0.9, or an
 * unconstrained random patch. A patch has scale [0.3, 1] of the image and aspect ratio [0.5, 2]
 * (sampled as the reference configuration does: side scale s, ratio a, w = s * sqrt(a), h = s / sqrt(a)
 * of the image, a limited to [s^2, 1/s^2] so that the patch fits). Up to 50 trials; if none satisfies
 * the constraint, the whole image is kept. Ground truth whose centre lies in the patch is kept, clipped
 * to the patch; a patch that keeps no ground truth is rejected.
 */
import { filterBoxes, type AugRng, type AugSample, type AugStep } from './types.js';

export interface MinIoURandomCropParams {
  minIous: number[];
  minScale: number;
  maxScale: number;
  minAspectRatio: number;
  maxAspectRatio: number;
  maxTrials: number;
}

export const MIN_IOU_CROP_DEFAULTS: MinIoURandomCropParams = {
  minIous: [0.1, 0.3, 0.5, 0.7, 0.9], minScale: 0.3, maxScale: 1, minAspectRatio: 0.5, maxAspectRatio: 2, maxTrials: 50,
};

/** Mode 'whole' keeps the image; a number is a minimum Jaccard; 'random' is a patch with no constraint. */
export type CropMode = 'whole' | 'random' | number;

export class MinIoURandomCrop implements AugStep {
  readonly name = 'MinIoURandomCrop';
  readonly params: MinIoURandomCropParams;
  readonly modes: CropMode[];

  constructor(params: Partial<MinIoURandomCropParams> = {}) {
    this.params = { ...MIN_IOU_CROP_DEFAULTS, ...params };
    const p = this.params;
    if (!(p.minScale > 0 && p.minScale <= p.maxScale && p.maxScale <= 1)) throw new RangeError(`MinIoURandomCrop: need 0 < minScale <= maxScale <= 1`);
    if (!(p.minAspectRatio > 0 && p.minAspectRatio <= p.maxAspectRatio)) throw new RangeError(`MinIoURandomCrop: need 0 < minAspectRatio <= maxAspectRatio`);
    this.modes = ['whole', ...p.minIous, 'random'];
  }

  apply(sample: AugSample, rng: AugRng): AugSample {
    const mode = this.modes[Math.min(this.modes.length - 1, Math.floor(rng.next() * this.modes.length))]!;
    return this.applyMode(sample, rng, mode);
  }

  /** Runs one mode; exported for tests that check each constraint on its own. */
  applyMode(sample: AugSample, rng: AugRng, mode: CropMode): AugSample {
    if (mode === 'whole' || sample.labels.length === 0) return sample;
    const { width: W, height: H } = sample.image;
    const p = this.params;
    const n = sample.labels.length;
    const boxes = sample.boxesXYXY;
    for (let trial = 0; trial < p.maxTrials; trial++) {
      const scale = rng.uniform(p.minScale, p.maxScale);
      const ratio = rng.uniform(Math.max(p.minAspectRatio, scale * scale), Math.min(p.maxAspectRatio, 1 / (scale * scale)));
      const pw = Math.max(1, Math.round(W * scale * Math.sqrt(ratio)));
      const ph = Math.max(1, Math.round(H * (scale / Math.sqrt(ratio))));
      if (pw > W || ph > H) continue;
      const px = Math.floor(rng.uniform(0, W - pw + 1));
      const py = Math.floor(rng.uniform(0, H - ph + 1));
      const patch: [number, number, number, number] = [px, py, px + pw, py + ph];
      if (typeof mode === 'number') {
        let best = 0;
        for (let i = 0; i < n; i++) best = Math.max(best, jaccard(patch, boxes, i));
        if (best < mode) continue;
      }
      const keep = (i: number) => {
        const cx = (boxes[i * 4]! + boxes[i * 4 + 2]!) / 2;
        const cy = (boxes[i * 4 + 1]! + boxes[i * 4 + 3]!) / 2;
        return cx > patch[0] && cx < patch[2] && cy > patch[1] && cy < patch[3];
      };
      let any = false;
      for (let i = 0; i < n && !any; i++) any = keep(i);
      if (!any) continue;
      const moved = new Float32Array(boxes.length);
      for (let i = 0; i < n; i++) {
        moved[i * 4] = Math.max(boxes[i * 4]!, patch[0]) - px;
        moved[i * 4 + 1] = Math.max(boxes[i * 4 + 1]!, patch[1]) - py;
        moved[i * 4 + 2] = Math.min(boxes[i * 4 + 2]!, patch[2]) - px;
        moved[i * 4 + 3] = Math.min(boxes[i * 4 + 3]!, patch[3]) - py;
      }
      const kept = filterBoxes(sample, keep, moved);
      return { ...kept, image: cropImage(sample.image.dataHWC, W, px, py, pw, ph) };
    }
    return sample;
  }
}

export function jaccard(a: readonly number[], boxesXYXY: Float32Array, i: number): number {
  const bx1 = boxesXYXY[i * 4]!, by1 = boxesXYXY[i * 4 + 1]!, bx2 = boxesXYXY[i * 4 + 2]!, by2 = boxesXYXY[i * 4 + 3]!;
  const iw = Math.min(a[2]!, bx2) - Math.max(a[0]!, bx1);
  const ih = Math.min(a[3]!, by2) - Math.max(a[1]!, by1);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  return inter / ((a[2]! - a[0]!) * (a[3]! - a[1]!) + (bx2 - bx1) * (by2 - by1) - inter);
}

function cropImage(src: Float32Array, W: number, px: number, py: number, pw: number, ph: number) {
  const out = new Float32Array(pw * ph * 3);
  for (let y = 0; y < ph; y++) out.set(src.subarray(((py + y) * W + px) * 3, ((py + y) * W + px + pw) * 3), y * pw * 3);
  return { dataHWC: out, width: pw, height: ph };
}
