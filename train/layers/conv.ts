/**
 * Convolutions that train on every TensorFlow.js backend.
 *
 * Two gaps of tfjs 4.22 (measured, see docs/train-model.md): the conv2D gradient throws for dilation > 1
 * on every backend, and the wasm backend has no Conv2DBackpropFilter kernel. So:
 *  - a dilated (atrous) conv is computed as spaceToBatchND -> plain conv -> batchToSpaceND, whose
 *    gradients are the same three ops in reverse, and exist everywhere;
 *  - the filter gradient is computed with forward ops every backend has: one conv on transposed
 *    tensors (default), or one matMul per kernel tap (im2col without materialising the patch matrix);
 *  - the input gradient is a forward conv too, because wasm's Conv2DBackpropInput is a slow scalar loop.
 */
import * as tf from '@tensorflow/tfjs';

/**
 * How the filter gradient is computed: tfjs' own kernel, one matMul per kernel tap, one forward conv
 * on transposed tensors, or 'auto' (the fastest measured for the backend).
 */
export type FilterGradMode = 'auto' | 'native' | 'matmul' | 'transposed-conv';

export interface ConvGeometry {
  stride: number;
  pad: number;
  dilation: number;
}

/**
 * Backends where the transposed conv wins: wasm has no filter-gradient kernel at all, and the cpu
 * backend's one is a slow scalar loop. Measured on an ssd-tiny step (docs/train-model.md): cpu 571 ms
 * vs 997 (per-tap matMul) vs ~3000 (native); wasm 104 ms vs 169 (matMul).
 */
const CUSTOM_BACKENDS = new Set(['wasm', 'cpu']);

export function resolveFilterGradMode(mode: FilterGradMode): Exclude<FilterGradMode, 'auto'> {
  if (mode !== 'auto') return mode;
  const backend = tf.getBackend();
  if (CUSTOM_BACKENDS.has(backend)) return 'transposed-conv';
  return tf.getKernel('Conv2DBackpropFilter', backend) !== undefined ? 'native' : 'transposed-conv';
}

/**
 * dL/dw for y = conv2d(x, w, stride, pad): for each tap (i, j),
 * dw[i, j] = sum over (n, oy, ox) of xPadded[n, i + s*oy, j + s*ox, :]^T dy[n, oy, ox, :].
 */
export function conv2dFilterGradMatmul(x: tf.Tensor4D, dy: tf.Tensor4D, kernel: number, stride: number, pad: number): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, , , cin] = x.shape;
    const [, oh, ow, cout] = dy.shape;
    const xp = pad > 0 ? tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]]) : x;
    const dy2 = dy.reshape([n * oh * ow, cout]);
    const taps: tf.Tensor2D[] = [];
    for (let i = 0; i < kernel; i++) {
      for (let j = 0; j < kernel; j++) {
        const patch = stride === 1
          ? tf.slice(xp, [0, i, j, 0], [n, oh, ow, cin])
          : tf.stridedSlice(xp, [0, i, j, 0], [n, i + stride * (oh - 1) + 1, j + stride * (ow - 1) + 1, cin], [1, stride, stride, 1]) as tf.Tensor4D;
        taps.push(tf.matMul(patch.reshape([n * oh * ow, cin]), dy2, true, false));
      }
    }
    return tf.stack(taps).reshape([kernel, kernel, cin, cout]) as tf.Tensor4D;
  });
}

/**
 * The same dL/dw as one forward conv on transposed tensors: the input channels become the batch, the
 * batch becomes the channels, and dy is the filter, dilated by the forward stride.
 */
export function conv2dFilterGradTransposed(x: tf.Tensor4D, dy: tf.Tensor4D, kernel: number, stride: number, pad: number): tf.Tensor4D {
  return tf.tidy(() => {
    const xp = pad > 0 ? tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]]) : x;
    const a = tf.transpose(xp, [3, 1, 2, 0]) as tf.Tensor4D;
    const f = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D;
    const g = tf.conv2d(a, f, 1, 'valid', 'NHWC', stride);
    const [cin, , , cout] = g.shape;
    return tf.transpose(tf.slice(g, [0, 0, 0, 0], [cin, kernel, kernel, cout]), [1, 2, 0, 3]) as tf.Tensor4D;
  });
}

/** Pads (positive) or crops (negative) the two spatial dims of an NHWC tensor. */
function padOrCrop(x: tf.Tensor4D, top: number, bottom: number, left: number, right: number): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const cropped = top < 0 || bottom < 0 || left < 0 || right < 0
    ? tf.slice(x, [0, Math.max(0, -top), Math.max(0, -left), 0], [n, h - Math.max(0, -top) - Math.max(0, -bottom), w - Math.max(0, -left) - Math.max(0, -right), c])
    : x;
  const p = [Math.max(0, top), Math.max(0, bottom), Math.max(0, left), Math.max(0, right)];
  return p.some((v) => v > 0) ? tf.pad(cropped, [[0, 0], [p[0]!, p[1]!], [p[2]!, p[3]!], [0, 0]]) : cropped;
}

