/**
 * Resize (warp, no aspect preservation) to size x size with bilinear sampling on pixel centres
 * (the convention of OpenCV and sharp): destination pixel x samples source x' = (x + 0.5) * W / size - 0.5.
 * Boxes scale by size / W and size / H.
 */
import type { AugImage, AugSample, AugStep } from './types.js';

export class Resize implements AugStep {
  readonly name = 'Resize';

  constructor(readonly params: { size: number }) {
    if (!(Number.isInteger(params.size) && params.size > 0)) throw new RangeError(`Resize: size must be a whole number > 0, got ${params.size}`);
  }

  apply(sample: AugSample): AugSample {
    const { size } = this.params;
    const { width: W, height: H } = sample.image;
    if (W === size && H === size) return sample;
    const sx = size / W;
    const sy = size / H;
    const b = sample.boxesXYXY;
    const boxes = new Float32Array(b.length);
    for (let i = 0; i < b.length; i += 4) {
      boxes[i] = b[i]! * sx; boxes[i + 1] = b[i + 1]! * sy; boxes[i + 2] = b[i + 2]! * sx; boxes[i + 3] = b[i + 3]! * sy;
    }
    return { ...sample, image: resizeBilinear(sample.image, size, size), boxesXYXY: boxes };
  }
}

export function resizeBilinear(img: AugImage, outW: number, outH: number): AugImage {
  const { width: W, height: H, dataHWC: src } = img;
  const out = new Float32Array(outW * outH * 3);
  const scaleX = W / outW;
  const scaleY = H / outH;
  // Precompute the horizontal taps once per column.
  const x0s = new Int32Array(outW), x1s = new Int32Array(outW), fxs = new Float32Array(outW);
  for (let x = 0; x < outW; x++) {
    const fx = Math.min(Math.max((x + 0.5) * scaleX - 0.5, 0), W - 1);
    x0s[x] = Math.floor(fx); x1s[x] = Math.min(x0s[x]! + 1, W - 1); fxs[x] = fx - x0s[x]!;
  }
  for (let y = 0; y < outH; y++) {
    const fy = Math.min(Math.max((y + 0.5) * scaleY - 0.5, 0), H - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, H - 1);
    const wy = fy - y0;
    const r0 = y0 * W * 3, r1 = y1 * W * 3;
    for (let x = 0; x < outW; x++) {
      const a = r0 + x0s[x]! * 3, b = r0 + x1s[x]! * 3, c = r1 + x0s[x]! * 3, d = r1 + x1s[x]! * 3;
      const wx = fxs[x]!;
      const o = (y * outW + x) * 3;
      for (let ch = 0; ch < 3; ch++) {
        const top = src[a + ch]! + (src[b + ch]! - src[a + ch]!) * wx;
        const bot = src[c + ch]! + (src[d + ch]! - src[c + ch]!) * wx;
        out[o + ch] = top + (bot - top) * wy;
      }
    }
  }
  return { dataHWC: out, width: outW, height: outH };
}
