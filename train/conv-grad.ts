/**
 * Faster Conv2D gradients for the CPU backends, expressed as forward convolutions.
 *
 * Measured here (ssd-digits step, batch 8, wasm): the filter gradient as per-tap matMuls and the wasm
 * Conv2DBackpropInput kernel took ~95% of a training step, while forward convs (XNNPACK) are ~15x
 * faster per FLOP. Both gradients are correlations, so they can run on the forward kernel:
 *  - dL/dx (stride 1): a full correlation of dy with the kernel rotated 180 degrees and with in/out
 *    swapped; for stride s > 1, dy is first spread out with s - 1 zeros between its values;
 *  - dL/dw[i, j, ci, co] = sum over (n, y, x) of xpad[n, s*y + i, s*x + j, ci] * dy[n, y, x, co]: a conv
 *    whose "batch" is ci and "channels" n, with dy (transposed) as a kernel of size oh x ow, dilated by s.
 * `installFastConvGradients()` registers this as the gradient of tfjs' Conv2D kernel (process-wide,
 * same values as tfjs' own up to float rounding; test/train/conv-grad.test.ts checks both).
 */
import * as tf from '@tensorflow/tfjs';

type Pads = [number, number, number, number]; // top, bottom, left, right

function explicitPads(pad: unknown, H: number, W: number, k: number, s: number): Pads | undefined {
  if (typeof pad === 'number') return [pad, pad, pad, pad];
  if (pad === 'valid') return [0, 0, 0, 0];
  if (pad === 'same') {
    const oh = Math.ceil(H / s), ow = Math.ceil(W / s);
    const th = Math.max((oh - 1) * s + k - H, 0), tw = Math.max((ow - 1) * s + k - W, 0);
    return [Math.floor(th / 2), th - Math.floor(th / 2), Math.floor(tw / 2), tw - Math.floor(tw / 2)];
  }
  if (Array.isArray(pad) && pad.length === 4) {
    const p = pad as number[][];
    return [p[1]![0]!, p[1]![1]!, p[2]![0]!, p[2]![1]!];
  }
  return undefined;
}

/** Pads (positive) or crops (negative) the two spatial dims of an NHWC tensor. */
function padOrCrop(x: tf.Tensor4D, top: number, bottom: number, left: number, right: number): tf.Tensor4D {
  let y = x;
  const pt = Math.max(top, 0), pb = Math.max(bottom, 0), pl = Math.max(left, 0), pr = Math.max(right, 0);
  if (pt || pb || pl || pr) y = tf.pad(y, [[0, 0], [pt, pb], [pl, pr], [0, 0]]);
  const ct = Math.max(-top, 0), cb = Math.max(-bottom, 0), cl = Math.max(-left, 0), cr = Math.max(-right, 0);
  if (ct || cb || cl || cr) {
    const [n, h, w, c] = y.shape;
    y = tf.slice(y, [0, ct, cl, 0], [n, h - ct - cb, w - cl - cr, c]);
  }
  return y;
}

/** dy with s - 1 zeros between neighbouring values: [n, (oh-1)*s+1, (ow-1)*s+1, c]. */
function spreadOut(dy: tf.Tensor4D, s: number): tf.Tensor4D {
  if (s === 1) return dy;
  const [n, oh, ow, c] = dy.shape;
  const up = tf.pad(dy.reshape([n, oh, 1, ow, 1, c]), [[0, 0], [0, 0], [0, s - 1], [0, 0], [0, s - 1], [0, 0]]).reshape([n, oh * s, ow * s, c]) as tf.Tensor4D;
  return tf.slice(up, [0, 0, 0, 0], [n, (oh - 1) * s + 1, (ow - 1) * s + 1, c]);
}

export function conv2dInputGrad(xShape: [number, number, number, number], dy: tf.Tensor4D, w: tf.Tensor4D, s: number, pads: Pads): tf.Tensor4D {
  return tf.tidy(() => {
    const [, H, W] = xShape;
    const [kh, kw] = w.shape;
    const [, oh, ow] = dy.shape;
    const [pt, , pl] = pads;
    const wRot = tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
    const up = spreadOut(dy, s);
    const padded = padOrCrop(up, kh - 1 - pt, H + pt - 1 - (oh - 1) * s, kw - 1 - pl, W + pl - 1 - (ow - 1) * s);
    return tf.conv2d(padded, wRot, 1, 'valid');
  });
}

export function conv2dFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, kernel: [number, number], s: number, pads: Pads): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw] = kernel;
    const [, oh, ow] = dy.shape;
    const [pt, pb, pl, pr] = pads;
    // Bottom/right padding beyond what the last window reads is never used: crop it to keep shapes tight.
    const xp = padOrCrop(x, pt, pb, pl, pr);
    const needH = (oh - 1) * s + kh, needW = (ow - 1) * s + kw;
    const xs = tf.slice(xp, [0, 0, 0, 0], [xp.shape[0], needH, needW, xp.shape[3]]);
    const xT = tf.transpose(xs, [3, 1, 2, 0]) as tf.Tensor4D; // [cin, Hp, Wp, n]
    const dyT = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D; // [oh, ow, n, cout]
    const out = tf.conv2d(xT, dyT, 1, 'valid', 'NHWC', [s, s]); // [cin, kh, kw, cout]
    return tf.transpose(out, [1, 2, 0, 3]) as tf.Tensor4D;
  });
}

let installed = false;

/** Registers the forward-conv gradients for tfjs' Conv2D (NHWC, dilation 1); idempotent. */
export function installFastConvGradients(): void {
  if (installed) return;
  installed = true;
  const builtIn = tf.getGradient('Conv2D');
  tf.registerGradient({
    kernelName: 'Conv2D',
    inputsToSave: ['x', 'filter'],
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
      const [x, w] = saved as [tf.Tensor4D, tf.Tensor4D];
      const a = attrs as unknown as { strides: number | [number, number]; pad: unknown; dilations: number | [number, number]; dataFormat: string };
      const strides = typeof a.strides === 'number' ? [a.strides, a.strides] : a.strides;
      const dil = a.dilations === undefined ? [1, 1] : typeof a.dilations === 'number' ? [a.dilations, a.dilations] : a.dilations;
      const [kh, kw] = w.shape;
      const pads = explicitPads(a.pad, x.shape[1], x.shape[2], kh, strides[0]);
      const simple = (a.dataFormat ?? 'NHWC') === 'NHWC' && strides[0] === strides[1] && dil[0] === 1 && dil[1] === 1 && kh === kw && pads !== undefined;
      if (!simple && builtIn) return builtIn.gradFunc(dy, saved, attrs);
      const s = strides[0];
      const dy4 = dy as tf.Tensor4D;
      return {
        x: () => conv2dInputGrad(x.shape, dy4, w, s, pads!),
        filter: () => conv2dFilterGrad(x, dy4, [kh, kw], s, pads!),
      };
    },
  });
}
