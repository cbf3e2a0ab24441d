/**
 * L2 normalisation across channels with a learned per-channel scale (SSD's conv4_3_norm, scale init 20):
 * y = x * scale / sqrt(sum_c x^2 + eps). The epsilon sits under the root so an all-zero pixel (common
 * after ReLU) has a finite gradient; the exporter uses the same formula.
 */
import * as tf from '@tensorflow/tfjs';

export const L2NORM_EPSILON = 1e-10;

export function l2Normalize(x: tf.Tensor4D, scale: tf.Tensor1D): tf.Tensor4D {
  return tf.tidy(() => {
    const norm = tf.sqrt(tf.sum(tf.square(x), -1, true).add(L2NORM_EPSILON));
    return tf.mul(tf.div(x, norm), scale) as tf.Tensor4D;
  });
}
