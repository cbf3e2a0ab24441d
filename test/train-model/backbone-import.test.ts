/**
 * VGG16 weight import on tiny VGG16-shaped files made here (1/16 of the widths, the real structure:
 * 13 3x3 convs, fc1 from 7x7 maps, fc2, fc3): two ONNX layouts written with onnx-proto and a
 * TensorFlow.js layers model saved by tfjs-layers. Expected values come from index formulas on the
 * PyTorch-layout source arrays, written out below independently of the importer.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import onnxProto from 'onnx-proto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { WeightMap } from '../../core/checkpoint.js';
import { SsdError } from '../../core/errors.js';
import { VOC_CLASSES, withBackground } from '../../core/labels.js';
import { specByName, ssd300, ssd300Extras, vgg16AtrousLayers, type SsdSpec } from '../../core/specs.js';
import { importBackboneWeights, TORCHVISION_INPUT, type InputNormalization } from '../../train/backbone-import.js';
import { createSsdModel } from '../../train/model.js';
import { randomArray } from './reference.js';
import { tempDir } from '../helpers/temp-dir.js';

const { onnx } = onnxProto;
const DIV = 16;
const CONV_OUT = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512].map((c) => c / DIV);
const FC = 4096 / DIV; // 256; the spec's fc6/fc7 have 1024 / 16 = 64: every 4th is kept
const C5 = 512 / DIV;

/** VGG16 at 1/16 width in PyTorch layouts: conv OIHW, fc [out, in] with CHW-flattened fc1 inputs. */
interface TorchVgg { convW: Float32Array[]; convB: Float32Array[]; fcW: Float32Array[]; fcB: Float32Array[]; fcShapes: Array<[number, number]> }

function makeTorchVgg(): TorchVgg {
  const v: TorchVgg = { convW: [], convB: [], fcW: [], fcB: [], fcShapes: [[FC, C5 * 49], [FC, FC], [10, FC]] };
  let cin = 3;
  CONV_OUT.forEach((out, i) => {
    v.convW.push(randomArray(out * cin * 9, 100 + i));
    v.convB.push(randomArray(out, 200 + i));
    cin = out;
  });
  v.fcShapes.forEach(([o, i], k) => { v.fcW.push(randomArray(o * i, 300 + k)); v.fcB.push(randomArray(o, 400 + k)); });
  return v;
}

const tinySpec = (): SsdSpec => ({ ...ssd300(withBackground(VOC_CLASSES)), name: 'ssd300-div16', layers: [...vgg16AtrousLayers(DIV), ...ssd300Extras(DIV)] });
/** The spec's own input convention, so conv1_1 is copied unchanged in the layout tests. */
const IDENTITY: InputNormalization = { channelOrder: 'bgr', mean: [104, 117, 123], std: [1, 1, 1] };

function expectedWeights(v: TorchVgg): WeightMap {
  const w: WeightMap = new Map();
  const names = ['conv1_1', 'conv1_2', 'conv2_1', 'conv2_2', 'conv3_1', 'conv3_2', 'conv3_3', 'conv4_1', 'conv4_2', 'conv4_3', 'conv5_1', 'conv5_2', 'conv5_3'];
  let cin = 3;
  names.forEach((name, i) => {
    const out = CONV_OUT[i]!;
    const k = new Float32Array(9 * cin * out);
    // HWIO[ky][kx][ci][co] = OIHW[co][ci][ky][kx]
    for (let ky = 0; ky < 3; ky++) for (let kx = 0; kx < 3; kx++) for (let ci = 0; ci < cin; ci++) for (let co = 0; co < out; co++) {
      k[ky * 3 * cin * out + kx * cin * out + ci * out + co] = v.convW[i]![co * cin * 9 + ci * 9 + ky * 3 + kx]!;
    }
    w.set(`${name}/kernel`, { shape: [3, 3, cin, out], data: k });
    w.set(`${name}/bias`, { shape: [out], data: v.convB[i]! });
    cin = out;
  });
  const f6 = FC / 4;
  // fc6[ky][kx][c][o] = fc1[4o][c * 49 + (3 ky) * 7 + 3 kx]   (PyTorch flattens C, H, W)
  const fc6 = new Float32Array(9 * C5 * f6);
  for (let ky = 0; ky < 3; ky++) for (let kx = 0; kx < 3; kx++) for (let c = 0; c < C5; c++) for (let o = 0; o < f6; o++) {
    fc6[ky * 3 * C5 * f6 + kx * C5 * f6 + c * f6 + o] = v.fcW[0]![4 * o * C5 * 49 + c * 49 + 3 * ky * 7 + 3 * kx]!;
  }
  w.set('fc6/kernel', { shape: [3, 3, C5, f6], data: fc6 });
  w.set('fc6/bias', { shape: [f6], data: Float32Array.from({ length: f6 }, (_, o) => v.fcB[0]![4 * o]!) });
  // fc7[0][0][i][o] = fc2[4o][4i]
  const fc7 = new Float32Array(f6 * f6);
  for (let i = 0; i < f6; i++) for (let o = 0; o < f6; o++) fc7[i * f6 + o] = v.fcW[1]![4 * o * FC + 4 * i]!;
  w.set('fc7/kernel', { shape: [1, 1, f6, f6], data: fc7 });
  w.set('fc7/bias', { shape: [f6], data: Float32Array.from({ length: f6 }, (_, o) => v.fcB[1]![4 * o]!) });
  return w;
}

