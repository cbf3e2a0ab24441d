/**
 * Model specifications: the architecture (as a flat list of layers), the default-box configuration and
 * the inference thresholds of an SSD, as plain data. Training builds its TensorFlow.js model from this,
 * export builds its ONNX graph from this, and the runtime reads it back from the ONNX metadata, so the
 * three can never disagree on a layer, a box or a threshold. Numbers: ../shared/SSD-SPEC.md.
 */
import { SsdError } from './errors.js';
import { COCO_CLASSES, DIGIT_CLASSES, VOC_CLASSES, withBackground } from './labels.js';

export interface ConvLayer {
  kind: 'conv';
  name: string;
  out: number;
  kernel: number;
  stride: number;
  pad: number;
  dilation: number;
  relu: boolean;
}

export interface MaxPoolLayer {
  kind: 'maxpool';
  name: string;
  kernel: number;
  stride: number;
  pad: number;
  /** Caffe/PyTorch ceil mode: pool3 of SSD300 maps 75 -> 38 with it, 37 without. */
  ceil: boolean;
}

export type LayerSpec = ConvLayer | MaxPoolLayer;

/** A feature map that feeds a prediction head. */
export interface SourceSpec {
  /** Name of the trunk layer (after its ReLU) whose output is the source. */
  layer: string;
  /** L2 normalisation across channels with a learned per-channel scale initialised to this value (SSD: conv4_3, 20). */
  l2NormScale?: number;
}

/** Default boxes of one source map, in input pixels. */
export interface FeatureMapSpec {
  size: number;
  step: number;
  minSize: number;
  maxSize: number;
  /** Ratios other than 1; each adds a box and its flip. */
  aspectRatios: number[];
}

export interface InputSpec {
  /** Channel order of the network input (Caffe-trained VGG expects BGR). */
  channelOrder: 'rgb' | 'bgr';
  /** Per-channel mean subtracted from 0..255 pixels, in `channelOrder`. */
  mean: [number, number, number];
}

export interface PostprocessSpec {
  confidenceThreshold: number;
  nmsThreshold: number;
  topKPerClass: number;
  keepTopK: number;
  /**
   * Clip decoded boxes to [0, 1] before NMS (torchvision's postprocess_detections). Absent = false:
   * Caffe's DetectionOutput (and ssd.pytorch, lufficc) run NMS on unclipped boxes and clip the output.
   */
  clipBeforeNms?: boolean;
}

export interface SsdSpec {
  name: string;
  /** Square input side in pixels (images are warped to it). */
  inputSize: number;
  /** Class names, index 0 = background. */
  labels: string[];
  input: InputSpec;
  /** The trunk (base network then extra layers) in execution order. */
  layers: LayerSpec[];
  sources: SourceSpec[];
  /** One entry per source, same order. */
  maps: FeatureMapSpec[];
  variances: [number, number, number, number];
  /** Whether the default boxes are clipped to [0, 1] (the reference configuration does not clip). */
  clipBoxes: boolean;
  /**
   * Clamping of the default boxes as (cx, cy, w, h), the PyTorch ports' convention. 'wh': w and h to at
   * most 1 (torchvision's DefaultBoxGenerator, clip=True); 'cxcywh': all four to [0, 1] (the PriorBox of
   * ssd.pytorch and lufficc/SSD, clip=True: SSD300's 10x10 map has centres up to 1.013). Absent: none.
   * Not the same as `clipBoxes`, which clips the corners as Caffe's PriorBox does.
   */
  clampPriors?: 'wh' | 'cxcywh';
  /** Batch norm after every trunk conv (training-time variant; export folds it away). */
  batchNorm: boolean;
  batchNormEpsilon: number;
  postprocess: PostprocessSpec;
}

export const DEFAULT_VARIANCES: [number, number, number, number] = [0.1, 0.1, 0.2, 0.2];
export const DEFAULT_POSTPROCESS: PostprocessSpec = { confidenceThreshold: 0.01, nmsThreshold: 0.45, topKPerClass: 400, keepTopK: 200 };
/** The reference mean, BGR 104, 117, 123 (SSD-SPEC "Training recipe"). */
export const CAFFE_INPUT: InputSpec = { channelOrder: 'bgr', mean: [104, 117, 123] };

