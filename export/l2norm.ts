/**
 * conv4_3's L2 normalisation across channels with a learned per-channel scale, exactly the training
 * model's formula (train/layers/l2norm.ts): y = x / sqrt(sum_c x^2 + eps) * scale, emitted as
 * ReduceSumSquare -> Add(eps) -> Sqrt -> Div -> Mul.
 *
 * Why not LpNormalization: both forms parse natively in TensorRT (8.x and 10.x: its LpNormalization
 * importer builds the same square/reduce/sqrt/div layers), but LpNormalization has no epsilon and the
 * backends disagree on a zero vector (TensorRT's importer swaps a norm of exactly 0 for 1, others
 * divide by 0). After a ReLU a location whose channels are all zero is ordinary, so the explicit form
 * with the epsilon under the root gives the same finite answer on every execution provider and matches
 * training. ReduceSumSquare takes `axes` as an attribute up to opset 17 and as an input from opset 18
 * (TensorRT 10 wants that input to be an initializer, which it is).
 *
 * The learned scale is the initializer `<name>_gamma`: until issue 13 it was `<name>_scale`, which is
 * exactly the name quantizers give the scale of the tensor `<name>` (the L2Norm's output), so
 * onnxruntime's quantize_static crashed on our exports. Older models keep loading (nothing reads the
 * initializer by name), and export/quantize.ts makes its own names unique, so it takes them too.
 *
 * In an fp16 graph the norm is computed in float32: a 512-channel sum of squares overflows float16's
 * 65504 long before activations look unusual, and 1e-10 is below float16's smallest subnormal.
 */
import type { OnnxGraph } from './onnx-builder.js';

/** Same value as the training model's L2Norm. */
export const L2NORM_EPSILON = 1e-10;

export function emitL2Norm(g: OnnxGraph, x: string, scale: Float32Array, name: string, dtype: 'float' | 'float16'): string {
  const x32 = dtype === 'float16' ? g.op('Cast', [x], { to: 1 }, `${name}_to_fp32`) : x;
  const sumSq = g.opset >= 18
    ? g.op('ReduceSumSquare', [x32, g.int64s(`${name}_axes`, [1])], { keepdims: 1 }, `${name}_sumsq`)
    : g.op('ReduceSumSquare', [x32], { axes: [1], keepdims: 1 }, `${name}_sumsq`);
  const norm = g.op('Sqrt', [g.op('Add', [sumSq, g.floats(`${name}_eps`, [], [L2NORM_EPSILON])], {}, `${name}_sumsq_eps`)], {}, `${name}_l2`);
  const unit = g.op('Div', [x32, norm], {}, `${name}_unit`);
  const scaled = g.op('Mul', [unit, g.floats(`${name}_gamma`, [1, scale.length, 1, 1], scale)], {}, name);
  return dtype === 'float16' ? g.op('Cast', [scaled], { to: 10 }, `${name}_fp16`) : scaled;
}
