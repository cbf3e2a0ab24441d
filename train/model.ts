/**
 * The SSD network in TensorFlow.js, built from an SsdSpec (core/specs.ts): trunk layers in spec order,
 * L2Norm on sources that ask for it, a loc and a conf head per source. Variables carry the canonical
 * names and layouts of `paramSpecs` (HWIO kernels), so checkpoints, the trainer and the exporter agree.
 * Every op used here has a gradient on every backend (see layers/conv.ts for the two tfjs gaps).
 */
import * as tf from '@tensorflow/tfjs';
import type { WeightMap } from '../core/checkpoint.js';
import { SsdError } from '../core/errors.js';
import { boxesPerLocation, layerShapes, numClasses, paramSpecs, validateSpec, type ParamSpec, type SsdSpec } from '../core/specs.js';
import { batchNorm, type BatchNormParams } from './layers/batch-norm.js';
import { conv2dTrainable } from './layers/conv.js';
import { l2Normalize } from './layers/l2norm.js';
import { maxPoolCaffe } from './layers/pool.js';

/** A type alias rather than an interface, so it is a TensorContainer (tf.tidy / tf.dispose take it). */
export type SsdOutputs = {
  /** Encoded box offsets [N, P, 4], P = number of default boxes, in core/default-boxes.ts order. */
  loc: tf.Tensor3D;
  /** Class logits [N, P, C] (C includes background at 0). */
  conf: tf.Tensor3D;
};

export interface SsdModel {
  readonly spec: SsdSpec;
  /**
   * `images`: NHWC float32 of side spec.inputSize, mean-subtracted, channels in spec.input.channelOrder.
   * `training` only changes batch norm (batch statistics and moving-average updates).
   */
  forward(images: tf.Tensor4D, training: boolean): SsdOutputs;
  /** Every tensor of the model by canonical name (batch-norm statistics included, as non-trainable). */
  readonly variables: Map<string, tf.Variable>;
  trainableVariables(): tf.Variable[];
  getWeights(): WeightMap;
  /** Replaces weights by canonical name; names and shapes are checked. All are required unless `allowMissing`. */
  setWeights(weights: WeightMap, options?: { allowMissing?: boolean }): void;
  /** Number of trainable scalars (26,285,486 for SSD300 with 21 classes). */
  paramCount(): number;
  dispose(): void;
}

export interface CreateSsdModelOptions {
  /** Seeds the initialisation; the same seed gives the same weights on every backend. */
  seed?: number;
  /** Initial weights (e.g. an imported VGG16 backbone); may be partial, the rest is initialised. */
  weights?: WeightMap;
  /**
   * Trunk layers held fixed (fine-tuning with `--freeze base`): their variables are not trainable, so
   * they get no gradient and no weight decay, and their batch norm (if any) uses its moving statistics
   * in training too, which are then not updated either.
   */
  frozen?: ReadonlySet<string>;
}

/** The trunk layer that ends the VGG base: layers up to it get He init, later ones Xavier (ssd.pytorch). */
const BASE_LAST_LAYER = 'fc7';

/**
 * The VGG16 base of a spec: its trunk layers up to and including fc7 (all of them when there is no fc7),
 * as ssd.pytorch's `vgg` list; the extra layers, L2Norm and heads are not part of it.
 */
export function baseLayerNames(spec: SsdSpec): string[] {
  const lastBase = spec.layers.findIndex((l) => l.name === BASE_LAST_LAYER);
  return spec.layers.slice(0, lastBase >= 0 ? lastBase + 1 : spec.layers.length).map((l) => l.name);
}
/**
 * He init assumes unit-variance inputs, but the network sees mean-subtracted 0..255 pixels (std about
 * 0.229 * 255 = 58 on ImageNet). The first conv's init is divided by this so that training from scratch
 * starts with unit-scale activations instead of ~60x larger ones (which made the first SSD300 step's
 * loss ~5e6 and SGD diverge). Pretrained weights (backbone import) are not affected.
 */
export const INPUT_PIXEL_STD = 58;

