/**
 * ImageNet VGG16 weights for the SSD base: conv1_1..conv5_3 copied, fc6/fc7 decimated into the atrous
 * 3x3x512x1024 and 1x1x1024x1024 convs as in the SSD paper (and Caffe SSD's "VGG_ILSVRC_16_layers_fc_reduced").
 *
 * Sources:
 *  - ONNX (torchvision export: `features.N.weight` OIHW, `classifier.0.weight` [4096, 25088] Gemm; ONNX
 *    model zoo vgg16: `vgg0_conv0_weight`, Gemm/MatMul). Found by structure, not names: the 13 3x3 convs
 *    in graph order, then the first two fully connected layers (Gemm, or MatMul + Add).
 *  - TensorFlow.js layers model (Keras VGG16 through tensorflowjs_converter): model.json + shards,
 *    kernels already HWIO, dense kernels [in, out], Flatten in HWC order.
 *
 * Decimation (why every 4th channel and every 3rd tap, with dilation 6): fc6 is a 7x7 conv over pool5's
 * 512 maps at stride 32. SSD keeps 1 of 4 output channels (4096 -> 1024) and taps 0, 3, 6 in each
 * direction (7x7 -> 3x3), i.e. taps 3 cells = 96 pixels apart. pool5 becomes 3x3/s1, so fc6 now runs at
 * stride 16, where 96 pixels are 6 cells: dilation 6 keeps the taps where they were. fc7 keeps every
 * 4th output and the inputs that match the kept fc6 channels.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import onnxProto from 'onnx-proto';
import type { Tensor, WeightMap } from '../core/checkpoint.js';
import { SsdError, oneLine } from '../core/errors.js';
import { paramSpecs, type InputSpec, type SsdSpec } from '../core/specs.js';

const { onnx } = onnxProto;

export const VGG16_CONVS = ['conv1_1', 'conv1_2', 'conv2_1', 'conv2_2', 'conv3_1', 'conv3_2', 'conv3_3', 'conv4_1', 'conv4_2', 'conv4_3', 'conv5_1', 'conv5_2', 'conv5_3'] as const;

/** Input convention a set of VGG weights was trained with: pixel p (0..255) enters as (p - mean) / std. */
export interface InputNormalization {
  channelOrder: 'rgb' | 'bgr';
  mean: [number, number, number];
  std: [number, number, number];
}

/** torchvision and the ONNX model zoo (MXNet gluon): RGB, x / 255 normalised by ImageNet mean/std. */
export const TORCHVISION_INPUT: InputNormalization = { channelOrder: 'rgb', mean: [0.485 * 255, 0.456 * 255, 0.406 * 255], std: [0.229 * 255, 0.224 * 255, 0.225 * 255] };
/** Keras VGG16 ('caffe' preprocessing): BGR, mean-subtracted, not scaled. */
export const KERAS_CAFFE_INPUT: InputNormalization = { channelOrder: 'bgr', mean: [103.939, 116.779, 123.68], std: [1, 1, 1] };

export interface ImportOptions {
  /** The convention the file's weights expect (default: TORCHVISION_INPUT for ONNX, KERAS_CAFFE_INPUT for tfjs). */
  sourceInput?: InputNormalization;
}

export interface BackboneImport {
  /** conv1_1..conv5_3, fc6, fc7 kernels and biases by canonical name (a partial WeightMap of the spec). */
  weights: WeightMap;
  /** One line: format, file and which tensors were used. */
  source: string;
  notes: string[];
}

interface Conv { name: string; kernelHWIO: Tensor; bias: Float32Array }
interface Dense { name: string; /** [out, in] row-major. */ weightOI: Float32Array; out: number; in: number; bias: Float32Array }
/** The format-neutral VGG16: 13 convs and fc1, fc2, with the order fc1's input was flattened in. */
interface Vgg { convs: Conv[]; fc: Dense[]; flatten: 'chw' | 'hwc'; format: string; input: InputNormalization }

// ---------------------------------------------------------------- ONNX

type OnnxTensor = { dims: number[]; data: Float32Array };
type Long = { toNumber(): number };
const num = (v: number | Long | null | undefined): number => (v === null || v === undefined ? 0 : typeof v === 'number' ? v : v.toNumber());

type OnnxTensorProto = InstanceType<typeof onnx.TensorProto> | ReturnType<typeof onnx.TensorProto.create>;
type OnnxAttr = NonNullable<ReturnType<typeof onnx.NodeProto.create>['attribute']>[number];
/** A graph node with the optional protobuf fields made definite. */
interface ONode { name: string; opType: string; input: string[]; output: string[]; attrs: Map<string, OnnxAttr> }

