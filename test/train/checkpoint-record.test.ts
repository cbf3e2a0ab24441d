import { describe, expect, it } from 'vitest';
import { decodeCheckpoint, encodeCheckpoint, legacyTrainingRecord, type TrainingRecord } from '../../core/checkpoint.js';
import { SsdError } from '../../core/errors.js';
import { specByName } from '../../core/specs.js';
import { randomWeights } from '../../export/random-init.js';

/** The training record: a typed part of the checkpoint (issue: an untyped state read by guessing key names). */
const spec = specByName('ssd-tiny');
const weights = randomWeights(spec, 3);

function record(over: Partial<TrainingRecord> = {}): TrainingRecord {
  return {
    iteration: 3, totalIterations: 10, microBatches: 6, seed: 5, data: 'VOC2007 trainval (5011 images)', valData: 'VOC2007 test (4952 images)',
    config: { name: 'ssd-tiny', augment: [{ type: 'Resize' }, { type: 'Normalize' }], train: { lr: 0.001, steps: [8] } },
    history: { iterations: [0, 1, 2], loss: [3, 2.5, 2], loc: [1, 0.9, 0.8], conf: [2, 1.6, 1.2], lr: [1e-4, 2e-4, 3e-4] },
    validations: [{ iteration: 2, metric: 'coco', map: 0.1, stats: Array.from({ length: 12 }, (_, i) => i / 100), images: 50 }],
    backend: 'wasm', elapsedSeconds: 12.5, ...over,
  };
}

const roundTrip = (training: unknown) => {
  const bytes = Buffer.concat(encodeCheckpoint({ spec, weights, training: training as TrainingRecord }));
  return decodeCheckpoint(bytes, 'ckpt');
};

describe('checkpoint training record', () => {
  it('round-trips exactly; a checkpoint without one has none', () => {
    expect(roundTrip(record()).training).toEqual(record());
    expect(decodeCheckpoint(Buffer.concat(encodeCheckpoint({ spec, weights })), 'ckpt').training).toBeUndefined();
  });

  it('is checked field by field on load, with errors naming the field', () => {
    const bad = (over: Record<string, unknown>) => () => roundTrip({ ...record(), ...over });
    expect(bad({ iteration: -1 })).toThrow(new SsdError('ckpt: training.iteration must be a whole number >= 0'));
    expect(bad({ data: 7 })).toThrow(/ckpt: training\.data must be a string/);
    expect(bad({ config: { name: 'x', augment: {}, train: {} } })).toThrow(/training\.config\.augment must be a list/);
    expect(bad({ history: { ...record().history, loss: [1] } })).toThrow(/training\.history\.loss must be a list as long as history\.iterations/);
    expect(bad({ validations: [{ iteration: 1, metric: 'voc12', map: 0.5, images: 3 }] })).toThrow(/training\.validations\[0\]\.metric must be one of voc07, coco/);
  });

  it('reads the untyped state of checkpoints written before the record (VOC07 validations, no data recorded)', () => {
    const state = {
      iteration: 600, microBatches: 600, config: { name: 'digits', augment: [{ type: 'Resize' }], train: { iterations: 4200, seed: 1 } },
      rng: { seed: 1, microBatches: 600 }, history: { iterations: [0], loss: [5], loc: [1], conf: [4], lr: [0.001] },
      maps: [{ iteration: 600, map: 0.5, images: 100 }], backend: 'wasm', elapsedSeconds: 100,
    };
    expect(legacyTrainingRecord(state)).toEqual({
      iteration: 600, totalIterations: 4200, microBatches: 600, seed: 1, data: 'unrecorded (config digits)',
      config: state.config, history: state.history, validations: [{ iteration: 600, metric: 'voc07', map: 0.5, images: 100 }],
      backend: 'wasm', elapsedSeconds: 100,
    });
    // Something else under "state" is not a training record.
    expect(legacyTrainingRecord({ iteration: 5, dataset: 'x' })).toBeUndefined();
  });
});
