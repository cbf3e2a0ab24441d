/**
 * Random weights for `--init random` and for test models, in plain typed arrays from a seeded PRNG
 * (core/rng, no TensorFlow.js), so that making a model for a runtime test costs milliseconds.
 *
 * Trunk kernels: He-normal (std sqrt(2 / fan_in)), which keeps activations at the input's scale through
 * the ReLUs. Head kernels are scaled so that, on mean-subtracted pixels (about +-60), box offsets and
 * class logits come out of order 1: softmax scores then spread over (0, 1) without saturating, boxes
 * stay near their default boxes, and NMS has real work (no wall of tied scores at 1.0). Biases are small
 * and non-zero so that every bias path is exercised; L2Norm scales take their spec value (20); batch-norm
 * statistics sit away from the identity so that folding is really tested.
 */
import type { WeightMap } from '../core/checkpoint.js';
import { createRng } from '../core/rng.js';
import { paramSpecs, type SsdSpec } from '../core/specs.js';

/** Typical size of a mean-subtracted pixel: what the head scaling assumes the features are scaled by. */
const PIXEL_SCALE = 60;

export function randomWeights(spec: SsdSpec, seed = 1): WeightMap {
  const rng = createRng(seed);
  const l2Scales = new Map(spec.sources.filter((s) => s.l2NormScale !== undefined).map((s) => [`${s.layer}_norm/scale`, s.l2NormScale!]));
  // Head name -> the scale its input features have.
  const featureScale = new Map<string, number>(spec.sources.flatMap((s, i) => [[`loc${i}`, s.l2NormScale ?? PIXEL_SCALE], [`conf${i}`, s.l2NormScale ?? PIXEL_SCALE]] as const));
  const weights: WeightMap = new Map();
  for (const p of paramSpecs(spec)) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const [owner, kind] = p.name.split('/') as [string, string];
    if (kind === 'kernel') {
      let std = Math.sqrt(2 / (p.shape[0]! * p.shape[1]! * p.shape[2]!));
      // An L2Norm source is at the scale of its L2Norm scale (20), the others at the pixels'.
      const scale = featureScale.get(owner);
      if (scale !== undefined) std /= scale;
      for (let i = 0; i < n; i++) data[i] = rng.normal() * std;
    } else if (kind === 'scale') {
      data.fill(l2Scales.get(p.name) ?? 1);
    } else if (kind === 'bn_gamma' || kind === 'bn_variance') {
      for (let i = 0; i < n; i++) data[i] = rng.uniform(0.5, 1.5);
    } else {
      // bias, bn_beta, bn_mean
      for (let i = 0; i < n; i++) data[i] = rng.uniform(-0.1, 0.1);
    }
    weights.set(p.name, { shape: [...p.shape], data });
  }
  return weights;
}
