/**
 * The SSD paper's Caffe models: `.caffemodel` (binary NetParameter: `layer` (LayerParameter) or legacy
 * `layers` (V1LayerParameter), blob shapes in `shape` or num/channels/height/width) plus its
 * `deploy.prototxt` (text format), from which the default boxes (PriorBox: min/max size, aspect ratios,
 * flip, clip, step, offset, variance), the L2 normalisation (Normalize) and the postprocess
 * (DetectionOutput: classes, thresholds, top-k) are read, never assumed. The trunk must be the reference
 * VGG16 SSD300 or SSD512 of ssd_pascal.py / ssd_coco.py (layer names conv1_1 ... fc7, conv6_1 ...,
 * heads `<source>_mbox_loc` / `_mbox_conf`); every conv of the prototxt is checked against that plan.
 * Input: Caffe's BGR minus 104/117/123 (the data layer's mean_value in ssd_pascal.py, not in the deploy
 * file).
 */
import type { Tensor, WeightMap } from '../../core/checkpoint.js';
import { SsdError } from '../../core/errors.js';
import { COCO_CLASSES, VOC_CLASSES, withBackground } from '../../core/labels.js';
import { boxesPerLocation, paramSpecs, ssd300, ssd512, validateSpec, type SsdSpec } from '../../core/specs.js';
import { fieldsOf, floatsField, doublesField, intField, intsField, parseTextProto, stringField, wireFields, type TextMessage, type TextValue } from './protobuf.js';

interface CaffeBlob { shape: number[]; data: Float32Array }

/** Layer name -> its blobs, from a .caffemodel. */
export function readCaffemodel(bytes: Uint8Array, where: string): Map<string, CaffeBlob[]> {
  const net = wireFields(bytes, where);
  const layers = new Map<string, CaffeBlob[]>();
  const v2 = fieldsOf(net, 100);
  const v1 = fieldsOf(net, 2);
  if (v2.length === 0 && v1.length === 0) throw new SsdError(`${where}: not a Caffe model (no layers in the NetParameter)`);
  for (const [list, nameField, blobsField] of [[v2, 1, 7], [v1, 4, 6]] as const) {
    for (const l of list) {
      if (l.wire !== 2) throw new SsdError(`${where}: corrupt caffemodel (layer is not a message)`);
      const lf = wireFields(l.bytes, where);
      const name = stringField(lf, nameField) ?? '';
      const blobs = fieldsOf(lf, blobsField).map((b, i) => readBlob(b.bytes, `${where}: layer ${name} blob ${i}`));
      if (blobs.length) layers.set(name, blobs);
    }
  }
  if (layers.size === 0) throw new SsdError(`${where}: not a Caffe model (no layer has weights)`);
  return layers;
}

function readBlob(bytes: Uint8Array, where: string): CaffeBlob {
  const f = wireFields(bytes, where);
  const shapeMsg = fieldsOf(f, 7).at(-1);
  let shape: number[];
  if (shapeMsg) shape = intsField(wireFields(shapeMsg.bytes, where), 1, where);
  else shape = [intField(f, 1) ?? 0, intField(f, 2) ?? 0, intField(f, 3) ?? 0, intField(f, 4) ?? 0];
  let data = floatsField(f, 5, where);
  if (data.length === 0) data = doublesField(f, 8, where);
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== data.length) throw new SsdError(`${where}: shape [${shape}] holds ${n} values, the blob has ${data.length}`);
  return { shape, data };
}

// ---- the prototxt -------------------------------------------------------------------------------

const one = (m: TextMessage | undefined, field: string): TextValue | undefined => m?.[field]?.at(-1);
const num = (m: TextMessage | undefined, field: string, fallback?: number): number | undefined => {
  const v = one(m, field);
  return typeof v === 'number' ? v : fallback;
};
const msg = (m: TextMessage | undefined, field: string): TextMessage | undefined => {
  const v = one(m, field);
  return typeof v === 'object' ? v : undefined;
};
const nums = (m: TextMessage | undefined, field: string): number[] => (m?.[field] ?? []).filter((v): v is number => typeof v === 'number');