type Init = ReturnType<typeof onnx.TensorProto.create>;
function initializer(name: string, dims: number[], data: Float32Array, raw: boolean): Init {
  return onnx.TensorProto.create(raw
    ? { name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)) }
    : { name, dims, dataType: onnx.TensorProto.DataType.FLOAT, floatData: Array.from(data) });
}

function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c]!;
  return out;
}

/**
 * 'torchvision': features.N.weight, Conv/Relu/MaxPool, Flatten, Gemm(transB=1), raw_data.
 * 'zoo': vgg0_convN_weight, MatMul with [in, out] weights + Add, float_data; `convs` can drop layers.
 */
function writeOnnx(path: string, v: TorchVgg, layout: 'torchvision' | 'zoo', convs = 13): void {
  const nodes: Array<ReturnType<typeof onnx.NodeProto.create>> = [];
  const inits: Init[] = [];
  const raw = layout === 'torchvision';
  let x = 'input';
  let cin = 3;
  let feat = 0;
  const node = (opType: string, input: string[], attribute: Array<ReturnType<typeof onnx.AttributeProto.create>> = []) => {
    const out = `t${nodes.length}`;
    nodes.push(onnx.NodeProto.create({ opType, input, output: [out], name: `${opType}_${nodes.length}`, attribute }));
    return out;
  };
  const ints = (name: string, v: number[]) => onnx.AttributeProto.create({ name, ints: v, type: onnx.AttributeProto.AttributeType.INTS });
  const int = (name: string, i: number) => onnx.AttributeProto.create({ name, i, type: onnx.AttributeProto.AttributeType.INT });
  for (let i = 0; i < convs; i++) {
    const out = CONV_OUT[i]!;
    const [wn, bn] = layout === 'torchvision' ? [`features.${feat}.weight`, `features.${feat}.bias`] : [`vgg0_conv${i}_weight`, `vgg0_conv${i}_bias`];
    inits.push(initializer(wn, [out, cin, 3, 3], v.convW[i]!, raw), initializer(bn, [out], v.convB[i]!, raw));
    x = node('Relu', [node('Conv', [x, wn, bn], [ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1])])]);
    feat += 2;
    if ([1, 3, 6, 9, 12].includes(i)) { x = node('MaxPool', [x], [ints('kernel_shape', [2, 2]), ints('strides', [2, 2])]); feat++; }
    cin = out;
  }
  x = node('Flatten', [x], [int('axis', 1)]);
  v.fcShapes.forEach(([o, i], k) => {
    const [wn, bn] = layout === 'torchvision' ? [`classifier.${3 * k}.weight`, `classifier.${3 * k}.bias`] : [`vgg0_dense${k}_weight`, `vgg0_dense${k}_bias`];
    if (layout === 'torchvision') {
      inits.push(initializer(wn, [o, i], v.fcW[k]!, raw), initializer(bn, [o], v.fcB[k]!, raw));
      x = node('Gemm', [x, wn, bn], [int('transB', 1)]);
    } else {
      inits.push(initializer(wn, [i, o], transpose(v.fcW[k]!, o, i), raw), initializer(bn, [o], v.fcB[k]!, raw));
      x = node('Add', [node('MatMul', [x, wn]), bn]);
    }
    if (k < 2) x = node('Relu', [x]);
  });
  const model = onnx.ModelProto.create({ irVersion: 7, opsetImport: [{ domain: '', version: 13 }], graph: onnx.GraphProto.create({ name: 'vgg16', node: nodes, initializer: inits }) });
  writeFileSync(path, onnx.ModelProto.encode(model).finish());
}

