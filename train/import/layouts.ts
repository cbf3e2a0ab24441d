/**
 * Published SSD state-dict layouts -> our canonical weights and a spec carrying each source's
 * conventions, so that the imported model computes exactly what the source framework computes.
 *
 * | format | keys | input | default boxes | postprocess |
 * | --- | --- | --- | --- | --- |
 * | torchvision (`ssd300_vgg16`) | backbone.features.N, backbone.extra.N.M, backbone.scale_weight, head.{regression,classification}_head.module_list.N | RGB, x/255 normalised by mean 0.48235/0.45882/0.40784, std 1/255 (= RGB - 122.999/116.999/103.999) | COCO scales 0.07..1.05 (ssd300-coco), w/h clamped to 1 | 0.01, NMS 0.45, 400 per class, 200 |
 * | ssd.pytorch (amdegroot) | vgg.N, extras.N, L2Norm.weight, loc.N, conf.N | BGR - 104/117/123 | VOC 30..264 (COCO 21..261 with 81 classes), clamped to [0, 1] | 0.01, NMS 0.45, 200 per class, no overall cap |
 * | lufficc/SSD | backbone.vgg.N, backbone.extras.N, backbone.l2_norm.weight, box_head.predictor.{reg,cls}_headers.N | RGB - 123/117/104 (INPUT.PIXEL_MEAN) | its yaml's sizes, clamped to [0, 1] | 0.01, NMS 0.45, 100 per image |
 *
 * torchvision clamps the default boxes' w and h to 1, the other two all of (cx, cy, w, h) to [0, 1]
 * (spec.clampPriors); head outputs are
 * permuted to NHWC and flattened exactly as ours (box index ((y * W + x) * k + a)), box coding is
 * centre-size with variances 0.1/0.2 (torchvision: BoxCoder weights 10, 10, 5, 5), and conv weights are
 * OIHW (transposed here to our HWIO).
 */
import type { Tensor, WeightMap } from '../../core/checkpoint.js';
import { SsdError } from '../../core/errors.js';
import { BACKGROUND, COCO_CATEGORY_IDS, COCO_CLASSES, VOC_CLASSES, withBackground } from '../../core/labels.js';
import { boxesPerLocation, numDefaultBoxes, paramSpecs, ssd300, ssd300CocoSizes, ssd512, validateSpec, type SsdSpec } from '../../core/specs.js';

export const PTH_FORMATS = ['torchvision', 'ssd-pytorch', 'lufficc'] as const;
export type PthFormat = (typeof PTH_FORMATS)[number];

/**
 * torchvision's 91 COCO "categories": index = COCO category id, 'N/A' where COCO has no category
 * (12, 26, 29, 30, 45, 66, 68, 69, 71, 83). Keeping the gaps keeps class index = category id.
 */
export function torchvisionCocoLabels(): string[] {
  const labels = [BACKGROUND];
  for (let id = 1; id <= 90; id++) {
    const k = (COCO_CATEGORY_IDS as readonly number[]).indexOf(id);
    labels.push(k >= 0 ? COCO_CLASSES[k]! : 'N/A');
  }
  return labels;
}

/** torchvision's GeneralizedRCNNTransform for ssd300_vgg16 on 0..255 pixels: (p / 255 - mean) / (1 / 255). */
export const TORCHVISION_SSD_MEAN: [number, number, number] = [0.48235 * 255, 0.45882 * 255, 0.40784 * 255];

const VGG_BASE = ['conv1_1', 'conv1_2', 'conv2_1', 'conv2_2', 'conv3_1', 'conv3_2', 'conv3_3', 'conv4_1', 'conv4_2', 'conv4_3', 'conv5_1', 'conv5_2', 'conv5_3', 'fc6', 'fc7'];
/** Module indices of the convs in ssd.pytorch's / lufficc's `vgg` ModuleList (ReLUs and pools in between). */
const VGG_INDICES = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28, 31, 33];
const EXTRAS_300 = ['conv6_1', 'conv6_2', 'conv7_1', 'conv7_2', 'conv8_1', 'conv8_2', 'conv9_1', 'conv9_2'];
const EXTRAS_512 = [...EXTRAS_300, 'conv10_1', 'conv10_2'];

interface Layout {
  /** Source key prefix (before `.weight` / `.bias`) -> canonical layer name. */
  convs: Array<[string, string]>;
  l2norm: string;
  loc: (i: number) => string;
  conf: (i: number) => string;
}

