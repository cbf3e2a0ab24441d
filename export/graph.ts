/**
 * The SSD network as ONNX nodes, from the spec's layer plan and a WeightMap in canonical names and
 * layouts: the trunk (VGG16 atrous base and extras; batch norm folded into the convs), L2Norm on the
 * sources that ask for it, and the prediction heads, flattened NHWC so that box index =
 * ((y * W + x) * k + a) within a map, maps concatenated in source order (SSD-SPEC "Prediction heads").
 */
import type { WeightMap } from '../core/checkpoint.js';
import { SsdError } from '../core/errors.js';
import { boxesPerLocation, layerShapes, numClasses, outputSize, paramSpecs, type ConvLayer, type MaxPoolLayer, type SsdSpec } from '../core/specs.js';
import { foldBatchNorm, hwioToOihw } from './fold-bn.js';
import { toFloat16Bits } from './fp16.js';
import { emitL2Norm } from './l2norm.js';
import type { OnnxGraph } from './onnx-builder.js';

export interface TrunkOptions {
  dtype: 'float' | 'float16';
  /** Default true. False keeps BatchNormalization nodes (only to test that folding changes nothing). */
  foldBatchNorm?: boolean;
}

/** Raw head outputs, float32: loc [N, P, 4] and conf [N, P, C]. */
export interface Heads { loc: string; conf: string; numPriors: number }

/** Throws an SsdError naming the first weight that is missing or has the wrong shape. */
export function checkWeights(spec: SsdSpec, weights: WeightMap, where = 'weights'): void {
  for (const p of paramSpecs(spec)) {
    const t = weights.get(p.name);
    if (!t) throw new SsdError(`${where}: missing weight ${p.name} for spec ${spec.name}`);
    if (t.shape.join('x') !== p.shape.join('x')) throw new SsdError(`${where}: weight ${p.name} has shape [${t.shape}], spec ${spec.name} wants [${p.shape}]`);
    if (t.data.length !== p.shape.reduce((a, b) => a * b, 1)) throw new SsdError(`${where}: weight ${p.name} holds ${t.data.length} values for shape [${p.shape}]`);
  }
}

function tensor(weights: WeightMap, name: string): Float32Array {
  const t = weights.get(name);
  if (!t) throw new SsdError(`weights: missing ${name}`);
  return t.data;
}

function emitConv(g: OnnxGraph, x: string, name: string, layer: Pick<ConvLayer, 'kernel' | 'stride' | 'pad' | 'dilation'>, kernelHWIO: Float32Array, kernelShape: number[], bias: Float32Array, dtype: 'float' | 'float16'): string {
  const [kh, kw, ci, co] = kernelShape as [number, number, number, number];
  const w = hwioToOihw(kernelHWIO, kernelShape);
  return emitConvOIHW(g, x, name, layer, w, [co, ci, kh, kw], bias, dtype);
}

function emitConvOIHW(g: OnnxGraph, x: string, name: string, layer: Pick<ConvLayer, 'kernel' | 'stride' | 'pad' | 'dilation'>, wOIHW: Float32Array, dims: number[], bias: Float32Array, dtype: 'float' | 'float16'): string {
  const W = dtype === 'float' ? g.init(`${name}_W`, 'float', dims, wOIHW) : g.init(`${name}_W`, 'float16', dims, toFloat16Bits(wOIHW));
  const B = dtype === 'float' ? g.init(`${name}_B`, 'float', [bias.length], bias) : g.init(`${name}_B`, 'float16', [bias.length], toFloat16Bits(bias));
  const p = layer.pad;
  return g.op('Conv', [x, W, B], {
    kernel_shape: [layer.kernel, layer.kernel],
    strides: [layer.stride, layer.stride],
    pads: [p, p, p, p],
    dilations: [layer.dilation, layer.dilation],
  }, name);
}

/**
 * Pads and ceil_mode of a MaxPool that gives exactly core's output size (specs.ts outputSize: Caffe and
 * PyTorch ceil mode, where the last window must start inside the left-padded input). ceil_mode=1 does
 * that whenever ONNX's plain ceil formula agrees (pool3 of SSD300: 75 -> 38); where it would add a
 * window starting in the right padding, extra end padding with ceil_mode=0 gives the right size
 * instead (max pooling ignores padding either way).
 */
export function maxPoolPadding(layer: MaxPoolLayer, inSize: number): { pads: number[]; ceil_mode: number } {
  const { kernel: k, stride: st, pad: p } = layer;
  const want = outputSize(layer, inSize);
  if (!layer.ceil) return { pads: [p, p, p, p], ceil_mode: 0 };
  if (Math.ceil((inSize + 2 * p - k) / st) + 1 === want) return { pads: [p, p, p, p], ceil_mode: 1 };
  const end = Math.max(0, (want - 1) * st + k - inSize - p);
  return { pads: [p, p, end, end], ceil_mode: 0 };
}

