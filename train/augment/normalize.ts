/**
 * Normalize: reorders channels to the network's order (Caffe VGG: BGR) and subtracts the mean, no
 * scaling (SSD-SPEC "Training recipe"). The image is then the network input, not 0..255 RGB any more,
 * so Normalize is the last step of a pipeline.
 */
import type { InputSpec } from '../../core/specs.js';
import type { AugSample, AugStep } from './types.js';

export class Normalize implements AugStep {
  readonly name = 'Normalize';

  constructor(readonly params: InputSpec) {}

  apply(sample: AugSample): AugSample {
    return { ...sample, image: { ...sample.image, dataHWC: normalizeHWC(sample.image.dataHWC, this.params) } };
  }
}

export function normalizeHWC(rgbHWC: Float32Array, input: InputSpec): Float32Array {
  const out = new Float32Array(rgbHWC.length);
  const [m0, m1, m2] = input.mean;
  const bgr = input.channelOrder === 'bgr';
  for (let i = 0; i < rgbHWC.length; i += 3) {
    const r = rgbHWC[i]!, g = rgbHWC[i + 1]!, b = rgbHWC[i + 2]!;
    out[i] = (bgr ? b : r) - m0; out[i + 1] = g - m1; out[i + 2] = (bgr ? r : b) - m2;
  }
  return out;
}