export function conv(name: string, out: number, kernel = 3, stride = 1, pad = kernel === 3 ? 1 : 0, dilation = 1, relu = true): ConvLayer {
  return { kind: 'conv', name, out, kernel, stride, pad, dilation, relu };
}

export function maxpool(name: string, kernel = 2, stride = 2, pad = 0, ceil = false): MaxPoolLayer {
  return { kind: 'maxpool', name, kernel, stride, pad, ceil };
}

/**
 * VGG16 through fc7, atrous variant: pool5 3x3/s1/p1, fc6 3x3 dilation 6 pad 6 -> 1024, fc7 1x1 -> 1024.
 * `div` narrows every layer (for small test/demo models); 1 is the real VGG16.
 */
export function vgg16AtrousLayers(div = 1): LayerSpec[] {
  const c = (n: number) => Math.max(1, Math.round(n / div));
  return [
    conv('conv1_1', c(64)), conv('conv1_2', c(64)), maxpool('pool1'),
    conv('conv2_1', c(128)), conv('conv2_2', c(128)), maxpool('pool2'),
    conv('conv3_1', c(256)), conv('conv3_2', c(256)), conv('conv3_3', c(256)), maxpool('pool3', 2, 2, 0, true),
    conv('conv4_1', c(512)), conv('conv4_2', c(512)), conv('conv4_3', c(512)), maxpool('pool4'),
    conv('conv5_1', c(512)), conv('conv5_2', c(512)), conv('conv5_3', c(512)), maxpool('pool5', 3, 1, 1),
    conv('fc6', c(1024), 3, 1, 6, 6),
    conv('fc7', c(1024), 1),
  ];
}

/** SSD300 extras: conv6 (s2) -> 10, conv7 (s2) -> 5, conv8 (p0) -> 3, conv9 (p0) -> 1. */
export function ssd300Extras(div = 1): LayerSpec[] {
  const c = (n: number) => Math.max(1, Math.round(n / div));
  return [
    conv('conv6_1', c(256), 1), conv('conv6_2', c(512), 3, 2, 1),
    conv('conv7_1', c(128), 1), conv('conv7_2', c(256), 3, 2, 1),
    conv('conv8_1', c(128), 1), conv('conv8_2', c(256), 3, 1, 0),
    conv('conv9_1', c(128), 1), conv('conv9_2', c(256), 3, 1, 0),
  ];
}

/** SSD512 extras: as SSD300 through conv7, conv8_2/conv9_2 s2 p1, plus conv10 (4x4 s1 p1) -> 1. */
export function ssd512Extras(div = 1): LayerSpec[] {
  const c = (n: number) => Math.max(1, Math.round(n / div));
  return [
    conv('conv6_1', c(256), 1), conv('conv6_2', c(512), 3, 2, 1),
    conv('conv7_1', c(128), 1), conv('conv7_2', c(256), 3, 2, 1),
    conv('conv8_1', c(128), 1), conv('conv8_2', c(256), 3, 2, 1),
    conv('conv9_1', c(128), 1), conv('conv9_2', c(256), 3, 2, 1),
    conv('conv10_1', c(128), 1), conv('conv10_2', c(256), 4, 1, 1),
  ];
}

/**
 * Min/max sizes as the reference configuration derives them (ssd_pascal.py): the first map at
 * `firstPercent`% (its max at `minPercent`%), the others from `minPercent` to `maxPercent` in steps of
 * floor((max - min) / (m - 2)) percent. Integer percent arithmetic keeps 300 * 37 / 100 exactly 111.
 */
export function caffeBoxSizes(inputSize: number, numMaps: number, minPercent: number, maxPercent: number, firstPercent: number): { minSizes: number[]; maxSizes: number[] } {
  const step = Math.floor((maxPercent - minPercent) / (numMaps - 2));
  const minSizes = [(inputSize * firstPercent) / 100];
  const maxSizes = [(inputSize * minPercent) / 100];
  for (let ratio = minPercent; minSizes.length < numMaps; ratio += step) {
    minSizes.push((inputSize * ratio) / 100);
    maxSizes.push((inputSize * (ratio + step)) / 100);
  }
  return { minSizes, maxSizes };
}