/** Keras-style VGG16 (block1_conv1 .. block5_conv3, fc1, fc2, predictions) saved in the tfjs file format. */
async function writeTfjs(dir: string, v: TorchVgg): Promise<void> {
  const model = tf.sequential();
  let cin = 3;
  const blocks = [2, 2, 3, 3, 3];
  let i = 0;
  blocks.forEach((n, b) => {
    for (let j = 1; j <= n; j++, i++) {
      model.add(tf.layers.conv2d({ name: `block${b + 1}_conv${j}`, filters: CONV_OUT[i]!, kernelSize: 3, padding: 'same', activation: 'relu', ...(i === 0 ? { inputShape: [224, 224, 3] } : {}) }));
    }
    model.add(tf.layers.maxPooling2d({ name: `block${b + 1}_pool`, poolSize: 2 }));
  });
  model.add(tf.layers.flatten({ name: 'flatten' }));
  ['fc1', 'fc2', 'predictions'].forEach((name, k) => model.add(tf.layers.dense({ name, units: v.fcShapes[k]![0], activation: k < 2 ? 'relu' : 'softmax' })));
  i = 0;
  for (const layer of model.layers) {
    if (layer.name.includes('_conv')) {
      const out = CONV_OUT[i]!;
      const hwio = new Float32Array(9 * cin * out);
      for (let co = 0; co < out; co++) for (let ci = 0; ci < cin; ci++) for (let k = 0; k < 9; k++) hwio[(k * cin + ci) * out + co] = v.convW[i]![(co * cin + ci) * 9 + k]!;
      layer.setWeights([tf.tensor4d(hwio, [3, 3, cin, out]), tf.tensor1d(v.convB[i]!)]);
      cin = out;
      i++;
    } else if (layer.name === 'fc1') {
      // Keras flattens H, W, C: kernel row (y * 7 + x) * C + c is PyTorch input c * 49 + y * 7 + x.
      const kernel = new Float32Array(C5 * 49 * FC);
      for (let c = 0; c < C5; c++) for (let p = 0; p < 49; p++) for (let o = 0; o < FC; o++) kernel[(p * C5 + c) * FC + o] = v.fcW[0]![o * C5 * 49 + c * 49 + p]!;
      layer.setWeights([tf.tensor2d(kernel, [C5 * 49, FC]), tf.tensor1d(v.fcB[0]!)]);
    } else if (layer.name === 'fc2' || layer.name === 'predictions') {
      const k = layer.name === 'fc2' ? 1 : 2;
      const [o, inDim] = v.fcShapes[k]!;
      layer.setWeights([tf.tensor2d(transpose(v.fcW[k]!, o, inDim), [inDim, o]), tf.tensor1d(v.fcB[k]!)]);
    }
  }
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    const data = artifacts.weightData!;
    const bytes = Array.isArray(data) ? Buffer.concat(data.map((b) => Buffer.from(b))) : Buffer.from(data);
    writeFileSync(join(dir, 'group1-shard1of1.bin'), bytes);
    writeFileSync(join(dir, 'model.json'), JSON.stringify({ format: 'layers-model', modelTopology: artifacts.modelTopology, weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: artifacts.weightSpecs }] }));
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  model.dispose();
}

function expectSameWeights(actual: WeightMap, expected: WeightMap, what: string): void {
  expect([...actual.keys()].sort(), what).toEqual([...expected.keys()].sort());
  for (const [name, t] of expected) {
    const a = actual.get(name)!;
    expect(a.shape, `${what} ${name}`).toEqual(t.shape);
    let worst = 0;
    t.data.forEach((v, i) => { worst = Math.max(worst, Math.abs(v - a.data[i]!)); });
    expect(worst, `${what} ${name}`).toBeLessThan(1e-6);
  }
}

let dir = '';
const vgg = makeTorchVgg();
beforeAll(async () => {
  await tf.setBackend('cpu');
  dir = tempDir('ssd-backbone-');
  writeOnnx(join(dir, 'torchvision.onnx'), vgg, 'torchvision');
  writeOnnx(join(dir, 'zoo.onnx'), vgg, 'zoo');
  writeOnnx(join(dir, 'vgg-12-convs.onnx'), vgg, 'torchvision', 12);
  await writeTfjs(dir, vgg);
});

