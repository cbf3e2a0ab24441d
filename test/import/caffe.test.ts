// Caffe parity of `ssd import` (issue 12): a deploy.prototxt written here the way ssd_pascal.py writes
// it (layer names, PriorBox / Normalize / DetectionOutput parameters) and a .caffemodel encoded with
// protobufjs (independent of our wire reader) in both layouts Caffe writes: `layer` with `shape`, and
// legacy `layers` (V1LayerParameter) with num/channels/height/width. The weights are those of the python
// reference forward (test/import/reference.ts, ssd.pytorch's architecture = Caffe's SSD300 with BGR
// minus 104/117/123), so imported -> `ssd export-onnx --postprocess none` -> onnxruntime must give its
// raw heads (<= 1e-4 abs). The default boxes, L2Norm and postprocess come from the prototxt: a variant
// with other sizes, clip and thresholds shows they are read, not assumed. Bad files: one line each.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import protobuf from 'protobufjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../core/checkpoint.js';
import { defaultBoxes } from '../../core/default-boxes.js';
import { specByName } from '../../core/specs.js';
import { readPth } from '../../train/import/pth.js';
import { caffeSpec, readCaffemodel } from '../../train/import/caffe.js';
import { SsdError } from '../../core/errors.js';
import { ssd } from '../cli/helpers.js';
import { tempDir } from '../helpers/temp-dir.js';
import { REFERENCE_SCRIPT } from './reference.js';

const PY = '/usr/bin/python3';
const hasTorch = spawnSync(PY, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
if (!hasTorch) console.warn('test/import/caffe.test.ts: parity skipped: /usr/bin/python3 has no torch (apt-get install python3-torchvision)');

const VGG = ['conv1_1', 'conv1_2', 'conv2_1', 'conv2_2', 'conv3_1', 'conv3_2', 'conv3_3', 'conv4_1', 'conv4_2', 'conv4_3', 'conv5_1', 'conv5_2', 'conv5_3', 'fc6', 'fc7'];
const VGG_INDICES = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28, 31, 33];
const EXTRAS = ['conv6_1', 'conv6_2', 'conv7_1', 'conv7_2', 'conv8_1', 'conv8_2', 'conv9_1', 'conv9_2'];
const HEADS = ['conv4_3_norm', 'fc7', 'conv6_2', 'conv7_2', 'conv8_2', 'conv9_2'];

interface PriorParams { min: number[]; max: number[]; ratios: number[][]; steps: number[]; clip: boolean; variance: number[] }
const PASCAL: PriorParams = { min: [30, 60, 111, 162, 213, 264], max: [60, 111, 162, 213, 264, 315], ratios: [[2], [2, 3], [2, 3], [2, 3], [2], [2]], steps: [8, 16, 32, 64, 100, 300], clip: false, variance: [0.1, 0.1, 0.2, 0.2] };