/**
 * The paper's formula (section 2.2): s_k = s_min + (s_max - s_min)(k - 1)/(m - 1), k = 1..m; the extra
 * square box of map k uses sqrt(s_k * s_{k+1}), with s_{m+1} extrapolated one step further.
 */
export function paperBoxSizes(inputSize: number, numMaps: number, sMin = 0.2, sMax = 0.9): { minSizes: number[]; maxSizes: number[] } {
  const s = (k: number) => sMin + ((sMax - sMin) * (k - 1)) / (numMaps - 1);
  const minSizes: number[] = [];
  const maxSizes: number[] = [];
  for (let k = 1; k <= numMaps; k++) {
    minSizes.push(inputSize * s(k));
    maxSizes.push(inputSize * s(k + 1));
  }
  return { minSizes, maxSizes };
}

/** The reference's L2Norm scale: 20 on conv4_3's 512 channels (SSD-SPEC "Base network"). */
export const L2NORM_SCALE = 20;

/**
 * The L2Norm scale that gives `channels` channels the reference's per-channel magnitude
 * (20 / sqrt(512) each): 20 at 512 channels, 7.07 at 64.
 */
export function l2NormScaleFor(channels: number): number {
  return L2NORM_SCALE * Math.sqrt(channels / 512);
}

function maps(sizes: number[], steps: number[], box: { minSizes: number[]; maxSizes: number[] }, ratios: number[][]): FeatureMapSpec[] {
  return sizes.map((size, i) => ({ size, step: steps[i]!, minSize: box.minSizes[i]!, maxSize: box.maxSizes[i]!, aspectRatios: ratios[i]! }));
}

const SSD300_SOURCES: SourceSpec[] = [
  { layer: 'conv4_3', l2NormScale: L2NORM_SCALE }, { layer: 'fc7' }, { layer: 'conv6_2' }, { layer: 'conv7_2' }, { layer: 'conv8_2' }, { layer: 'conv9_2' },
];
const SSD512_SOURCES: SourceSpec[] = [...SSD300_SOURCES, { layer: 'conv10_2' }];
const SSD300_RATIOS = [[2], [2, 3], [2, 3], [2, 3], [2], [2]];
const SSD512_RATIOS = [[2], [2, 3], [2, 3], [2, 3], [2, 3], [2], [2]];

function base(name: string, inputSize: number, labels: string[], layers: LayerSpec[], sources: SourceSpec[], fmaps: FeatureMapSpec[]): SsdSpec {
  return {
    name, inputSize, labels, input: { ...CAFFE_INPUT, mean: [...CAFFE_INPUT.mean] }, layers, sources, maps: fmaps,
    variances: [...DEFAULT_VARIANCES], clipBoxes: false, batchNorm: false, batchNormEpsilon: 1e-5,
    postprocess: { ...DEFAULT_POSTPROCESS },
  };
}

export function ssd300(labels: string[], sizes = caffeBoxSizes(300, 6, 20, 90, 10)): SsdSpec {
  return base('ssd300', 300, labels, [...vgg16AtrousLayers(), ...ssd300Extras()], SSD300_SOURCES,
    maps([38, 19, 10, 5, 3, 1], [8, 16, 32, 64, 100, 300], sizes, SSD300_RATIOS));
}

/**
 * SSD512 for VOC (ssd_pascal_512.py; lufficc/SSD vgg_ssd512_voc0712.yaml): conv4_3 at 7% (max 15%), the
 * rest from 15% to 90% in steps of 15 -> min 35.84, 76.8, 153.6, ..., 460.8 and max 76.8 ... 537.6 px.
 * The COCO configuration (conv4_3 at 4%, 10%..90%) is `ssd512CocoSizes()`.
 */
export function ssd512(labels: string[], sizes = caffeBoxSizes(512, 7, 15, 90, 7)): SsdSpec {
  return base('ssd512', 512, labels, [...vgg16AtrousLayers(), ...ssd512Extras()], SSD512_SOURCES,
    maps([64, 32, 16, 8, 4, 2, 1], [8, 16, 32, 64, 128, 256, 512], sizes, SSD512_RATIOS));
}