/**
 * dL/dx for y = conv2d(x, w, stride, pad) as a forward conv: dy with (stride - 1) zeros between
 * entries, padded by kernel - 1 - pad, correlated with the kernel flipped in space and transposed in
 * (in, out). The wasm backend's Conv2DBackpropInput is a scalar loop (74 of 103 s of an SSD300 step,
 * measured); its Conv2D runs on XNNPACK.
 */
export function conv2dInputGradForward(dy: tf.Tensor4D, w: tf.Tensor4D, xShape: [number, number, number, number], stride: number, pad: number): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, oh, ow, cout] = dy.shape;
    const [, h, wd] = xShape;
    const k = w.shape[0];
    let up = dy;
    if (stride > 1) {
      const spread = tf.pad(dy.reshape([n, oh, 1, ow, 1, cout]), [[0, 0], [0, 0], [0, stride - 1], [0, 0], [0, stride - 1], [0, 0]]);
      up = tf.slice(spread.reshape([n, oh * stride, ow * stride, cout]) as tf.Tensor4D, [0, 0, 0, 0], [n, (oh - 1) * stride + 1, (ow - 1) * stride + 1, cout]);
    }
    const top = k - 1 - pad;
    const padded = padOrCrop(up, top, h + k - 1 - up.shape[1] - top, top, wd + k - 1 - up.shape[2] - top);
    const flipped = tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
    return tf.conv2d(padded, flipped, 1, 'valid') as tf.Tensor4D;
  });
}

/** Undilated conv with explicit symmetric zero padding; the filter gradient per `mode`. */
export function conv2dPlain(x: tf.Tensor4D, w: tf.Tensor4D, stride: number, pad: number, mode: FilterGradMode = 'auto'): tf.Tensor4D {
  const resolved = resolveFilterGradMode(mode);
  if (resolved === 'native') return tf.conv2d(x, w, stride, pad);
  const filterGrad = resolved === 'matmul' ? conv2dFilterGradMatmul : conv2dFilterGradTransposed;
  const kernel = w.shape[0];
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [x4, w4, save] = args as [tf.Tensor4D, tf.Tensor4D, tf.GradSaveFunc];
    save([x4, w4]);
    return {
      value: tf.conv2d(x4, w4, stride, pad),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ws] = saved as [tf.Tensor4D, tf.Tensor4D];
        const dy4 = dy as tf.Tensor4D;
        const dx = conv2dInputGradForward(dy4, ws, xs.shape, stride, pad);
        return [dx, filterGrad(xs, dy4, kernel, stride, pad)];
      },
    };
  });
  return f(x, w) as tf.Tensor4D;
}

/**
 * Atrous conv (stride 1): pad, split the input into dilation^2 interleaved sub-images (spaceToBatchND),
 * run a plain VALID conv on each, and interleave the results back (batchToSpaceND). Extra zeros at the
 * end make the padded side a multiple of the dilation; the matching extra outputs are cropped.
 */
export function conv2dAtrous(x: tf.Tensor4D, w: tf.Tensor4D, pad: number, dilation: number, mode: FilterGradMode = 'auto'): tf.Tensor4D {
  return tf.tidy(() => {
    const [, h, wd] = x.shape;
    const k = w.shape[0];
    const span = dilation * (k - 1);
    const outH = h + 2 * pad - span;
    const outW = wd + 2 * pad - span;
    if (outH < 1 || outW < 1) throw new Error(`atrous conv: input ${h}x${wd} too small for kernel ${k} dilation ${dilation} pad ${pad}`);
    const extraH = (dilation - ((h + 2 * pad) % dilation)) % dilation;
    const extraW = (dilation - ((wd + 2 * pad) % dilation)) % dilation;
    const split = tf.spaceToBatchND(x, [dilation, dilation], [[pad, pad + extraH], [pad, pad + extraW]]) as tf.Tensor4D;
    const y = conv2dPlain(split, w, 1, 0, mode);
    return tf.batchToSpaceND(y, [dilation, dilation], [[0, extraH], [0, extraW]]) as tf.Tensor4D;
  });
}

/** Conv without bias with Caffe geometry (symmetric zero pad, stride, dilation), trainable everywhere. */
export function conv2dTrainable(x: tf.Tensor4D, w: tf.Tensor4D, g: ConvGeometry, mode: FilterGradMode = 'auto'): tf.Tensor4D {
  if (g.dilation > 1) {
    if (g.stride !== 1) throw new Error(`conv with dilation ${g.dilation} and stride ${g.stride}: only stride 1 is supported with dilation`);
    return conv2dAtrous(x, w, g.pad, g.dilation, mode);
  }
  return conv2dPlain(x, w, g.stride, g.pad, mode);
}