/** A deploy.prototxt for VGG16 SSD300 as ssd_pascal.py writes it (the layers our reader looks at, plus ReLU/Pooling). */
function deployPrototxt(p: PriorParams, opts: { numClasses?: number; conf?: number; nms?: number; topK?: number; keep?: number } = {}): string {
  const conv = (name: string, bottom: string, out: number, k: number, pad: number, stride = 1, dilation = 1) => `layer {
  name: "${name}"
  type: "Convolution"
  bottom: "${bottom}"
  top: "${name}"
  convolution_param {
    num_output: ${out}
    pad: ${pad}
    kernel_size: ${k}${stride !== 1 ? `\n    stride: ${stride}` : ''}${dilation !== 1 ? `\n    dilation: ${dilation}` : ''}
  }
}
layer { name: "relu${name.slice(4)}" type: "ReLU" bottom: "${name}" top: "${name}" }
`;
  const pool = (name: string, bottom: string, k = 2, s = 2, pad = 0) => `layer { name: "${name}" type: "Pooling" bottom: "${bottom}" top: "${name}" pooling_param { pool: MAX kernel_size: ${k} stride: ${s}${pad ? ` pad: ${pad}` : ''} } }\n`;
  let t = `name: "VGG_VOC0712_SSD_300x300_deploy"\ninput: "data"\ninput_shape {\n  dim: 1\n  dim: 3\n  dim: 300\n  dim: 300\n}\n`;
  const widths = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512];
  let prev = 'data';
  VGG.slice(0, 13).forEach((n, i) => {
    t += conv(n, prev, widths[i]!, 3, 1);
    prev = n;
    if (['conv1_2', 'conv2_2', 'conv3_3', 'conv4_3'].includes(n)) { const pn = `pool${n[4]}`; t += pool(pn, n); prev = pn; }
  });
  t += pool('pool5', 'conv5_3', 3, 1, 1);
  t += conv('fc6', 'pool5', 1024, 3, 6, 1, 6) + conv('fc7', 'fc6', 1024, 1, 0);
  const ex: Array<[number, number, number, number]> = [[256, 1, 0, 1], [512, 3, 1, 2], [128, 1, 0, 1], [256, 3, 1, 2], [128, 1, 0, 1], [256, 3, 0, 1], [128, 1, 0, 1], [256, 3, 0, 1]];
  prev = 'fc7';
  EXTRAS.forEach((n, i) => { const [o, k, pad, s] = ex[i]!; t += conv(n, prev, o, k, pad, s); prev = n; });
  t += `layer {\n  name: "conv4_3_norm"\n  type: "Normalize"\n  bottom: "conv4_3"\n  top: "conv4_3_norm"\n  norm_param {\n    across_spatial: false\n    scale_filler {\n      type: "constant"\n      value: 20\n    }\n    channel_shared: false\n  }\n}\n`;
  const C = opts.numClasses ?? 21;
  HEADS.forEach((h, i) => {
    const k = 2 + 2 * p.ratios[i]!.length;
    t += `layer { name: "${h}_mbox_loc" type: "Convolution" bottom: "${h}" top: "${h}_mbox_loc" convolution_param { num_output: ${k * 4} pad: 1 kernel_size: 3 stride: 1 } }\n`;
    t += `layer { name: "${h}_mbox_loc_perm" type: "Permute" bottom: "${h}_mbox_loc" top: "${h}_mbox_loc_perm" permute_param { order: 0 order: 2 order: 3 order: 1 } }\n`;
    t += `layer { name: "${h}_mbox_conf" type: "Convolution" bottom: "${h}" top: "${h}_mbox_conf" convolution_param { num_output: ${k * C} pad: 1 kernel_size: 3 stride: 1 } }\n`;
    t += `layer {\n  name: "${h}_mbox_priorbox"\n  type: "PriorBox"\n  bottom: "${h}"\n  bottom: "data"\n  top: "${h}_mbox_priorbox"\n  prior_box_param {\n    min_size: ${p.min[i]}\n    max_size: ${p.max[i]}\n${p.ratios[i]!.map((r) => `    aspect_ratio: ${r}\n`).join('')}    flip: true\n    clip: ${p.clip}\n${p.variance.map((v) => `    variance: ${v}\n`).join('')}    step: ${p.steps[i]}\n    offset: 0.5\n  }\n}\n`;
  });
  t += `layer {\n  name: "detection_out"\n  type: "DetectionOutput"\n  bottom: "mbox_loc"\n  bottom: "mbox_conf_flatten"\n  bottom: "mbox_priorbox"\n  top: "detection_out"\n  include {\n    phase: TEST\n  }\n  detection_output_param {\n    num_classes: ${C}\n    share_location: true\n    background_label_id: 0\n    nms_param {\n      nms_threshold: ${opts.nms ?? 0.45}\n      top_k: ${opts.topK ?? 400}\n    }\n    code_type: CENTER_SIZE\n    keep_top_k: ${opts.keep ?? 200}\n    confidence_threshold: ${opts.conf ?? 0.01}\n  }\n}\n`;
  return t;
}

