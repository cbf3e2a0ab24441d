/**
 * Resize (warp, no aspect preservation) to size x size with the core's one resize
 * (core/preprocess.ts: bilinear on pixel centres, destination pixel x samples source
 * x' = (x + 0.5) * W / size - 0.5, result rounded to an 8-bit picture), so the final resize of
 * training is the one `ssd detect` and streams apply. Boxes scale by size / W and size / H.
 */
import { resampleBilinearHWC } from '../../core/preprocess.js';
import type { AugImage, AugSample, AugStep } from './types.js';

export class Resize implements AugStep {
  readonly name = 'Resize';

  constructor(readonly params: { size: number }) {
    if (!(Number.isInteger(params.size) && params.size > 0)) throw new RangeError(`Resize: size must be a whole number > 0, got ${params.size}`);
  }

  apply(sample: AugSample): AugSample {
    const { size } = this.params;
    const { width: W, height: H } = sample.image;
    const sx = size / W;
    const sy = size / H;
    const b = sample.boxesXYXY;
    const boxes = new Float32Array(b.length);
    for (let i = 0; i < b.length; i += 4) {
      boxes[i] = b[i]! * sx; boxes[i + 1] = b[i + 1]! * sy; boxes[i + 2] = b[i + 2]! * sx; boxes[i + 3] = b[i + 3]! * sy;
    }
    // Also at size already: the step's output is always the 8-bit picture the model input is made of.
    return { ...sample, image: resizeHWC(sample.image, size, size), boxesXYXY: boxes };
  }
}

/** An RGB float picture (0..255) resized to outW x outH by the core's resize: 8-bit values in float32. */
function resizeHWC(img: AugImage, outW: number, outH: number): AugImage {
  const out = new Float32Array(outW * outH * 3);
  resampleBilinearHWC(img.dataHWC, img.width, img.height, img.width * 3, out, outW, outH, outW * 3);
  return { dataHWC: out, width: outW, height: outH };
}
