/**
 * SGD with momentum and L2 weight decay, as Caffe and PyTorch apply it:
 *   g' = g + weightDecay * w;  v = momentum * v + g';  w = w - lr * v
 * Written here rather than taken from tf.train.momentum so that the momentum buffers have canonical
 * names (`<param>/momentum`), can be saved in a checkpoint and restored bit for bit on --resume.
 */
import * as tf from '@tensorflow/tfjs';
import type { WeightMap } from '../core/checkpoint.js';

export interface SgdOptions {
  momentum: number;
  weightDecay: number;
}

export const SSD_SGD: SgdOptions = { momentum: 0.9, weightDecay: 5e-4 };

export class SgdMomentum {
  private readonly buffers = new Map<string, tf.Variable>();

  constructor(readonly options: SgdOptions = SSD_SGD) {}

  /** One update of every variable that has a gradient. Gradients are consumed (disposed). */
  apply(variables: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, lr: number): void {
    const { momentum, weightDecay } = this.options;
    for (const [name, g] of grads) {
      const w = variables.get(name);
      if (!w) throw new Error(`optimizer: gradient for unknown variable ${name}`);
      let v = this.buffers.get(name);
      if (!v) {
        v = tf.tidy(() => tf.variable(tf.zerosLike(w), false));
        this.buffers.set(name, v);
      }
      const buf = v;
      tf.tidy(() => {
        const decayed = weightDecay > 0 ? g.add(w.mul(weightDecay)) : g;
        const next = buf.mul(momentum).add(decayed);
        buf.assign(next);
        w.assign(w.sub(next.mul(lr)));
      });
      g.dispose();
    }
  }

  /** Momentum buffers by `<param>/momentum`. */
  getState(): WeightMap {
    const out: WeightMap = new Map();
    for (const [name, v] of this.buffers) out.set(`${name}/momentum`, { shape: v.shape.slice(), data: new Float32Array(v.dataSync()) });
    return out;
  }

  setState(state: WeightMap | undefined, variables: Map<string, tf.Variable>): void {
    this.dispose();
    if (!state) return;
    for (const [key, t] of state) {
      if (!key.endsWith('/momentum')) continue;
      const name = key.slice(0, -'/momentum'.length);
      const w = variables.get(name);
      if (!w || w.shape.join('x') !== t.shape.join('x')) continue;
      this.buffers.set(name, tf.tidy(() => tf.variable(tf.tensor(t.data, t.shape), false)));
    }
  }

  dispose(): void {
    for (const v of this.buffers.values()) v.dispose();
    this.buffers.clear();
  }
}