const root = protobuf.Root.fromJSON({
  nested: {
    BlobShape: { fields: { dim: { rule: 'repeated', type: 'int64', id: 1, options: { packed: true } } } },
    BlobProto: {
      fields: {
        num: { type: 'int32', id: 1 }, channels: { type: 'int32', id: 2 }, height: { type: 'int32', id: 3 }, width: { type: 'int32', id: 4 },
        data: { rule: 'repeated', type: 'float', id: 5, options: { packed: true } }, shape: { type: 'BlobShape', id: 7 },
      },
    },
    LayerParameter: { fields: { name: { type: 'string', id: 1 }, type: { type: 'string', id: 2 }, bottom: { rule: 'repeated', type: 'string', id: 3 }, top: { rule: 'repeated', type: 'string', id: 4 }, blobs: { rule: 'repeated', type: 'BlobProto', id: 7 } } },
    V1LayerParameter: { fields: { bottom: { rule: 'repeated', type: 'string', id: 2 }, top: { rule: 'repeated', type: 'string', id: 3 }, name: { type: 'string', id: 4 }, type: { type: 'int32', id: 5 }, blobs: { rule: 'repeated', type: 'BlobProto', id: 6 } } },
    NetParameter: { fields: { name: { type: 'string', id: 1 }, layers: { rule: 'repeated', type: 'V1LayerParameter', id: 2 }, layer: { rule: 'repeated', type: 'LayerParameter', id: 100 } } },
  },
});
const NetParameter = root.lookupType('NetParameter');

type Blobs = Map<string, Array<{ shape: number[]; data: Float32Array }>>;

/** Encodes layer blobs as a caffemodel: `layer` + BlobShape, or legacy `layers` + num/channels/height/width. */
function caffemodel(blobs: Blobs, legacy: boolean): Uint8Array {
  const layers = [...blobs].map(([name, list]) => {
    const bl = list.map(({ shape, data }) => {
      if (!legacy) return { shape: { dim: shape }, data: Array.from(data) };
      const s4 = [...Array(4 - shape.length).fill(1), ...shape] as number[];
      return { num: s4[0], channels: s4[1], height: s4[2], width: s4[3], data: Array.from(data) };
    });
    const isNorm = name.endsWith('_norm');
    // V1 LayerType: CONVOLUTION = 4 (Normalize had no V1 enum; any value will do for the reader).
    return legacy ? { name, type: isNorm ? 39 : 4, blobs: bl } : { name, type: isNorm ? 'Normalize' : 'Convolution', blobs: bl };
  });
  const msg = NetParameter.fromObject(legacy ? { name: 'VGG_VOC0712_SSD_300x300', layers } : { name: 'VGG_VOC0712_SSD_300x300', layer: layers });
  return NetParameter.encode(msg).finish();
}

const f32 = (path: string): Float32Array => { const b = readFileSync(path); return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)); };
const maxAbsDiff = (a: Float32Array, b: Float32Array): number => { expect(a.length).toBe(b.length); let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!)); return m; };