function onnxTensorData(t: OnnxTensorProto, where: string): OnnxTensor {
  const dims = (t.dims ?? []).map(num);
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL || (t.externalData && t.externalData.length > 0)) {
    throw new SsdError(`${where}: tensor ${t.name} is stored in an external data file; re-save the model with all weights inside the .onnx`);
  }
  if (t.dataType !== onnx.TensorProto.DataType.FLOAT) throw new SsdError(`${where}: tensor ${t.name} has ONNX data type ${t.dataType}, expected FLOAT (1)`);
  const n = dims.reduce((a, b) => a * b, 1);
  let data: Float32Array;
  if (t.rawData && t.rawData.length > 0) {
    if (t.rawData.length !== n * 4) throw new SsdError(`${where}: tensor ${t.name} has ${t.rawData.length} bytes, dims [${dims}] need ${n * 4}`);
    data = new Float32Array(n);
    new Uint8Array(data.buffer).set(t.rawData);
  } else {
    data = Float32Array.from(t.floatData ?? []);
    if (data.length !== n) throw new SsdError(`${where}: tensor ${t.name} has ${data.length} values, dims [${dims}] need ${n}`);
  }
  return { dims, data };
}

const attrInt = (node: ONode, name: string, dflt: number): number => { const a = node.attrs.get(name); return a ? num(a.i) : dflt; };
const attrFloat = (node: ONode, name: string, dflt: number): number => { const a = node.attrs.get(name); return a ? (a.f ?? dflt) : dflt; };

function oihwToHwio(t: OnnxTensor): Tensor {
  const [o, i, kh, kw] = t.dims as [number, number, number, number];
  const out = new Float32Array(t.data.length);
  for (let a = 0; a < o; a++) for (let b = 0; b < i; b++) for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) {
    out[((y * kw + x) * i + b) * o + a] = t.data[((a * i + b) * kh + y) * kw + x]!;
  }
  return { shape: [kh, kw, i, o], data: out };
}

function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c]!;
  return out;
}