function layoutOf(format: PthFormat, size: 300 | 512): Layout {
  switch (format) {
    case 'torchvision': {
      const features = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21];
      const convs: Array<[string, string]> = features.map((n, i) => [`backbone.features.${n}`, VGG_BASE[i]!]);
      // extra.0 = pool4, conv5_1, relu, conv5_2, relu, conv5_3, relu, Sequential(pool5, fc6, relu, fc7, relu)
      convs.push(['backbone.extra.0.1', 'conv5_1'], ['backbone.extra.0.3', 'conv5_2'], ['backbone.extra.0.5', 'conv5_3'], ['backbone.extra.0.7.1', 'fc6'], ['backbone.extra.0.7.3', 'fc7']);
      EXTRAS_300.forEach((name, i) => convs.push([`backbone.extra.${1 + (i >> 1)}.${(i & 1) * 2}`, name]));
      return { convs, l2norm: 'backbone.scale_weight', loc: (i) => `head.regression_head.module_list.${i}`, conf: (i) => `head.classification_head.module_list.${i}` };
    }
    case 'ssd-pytorch':
    case 'lufficc': {
      const pre = format === 'lufficc' ? 'backbone.' : '';
      const convs: Array<[string, string]> = VGG_INDICES.map((n, i) => [`${pre}vgg.${n}`, VGG_BASE[i]!]);
      (size === 512 ? EXTRAS_512 : EXTRAS_300).forEach((name, i) => convs.push([`${pre}extras.${i}`, name]));
      return format === 'lufficc'
        ? { convs, l2norm: 'backbone.l2_norm.weight', loc: (i) => `box_head.predictor.reg_headers.${i}`, conf: (i) => `box_head.predictor.cls_headers.${i}` }
        : { convs, l2norm: 'L2Norm.weight', loc: (i) => `loc.${i}`, conf: (i) => `conf.${i}` };
    }
  }
}

/** The format whose key names these are, or undefined. */
export function detectPthFormat(keys: Iterable<string>): PthFormat | undefined {
  const set = new Set(keys);
  if (set.has('backbone.scale_weight') && set.has('head.classification_head.module_list.0.weight')) return 'torchvision';
  if (set.has('backbone.l2_norm.weight') && set.has('box_head.predictor.cls_headers.0.weight')) return 'lufficc';
  if (set.has('L2Norm.weight') && set.has('conf.0.weight') && set.has('vgg.0.weight')) return 'ssd-pytorch';
  return undefined;
}

function labelsFor(numClasses: number, format: PthFormat): string[] {
  if (format === 'torchvision' && numClasses === 91) return torchvisionCocoLabels();
  if (numClasses === 21) return withBackground(VOC_CLASSES);
  if (numClasses === 81) return withBackground(COCO_CLASSES);
  return withBackground(Array.from({ length: numClasses - 1 }, (_, i) => `class${i + 1}`));
}

/** The spec of a `format` model of `size` with `numClasses` classes, with the source's conventions. */
export function pthSpec(format: PthFormat, size: 300 | 512, numClasses: number): SsdSpec {
  const labels = labelsFor(numClasses, format);
  const coco = numClasses === 81 || numClasses === 91;
  let spec: SsdSpec;
  if (format === 'torchvision') {
    spec = { ...ssd300(labels, ssd300CocoSizes()), name: 'ssd300-torchvision', input: { channelOrder: 'rgb', mean: [...TORCHVISION_SSD_MEAN] } };
  } else if (size === 300) {
    spec = { ...ssd300(labels, coco ? ssd300CocoSizes() : undefined), name: `ssd300-${format}` };
    if (format === 'lufficc') spec.input = { channelOrder: 'rgb', mean: [123, 117, 104] };
  } else {
    if (format !== 'lufficc') throw new SsdError(`${format} has no 512 layout`);
    // lufficc's vgg_ssd512_voc0712.yaml: the last max size is 537.65 (not 537.6).
    spec = { ...ssd512(labels), name: 'ssd512-lufficc', input: { channelOrder: 'rgb', mean: [123, 117, 104] } };
    spec.maps = spec.maps.map((m, i) => (i === spec.maps.length - 1 ? { ...m, maxSize: 537.65 } : m));
    if (coco) throw new SsdError('lufficc SSD512 COCO is not supported yet (its yaml sizes differ); use a VOC model');
  }
  spec.clampPriors = format === 'torchvision' ? 'wh' : 'cxcywh';
  // Own copies: the built-in specs share their source list, and the L2Norm scale is set per import.
  spec.sources = spec.sources.map((s) => ({ ...s }));
  // torchvision: score_thresh 0.01, nms 0.45, topk_candidates 400, detections_per_img 200 (= ours), and
  // boxes clipped to the image before NMS.
  // ssd.pytorch: Detect(top_k 200) takes the best 200 of a class into NMS and has no overall cap (so at
  // most 200 per class survive); lufficc: MAX_PER_IMAGE 100, no per-class cut.
  if (format === 'torchvision') spec.postprocess = { ...spec.postprocess, clipBeforeNms: true };
  if (format === 'ssd-pytorch') spec.postprocess = { ...spec.postprocess, topKPerClass: 200, keepTopK: 200 * (numClasses - 1) };
  if (format === 'lufficc') spec.postprocess = { ...spec.postprocess, topKPerClass: numDefaultBoxes(spec), keepTopK: 100 };
  return validateSpec(spec);
}