interface ProtoLayer { name: string; type: string; m: TextMessage }

function protoLayers(net: TextMessage): ProtoLayer[] {
  return [...(net.layer ?? []), ...(net.layers ?? [])].filter((l): l is TextMessage => typeof l === 'object')
    .map((m) => ({ name: String(one(m, 'name') ?? ''), type: String(one(m, 'type') ?? ''), m }));
}

function inputSize(net: TextMessage, layers: ProtoLayer[]): number | undefined {
  const dims = nums(msg(net, 'input_shape'), 'dim');
  if (dims.length === 4) return dims[3];
  const legacy = nums(net, 'input_dim');
  if (legacy.length === 4) return legacy[3];
  const input = layers.find((l) => l.type === 'Input');
  const d = nums(msg(msg(input?.m, 'input_param'), 'shape'), 'dim');
  return d.length === 4 ? d[3] : undefined;
}

function labelsFor(numClasses: number): string[] {
  if (numClasses === 21) return withBackground(VOC_CLASSES);
  if (numClasses === 81) return withBackground(COCO_CLASSES);
  return withBackground(Array.from({ length: numClasses - 1 }, (_, i) => `class${i + 1}`));
}

/** The spec a deploy.prototxt describes (trunk checked against the reference plan). */
export function caffeSpec(prototxt: string, where: string): SsdSpec {
  const net = parseTextProto(prototxt, where);
  const layers = protoLayers(net);
  if (layers.length === 0) throw new SsdError(`${where}: no layers (not a Caffe net description)`);
  const byName = new Map(layers.map((l) => [l.name, l]));
  const size = inputSize(net, layers) ?? (byName.has('conv10_2') ? 512 : 300);
  if (size !== 300 && size !== 512) throw new SsdError(`${where}: input ${size}x${size}: only the SSD300 and SSD512 VGG16 layouts are imported`);
  const det = layers.find((l) => l.type === 'DetectionOutput');
  if (!det) throw new SsdError(`${where}: no DetectionOutput layer (is this the deploy prototxt?)`);
  const dp = msg(det.m, 'detection_output_param');
  const numClasses = num(dp, 'num_classes');
  if (!numClasses || numClasses < 2) throw new SsdError(`${where}: DetectionOutput ${det.name} has no num_classes`);
  if (one(dp, 'share_location') === false) throw new SsdError(`${where}: DetectionOutput ${det.name}: share_location false is not supported`);
  if ((num(dp, 'background_label_id', 0)) !== 0) throw new SsdError(`${where}: DetectionOutput ${det.name}: background_label_id must be 0`);
  const code = one(dp, 'code_type');
  if (code !== undefined && code !== 'CENTER_SIZE') throw new SsdError(`${where}: DetectionOutput ${det.name}: code_type ${String(code)} is not supported (CENTER_SIZE only)`);
  if (one(dp, 'variance_encoded_in_target') === true) throw new SsdError(`${where}: DetectionOutput ${det.name}: variance_encoded_in_target is not supported`);

  const base = size === 300 ? ssd300(labelsFor(numClasses)) : ssd512(labelsFor(numClasses));
  const spec: SsdSpec = { ...base, name: `${base.name}-caffe`, sources: base.sources.map((s) => ({ ...s })), maps: base.maps.map((m) => ({ ...m })) };

  // The trunk: every conv of the plan must be in the prototxt with the same parameters.
  for (const l of spec.layers) {
    if (l.kind !== 'conv') continue;
    const p = byName.get(l.name);
    if (!p || p.type !== 'Convolution') throw new SsdError(`${where}: layer ${l.name} (Convolution) is missing; only the reference VGG16 SSD layout is imported`);
    const cp = msg(p.m, 'convolution_param');
    const got = { out: num(cp, 'num_output'), kernel: num(cp, 'kernel_size') ?? num(cp, 'kernel_h'), stride: num(cp, 'stride', 1), pad: num(cp, 'pad', 0), dilation: num(cp, 'dilation', 1) };
    for (const k of ['out', 'kernel', 'stride', 'pad', 'dilation'] as const) {
      if (got[k] !== l[k]) throw new SsdError(`${where}: layer ${l.name}: ${k} ${String(got[k])} in the prototxt, ${l[k]} in the ${size === 300 ? 'SSD300' : 'SSD512'} plan`);
    }
  }

  let clip: boolean | undefined;
  let variances: number[] | undefined;
  spec.sources.forEach((src, i) => {
    const head = src.l2NormScale !== undefined ? `${src.layer}_norm` : src.layer;
    const pb = layers.find((l) => l.type === 'PriorBox' && (l.name === `${head}_mbox_priorbox` || String(one(l.m, 'bottom') ?? '') === head));
    if (!pb) throw new SsdError(`${where}: no PriorBox layer for source ${head} (${head}_mbox_priorbox)`);
    const pp = msg(pb.m, 'prior_box_param');
    const mins = nums(pp, 'min_size');
    const maxs = nums(pp, 'max_size');
    if (mins.length !== 1 || maxs.length !== 1) throw new SsdError(`${where}: PriorBox ${pb.name}: needs exactly one min_size and one max_size (has ${mins.length} and ${maxs.length})`);
    if (one(pp, 'flip') === false) throw new SsdError(`${where}: PriorBox ${pb.name}: flip false is not supported`);
    const offset = num(pp, 'offset', 0.5);
    if (Math.abs(offset! - 0.5) > 1e-9) throw new SsdError(`${where}: PriorBox ${pb.name}: offset ${offset} is not supported (0.5 only)`);
    const ratios: number[] = [];
    for (const r of nums(pp, 'aspect_ratio')) if (Math.abs(r - 1) > 1e-6 && !ratios.some((x) => Math.abs(x - r) < 1e-6)) ratios.push(r);
    const map = spec.maps[i]!;
    const step = num(pp, 'step') ?? (num(pp, 'step_h') === num(pp, 'step_w') ? num(pp, 'step_h') : undefined) ?? size / map.size;
    spec.maps[i] = { ...map, minSize: mins[0]!, maxSize: maxs[0]!, aspectRatios: ratios, step };
    const c = one(pp, 'clip') === true;
    if (clip !== undefined && clip !== c) throw new SsdError(`${where}: PriorBox layers disagree on clip`);
    clip = c;
    const v = nums(pp, 'variance');
    const vv = v.length === 1 ? [v[0]!, v[0]!, v[0]!, v[0]!] : v.length === 4 ? v : v.length === 0 ? [0.1, 0.1, 0.2, 0.2] : undefined;
    if (!vv) throw new SsdError(`${where}: PriorBox ${pb.name}: variance needs 1 or 4 values`);
    if (variances && variances.join() !== vv.join()) throw new SsdError(`${where}: PriorBox layers disagree on variance`);
    variances = vv;
    if (src.l2NormScale !== undefined) {
      const norm = byName.get(head);
      if (!norm || norm.type !== 'Normalize') throw new SsdError(`${where}: layer ${head} (Normalize) is missing`);
      const np = msg(norm.m, 'norm_param');
      if (one(np, 'across_spatial') !== false) throw new SsdError(`${where}: Normalize ${head}: only across_spatial: false is supported`);
      if (one(np, 'channel_shared') === true) throw new SsdError(`${where}: Normalize ${head}: channel_shared is not supported`);
      src.l2NormScale = num(msg(np, 'scale_filler'), 'value', 20);
    }
  });
  spec.clipBoxes = clip ?? false;
  spec.variances = variances as [number, number, number, number];
  const nms = msg(dp, 'nms_param');
  spec.postprocess = {
    confidenceThreshold: num(dp, 'confidence_threshold', 0.01)!,
    nmsThreshold: num(nms, 'nms_threshold', 0.45)!,
    topKPerClass: num(nms, 'top_k', 400)!,
    keepTopK: num(dp, 'keep_top_k', 200)!,
  };
  return validateSpec(spec);
}