describe('deploy.prototxt: the spec is read, not assumed', () => {
  it("ssd_pascal.py's prototxt gives the built-in ssd300 boxes, Caffe input and postprocess", () => {
    const spec = caffeSpec(deployPrototxt(PASCAL), 'deploy.prototxt');
    const ref = specByName('ssd300');
    expect(spec.name).toBe('ssd300-caffe');
    expect(spec.maps).toEqual(ref.maps);
    expect(spec.input).toEqual({ channelOrder: 'bgr', mean: [104, 117, 123] });
    expect(spec.clipBoxes).toBe(false);
    expect(spec.variances).toEqual([0.1, 0.1, 0.2, 0.2]);
    expect(spec.postprocess).toEqual({ confidenceThreshold: 0.01, nmsThreshold: 0.45, topKPerClass: 400, keepTopK: 200 });
    expect(spec.sources[0]!.l2NormScale).toBe(20);
    expect(Array.from(defaultBoxes(spec))).toEqual(Array.from(defaultBoxes(ref)));
  });

  it('other sizes, clip, variances, classes and thresholds in the prototxt reach the spec', () => {
    const coco: PriorParams = { ...PASCAL, min: [21, 45, 99, 153, 207, 261], max: [45, 99, 153, 207, 261, 315], clip: true, variance: [0.1, 0.1, 0.2, 0.2] };
    const spec = caffeSpec(deployPrototxt(coco, { numClasses: 81, conf: 0.05, nms: 0.5, topK: 300, keep: 100 }), 'd.prototxt');
    expect(spec.maps.map((m) => [m.minSize, m.maxSize])).toEqual(coco.min.map((v, i) => [v, coco.max[i]]));
    expect(spec.clipBoxes).toBe(true);
    expect(spec.labels.length).toBe(81);
    expect(spec.postprocess).toEqual({ confidenceThreshold: 0.05, nmsThreshold: 0.5, topKPerClass: 300, keepTopK: 100 });
  });

  it('a prototxt whose trunk is not the reference plan names the layer', () => {
    const bad = deployPrototxt(PASCAL).replace(/name: "conv6_2"([\s\S]*?)stride: 2/, 'name: "conv6_2"$1stride: 1');
    expect(() => caffeSpec(bad, 'd.prototxt')).toThrow(/^d\.prototxt: layer conv6_2: stride 1 in the prototxt, 2 in the SSD300 plan$/);
    expect(() => caffeSpec('name: "x"\nlayer { name: "a" type: "ReLU" }', 'd.prototxt')).toThrow(/no DetectionOutput layer/);
    expect(() => caffeSpec('layer { name: "a" type: ', 'd.prototxt')).toThrow(/^d\.prototxt:1: /);
  });
});

describe('caffemodel reader', () => {
  const small: Blobs = new Map([
    ['conv1_1', [{ shape: [2, 3, 3, 3], data: Float32Array.from({ length: 54 }, (_, i) => i / 7) }, { shape: [2], data: Float32Array.of(0.5, -0.5) }]],
    ['conv4_3_norm', [{ shape: [4], data: Float32Array.of(20, 21, 22, 23) }]],
  ]);

  it('reads both layouts to the same blobs (legacy 4-D shapes of vectors included)', () => {
    for (const legacy of [false, true]) {
      const layers = readCaffemodel(caffemodel(small, legacy), 'm.caffemodel');
      expect([...layers.keys()]).toEqual(['conv1_1', 'conv4_3_norm']);
      expect(Array.from(layers.get('conv1_1')![0]!.data)).toEqual(Array.from(small.get('conv1_1')![0]!.data));
      expect(layers.get('conv1_1')![0]!.shape).toEqual([2, 3, 3, 3]);
      expect(layers.get('conv4_3_norm')![0]!.shape).toEqual(legacy ? [1, 1, 1, 4] : [4]);
    }
  });

  it('every truncation and single-byte corruption is a one-line error or a valid read', () => {
    for (const legacy of [false, true]) {
      const bytes = caffemodel(small, legacy);
      const check = (b: Uint8Array): void => {
        try {
          readCaffemodel(b, 'm');
        } catch (err) {
          expect(err).toBeInstanceOf(SsdError);
          expect((err as Error).message).not.toContain('\n');
        }
      };
      for (let n = 0; n < bytes.length; n++) check(bytes.subarray(0, n));
      for (let i = 0; i < bytes.length; i++) { const bad = Uint8Array.from(bytes); bad[i] = bad[i]! ^ 0xff; check(bad); }
    }
  });
});