function oihwToHwio(t: Tensor): Float32Array {
  const [o, i, h, w] = t.shape as [number, number, number, number];
  const out = new Float32Array(t.data.length);
  for (let a = 0; a < o; a++) for (let b = 0; b < i; b++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    out[((y * w + x) * i + b) * o + a] = t.data[((a * i + b) * h + y) * w + x]!;
  }
  return out;
}

export interface ImportedModel { spec: SsdSpec; weights: WeightMap; format: PthFormat; unused: string[] }

/**
 * Maps a state dict of `format` (detected from its keys when not given) onto a spec; every tensor
 * the model needs must be there with the right shape (the error names it), and keys the model does
 * not use are returned (e.g. BN's num_batches_tracked; the CLI reports them).
 */
export function importStateDict(raw: Map<string, Tensor>, where: string, format?: PthFormat): ImportedModel {
  // nn.DataParallel saves every key under "module."; the layouts are the same underneath.
  const tensors = [...raw.keys()].every((k) => k.startsWith('module.')) ? new Map([...raw].map(([k, v]) => [k.slice('module.'.length), v])) : raw;
  const fmt = format ?? detectPthFormat(tensors.keys());
  if (!fmt) {
    const sample = [...tensors.keys()].slice(0, 3).join(', ');
    throw new SsdError(`${where}: unknown layout (keys ${sample}, ...); not torchvision, ssd.pytorch or lufficc/SSD (give --format to force one)`);
  }
  const size: 300 | 512 = fmt === 'lufficc' && tensors.has('backbone.extras.9.weight') ? 512 : 300;
  const layout = layoutOf(fmt, size);
  const conf0 = tensors.get(`${layout.conf(0)}.weight`);
  if (!conf0 || conf0.shape.length !== 4) throw new SsdError(`${where}: ${fmt} layout: missing ${layout.conf(0)}.weight`);
  const probe = size === 300 ? ssd300(['a', 'b']) : ssd512(['a', 'b']);
  const k0 = boxesPerLocation(probe.maps[0]!);
  if (conf0.shape[0]! % k0 !== 0) throw new SsdError(`${where}: ${layout.conf(0)}.weight has ${conf0.shape[0]} outputs, not a multiple of ${k0} boxes per location`);
  const spec = pthSpec(fmt, size, conf0.shape[0]! / k0);

  const used = new Set<string>();
  const take = (key: string, shape: number[]): Tensor => {
    const t = tensors.get(key);
    if (!t) throw new SsdError(`${where}: ${fmt} layout: missing ${key}`);
    if (t.shape.join('x') !== shape.join('x')) throw new SsdError(`${where}: ${key} has shape [${t.shape}], ${spec.name} wants [${shape}]`);
    used.add(key);
    return t;
  };
  const sourceKey = new Map<string, string>();
  for (const [from, to] of layout.convs) sourceKey.set(to, from);
  spec.sources.forEach((src, i) => {
    sourceKey.set(`loc${i}`, layout.loc(i));
    sourceKey.set(`conf${i}`, layout.conf(i));
    if (src.l2NormScale !== undefined) sourceKey.set(`${src.layer}_norm`, layout.l2norm);
  });
  const weights: WeightMap = new Map();
  for (const p of paramSpecs(spec)) {
    const [layer, what] = p.name.split('/') as [string, string];
    const key = sourceKey.get(layer);
    if (!key) throw new Error(`no ${fmt} source for ${p.name}`);
    if (what === 'kernel') {
      const [kh, kw, ci, co] = p.shape as [number, number, number, number];
      weights.set(p.name, { shape: p.shape, data: oihwToHwio(take(`${key}.weight`, [co, ci, kh, kw])) });
    } else if (what === 'bias') {
      weights.set(p.name, { shape: p.shape, data: take(`${key}.bias`, p.shape).data.slice() });
    } else if (what === 'scale') {
      weights.set(p.name, { shape: p.shape, data: take(key, p.shape).data.slice() });
    } else {
      throw new Error(`unexpected parameter ${p.name} for an imported model`);
    }
  }
  // The L2Norm scale the weights carry (the spec's value is only where training starts it).
  const norm = spec.sources.find((s) => s.l2NormScale !== undefined);
  if (norm) {
    const s = weights.get(`${norm.layer}_norm/scale`)!.data;
    norm.l2NormScale = s.reduce((a, b) => a + b, 0) / s.length;
  }
  const unused = [...tensors.keys()].filter((k) => !used.has(k));
  return { spec, weights, format: fmt, unused };
}
