import * as ort from 'onnxruntime-node';
import { createRng } from '../../core/rng.js';
import { specByName, type SsdSpec } from '../../core/specs.js';
import { nhwcToNchw, preprocessNHWC } from '../../export/input-graph.js';

export const tiny = (): SsdSpec => specByName('ssd-tiny');

/** RGB pixels [n, S, S, 3]: half random noise, half smooth gradients (so outputs are not all noise). */
export function pixels(spec: SsdSpec, n: number, seed: number): Uint8Array {
  const S = spec.inputSize;
  const rng = createRng(seed);
  const px = new Uint8Array(n * S * S * 3);
  for (let b = 0; b < n; b++) {
    const phase = rng.uniform(0, 6);
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        const o = ((b * S + y) * S + x) * 3;
        for (let c = 0; c < 3; c++) {
          const smooth = 128 + 100 * Math.sin(phase + (x * (c + 1)) / 17 + y / 11);
          px[o + c] = Math.max(0, Math.min(255, Math.round(b % 2 ? smooth : rng.int(256))));
        }
      }
    }
  }
  return px;
}

export type Outputs = Record<string, { data: Float32Array | Int32Array; dims: readonly number[] }>;

export async function run(bytes: Uint8Array, images: ort.Tensor, level: 'disabled' | 'all' = 'all'): Promise<Outputs> {
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], graphOptimizationLevel: level });
  try {
    const out = await session.run({ images });
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, { data: v.data as Float32Array | Int32Array, dims: v.dims }]));
  } finally {
    await session.release();
  }
}

export function uint8Input(spec: SsdSpec, rgb: Uint8Array, n: number): ort.Tensor {
  return new ort.Tensor('uint8', rgb, [n, spec.inputSize, spec.inputSize, 3]);
}

export function floatInput(spec: SsdSpec, rgb: Uint8Array, n: number): ort.Tensor {
  const S = spec.inputSize;
  return new ort.Tensor('float32', nhwcToNchw(preprocessNHWC(spec, rgb), n, S, S, 3), [n, 3, S, S]);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (Number.isNaN(d)) return Infinity;
    if (d > m) m = d;
  }
  return m;
}
