import { describe, expect, it } from 'vitest';
import type { SsdSpec } from '../../core/specs.js';
import { foldBatchNorm, hwioToOihw } from '../../export/fold-bn.js';
import { buildOnnxModel, inspectModel, randomWeights } from '../../export/index.js';
import { maxAbsDiff, pixels, run, tiny, uint8Input } from './helpers.js';

describe('batch-norm folding (SSD-SPEC: w\' = w * gamma / sqrt(var + eps), b\' = (b - mean) * gamma / sqrt(var + eps) + beta)', () => {
  it('matches hand-computed values', () => {
    const f = foldBatchNorm(Float32Array.of(2, 3), Float32Array.of(1, -1), {
      gamma: Float32Array.of(2, 0.5), beta: Float32Array.of(0.1, 0.2), mean: Float32Array.of(0.5, 1), variance: Float32Array.of(3, 0.25), epsilon: 1,
    });
    // Channel 0: factor 2 / sqrt(4) = 1. Channel 1: factor 0.5 / sqrt(1.25) = 0.4472136.
    expect(f.kernelOIHW[0]).toBeCloseTo(2, 6);
    expect(f.bias[0]).toBeCloseTo(0.6, 6);
    expect(f.kernelOIHW[1]).toBeCloseTo(3 * 0.4472136, 6);
    expect(f.bias[1]).toBeCloseTo(-2 * 0.4472136 + 0.2, 6);
  });

  it('hwioToOihw moves every element to its OIHW place', () => {
    const shape = [2, 3, 4, 5];
    const hwio = Float32Array.from({ length: 120 }, (_, i) => i);
    const oihw = hwioToOihw(hwio, shape);
    for (let y = 0; y < 2; y++) for (let x = 0; x < 3; x++) for (let i = 0; i < 4; i++) for (let o = 0; o < 5; o++) {
      expect(oihw[((o * 4 + i) * 2 + y) * 3 + x]).toBe(hwio[((y * 3 + x) * 4 + i) * 5 + o]);
    }
  });

  it('the folded graph has no BatchNormalization node and gives the unfolded graph\'s outputs', async () => {
    const spec: SsdSpec = { ...tiny(), batchNorm: true };
    const weights = randomWeights(spec, 31);
    expect(weights.get('conv3_1/bn_variance')!.data.some((v) => Math.abs(v - 1) > 0.1)).toBe(true);
    const folded = buildOnnxModel({ spec, weights, postprocess: 'none', batch: 2, input: 'uint8-nhwc' });
    const unfolded = buildOnnxModel({ spec, weights, postprocess: 'none', batch: 2, input: 'uint8-nhwc', foldBatchNorm: false });
    expect(inspectModel(folded).ops).not.toContain('BatchNormalization');
    const convs = spec.layers.filter((l) => l.kind === 'conv').length;
    expect(inspectModel(unfolded).ops.filter((o) => o === 'BatchNormalization').length).toBe(convs);
    const images = uint8Input(spec, pixels(spec, 2, 8), 2);
    const a = await run(folded, images);
    const b = await run(unfolded, images, 'disabled');
    const scale = Math.max(...Array.from(b.conf!.data, Math.abs));
    expect(scale).toBeGreaterThan(0.1);
    expect(maxAbsDiff(a.loc!.data, b.loc!.data)).toBeLessThan(1e-4);
    expect(maxAbsDiff(a.conf!.data, b.conf!.data)).toBeLessThan(1e-4);
  });
});
