/**
 * Augmentation pipelines as data (mmdetection style): a list of named steps with parameters, so a
 * config shows the whole recipe and a test can run one step alone. `buildPipeline` validates a list
 * (from code or a JSON config) and turns it into steps; `runPipeline` applies them in order.
 */
import { SsdError } from '../../core/errors.js';
import { didYouMean } from '../../core/nearest-names.js';
import { meanRGB } from '../../core/preprocess.js';
import type { SsdSpec } from '../../core/specs.js';
import { Expand } from './expand.js';
import { MinIoURandomCrop, type MinIoURandomCropParams } from './min-iou-random-crop.js';
import { Normalize } from './normalize.js';
import { PhotoMetricDistortion, type PhotoMetricDistortionParams } from './photometric-distortion.js';
import { RandomFlip } from './random-flip.js';
import { Resize } from './resize.js';
import type { AugRng, AugSample, AugStep } from './types.js';

export type StepConfig =
  | ({ type: 'PhotoMetricDistortion' } & Partial<PhotoMetricDistortionParams>)
  /** The fill colour defaults to the spec's mean. */
  | { type: 'Expand'; ratioRange?: [number, number]; p?: number; meanRGB?: [number, number, number] }
  | ({ type: 'MinIoURandomCrop' } & Partial<MinIoURandomCropParams>)
  | { type: 'RandomFlip'; p?: number }
  /** The size defaults to the spec's input size. */
  | { type: 'Resize'; size?: number }
  /** Mean and channel order come from the spec. */
  | { type: 'Normalize' };

/** SSD-SPEC "Data augmentation", in order. */
export function ssdTrainPipeline(): StepConfig[] {
  return [
    { type: 'PhotoMetricDistortion', brightnessDelta: 32, contrastRange: [0.5, 1.5], saturationRange: [0.5, 1.5], hueDelta: 18, p: 0.5 },
    { type: 'Expand', ratioRange: [1, 4], p: 0.5 },
    { type: 'MinIoURandomCrop', minIous: [0.1, 0.3, 0.5, 0.7, 0.9], minScale: 0.3, maxScale: 1, minAspectRatio: 0.5, maxAspectRatio: 2, maxTrials: 50 },
    { type: 'RandomFlip', p: 0.5 },
    { type: 'Resize' },
    { type: 'Normalize' },
  ];
}

/** Evaluation and inference: warp to the input size, subtract the mean. */
export function evalPipeline(): StepConfig[] {
  return [{ type: 'Resize' }, { type: 'Normalize' }];
}

const ALLOWED: Record<StepConfig['type'], string[]> = {
  PhotoMetricDistortion: ['brightnessDelta', 'contrastRange', 'saturationRange', 'hueDelta', 'p'],
  Expand: ['ratioRange', 'p', 'meanRGB'],
  MinIoURandomCrop: ['minIous', 'minScale', 'maxScale', 'minAspectRatio', 'maxAspectRatio', 'maxTrials'],
  RandomFlip: ['p'],
  Resize: ['size'],
  Normalize: [],
};

/** Validates a pipeline description; errors name the step index and field (`augment[2].p ...`). */
export function buildPipeline(configs: unknown, spec: SsdSpec, where = 'augment'): AugStep[] {
  if (!Array.isArray(configs)) throw new SsdError(`${where} must be a list of steps`);
  return configs.map((raw: unknown, i) => {
    const at = `${where}[${i}]`;
    if (typeof raw !== 'object' || raw === null) throw new SsdError(`${at} must be an object with a "type"`);
    const c = raw as Record<string, unknown>;
    const type = c.type as StepConfig['type'];
    if (typeof type !== 'string' || !(type in ALLOWED)) {
      const hint = typeof c.type === 'string' ? didYouMean(c.type, Object.keys(ALLOWED)) : '';
      throw new SsdError(`${at}.type must be one of ${Object.keys(ALLOWED).join(', ')}, got ${JSON.stringify(c.type)}${hint}`);
    }
    for (const key of Object.keys(c)) {
      if (key !== 'type' && !ALLOWED[type].includes(key)) throw new SsdError(`${at}: ${type} has no parameter "${key}"${didYouMean(key, ALLOWED[type])} (known: ${ALLOWED[type].join(', ') || 'none'})`);
    }
    for (const [key, v] of Object.entries(c)) {
      if (key === 'type') continue;
      const ok = Array.isArray(v) ? v.every((x) => typeof x === 'number' && Number.isFinite(x)) : typeof v === 'number' && Number.isFinite(v);
      if (!ok) throw new SsdError(`${at}.${key} must be a number or a list of numbers, got ${JSON.stringify(v)}`);
    }
    try {
      return makeStep(c as StepConfig, spec);
    } catch (err) {
      if (err instanceof RangeError) throw new SsdError(`${at}: ${err.message}`, { cause: err });
      throw err;
    }
  });
}

function makeStep(c: StepConfig, spec: SsdSpec): AugStep {
  const { type: _type, ...params } = c;
  switch (c.type) {
    case 'PhotoMetricDistortion': return new PhotoMetricDistortion(params as Partial<PhotoMetricDistortionParams>);
    case 'Expand': return new Expand({ meanRGB: meanRGB(spec.input), ...(params as object) });
    case 'MinIoURandomCrop': return new MinIoURandomCrop(params as Partial<MinIoURandomCropParams>);
    case 'RandomFlip': return new RandomFlip(params as { p?: number });
    case 'Resize': return new Resize({ size: c.size ?? spec.inputSize });
    case 'Normalize': return new Normalize(spec.input);
  }
}

export function runPipeline(steps: readonly AugStep[], sample: AugSample, rng: AugRng): AugSample {
  let s = sample;
  for (const step of steps) s = step.apply(s, rng);
  return s;
}