function readOnnxVgg(path: string, bytes: Uint8Array, input: InputNormalization): Vgg {
  const where = `backbone ${path}`;
  let model: InstanceType<typeof onnx.ModelProto>;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new SsdError(`${where}: not a readable ONNX model (${oneLine(err)})`, { cause: err });
  }
  const graph = model.graph;
  if (!graph || !graph.node || graph.node.length === 0) throw new SsdError(`${where}: ONNX model has no graph`);
  const nodes: ONode[] = graph.node.map((n) => ({
    name: n.name ?? '', opType: n.opType ?? '', input: n.input ?? [], output: n.output ?? [],
    attrs: new Map((n.attribute ?? []).map((a) => [a.name ?? '', a])),
  }));
  const consts = new Map<string, OnnxTensorProto>();
  for (const t of graph.initializer ?? []) consts.set(t.name ?? '', t as OnnxTensorProto);
  for (const node of nodes) {
    const value = node.opType === 'Constant' ? node.attrs.get('value')?.t : undefined;
    if (value && node.output[0]) consts.set(node.output[0], value as OnnxTensorProto);
  }
  const constant = (name: string | undefined): OnnxTensor | undefined => {
    const t = name ? consts.get(name) : undefined;
    return t ? onnxTensorData(t, where) : undefined;
  };
  const consumers = (output: string | undefined) => nodes.filter((n) => output !== undefined && n.input.includes(output));

  const convs: Conv[] = [];
  const fc: Dense[] = [];
  let flatten: 'chw' | 'hwc' = 'chw';
  for (const node of nodes) {
    if (node.opType === 'Conv') {
      const w = constant(node.input[1]);
      if (!w || w.dims.length !== 4) throw new SsdError(`${where}: Conv ${node.name || node.output[0]} has no constant 4-D weight`);
      if (w.dims[2] !== 3 || w.dims[3] !== 3) continue;
      if (fc.length) throw new SsdError(`${where}: a 3x3 Conv follows a fully connected layer; not a VGG16`);
      const kernelHWIO = oihwToHwio(w);
      const out = w.dims[0]!;
      let bias = constant(node.input[2])?.data ?? new Float32Array(out);
      // vgg16_bn: fold a following BatchNormalization into the conv.
      const bn = consumers(node.output[0]).find((n) => n.opType === 'BatchNormalization');
      if (bn) {
        const [gamma, beta, mean, variance] = [1, 2, 3, 4].map((i) => constant(bn.input[i])?.data);
        if (!gamma || !beta || !mean || !variance) throw new SsdError(`${where}: BatchNormalization ${bn.name} has non-constant parameters`);
        const eps = attrFloat(bn, 'epsilon', 1e-5);
        const factor = gamma.map((g, o) => g / Math.sqrt(variance[o]! + eps));
        kernelHWIO.data.forEach((v, idx) => { kernelHWIO.data[idx] = v * factor[idx % out]!; });
        bias = bias.map((b, o) => (b - mean[o]!) * factor[o]! + beta[o]!);
      }
      convs.push({ name: node.input[1]!, kernelHWIO, bias });
    } else if (convs.length && node.opType === 'Transpose' && fc.length === 0) {
      const perm = node.attrs.get('perm')?.ints?.map(num);
      // A Keras model through tf2onnx flattens NHWC: a [0, 2, 3, 1] transpose precedes the Flatten.
      if (perm && perm.join() === '0,2,3,1') flatten = 'hwc';
    } else if (node.opType === 'Gemm' || node.opType === 'MatMul') {
      if (convs.length === 0 || fc.length >= 2) continue;
      const w = constant(node.input[1]);
      if (!w || w.dims.length !== 2) continue;
      let [rows, cols] = w.dims as [number, number];
      const transB = node.opType === 'Gemm' ? attrInt(node, 'transB', 0) : 0;
      // Canonical [out, in]: Gemm with transB=1 already is; otherwise B is [in, out].
      let weightOI = transB ? w.data.slice() : transpose2d(w.data, rows, cols);
      if (!transB) [rows, cols] = [cols, rows];
      let bias: Float32Array | undefined;
      if (node.opType === 'Gemm') {
        const alpha = attrFloat(node, 'alpha', 1);
        const beta = attrFloat(node, 'beta', 1);
        if (alpha !== 1) weightOI = weightOI.map((v) => v * alpha);
        bias = constant(node.input[2])?.data.map((v) => v * beta);
      } else {
        const add = consumers(node.output[0]).find((n) => n.opType === 'Add');
        bias = add ? add.input.map((i) => constant(i)).find((t) => t !== undefined)?.data : undefined;
      }
      fc.push({ name: node.input[1]!, weightOI, out: rows, in: cols, bias: bias ?? new Float32Array(rows) });
    }
  }
  return { convs, fc, flatten, format: 'ONNX', input };
}

// ---------------------------------------------------------------- TensorFlow.js layers model

interface TfjsModelJson {
  format?: string;
  modelTopology?: unknown;
  weightsManifest?: Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }>;
}

function readTfjsVgg(path: string, input: InputNormalization): Vgg {
  const where = `backbone ${path}`;
  let json: TfjsModelJson;
  try {
    json = JSON.parse(readFileSync(path, 'utf8')) as TfjsModelJson;
  } catch (err) {
    throw new SsdError(`${where}: not a TensorFlow.js model.json (${oneLine(err)})`, { cause: err });
  }
  if (!Array.isArray(json.weightsManifest)) throw new SsdError(`${where}: model.json has no weightsManifest (is it a TensorFlow.js layers model?)`);
  const dir = dirname(path);
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Buffer[] = [];
  for (const group of json.weightsManifest) {
    for (const p of group.paths) {
      const shard = join(dir, p);
      if (!existsSync(shard)) throw new SsdError(`${where}: weight shard ${p} is missing (expected at ${shard})`);
      buffers.push(readFileSync(shard));
    }
    specs.push(...group.weights);
  }
  const all = Buffer.concat(buffers);
  let named: tf.NamedTensorMap;
  try {
    named = tf.io.decodeWeights(all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength), specs);
  } catch (err) {
    throw new SsdError(`${where}: weight shards do not match the manifest (${oneLine(err)})`, { cause: err });
  }
  const read = (name: string): Float32Array => Float32Array.from(named[name]!.dataSync());
  const convs: Conv[] = [];
  const fc: Dense[] = [];
  for (const s of specs) {
    if (!/kernel(:0)?$/.test(s.name)) continue;
    const biasName = s.name.replace(/kernel(:0)?$/, 'bias$1');
    const out = s.shape[s.shape.length - 1]!;
    const bias = specs.some((x) => x.name === biasName) ? read(biasName) : new Float32Array(out);
    if (s.shape.length === 4 && s.shape[0] === 3 && s.shape[1] === 3) {
      if (fc.length) throw new SsdError(`${where}: a 3x3 conv follows a dense layer; not a VGG16`);
      convs.push({ name: s.name, kernelHWIO: { shape: s.shape.slice(), data: read(s.name) }, bias });
    } else if (s.shape.length === 2 && convs.length && fc.length < 2) {
      const [inDim, outDim] = s.shape as [number, number];
      fc.push({ name: s.name, weightOI: transpose2d(read(s.name), inDim, outDim), out: outDim, in: inDim, bias });
    }
  }
  tf.dispose(Object.values(named));
  const channelsFirst = JSON.stringify(json.modelTopology ?? {}).includes('"data_format":"channels_first"');
  return { convs, fc, flatten: channelsFirst ? 'chw' : 'hwc', format: 'TensorFlow.js layers model', input };
}

