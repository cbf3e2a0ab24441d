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
  const y = tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, epsilon))), p.gamma), p.beta) as tf.Tensor4D;
  return y;
}
