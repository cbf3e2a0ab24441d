/** Horizontal flip with probability p (SSD-SPEC "Data augmentation" 4): x -> W - x for image and boxes. */
import { checkProbability, type AugRng, type AugSample, type AugStep } from './types.js';

export class RandomFlip implements AugStep {
  readonly name = 'RandomFlip';
  readonly p: number;

  constructor(params: { p?: number } = {}) {
    this.p = checkProbability(this.name, params.p ?? 0.5);
  }

  apply(sample: AugSample, rng: AugRng): AugSample {
    if (rng.next() >= this.p) return sample;
    const { width: W, height: H, dataHWC: src } = sample.image;
    const out = new Float32Array(src.length);
    for (let y = 0; y < H; y++) {
      const row = y * W * 3;
      for (let x = 0; x < W; x++) {
        const s = row + x * 3;
        const d = row + (W - 1 - x) * 3;
        out[d] = src[s]!; out[d + 1] = src[s + 1]!; out[d + 2] = src[s + 2]!;
      }
    }
    const b = sample.boxesXYXY;
    const boxes = new Float32Array(b.length);
    for (let i = 0; i < b.length; i += 4) {
      boxes[i] = W - b[i + 2]!; boxes[i + 1] = b[i + 1]!; boxes[i + 2] = W - b[i]!; boxes[i + 3] = b[i + 3]!;
    }
    return { ...sample, image: { ...sample.image, dataHWC: out }, boxesXYXY: boxes };
  }
}
