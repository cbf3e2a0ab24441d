import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { numDefaultBoxes, specByName } from '../../core/specs.js';
import { createSsdModel } from '../../train/model.js';

beforeAll(async () => { await tf.setBackend('cpu'); });

describe('createSsdModel', () => {
  it('SSD300/VOC has 26,285,486 trainable parameters (SSD-SPEC, torchvision count)', () => {
    const m = createSsdModel(specByName('ssd300'), { seed: 1 });
    try {
      expect(m.paramCount()).toBe(26_285_486);
      expect(m.variables.get('fc6/kernel')!.shape).toEqual([3, 3, 512, 1024]);
      expect(m.variables.get('conv4_3_norm/scale')!.dataSync().every((v) => v === 20)).toBe(true);
    } finally { m.dispose(); }
  });

  it('ssd-tiny outputs one prediction per default box', () => {
    const spec = specByName('ssd-tiny');
    const m = createSsdModel(spec, { seed: 2 });
    const out = m.forward(tf.zeros([1, spec.inputSize, spec.inputSize, 3]) as tf.Tensor4D, false);
    expect(out.loc.shape).toEqual([1, numDefaultBoxes(spec), 4]);
    expect(out.conf.shape).toEqual([1, numDefaultBoxes(spec), spec.labels.length]);
    tf.dispose([out.loc, out.conf]);
    m.dispose();
  });
});