/**
 * A narrow three-map SSD for tests and the digits demo: VGG-shaped but 1/8 wide and stopping at
 * conv5 (input 96 -> maps 12, 6, 3). Same layer kinds as SSD300 (atrous fc6 with dilation 6 included),
 * so every code path of the real model is exercised at a fraction of the cost. Its conv4_3 L2Norm
 * starts at 20 * sqrt(64 / 512) = 7.07, not 20: the reference's 20 spreads over conv4_3's 512 channels
 * (about 0.88 per channel); on 64 channels 20 would make each 2.8x larger and the first head's scores
 * and gradients with them, which kept the model from training from scratch at the SSD learning rate.
 */
export function ssdTiny(labels: string[], inputSize = 96): SsdSpec {
  const div = 8;
  const c = (n: number) => Math.round(n / div);
  const layers: LayerSpec[] = [
    conv('conv1_1', c(64)), maxpool('pool1'),
    conv('conv2_1', c(128)), maxpool('pool2'),
    conv('conv3_1', c(256)), maxpool('pool3', 2, 2, 0, true),
    conv('conv4_1', c(512)), conv('conv4_3', c(512)), maxpool('pool4'),
    conv('conv5_1', c(512)), maxpool('pool5', 3, 1, 1),
    conv('fc6', c(1024), 3, 1, 6, 6), conv('fc7', c(1024), 1),
    conv('conv6_1', c(256), 1), conv('conv6_2', c(512), 3, 2, 1),
  ];
  // Map sizes as the trunk computes them (closed forms miss pool4's floor after pool3's ceil, e.g. at 100).
  const shapes = layerShapes({ inputSize, layers } as SsdSpec);
  const [f1, f2, f3] = ['conv4_3', 'fc7', 'conv6_2'].map((n) => shapes.find((s) => s.layer.name === n)!.outSize) as [number, number, number];
  const sizes = caffeBoxSizes(inputSize, 3, 20, 90, 10);
  return base(`ssd-tiny${inputSize}`, inputSize, labels, layers,
    [{ layer: 'conv4_3', l2NormScale: l2NormScaleFor(c(512)) }, { layer: 'fc7' }, { layer: 'conv6_2' }],
    maps([f1, f2, f3], [inputSize / f1, inputSize / f2, inputSize / f3], sizes, [[2], [2, 3], [2]]));
}

/**
 * The digits demo model (ssd-digits): VGG-shaped but narrow, input 96, four maps (24, 12, 6, 3) with
 * box sizes for handwritten digits of 20-56 pixels in a 128-pixel scene (15-42 at the input): a
 * stride-4 first map so that even small digits get several default boxes above 0.5 overlap (the
 * early layers are kept narrow: at 96x96 they cost the most). Batch
 * norm after every conv (it trains from scratch; export folds it away). fc6 keeps the atrous form
 * (dilation 2 at this scale). Trained on CPU in docs/train.md; shipped as models/digits-ssd.onnx.
 */
export function ssdDigits(labels: string[], inputSize = 96): SsdSpec {
  const layers: LayerSpec[] = [
    conv('conv1_1', 8), maxpool('pool1'),
    conv('conv2_1', 16), maxpool('pool2'),
    conv('conv3_1', 32), conv('conv3_2', 32), maxpool('pool3', 2, 2, 0, true),
    conv('conv4_1', 64), conv('conv4_3', 64), maxpool('pool4'),
    conv('conv5_1', 96), maxpool('pool5', 3, 1, 1),
    conv('fc6', 128, 3, 1, 2, 2), conv('fc7', 128, 1),
    conv('conv6_1', 48, 1), conv('conv6_2', 96, 3, 2, 1),
  ];
  const sourceLayers = ['conv3_2', 'conv4_3', 'fc7', 'conv6_2'];
  const shapes = layerShapes({ inputSize, layers } as SsdSpec);
  const sizes = sourceLayers.map((n) => shapes.find((s) => s.layer.name === n)!.outSize);
  // In input pixels at 96: 10-20, 20-36, 36-60, 60-96.
  const scale = inputSize / 96;
  const minSizes = [10, 20, 36, 60].map((v) => v * scale);
  const maxSizes = [20, 36, 60, 96].map((v) => v * scale);
  const spec = base('ssd-digits', inputSize, labels, layers,
    // 20 rather than l2NormScaleFor(32) = 5: batch norm keeps this model trainable either way, and the
    // shipped digits model and its recipe were made with 20.
    [{ layer: 'conv3_2', l2NormScale: L2NORM_SCALE }, { layer: 'conv4_3' }, { layer: 'fc7' }, { layer: 'conv6_2' }],
    maps(sizes, sizes.map((n) => inputSize / n), { minSizes, maxSizes }, [[2], [2, 3], [2, 3], [2, 3]]));
  return { ...spec, batchNorm: true };
}

