/**
 * Max pooling with Caffe/PyTorch geometry: symmetric padding and optional ceil mode (pool3 of SSD300
 * maps 75 -> 38). tfjs pools only know 'valid'/'same', so the input is padded explicitly with a very
 * negative value (never selected: every window holds at least one real value) and pooled VALID.
 */
import * as tf from '@tensorflow/tfjs';
import { outputSize, type MaxPoolLayer } from '../../core/specs.js';

const NEG = -3e38;

export function maxPoolCaffe(x: tf.Tensor4D, layer: Pick<MaxPoolLayer, 'kernel' | 'stride' | 'pad' | 'ceil'>): tf.Tensor4D {
  return tf.tidy(() => {
    const [, h, w] = x.shape;
    const spec = { kind: 'maxpool' as const, name: '', ...layer };
    const oh = outputSize(spec, h);
    const ow = outputSize(spec, w);
    // Input extent the VALID pool must see to produce oh x ow windows; beyond the symmetric pad, ceil
    // mode may need more on the bottom/right (and floor mode may leave trailing rows unused).
    const extraH = Math.max(0, (oh - 1) * layer.stride + layer.kernel - (h + 2 * layer.pad));
    const extraW = Math.max(0, (ow - 1) * layer.stride + layer.kernel - (w + 2 * layer.pad));
    const needsPad = layer.pad > 0 || extraH > 0 || extraW > 0;
    const xp = needsPad ? tf.pad(x, [[0, 0], [layer.pad, layer.pad + extraH], [layer.pad, layer.pad + extraW], [0, 0]], NEG) : x;
    const y = tf.maxPool(xp, layer.kernel, layer.stride, 'valid');
    // Floor mode with leftover rows: VALID pooling already drops them, so y is oh x ow.
    if (y.shape[1] !== oh || y.shape[2] !== ow) throw new Error(`maxpool: got ${y.shape[1]}x${y.shape[2]}, expected ${oh}x${ow}`);
    return y;
  });
}
