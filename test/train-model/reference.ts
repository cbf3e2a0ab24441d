/**
 * Independent float64 reference implementations (plain loops, Caffe semantics) for the layer tests, and
 * a central finite-difference gradient checker.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';

/** Deterministic pseudo-random values in [-1, 1). */
export function randomArray(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = (s / 4294967296) * 2 - 1;
  }
  return out;
}

export function randomTensor(shape: number[], seed: number, scale = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(randomArray(n, seed).map((v) => v * scale), shape);
}

/** NHWC x, HWIO w, symmetric zero pad; out[n, oy, ox, o] = sum x[n, oy*s - p + i*d, ox*s - p + j*d, c] w[i, j, c, o]. */
export function convRef(x: Float32Array, xs: number[], w: Float32Array, ws: number[], stride: number, pad: number, dilation: number): { data: Float64Array; shape: number[] } {
  const [n, h, wd, c] = xs as [number, number, number, number];
  const [k, , , o] = ws as [number, number, number, number];
  const oh = Math.floor((h + 2 * pad - dilation * (k - 1) - 1) / stride) + 1;
  const ow = Math.floor((wd + 2 * pad - dilation * (k - 1) - 1) / stride) + 1;
  const out = new Float64Array(n * oh * ow * o);
  for (let b = 0; b < n; b++) for (let oy = 0; oy < oh; oy++) for (let ox = 0; ox < ow; ox++) for (let oc = 0; oc < o; oc++) {
    let acc = 0;
    for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) {
      const y = oy * stride - pad + i * dilation;
      const xx = ox * stride - pad + j * dilation;
      if (y < 0 || y >= h || xx < 0 || xx >= wd) continue;
      for (let ic = 0; ic < c; ic++) acc += x[((b * h + y) * wd + xx) * c + ic]! * w[((i * k + j) * c + ic) * o + oc]!;
    }
    out[((b * oh + oy) * ow + ox) * o + oc] = acc;
  }
  return { data: out, shape: [n, oh, ow, o] };
}

/** Caffe/PyTorch max pool: windows start at oy*s - p, clipped to the input; ceil mode drops a last window starting in the right pad. */
export function maxPoolRef(x: Float32Array, xs: number[], k: number, stride: number, pad: number, ceil: boolean): { data: Float64Array; shape: number[] } {
  const [n, h, wd, c] = xs as [number, number, number, number];
  const size = (len: number) => {
    let o = (ceil ? Math.ceil((len + 2 * pad - k) / stride) : Math.floor((len + 2 * pad - k) / stride)) + 1;
    if (ceil && (o - 1) * stride >= len + pad) o--;
    return o;
  };
  const oh = size(h);
  const ow = size(wd);
  const out = new Float64Array(n * oh * ow * c);
  for (let b = 0; b < n; b++) for (let oy = 0; oy < oh; oy++) for (let ox = 0; ox < ow; ox++) for (let ch = 0; ch < c; ch++) {
    let m = -Infinity;
    for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) {
      const y = oy * stride - pad + i;
      const xx = ox * stride - pad + j;
      if (y < 0 || y >= h || xx < 0 || xx >= wd) continue;
      m = Math.max(m, x[((b * h + y) * wd + xx) * c + ch]!);
    }
    out[((b * oh + oy) * ow + ox) * c + ch] = m;
  }
  return { data: out, shape: [n, oh, ow, c] };
}

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < actual.length; i++) {
    const err = Math.abs(actual[i]! - expected[i]!) / (1 + Math.abs(expected[i]!));
    if (err > worst) { worst = err; at = i; }
  }
  expect(worst, `${what}: worst relative error at ${at} (${actual[at]} vs ${expected[at]})`).toBeLessThan(tol);
}

/**
 * Compares tf.grads of `f` (a scalar function) with central differences on `samples` entries of each
 * input. `f` must be smooth at the point (tests keep inputs away from ReLU/max ties).
 */
export function checkGradients(f: (...xs: tf.Tensor[]) => tf.Scalar, inputs: tf.Tensor[], opts: { eps?: number; tol?: number; samples?: number; what: string }): void {
  const eps = opts.eps ?? 1e-2;
  const tol = opts.tol ?? 2e-3;
  const samples = opts.samples ?? 6;
  const grads = tf.grads(f)(inputs);
  inputs.forEach((x, k) => {
    const g = grads[k]!.dataSync();
    const base = x.dataSync().slice() as Float32Array;
    const scale = Math.max(1e-3, ...Array.from(g, Math.abs));
    const picks = new Set<number>();
    const r = randomArray(samples * 3, 17 + k);
    for (let i = 0; picks.size < Math.min(samples, base.length) && i < r.length; i++) picks.add(Math.floor(((r[i]! + 1) / 2) * base.length));
    // Always include the entry with the largest gradient.
    let maxAt = 0;
    g.forEach((v, i) => { if (Math.abs(v) > Math.abs(g[maxAt]!)) maxAt = i; });
    picks.add(maxAt);
    for (const i of picks) {
      const at = (delta: number) => tf.tidy(() => {
        const d = base.slice();
        d[i] = d[i]! + delta;
        const args = inputs.map((t, j) => (j === k ? tf.tensor(d, x.shape) : t));
        return f(...args).dataSync()[0]!;
      });
      const numeric = (at(eps) - at(-eps)) / (2 * eps);
      const err = Math.abs(numeric - g[i]!) / scale;
      expect(err, `${opts.what}: input ${k} entry ${i}: analytic ${g[i]} numeric ${numeric}`).toBeLessThan(tol);
    }
  });
  tf.dispose(grads);
}