function oihwToHwio(t: CaffeBlob, o: number, i: number, h: number, w: number): Float32Array {
  const out = new Float32Array(t.data.length);
  for (let a = 0; a < o; a++) for (let b = 0; b < i; b++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    out[((y * w + x) * i + b) * o + a] = t.data[((a * i + b) * h + y) * w + x]!;
  }
  return out;
}

/** The blob's shape without the legacy 4-D padding (num/channels/height/width of a vector: 1, 1, 1, N). */
function normaliseShape(shape: number[], want: number[]): number[] {
  const s = [...shape];
  while (s.length > want.length && s[0] === 1) s.shift();
  return s;
}

/** A caffemodel + its deploy.prototxt -> spec and canonical weights. */
export function importCaffe(modelBytes: Uint8Array, prototxt: string, modelWhere: string, protoWhere: string): { spec: SsdSpec; weights: WeightMap; unused: string[] } {
  const spec = caffeSpec(prototxt, protoWhere);
  const blobs = readCaffemodel(modelBytes, modelWhere);
  const used = new Set<string>();
  const blob = (layer: string, index: number, want: number[]): CaffeBlob => {
    const b = blobs.get(layer)?.[index];
    if (!b) throw new SsdError(`${modelWhere}: layer ${layer} is missing (or has no blob ${index})`);
    const shape = normaliseShape(b.shape, want);
    if (shape.join('x') !== want.join('x')) throw new SsdError(`${modelWhere}: layer ${layer} blob ${index} has shape [${b.shape}], ${spec.name} wants [${want}]`);
    used.add(layer);
    return b;
  };
  const names = new Map<string, string>();
  spec.sources.forEach((src, i) => {
    const head = src.l2NormScale !== undefined ? `${src.layer}_norm` : src.layer;
    names.set(`loc${i}`, `${head}_mbox_loc`);
    names.set(`conf${i}`, `${head}_mbox_conf`);
    if (src.l2NormScale !== undefined) names.set(`${src.layer}_norm`, head);
  });
  const C = spec.labels.length;
  spec.sources.forEach((_, i) => {
    const conf = blobs.get(names.get(`conf${i}`)!)?.[0];
    const k = boxesPerLocation(spec.maps[i]!);
    if (conf && conf.shape.length && conf.data.length % (k * C) !== 0) throw new SsdError(`${modelWhere}: layer ${names.get(`conf${i}`)} does not have ${k} boxes x ${C} classes of outputs (DetectionOutput num_classes ${C})`);
  });
  const weights: WeightMap = new Map();
  for (const p of paramSpecs(spec)) {
    const [layer, what] = p.name.split('/') as [string, string];
    const caffeName = names.get(layer) ?? layer;
    let t: Tensor;
    if (what === 'kernel') {
      const [kh, kw, ci, co] = p.shape as [number, number, number, number];
      t = { shape: p.shape, data: oihwToHwio(blob(caffeName, 0, [co, ci, kh, kw]), co, ci, kh, kw) };
    } else if (what === 'bias') {
      t = { shape: p.shape, data: blob(caffeName, 1, p.shape).data.slice() };
    } else if (what === 'scale') {
      t = { shape: p.shape, data: blob(caffeName, 0, p.shape).data.slice() };
    } else {
      throw new Error(`unexpected parameter ${p.name} for a Caffe model`);
    }
    weights.set(p.name, t);
  }
  const unused = [...blobs.keys()].filter((k) => !used.has(k));
  return { spec, weights, unused };
}
