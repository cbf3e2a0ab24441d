/**
 * Folds an inference-mode batch norm into the conv before it (SSD-SPEC, "Base network"):
 * w' = w * gamma / sqrt(var + eps), b' = (b - mean) * gamma / sqrt(var + eps) + beta.
 * Computed in float64 and rounded once, so the folded conv is as close to conv->BN as float32 allows.
 */
export interface BatchNormParams { gamma: Float32Array; beta: Float32Array; mean: Float32Array; variance: Float32Array; epsilon: number }

/** `kernelOIHW` [out, in, kh, kw] and `bias` [out]; returns new arrays. */
export function foldBatchNorm(kernelOIHW: Float32Array, bias: Float32Array, bn: BatchNormParams): { kernelOIHW: Float32Array; bias: Float32Array } {
  const out = bias.length;
  const perOut = kernelOIHW.length / out;
  if (!Number.isInteger(perOut) || [bn.gamma, bn.beta, bn.mean, bn.variance].some((a) => a.length !== out)) {
    throw new Error(`foldBatchNorm: ${out} output channels but kernel has ${kernelOIHW.length} values or BN params differ in length`);
  }
  const k = new Float32Array(kernelOIHW.length);
  const b = new Float32Array(out);
  for (let o = 0; o < out; o++) {
    const factor = bn.gamma[o]! / Math.sqrt(bn.variance[o]! + bn.epsilon);
    for (let j = o * perOut; j < (o + 1) * perOut; j++) k[j] = kernelOIHW[j]! * factor;
    b[o] = (bias[o]! - bn.mean[o]!) * factor + bn.beta[o]!;
  }
  return { kernelOIHW: k, bias: b };
}

/** HWIO [kh, kw, in, out] (the TensorFlow.js and checkpoint layout) to OIHW (ONNX Conv's W). */
export function hwioToOihw(hwio: Float32Array, shape: number[]): Float32Array {
  const [kh, kw, ci, co] = shape as [number, number, number, number];
  const oihw = new Float32Array(hwio.length);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      for (let i = 0; i < ci; i++) {
        const src = ((y * kw + x) * ci + i) * co;
        for (let o = 0; o < co; o++) oihw[((o * ci + i) * kh + y) * kw + x] = hwio[src + o]!;
      }
    }
  }
  return oihw;
}
