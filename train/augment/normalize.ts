/**
 * Normalize: reorders channels to the network's order (Caffe VGG: BGR) and subtracts the mean, no
 * scaling (SSD-SPEC "Training recipe"). The image is then the network input, not 0..255 RGB any more,
 * so Normalize is the last step of a pipeline. The arithmetic is the core's (core/preprocess.ts), the
 * one `ssd detect` and streams use.
 */
import { normalizeHWC } from '../../core/preprocess.js';
import type { InputSpec } from '../../core/specs.js';
import type { AugSample, AugStep } from './types.js';

export class Normalize implements AugStep {
  readonly name = 'Normalize';

  constructor(readonly params: InputSpec) {}

  apply(sample: AugSample): AugSample {
    return { ...sample, image: { ...sample.image, dataHWC: normalizeHWC(sample.image.dataHWC, this.params) } };
  }
}
