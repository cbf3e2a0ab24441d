/**
 * The graph input and its preprocessing. `float-nchw` takes images already in the network's channel
 * order with the mean subtracted; `uint8-nhwc` takes RGB pixels as a camera or decoder delivers them and
 * does the rest inside the graph (Cast, channel reorder to the spec's order, mean subtraction, Transpose
 * to NCHW), so that on a Jetson the GPU does it and the CPU never touches a pixel.
 */
import { INPUT_NAME, type InputLayout } from '../core/model-contract.js';
import type { SsdSpec } from '../core/specs.js';
import type { Dim, OnnxGraph } from './onnx-builder.js';

/** Emits the input and returns the NCHW tensor (in `dtype`) that the first conv reads. */
export function emitInput(g: OnnxGraph, spec: SsdSpec, layout: InputLayout, batch: Dim, dtype: 'float' | 'float16'): string {
  const S = spec.inputSize;
  if (layout === 'float-nchw') {
    const x = g.input(INPUT_NAME, 'float', [batch, 3, S, S]);
    return dtype === 'float16' ? g.op('Cast', [x], { to: 10 }, 'images_fp16') : x;
  }
  const x = g.input(INPUT_NAME, 'uint8', [batch, S, S, 3]);
  let v = g.op('Cast', [x], { to: 1 }, 'images_float');
  // The input is RGB; a BGR network (Caffe VGG) gets its channels reversed.
  if (spec.input.channelOrder === 'bgr') v = g.op('Gather', [v, g.int64s('bgr_order', [2, 1, 0])], { axis: 3 }, 'images_bgr');
  v = g.op('Sub', [v, g.floats('mean', [1, 1, 1, 3], spec.input.mean)], {}, 'images_centered');
  v = g.op('Transpose', [v], { perm: [0, 3, 1, 2] }, 'images_nchw');
  return dtype === 'float16' ? g.op('Cast', [v], { to: 10 }, 'images_fp16') : v;
}

/**
 * The same preprocessing on the CPU, for feeding a float-nchw model or the tfjs model from RGB pixels:
 * `rgbNHWC` uint8 [N, S, S, 3] -> float NHWC in the spec's channel order, mean subtracted.
 */
export function preprocessNHWC(spec: SsdSpec, rgbNHWC: Uint8Array): Float32Array {
  const out = new Float32Array(rgbNHWC.length);
  const bgr = spec.input.channelOrder === 'bgr';
  const [m0, m1, m2] = spec.input.mean;
  for (let i = 0; i < rgbNHWC.length; i += 3) {
    const r = rgbNHWC[i]!, gr = rgbNHWC[i + 1]!, b = rgbNHWC[i + 2]!;
    out[i] = (bgr ? b : r) - m0;
    out[i + 1] = gr - m1;
    out[i + 2] = (bgr ? r : b) - m2;
  }
  return out;
}

export function nhwcToNchw(nhwc: Float32Array, n: number, h: number, w: number, c: number): Float32Array {
  const out = new Float32Array(nhwc.length);
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const src = ((b * h + y) * w + x) * c;
        for (let k = 0; k < c; k++) out[((b * c + k) * h + y) * w + x] = nhwc[src + k]!;
      }
    }
  }
  return out;
}