/** SSD300 COCO (ssd_coco.py, torchvision's scales): conv4_3 at 7%, then 15%..90% -> 21, 45, 99, ... 261 px. */
export const ssd300CocoSizes = (): { minSizes: number[]; maxSizes: number[] } => caffeBoxSizes(300, 6, 15, 90, 7);
/** SSD512 COCO (ssd_coco_512.py): conv4_3 at 4%, then 10%..90% -> 20.48, 51.2, 133.12, ... 460.8 px. */
export const ssd512CocoSizes = (): { minSizes: number[]; maxSizes: number[] } => caffeBoxSizes(512, 7, 10, 90, 4);

/** Built-in specs by name. VOC: 21 classes, SSD-SPEC's VOC box sizes; COCO: 81 classes, the COCO box sizes. */
export const SPECS: Record<string, () => SsdSpec> = {
  'ssd300': () => ssd300(withBackground(VOC_CLASSES)),
  'ssd512': () => ssd512(withBackground(VOC_CLASSES)),
  'ssd300-coco': () => ({ ...ssd300(withBackground(COCO_CLASSES), ssd300CocoSizes()), name: 'ssd300-coco' }),
  'ssd512-coco': () => ({ ...ssd512(withBackground(COCO_CLASSES), ssd512CocoSizes()), name: 'ssd512-coco' }),
  'ssd-tiny': () => ssdTiny(withBackground(DIGIT_CLASSES)),
  'ssd-digits': () => ssdDigits(withBackground(DIGIT_CLASSES)),
};

export function specByName(name: string): SsdSpec {
  const make = SPECS[name];
  if (!make) throw new SsdError(`unknown model config "${name}" (known: ${Object.keys(SPECS).join(', ')})`);
  return make();
}

export const numClasses = (spec: SsdSpec): number => spec.labels.length;
export const boxesPerLocation = (m: FeatureMapSpec): number => 2 + 2 * m.aspectRatios.length;

/** Output side of a conv or pool over an input of side `n`. */
export function outputSize(layer: LayerSpec, n: number): number {
  if (layer.kind === 'conv') return Math.floor((n + 2 * layer.pad - layer.dilation * (layer.kernel - 1) - 1) / layer.stride) + 1;
  const span = n + 2 * layer.pad - layer.kernel;
  let out = (layer.ceil ? Math.ceil(span / layer.stride) : Math.floor(span / layer.stride)) + 1;
  // As Caffe/PyTorch: the last window must start inside the (left-padded) input.
  if (layer.ceil && (out - 1) * layer.stride >= n + layer.pad) out--;
  return out;
}

export interface LayerShape { layer: LayerSpec; inChannels: number; inSize: number; outChannels: number; outSize: number }

/** Input/output channels and spatial size of every trunk layer. */
export function layerShapes(spec: SsdSpec): LayerShape[] {
  let channels = 3;
  let size = spec.inputSize;
  return spec.layers.map((layer) => {
    const outSize = outputSize(layer, size);
    const outChannels = layer.kind === 'conv' ? layer.out : channels;
    const shape = { layer, inChannels: channels, inSize: size, outChannels, outSize };
    channels = outChannels;
    size = outSize;
    return shape;
  });
}