describe.skipIf(!hasTorch)('ssd import: Caffe .caffemodel + deploy.prototxt', () => {
  const dir = tempDir('ssd-import-caffe-');
  const blobs: Blobs = new Map();
  const proto = () => join(dir, 'deploy.prototxt');

  beforeAll(() => {
    writeFileSync(join(dir, 'make.py'), REFERENCE_SCRIPT);
    const py = spawnSync(PY, [join(dir, 'make.py'), dir, 'ssd-pytorch-300'], { encoding: 'utf8', timeout: 900_000 });
    if (py.status !== 0) throw new Error(`python failed: ${py.stderr}`);
    const sd = readPth(readFileSync(join(dir, 'ssd-pytorch-300.pth')), 'ref.pth').tensors;
    const conv = (name: string, key: string) => blobs.set(name, [sd.get(`${key}.weight`)!, sd.get(`${key}.bias`)!]);
    VGG.forEach((n, i) => conv(n, `vgg.${VGG_INDICES[i]}`));
    EXTRAS.forEach((n, i) => conv(n, `extras.${i}`));
    blobs.set('conv4_3_norm', [sd.get('L2Norm.weight')!]);
    HEADS.forEach((h, i) => { conv(`${h}_mbox_loc`, `loc.${i}`); conv(`${h}_mbox_conf`, `conf.${i}`); });
    writeFileSync(proto(), deployPrototxt(PASCAL));
    writeFileSync(join(dir, 'new.caffemodel'), caffemodel(blobs, false));
    writeFileSync(join(dir, 'v1.caffemodel'), caffemodel(blobs, true));
  }, 1_200_000);

  it('both layouts import to the same weights; the exported model gives the reference raw heads (<= 1e-4)', async () => {
    for (const v of ['new', 'v1']) {
      const imp = await ssd(['import', join(dir, `${v}.caffemodel`), '--prototxt', proto(), '--out', join(dir, `${v}-ckpt`), '--json']);
      expect(imp.code, imp.stderr).toBe(0);
      expect(JSON.parse(imp.stdout)).toMatchObject({ format: 'caffe', spec: 'ssd300-caffe', classes: 21, priors: 8732, unused: [] });
    }
    const a = loadCheckpoint(join(dir, 'new-ckpt'));
    const b = loadCheckpoint(join(dir, 'v1-ckpt'));
    for (const [name, t] of a.weights) expect(Array.from(b.weights.get(name)!.data), name).toEqual(Array.from(t.data));

    const onnx = join(dir, 'caffe.onnx');
    const exp = await ssd(['export-onnx', '--checkpoint', join(dir, 'new-ckpt'), '--out', onnx, '--postprocess', 'none', '--no-verify']);
    expect(exp.code, exp.stderr).toBe(0);
    const session = await ort.InferenceSession.create(onnx, { executionProviders: ['cpu'] });
    const out = await session.run({ images: new ort.Tensor('float32', f32(join(dir, 'ssd-pytorch-300.input.f32')), [1, 3, 300, 300]) });
    expect(maxAbsDiff(out.loc!.data as Float32Array, f32(join(dir, 'ssd-pytorch-300.loc.f32')))).toBeLessThanOrEqual(1e-4);
    expect(maxAbsDiff(out.conf!.data as Float32Array, f32(join(dir, 'ssd-pytorch-300.conf.f32')))).toBeLessThanOrEqual(1e-4);
  }, 600_000);

  it('a missing layer, a wrong shape and a truncated file are one line each, naming the layer', async () => {
    const missing = new Map(blobs);
    missing.delete('conv6_2');
    writeFileSync(join(dir, 'missing.caffemodel'), caffemodel(missing, false));
    const wrong = new Map(blobs);
    wrong.set('fc7_mbox_conf', [{ shape: [10, 1024, 3, 3], data: new Float32Array(10 * 1024 * 9) }, { shape: [10], data: new Float32Array(10) }]);
    writeFileSync(join(dir, 'wrong.caffemodel'), caffemodel(wrong, false));
    writeFileSync(join(dir, 'trunc.caffemodel'), readFileSync(join(dir, 'new.caffemodel')).subarray(0, 1_000_000));
    const cases: Array<[string, RegExp]> = [
      ['missing', /layer conv6_2 is missing/],
      ['wrong', /layer fc7_mbox_conf/],
      ['trunc', /truncated protobuf/],
    ];
    for (const [name, re] of cases) {
      const res = await ssd(['import', join(dir, `${name}.caffemodel`), '--prototxt', proto(), '--out', join(dir, `${name}-out`)]);
      expect(res.code, name).not.toBe(0);
      expect(res.stderr.trim().split('\n'), name).toHaveLength(1);
      expect(res.stderr, name).toMatch(re);
    }
    const noProto = await ssd(['import', join(dir, 'new.caffemodel'), '--out', join(dir, 'np')]);
    expect(noProto.stderr).toMatch(/needs its deploy\.prototxt \(--prototxt FILE\)/);
  }, 600_000);
});