// ---------------------------------------------------------------- conversion

/**
 * Adapts conv1_1 from the convention the weights were trained with to the spec's input
 * (channel order, mean, no scaling): w' = w / std with channels reordered, and the mean difference
 * folded into the bias (exact away from the zero-padded border, where it is off by that small constant).
 */
function adaptFirstConv(conv: Conv, from: InputNormalization, to: InputSpec): Conv {
  const [kh, kw, cin, cout] = conv.kernelHWIO.shape as [number, number, number, number];
  const src = conv.kernelHWIO.data;
  const out = new Float32Array(src.length);
  const bias = Float64Array.from(conv.bias);
  for (let c = 0; c < cin; c++) {
    // Source channel c is the same colour as spec channel tc.
    const tc = from.channelOrder === to.channelOrder ? c : 2 - c;
    const shift = (to.mean[tc]! - from.mean[c]!) / from.std[c]!;
    for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) for (let o = 0; o < cout; o++) {
      const w = src[((y * kw + x) * cin + c) * cout + o]!;
      out[((y * kw + x) * cin + tc) * cout + o] = w / from.std[c]!;
      bias[o] = bias[o]! + w * shift;
    }
  }
  return { name: conv.name, kernelHWIO: { shape: conv.kernelHWIO.shape, data: out }, bias: Float32Array.from(bias) };
}