/** A learnable (or, for batch-norm statistics, stored) tensor of the model, in the canonical layout. */
export interface ParamSpec {
  name: string;
  /** Conv kernels are HWIO [kh, kw, in, out] (the TensorFlow.js layout); the exporter transposes to OIHW. */
  shape: number[];
  trainable: boolean;
}

/**
 * Every parameter of the model with its canonical name and shape: `<layer>/kernel`, `<layer>/bias`,
 * `<layer>/bn_{gamma,beta,mean,variance}` (batch-norm variant), `<layer>_norm/scale` (L2Norm), and the
 * heads `loc<i>/*`, `conf<i>/*` for source i. Checkpoints, the trainer and the exporter all use it.
 */
export function paramSpecs(spec: SsdSpec): ParamSpec[] {
  const params: ParamSpec[] = [];
  const shapes = layerShapes(spec);
  for (const s of shapes) {
    if (s.layer.kind !== 'conv') continue;
    const k = s.layer.kernel;
    params.push({ name: `${s.layer.name}/kernel`, shape: [k, k, s.inChannels, s.outChannels], trainable: true });
    params.push({ name: `${s.layer.name}/bias`, shape: [s.outChannels], trainable: true });
    if (spec.batchNorm) {
      params.push({ name: `${s.layer.name}/bn_gamma`, shape: [s.outChannels], trainable: true });
      params.push({ name: `${s.layer.name}/bn_beta`, shape: [s.outChannels], trainable: true });
      params.push({ name: `${s.layer.name}/bn_mean`, shape: [s.outChannels], trainable: false });
      params.push({ name: `${s.layer.name}/bn_variance`, shape: [s.outChannels], trainable: false });
    }
  }
  const C = numClasses(spec);
  spec.sources.forEach((src, i) => {
    const s = sourceShape(spec, i, shapes);
    if (src.l2NormScale !== undefined) params.push({ name: `${src.layer}_norm/scale`, shape: [s.outChannels], trainable: true });
    const k = boxesPerLocation(spec.maps[i]!);
    params.push({ name: `loc${i}/kernel`, shape: [3, 3, s.outChannels, k * 4], trainable: true });
    params.push({ name: `loc${i}/bias`, shape: [k * 4], trainable: true });
    params.push({ name: `conf${i}/kernel`, shape: [3, 3, s.outChannels, k * C], trainable: true });
    params.push({ name: `conf${i}/bias`, shape: [k * C], trainable: true });
  });
  return params;
}

function sourceShape(spec: SsdSpec, i: number, shapes = layerShapes(spec)): LayerShape {
  const name = spec.sources[i]!.layer;
  const s = shapes.find((x) => x.layer.name === name);
  if (!s) throw new SsdError(`spec ${spec.name}: source ${i} names layer "${name}", which is not in the trunk`);
  return s;
}

/** Number of trainable parameters (torchvision's count for SSD300/VOC: 26,285,486). */
export function paramCount(spec: SsdSpec): number {
  return paramSpecs(spec).filter((p) => p.trainable).reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
}

/** Total default boxes (8732 for SSD300, 24564 for SSD512). */
export function numDefaultBoxes(spec: SsdSpec): number {
  return spec.maps.reduce((n, m) => n + m.size * m.size * boxesPerLocation(m), 0);
}

/**
 * Checks a spec (built-in, from a config file, or read from ONNX metadata) and throws an SsdError that
 * names the offending field. Source map sizes must equal what the trunk computes.
 */
