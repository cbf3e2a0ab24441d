/**
 * Batch normalisation over N, H, W (the optional `--batch-norm` variant; export folds it into the conv).
 * Training mode normalises with the batch statistics and updates the moving averages PyTorch's way
 * (momentum 0.1, unbiased variance for the running estimate); inference uses the moving averages.
 */
import * as tf from '@tensorflow/tfjs';

export const BN_MOMENTUM = 0.1;

export interface BatchNormParams {
  gamma: tf.Variable;
  beta: tf.Variable;
  movingMean: tf.Variable;
  movingVariance: tf.Variable;
}

export function batchNorm(x: tf.Tensor4D, p: BatchNormParams, epsilon: number, training: boolean): tf.Tensor4D {
  if (!training) return tf.tidy(() => tf.batchNorm4d(x, p.movingMean as tf.Tensor1D, p.movingVariance as tf.Tensor1D, p.beta as tf.Tensor1D, p.gamma as tf.Tensor1D, epsilon));
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  const [n, h, w] = x.shape;
  const count = n * h * w;
  tf.tidy(() => {
    const unbiased = count > 1 ? variance.mul(count / (count - 1)) : variance;
    p.movingMean.assign(p.movingMean.mul(1 - BN_MOMENTUM).add(mean.mul(BN_MOMENTUM)));
    p.movingVariance.assign(p.movingVariance.mul(1 - BN_MOMENTUM).add(unbiased.mul(BN_MOMENTUM)));
  });
  // (x - mean) / sqrt(var + eps) * gamma + beta as x * scale + shift: the per-channel factors are tiny,
  // so the forward pass makes two full-size ops instead of four and the backward pass fewer too
  // (a digits training step on tensorflow spent 45 of ~300 ms in full-size divisions).
  const scale = tf.mul(p.gamma, tf.rsqrt(tf.add(variance, epsilon)));
  const shift = tf.sub(p.beta, tf.mul(mean, scale));
  return tf.add(tf.mul(x, scale), shift) as tf.Tensor4D;
}