let modelCounter = 0;

function fans(shape: number[]): { fanIn: number; fanOut: number } {
  const [kh, kw, cin, cout] = shape as [number, number, number, number];
  return { fanIn: kh * kw * cin, fanOut: kh * kw * cout };
}

function initialValue(p: ParamSpec, spec: SsdSpec, baseLayers: Set<string>, seed: number | undefined): tf.Tensor {
  const [owner, kind] = p.name.split('/') as [string, string];
  if (kind === 'kernel') {
    const { fanIn, fanOut } = fans(p.shape);
    const inputScale = owner === spec.layers[0]!.name ? 1 / INPUT_PIXEL_STD : 1;
    if (baseLayers.has(owner)) return tf.randomNormal(p.shape, 0, Math.sqrt(2 / fanIn) * inputScale, 'float32', seed);
    const limit = Math.sqrt(6 / (fanIn + fanOut));
    return tf.randomUniform(p.shape, -limit, limit, 'float32', seed);
  }
  if (kind === 'scale') {
    const src = spec.sources.find((s) => `${s.layer}_norm` === owner);
    return tf.fill(p.shape, src?.l2NormScale ?? 1);
  }
  if (kind === 'bn_gamma' || kind === 'bn_variance') return tf.ones(p.shape);
  return tf.zeros(p.shape);
}

function checkWeight(name: string, shape: number[], t: { shape: number[]; data: Float32Array }, where: string): void {
  if (t.shape.join('x') !== shape.join('x')) throw new SsdError(`${where}: weight ${name} has shape [${t.shape}], model wants [${shape}]`);
  const n = shape.reduce((a, b) => a * b, 1);
  if (t.data.length !== n) throw new SsdError(`${where}: weight ${name} holds ${t.data.length} values, shape [${shape}] needs ${n}`);
}