export function validateSpec(spec: SsdSpec): SsdSpec {
  const where = `spec ${spec?.name ?? '(unnamed)'}`;
  const fail = (field: string, why: string): never => { throw new SsdError(`${where}: ${field} ${why}`); };
  if (typeof spec !== 'object' || spec === null) fail('', 'is not an object');
  if (typeof spec.name !== 'string' || !spec.name) fail('name', 'must be a non-empty string');
  if (!Number.isInteger(spec.inputSize) || spec.inputSize < 8) fail('inputSize', 'must be a whole number >= 8');
  if (!Array.isArray(spec.labels) || spec.labels.length < 2 || !spec.labels.every((l) => typeof l === 'string')) fail('labels', 'must list at least background and one class');
  if (!spec.input || !['rgb', 'bgr'].includes(spec.input.channelOrder)) fail('input.channelOrder', 'must be "rgb" or "bgr"');
  if (!Array.isArray(spec.input.mean) || spec.input.mean.length !== 3 || !spec.input.mean.every(Number.isFinite)) fail('input.mean', 'must be three numbers');
  if (!Array.isArray(spec.layers) || spec.layers.length === 0) fail('layers', 'must be a non-empty list');
  const names = new Set<string>();
  spec.layers.forEach((l, i) => {
    if (l.kind !== 'conv' && l.kind !== 'maxpool') fail(`layers[${i}].kind`, 'must be "conv" or "maxpool"');
    if (names.has(l.name)) fail(`layers[${i}].name`, `"${l.name}" is used twice`);
    names.add(l.name);
    for (const f of ['kernel', 'stride'] as const) if (!Number.isInteger(l[f]) || l[f] < 1) fail(`layers[${i}].${f}`, 'must be a whole number >= 1');
    if (!Number.isInteger(l.pad) || l.pad < 0) fail(`layers[${i}].pad`, 'must be a whole number >= 0');
    if (l.kind === 'conv' && (!Number.isInteger(l.out) || l.out < 1)) fail(`layers[${i}].out`, 'must be a whole number >= 1');
    if (l.kind === 'conv' && (!Number.isInteger(l.dilation) || l.dilation < 1)) fail(`layers[${i}].dilation`, 'must be a whole number >= 1');
  });
  if (!Array.isArray(spec.sources) || spec.sources.length === 0) fail('sources', 'must be a non-empty list');
  if (!Array.isArray(spec.maps) || spec.maps.length !== spec.sources.length) fail('maps', `must have one entry per source (${spec.sources.length})`);
  const shapes = layerShapes(spec);
  for (const s of shapes) if (s.outSize < 1) fail(`layers.${s.layer.name}`, `has no output at input ${spec.inputSize}`);
  spec.sources.forEach((src, i) => {
    const s = shapes.find((x) => x.layer.name === src.layer);
    if (!s) fail(`sources[${i}].layer`, `"${src.layer}" is not a layer of the trunk`);
    const m = spec.maps[i]!;
    if (m.size !== s!.outSize) fail(`maps[${i}].size`, `is ${m.size} but layer ${src.layer} outputs ${s!.outSize}x${s!.outSize}`);
    if (!(m.step > 0) || !(m.minSize > 0) || !(m.maxSize > 0)) fail(`maps[${i}]`, 'step, minSize and maxSize must be > 0');
    if (!Array.isArray(m.aspectRatios) || !m.aspectRatios.every((r) => r > 0 && r !== 1)) fail(`maps[${i}].aspectRatios`, 'must be numbers > 0 other than 1');
  });
  if (spec.clampPriors !== undefined && spec.clampPriors !== 'wh' && spec.clampPriors !== 'cxcywh') fail('clampPriors', 'must be "wh" or "cxcywh"');
  if (!Array.isArray(spec.variances) || spec.variances.length !== 4 || !spec.variances.every((v) => v > 0)) fail('variances', 'must be four numbers > 0');
  const p = spec.postprocess;
  if (!p || !(p.confidenceThreshold >= 0 && p.confidenceThreshold < 1)) fail('postprocess.confidenceThreshold', 'must be in [0, 1)');
  if (!(p.nmsThreshold > 0 && p.nmsThreshold <= 1)) fail('postprocess.nmsThreshold', 'must be in (0, 1]');
  if (!Number.isInteger(p.topKPerClass) || p.topKPerClass < 1) fail('postprocess.topKPerClass', 'must be a whole number >= 1');
  if (!Number.isInteger(p.keepTopK) || p.keepTopK < 1) fail('postprocess.keepTopK', 'must be a whole number >= 1');
  if (p.clipBeforeNms !== undefined && typeof p.clipBeforeNms !== 'boolean') fail('postprocess.clipBeforeNms', 'must be true or false');
  return spec;
}