function toSpecWeights(vgg: Vgg, spec: SsdSpec, where: string): { weights: WeightMap; notes: string[] } {
  if (vgg.convs.length !== 13) throw new SsdError(`${where}: found ${vgg.convs.length} 3x3 convolutions before the fully connected layers; VGG16 has 13`);
  if (vgg.fc.length < 2) throw new SsdError(`${where}: found ${vgg.fc.length} fully connected layers after the convolutions; VGG16 has 3 (fc6, fc7, fc8)`);
  const shapes = new Map(paramSpecs(spec).map((p) => [p.name, p.shape]));
  const want = (name: string): number[] => {
    const s = shapes.get(name);
    if (!s) throw new SsdError(`${where}: spec ${spec.name} has no ${name}; VGG16 weights fit the VGG16-atrous base (ssd300, ssd512)`);
    return s;
  };
  const weights: WeightMap = new Map();
  const notes: string[] = [];
  VGG16_CONVS.forEach((name, i) => {
    const conv = i === 0 ? adaptFirstConv(vgg.convs[0]!, vgg.input, spec.input) : vgg.convs[i]!;
    const shape = want(`${name}/kernel`);
    if (shape.join('x') !== conv.kernelHWIO.shape.join('x')) throw new SsdError(`${where}: conv ${i + 1} (${vgg.convs[i]!.name}) is [${conv.kernelHWIO.shape}] (HWIO), spec ${spec.name} wants ${name} [${shape}]`);
    weights.set(`${name}/kernel`, conv.kernelHWIO);
    weights.set(`${name}/bias`, { shape: [conv.bias.length], data: conv.bias });
  });
  notes.push(`conv1_1 adapted from ${vgg.input.channelOrder.toUpperCase()} input normalised by mean [${vgg.input.mean.map((v) => +v.toFixed(3))}] / std [${vgg.input.std.map((v) => +v.toFixed(3))}] to the spec's ${spec.input.channelOrder.toUpperCase()} input minus [${spec.input.mean}]`);

  const [fc1, fc2] = vgg.fc as [Dense, Dense];
  const c5 = vgg.convs[12]!.kernelHWIO.shape[3]!;
  const taps = 7;
  if (fc1.in !== c5 * taps * taps) throw new SsdError(`${where}: first fully connected layer (${fc1.name}) takes ${fc1.in} inputs; VGG16's takes ${c5} x 7 x 7 = ${c5 * 49}`);
  const fc6Shape = want('fc6/kernel');
  const fc7Shape = want('fc7/kernel');
  if (fc6Shape[0] !== 3 || fc6Shape[1] !== 3 || fc6Shape[2] !== c5) throw new SsdError(`${where}: spec fc6 is [${fc6Shape}], expected [3,3,${c5},n]`);
  const f6 = fc6Shape[3]!;
  const f7 = fc7Shape[3]!;
  if (fc7Shape[0] !== 1 || fc7Shape[2] !== f6) throw new SsdError(`${where}: spec fc7 is [${fc7Shape}], expected [1,1,${f6},n]`);
  if (fc1.out % f6 !== 0) throw new SsdError(`${where}: fc6 has ${fc1.out} outputs, not a multiple of the spec's ${f6}`);
  if (fc2.in !== fc1.out || fc2.out % f7 !== 0) throw new SsdError(`${where}: fc7 is [${fc2.out}x${fc2.in}], cannot decimate to ${f7}x${f6}`);
  const r6 = fc1.out / f6;
  const r7 = fc2.out / f7;
  const inputIndex = vgg.flatten === 'chw' ? (c: number, y: number, x: number) => (c * taps + y) * taps + x : (c: number, y: number, x: number) => (y * taps + x) * c5 + c;
  const fc6 = new Float32Array(9 * c5 * f6);
  for (let ky = 0; ky < 3; ky++) for (let kx = 0; kx < 3; kx++) for (let c = 0; c < c5; c++) for (let o = 0; o < f6; o++) {
    fc6[((ky * 3 + kx) * c5 + c) * f6 + o] = fc1.weightOI[o * r6 * fc1.in + inputIndex(c, 3 * ky, 3 * kx)]!;
  }
  weights.set('fc6/kernel', { shape: [3, 3, c5, f6], data: fc6 });
  weights.set('fc6/bias', { shape: [f6], data: Float32Array.from({ length: f6 }, (_, o) => fc1.bias[o * r6]!) });
  const fc7 = new Float32Array(f6 * f7);
  for (let i = 0; i < f6; i++) for (let o = 0; o < f7; o++) fc7[i * f7 + o] = fc2.weightOI[o * r7 * fc2.in + i * r6]!;
  weights.set('fc7/kernel', { shape: [1, 1, f6, f7], data: fc7 });
  weights.set('fc7/bias', { shape: [f7], data: Float32Array.from({ length: f7 }, (_, o) => fc2.bias[o * r7]!) });
  notes.push(`fc6 ${fc1.out}x${fc1.in} (${vgg.flatten.toUpperCase()} flatten) -> 3x3x${c5}x${f6}: every ${r6}th output, taps 0/3/6 of the 7x7 (dilation 6 at stride 16 keeps them 96 px apart)`);
  notes.push(`fc7 ${fc2.out}x${fc2.in} -> 1x1x${f6}x${f7}: every ${r7}th output, the inputs of the kept fc6 channels`);
  notes.push('fc8 (the ImageNet classifier) is not used; extras, L2Norm scale and heads keep their initialisation');
  return { weights, notes };
}

/**
 * Reads ImageNet VGG16 weights from an ONNX file or a TensorFlow.js layers model (model.json or its
 * directory) and returns them under the spec's canonical names, ready for createSsdModel({ weights }).
 */
export async function importBackboneWeights(path: string, spec: SsdSpec, options: ImportOptions = {}): Promise<BackboneImport> {
  if (!existsSync(path)) throw new SsdError(`--backbone-weights ${path}: no such file or directory`);
  let file = path;
  if (statSync(path).isDirectory()) {
    file = join(path, 'model.json');
    if (!existsSync(file)) throw new SsdError(`--backbone-weights ${path}: directory has no model.json (a TensorFlow.js layers model)`);
  }
  const bytes = readFileSync(file);
  const where = `--backbone-weights ${file}`;
  const firstChar = bytes.subarray(0, 64).toString('utf8').trimStart()[0];
  const vgg = firstChar === '{'
    ? readTfjsVgg(file, options.sourceInput ?? KERAS_CAFFE_INPUT)
    : readOnnxVgg(file, bytes, options.sourceInput ?? TORCHVISION_INPUT);
  const { weights, notes } = toSpecWeights(vgg, spec, where);
  const source = `${vgg.format} ${file}: convs ${vgg.convs[0]!.name} .. ${vgg.convs[12]!.name}, fc6 from ${vgg.fc[0]!.name}, fc7 from ${vgg.fc[1]!.name}`;
  return { weights, source, notes };
}