describe('importBackboneWeights', () => {
  const spec = tinySpec();
  const expected = expectedWeights(vgg);

  it('ONNX, torchvision layout (Gemm transB=1, raw data): convs to HWIO, fc6/fc7 decimated', async () => {
    const r = await importBackboneWeights(join(dir, 'torchvision.onnx'), spec, { sourceInput: IDENTITY });
    expectSameWeights(r.weights, expected, 'torchvision.onnx');
    expect(r.source).toContain('features.0.weight');
    expect(r.source).toContain('classifier.0.weight');
    expect(r.notes.join(' ')).toMatch(/dilation 6/);
    // The imported map is a valid partial initialisation of the model.
    const m = createSsdModel(spec, { weights: r.weights, seed: 1 });
    expect(Array.from(m.variables.get('fc7/bias')!.dataSync())).toEqual(Array.from(expected.get('fc7/bias')!.data));
    m.dispose();
  });

  it('ONNX, model-zoo naming with MatMul [in, out] + Add and float_data: same weights (found by structure)', async () => {
    const r = await importBackboneWeights(join(dir, 'zoo.onnx'), spec, { sourceInput: IDENTITY });
    expectSameWeights(r.weights, expected, 'zoo.onnx');
    expect(r.source).toContain('vgg0_dense0_weight');
  });

  it('TensorFlow.js layers model (Keras names, HWC flatten): same weights, from the file or its directory', async () => {
    const r = await importBackboneWeights(join(dir, 'model.json'), spec, { sourceInput: IDENTITY });
    expectSameWeights(r.weights, expected, 'model.json');
    expect(r.source).toContain('block1_conv1');
    expectSameWeights((await importBackboneWeights(dir, spec, { sourceInput: IDENTITY })).weights, expected, 'dir');
  });

  it('adapts conv1_1 from torchvision RGB mean/std input to the spec BGR mean-subtracted input (same response)', async () => {
    const r = await importBackboneWeights(join(dir, 'torchvision.onnx'), spec);
    expect(r.notes.join(' ')).toMatch(/RGB/);
    const k = r.weights.get('conv1_1/kernel')!.data;
    const b = r.weights.get('conv1_1/bias')!.data;
    const patchRGB = Array.from(randomArray(27, 77), (v) => (v + 1) * 127.5); // 3x3 pixels, 0..255, [y][x][rgb]
    const out = CONV_OUT[0]!;
    for (let o = 0; o < out; o++) {
      let torch = vgg.convB[0]![o]!;
      let ours = b[o]!;
      for (let p = 0; p < 9; p++) for (let c = 0; c < 3; c++) {
        const pixel = patchRGB[p * 3 + c]!;
        torch += vgg.convW[0]![(o * 3 + c) * 9 + p]! * (pixel - TORCHVISION_INPUT.mean[c]!) / TORCHVISION_INPUT.std[c]!;
        // Spec input: BGR order (channel 2 - c), minus the spec mean of that channel.
        ours += k[(p * 3 + (2 - c)) * out + o]! * (pixel - spec.input.mean[2 - c]!);
      }
      expect(ours).toBeCloseTo(torch, 4);
    }
  });

  it('errors name the file and the cause', async () => {
    await expect(importBackboneWeights(join(dir, 'missing.onnx'), spec)).rejects.toThrow(/missing\.onnx: no such file/);
    await expect(importBackboneWeights(join(dir, 'vgg-12-convs.onnx'), spec)).rejects.toThrow(/found 12 3x3 convolutions .*VGG16 has 13/);
    await expect(importBackboneWeights(join(dir, 'torchvision.onnx'), specByName('ssd-tiny'))).rejects.toThrow(SsdError);
    await expect(importBackboneWeights(join(dir, 'torchvision.onnx'), specByName('ssd300'))).rejects.toThrow(/conv1_1 \[3,3,3,64\]/);
    writeFileSync(join(dir, 'garbage.onnx'), Buffer.from([0xff, 0xff, 0xff, 0x0f, 0x01]));
    await expect(importBackboneWeights(join(dir, 'garbage.onnx'), spec)).rejects.toThrow(SsdError);
    rmSync(join(dir, 'group1-shard1of1.bin'));
    await expect(importBackboneWeights(join(dir, 'model.json'), spec)).rejects.toThrow(/shard group1-shard1of1\.bin is missing/);
  });
});