export function createSsdModel(specIn: SsdSpec, opts: CreateSsdModelOptions = {}): SsdModel {
  const spec = validateSpec(specIn);
  const params = paramSpecs(spec);
  const shapes = layerShapes(spec);
  const id = ++modelCounter;
  const baseLayers = new Set(baseLayerNames(spec));
  const frozen = opts.frozen ?? new Set<string>();
  for (const name of frozen) if (!spec.layers.some((l) => l.name === name)) throw new SsdError(`frozen layer ${name} is not a layer of ${spec.name}`);

  if (opts.weights) {
    const known = new Map(params.map((p) => [p.name, p.shape]));
    for (const [name, t] of opts.weights) {
      const shape = known.get(name);
      if (!shape) throw new SsdError(`initial weights: ${name} is not a weight of ${spec.name}`);
      checkWeight(name, shape, t, 'initial weights');
    }
  }

  const variables = new Map<string, tf.Variable>();
  params.forEach((p, i) => {
    const given = opts.weights?.get(p.name);
    const seed = opts.seed === undefined ? undefined : opts.seed * 7919 + i;
    const v = tf.tidy(() => {
      const init = given ? tf.tensor(given.data, p.shape, 'float32') : initialValue(p, spec, baseLayers, seed);
      // Unique tfjs names: several models (trainer, evaluator, tests) may live in one process.
      return tf.variable(init, p.trainable && !frozen.has(p.name.split('/')[0]!), `ssd${id}/${p.name}`);
    });
    variables.set(p.name, v);
  });

  const get = (name: string): tf.Variable => {
    const v = variables.get(name);
    if (!v) throw new Error(`model ${spec.name}: no variable ${name}`);
    return v;
  };
  const bnParams = new Map<string, BatchNormParams>();
  if (spec.batchNorm) {
    for (const s of shapes) {
      if (s.layer.kind !== 'conv') continue;
      const n = s.layer.name;
      bnParams.set(n, { gamma: get(`${n}/bn_gamma`), beta: get(`${n}/bn_beta`), movingMean: get(`${n}/bn_mean`), movingVariance: get(`${n}/bn_variance`) });
    }
  }
  const C = numClasses(spec);
  const sourceIndex = new Map(spec.sources.map((s, i) => [s.layer, i]));
  let disposed = false;

  function head(x: tf.Tensor4D, prefix: string, perBox: number): tf.Tensor3D {
    const y = tf.add(conv2dTrainable(x, get(`${prefix}/kernel`) as tf.Tensor4D, { stride: 1, pad: 1, dilation: 1 }), get(`${prefix}/bias`)) as tf.Tensor4D;
    const [n, h, w, ch] = y.shape;
    // NHWC flattening: box index = (y * W + x) * k + a, channel = a * perBox + j.
    return y.reshape([n, (h * w * ch) / perBox, perBox]);
  }

  function forward(images: tf.Tensor4D, training: boolean): SsdOutputs {
    if (disposed) throw new Error(`model ${spec.name} was disposed`);
    const [, h, w, c] = images.shape;
    if (images.rank !== 4 || h !== spec.inputSize || w !== spec.inputSize || c !== 3) {
      throw new SsdError(`model ${spec.name}: input must be [N, ${spec.inputSize}, ${spec.inputSize}, 3], got [${images.shape}]`);
    }
    return tf.tidy(() => {
      const locs: tf.Tensor3D[] = new Array(spec.sources.length);
      const confs: tf.Tensor3D[] = new Array(spec.sources.length);
      let x = images;
      for (const layer of spec.layers) {
        if (layer.kind === 'maxpool') {
          x = maxPoolCaffe(x, layer);
        } else {
          x = conv2dTrainable(x, get(`${layer.name}/kernel`) as tf.Tensor4D, layer);
          x = tf.add(x, get(`${layer.name}/bias`)) as tf.Tensor4D;
          const bn = bnParams.get(layer.name);
          if (bn) x = batchNorm(x, bn, spec.batchNormEpsilon, training && !frozen.has(layer.name));
          if (layer.relu) x = tf.relu(x);
        }
        const si = sourceIndex.get(layer.name);
        if (si === undefined) continue;
        const src = spec.sources[si]!;
        const feat = src.l2NormScale !== undefined ? l2Normalize(x, get(`${src.layer}_norm/scale`) as tf.Tensor1D) : x;
        const k = boxesPerLocation(spec.maps[si]!);
        locs[si] = head(feat, `loc${si}`, 4);
        confs[si] = head(feat, `conf${si}`, C);
        if (locs[si]!.shape[1] !== spec.maps[si]!.size ** 2 * k) throw new Error(`source ${si} (${src.layer}) gives ${locs[si]!.shape[1]} boxes, spec wants ${spec.maps[si]!.size ** 2 * k}`);
      }
      return { loc: tf.concat(locs, 1), conf: tf.concat(confs, 1) };
    });
  }

  function setWeights(weights: WeightMap, options: { allowMissing?: boolean } = {}): void {
    const where = `weights for ${spec.name}`;
    for (const name of weights.keys()) if (!variables.has(name)) throw new SsdError(`${where}: ${name} is not a weight of this model`);
    for (const p of params) {
      const t = weights.get(p.name);
      if (!t) {
        if (options.allowMissing) continue;
        throw new SsdError(`${where}: missing weight ${p.name}`);
      }
      checkWeight(p.name, p.shape, t, where);
    }
    for (const p of params) {
      const t = weights.get(p.name);
      if (t) tf.tidy(() => get(p.name).assign(tf.tensor(t.data, p.shape, 'float32')));
    }
  }

  return {
    spec,
    variables,
    forward,
    trainableVariables: () => [...variables.values()].filter((v) => v.trainable),
    getWeights: () => {
      const out: WeightMap = new Map();
      for (const [name, v] of variables) out.set(name, { shape: v.shape.slice(), data: new Float32Array(v.dataSync() as Float32Array) });
      return out;
    },
    setWeights,
    paramCount: () => [...variables.values()].filter((v) => v.trainable).reduce((n, v) => n + v.size, 0),
    dispose: () => {
      if (disposed) return;
      disposed = true;
      for (const v of variables.values()) v.dispose();
    },
  };
}
