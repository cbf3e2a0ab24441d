/**
 * Convolutions with Caffe geometry (symmetric zero pad, stride, dilation) that train on every
 * TensorFlow.js backend. Gaps of tfjs 4.22 (measured; test/train-model/layers.test.ts re-checks them):
 *  - the conv2D gradient throws for dilation > 1 on every backend, so an atrous conv is
 *    spaceToBatchND -> plain conv -> batchToSpaceND, whose gradients exist everywhere;
 *  - the tensorflow backend accepts only 'valid'/'same' padding (Conv2D and Conv2DBackpropInput), so
 *    an explicit pad is 'same' where that is the same geometry, else tf.pad then 'valid';
 *  - the wasm backend has no Conv2DBackpropFilter kernel and its Conv2DBackpropInput is a scalar loop
 *    (74 of 103 s of an SSD300 step); the cpu backend's two are scalar loops too. On those backends both
 *    gradients are computed as forward convs (XNNPACK on wasm), in one tf.customGrad per conv.
 * This is the only place that changes how conv gradients are computed: the trainer, the step benchmark
 * and the tests all go through it, and it decides per call from the active backend.
 */
import * as tf from '@tensorflow/tfjs';

export interface ConvGeometry {
  stride: number;
  pad: number;
  dilation: number;
}

/**
 * Backends whose conv gradient kernels are slow scalar loops (or missing), where the forward-conv
 * gradients below win. Measured on an ssd-tiny step: cpu 571 ms (forward convs) vs ~3 s (tfjs'
 * kernels); on wasm tfjs has no filter-gradient kernel at all. The tensorflow backend keeps its own
 * kernels (oneDNN/Eigen on CPU, cuDNN on GPU): see docs/train-model.md for the measurement.
 */
const FORWARD_CONV_GRADIENT_BACKENDS = new Set(['wasm', 'cpu']);

/** Whether convs on `backend` (default: the active one) use the forward-conv gradients of this file. */
export function usesForwardConvGradients(backend: string = tf.getBackend()): boolean {
  return FORWARD_CONV_GRADIENT_BACKENDS.has(backend);
}

/**
 * dL/dw for y = conv2d(x, w, stride, pad) as one forward conv on transposed tensors: the input channels
 * become the batch, the batch becomes the channels, and dy is the filter, dilated by the stride:
 * dw[i, j, ci, co] = sum over (n, oy, ox) of xPadded[n, i + s*oy, j + s*ox, ci] * dy[n, oy, ox, co].
 */
export function conv2dFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, kernel: number, stride: number, pad: number): tf.Tensor4D {
  return tf.tidy(() => {
    const xp = pad > 0 ? tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]]) : x;
    const a = tf.transpose(xp, [3, 1, 2, 0]) as tf.Tensor4D;
    const f = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D;
    const g = tf.conv2d(a, f, 1, 'valid', 'NHWC', stride);
    const [cin, , , cout] = g.shape;
    // Rows/columns of padding the last window never reads give extra outputs: crop to the kernel.
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
 * (in, out).
 */
export function conv2dInputGrad(dy: tf.Tensor4D, w: tf.Tensor4D, xShape: [number, number, number, number], stride: number, pad: number): tf.Tensor4D {
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

/**
 * True when TF's 'same' padding is exactly the Caffe geometry for this input: the same top/left pad
 * and the same number of outputs (the bottom/right pad then only adds zeros no window reads).
 */
function sameIsCaffe(size: number, k: number, stride: number, pad: number): boolean {
  const outSame = Math.ceil(size / stride);
  const total = Math.max((outSame - 1) * stride + k - size, 0);
  return Math.floor(total / 2) === pad && outSame === Math.floor((size + 2 * pad - k) / stride) + 1;
}

/** x[:, ::s, ::s, :] from ops that have gradients everywhere (tfjs has no StridedSlice gradient). */
function everyStridePixel(x: tf.Tensor4D, s: number): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const oh = Math.ceil(h / s), ow = Math.ceil(w / s);
  const padded = tf.pad(x, [[0, 0], [0, oh * s - h], [0, ow * s - w], [0, 0]]);
  return tf.reshape(tf.slice(tf.reshape(padded, [n, oh, s, ow, s, c]), [0, 0, 0, 0, 0, 0], [n, oh, 1, ow, 1, c]), [n, oh, ow, c]);
}

/** The conv with the backend's own gradient kernels and only 'valid'/'same' padding (tensorflow). */
function conv2dNativeGrad(x: tf.Tensor4D, w: tf.Tensor4D, stride: number, pad: number): tf.Tensor4D {
  const k = w.shape[0];
  if (k === 1 && pad === 0) {
    // A 1x1 conv is a matMul over (every stride-th) pixel. libtensorflow 2.21's oneDNN
    // Conv2DBackpropInput dies with SIGFPE on some 1x1 shapes (1024 -> 256 channels, SSD300's conv6_1,
    // at any size and batch; 256 -> 1024 at stride 2): as a matMul the gradients are matMuls, and
    // oneDNN stays on for the rest (~1.8x faster than TF_ENABLE_ONEDNN_OPTS=0 on the digits step).
    const xs = stride > 1 ? everyStridePixel(x, stride) : x;
    const [n, h, wd, cin] = xs.shape;
    const cout = w.shape[3];
    return tf.reshape(tf.matMul(tf.reshape(xs, [n * h * wd, cin]), tf.reshape(w, [cin, cout])), [n, h, wd, cout]);
  }
  if (pad === 0) return tf.conv2d(x, w, stride, 'valid');
  if (sameIsCaffe(x.shape[1], k, stride, pad) && sameIsCaffe(x.shape[2], k, stride, pad)) return tf.conv2d(x, w, stride, 'same');
  return tf.conv2d(tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]]), w, stride, 'valid');
}

/** Undilated conv with symmetric zero padding; gradients as forward convs where that is faster. */
export function conv2dPlain(x: tf.Tensor4D, w: tf.Tensor4D, stride: number, pad: number): tf.Tensor4D {
  if (!usesForwardConvGradients()) return conv2dNativeGrad(x, w, stride, pad);
  const kernel = w.shape[0];
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [x4, w4, save] = args as [tf.Tensor4D, tf.Tensor4D, tf.GradSaveFunc];
    save([x4, w4]);
    return {
      // wasm and cpu take a numeric pad in the forward kernel itself.
      value: tf.conv2d(x4, w4, stride, pad),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ws] = saved as [tf.Tensor4D, tf.Tensor4D];
        const dy4 = dy as tf.Tensor4D;
        return [conv2dInputGrad(dy4, ws, xs.shape, stride, pad), conv2dFilterGrad(xs, dy4, kernel, stride, pad)];
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
export function conv2dAtrous(x: tf.Tensor4D, w: tf.Tensor4D, pad: number, dilation: number): tf.Tensor4D {
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
    const y = conv2dPlain(split, w, 1, 0);
    return tf.batchToSpaceND(y, [dilation, dilation], [[0, extraH], [0, extraW]]) as tf.Tensor4D;
  });
}

/** Conv without bias with Caffe geometry, trainable on every backend. */
export function conv2dTrainable(x: tf.Tensor4D, w: tf.Tensor4D, g: ConvGeometry): tf.Tensor4D {
  if (g.dilation > 1) {
    if (g.stride !== 1) throw new Error(`conv with dilation ${g.dilation} and stride ${g.stride}: only stride 1 is supported with dilation`);
    return conv2dAtrous(x, w, g.pad, g.dilation);
  }
  return conv2dPlain(x, w, g.stride, g.pad);
}