/** Trunk + heads from `x` (NCHW, `dtype`). */
export function emitNetwork(g: OnnxGraph, spec: SsdSpec, weights: WeightMap, x: string, opts: TrunkOptions): Heads {
  const { dtype } = opts;
  const fold = opts.foldBatchNorm ?? true;
  const outputs = new Map<string, string>();
  let v = x;
  for (const s of layerShapes(spec)) {
    const layer = s.layer;
    if (layer.kind === 'maxpool') {
      v = g.op('MaxPool', [v], { kernel_shape: [layer.kernel, layer.kernel], strides: [layer.stride, layer.stride], ...maxPoolPadding(layer, s.inSize) }, layer.name);
    } else {
      const kShape = [layer.kernel, layer.kernel, s.inChannels, s.outChannels];
      const kernel = tensor(weights, `${layer.name}/kernel`);
      const bias = tensor(weights, `${layer.name}/bias`);
      if (!spec.batchNorm) {
        v = emitConv(g, v, layer.name, layer, kernel, kShape, bias, dtype);
      } else {
        const bn = {
          gamma: tensor(weights, `${layer.name}/bn_gamma`), beta: tensor(weights, `${layer.name}/bn_beta`),
          mean: tensor(weights, `${layer.name}/bn_mean`), variance: tensor(weights, `${layer.name}/bn_variance`),
          epsilon: spec.batchNormEpsilon,
        };
        if (fold) {
          const f = foldBatchNorm(hwioToOihw(kernel, kShape), bias, bn);
          v = emitConvOIHW(g, v, layer.name, layer, f.kernelOIHW, [s.outChannels, s.inChannels, layer.kernel, layer.kernel], f.bias, dtype);
        } else {
          v = emitConv(g, v, `${layer.name}_conv`, layer, kernel, kShape, bias, dtype);
          const c = (a: Float32Array, n: string) => (dtype === 'float' ? g.init(`${layer.name}_${n}`, 'float', [a.length], a) : g.init(`${layer.name}_${n}`, 'float16', [a.length], toFloat16Bits(a)));
          v = g.op('BatchNormalization', [v, c(bn.gamma, 'gamma'), c(bn.beta, 'beta'), c(bn.mean, 'mean'), c(bn.variance, 'var')], { epsilon: { float: bn.epsilon } }, `${layer.name}_bn`);
        }
      }
      if (layer.relu) v = g.op('Relu', [v], {}, `${layer.name}_relu`);
    }
    outputs.set(layer.name, v);
  }

  const C = numClasses(spec);
  const shapes = layerShapes(spec);
  const locs: string[] = [];
  const confs: string[] = [];
  let numPriors = 0;
  spec.sources.forEach((src, i) => {
    let f = outputs.get(src.layer);
    const s = shapes.find((t) => t.layer.name === src.layer);
    if (!f || !s) throw new SsdError(`spec ${spec.name}: source ${i} names layer "${src.layer}", which is not in the trunk`);
    if (src.l2NormScale !== undefined) f = emitL2Norm(g, f, tensor(weights, `${src.layer}_norm/scale`), `${src.layer}_norm`, dtype);
    const k = boxesPerLocation(spec.maps[i]!);
    const cells = s.outSize * s.outSize * k;
    numPriors += cells;
    const head = (kind: 'loc' | 'conf', width: number) => {
      const name = `${kind}${i}`;
      const y = emitConv(g, f!, name, { kernel: 3, stride: 1, pad: 1, dilation: 1 }, tensor(weights, `${name}/kernel`), [3, 3, s.outChannels, k * width], tensor(weights, `${name}/bias`), dtype);
      const nhwc = g.op('Transpose', [y], { perm: [0, 2, 3, 1] }, `${name}_nhwc`);
      return g.op('Reshape', [nhwc, g.int64s(`${name}_shape`, [-1, cells, width])], {}, `${name}_flat`);
    };
    locs.push(head('loc', 4));
    confs.push(head('conf', C));
  });
  let loc = locs.length === 1 ? locs[0]! : g.op('Concat', locs, { axis: 1 }, 'loc_concat');
  let conf = confs.length === 1 ? confs[0]! : g.op('Concat', confs, { axis: 1 }, 'conf_concat');
  if (dtype === 'float16') {
    // Decode and NMS run in float32: box corners and softmax need the precision, and they are cheap.
    loc = g.op('Cast', [loc], { to: 1 }, 'loc_fp32');
    conf = g.op('Cast', [conf], { to: 1 }, 'conf_fp32');
  }
  return { loc, conf, numPriors };
}
