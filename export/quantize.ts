/**
 * Post-training INT8 quantization of an exported SSD (or any float ONNX graph of the same kind) as a
 * QDQ graph: QuantizeLinear/DequantizeLinear pairs around the tensors whose ops run in int8, which is
 * what onnxruntime's CPU provider fuses into QLinearConv/int8 MaxPool and what TensorRT's explicit
 * quantization takes. Three steps, calibration run by the caller in between:
 *
 *   const plan = planQuantization(bytes);                  // which tensors need a range
 *   const probe = calibrationModel(plan);                  // the graph with those tensors as outputs
 *   ... run `probe` on calibration images, collector.add(name, values) for each plan.tensors ...
 *   const int8 = quantizeModel(plan, collector.ranges(), { ... });
 *
 * What is quantized (docs/quantize.md):
 * - Every Conv (PlanOptions.heads false: only those whose output, through an optional Relu, feeds
 *   another Conv or a MaxPool, i.e. the trunk; the heads' convs then stay float). Weights
 *   per output channel, symmetric int8 (zero point 0: what onnxruntime's U8S8 kernels and TensorRT
 *   want); bias int32 at input scale x weight scale (onnxruntime fuses only then); the activation
 *   input and the (post-Relu) output through Q/DQ. With uint8 activations the Relu is dropped: its
 *   output's range starts at 0, so zero point 0 clamps negatives exactly as the Relu would, and
 *   onnxruntime fuses Conv+Relu into one QLinearConv. With int8 activations (TensorRT) it is kept.
 * - MaxPool: its output takes its input's scale and zero point (max commutes with a monotone
 *   quantizer, and onnxruntime runs it on uint8 only then).
 * - Everything else stays float: L2Norm, the heads' outputs (each head conv's output is dequantized
 *   at once: loc/conf, their reshapes and concatenation are float), softmax, decode and NMS.
 *
 * fp16 sources are widened to fp32 first (QuantizeLinear takes float16 only from opset 19).
 * Names of the new tensors are made unique against the whole graph, so models whose initializers
 * already end in `_scale` (exports before issue 13: `conv4_3_norm_scale`) quantize too.
 */
import onnxProto from 'onnx-proto';
import { SsdError } from '../core/errors.js';
import { META } from '../core/model-contract.js';
import { fromFloat16Bits } from './fp16.js';

const { onnx } = onnxProto;
type ModelProto = onnxProto.onnx.ModelProto;
type INodeProto = onnxProto.onnx.INodeProto;
type ITensorProto = onnxProto.onnx.ITensorProto;
type IGraphProto = onnxProto.onnx.IGraphProto;
type IValueInfoProto = onnxProto.onnx.IValueInfoProto;

const DT = { float: 1, uint8: 2, int8: 3, int32: 6, float16: 10 } as const;

export const CALIBRATION_METHODS = ['minmax', 'percentile', 'entropy'] as const;
export type CalibrationMethod = (typeof CALIBRATION_METHODS)[number];
/** uint8 (asymmetric, onnxruntime CPU: the fast VNNI path) or int8 (symmetric, TensorRT/DLA). */
export type ActivationType = 'uint8' | 'int8';

export interface QuantizationPlan {
  /** The float (fp16 widened) model the plan is for. */
  model: ModelProto;
  /** Activations whose range calibration must measure, in graph order. */
  tensors: string[];
  /** Convs that run in int8 (by node index) and the Relu each one absorbs (uint8 only). */
  convs: number[];
  maxPools: number[];
  /** Precision of the source ('fp32' or 'fp16'), for the metadata. */
  source: 'fp32' | 'fp16';
  /** Whether the heads' convs run in int8 (PlanOptions.heads). */
  heads: 'int8' | 'float';
}

export interface Range { min: number; max: number }

export interface PlanOptions {
  /**
   * Run the prediction heads' convs in int8 too (default true): their outputs are quantized once (to
   * the calibrated range) and dequantized at once, so loc/conf, softmax, decode and NMS still run in
   * float. false keeps those convs float (float weights on the dequantized features): ~10% slower on
   * SSD300 on the CPU, a little more exact.
   */
  heads?: boolean;
}

export interface QuantizeOptions {
  activations?: ActivationType;
  /** What goes into the model's ssd.quantization metadata. */
  method: CalibrationMethod;
  calibration: string;
  images: number;
}

export interface QuantizeResult {
  bytes: Uint8Array;
  /** Nodes by kind, for the summary line. */
  quantizedConvs: number;
  quantizedMaxPools: number;
  floatConvs: number;
}

// ---- reading the graph ---------------------------------------------------------------------------

function decode(bytes: Uint8Array, where: string): ModelProto {
  try {
    const m = onnx.ModelProto.decode(bytes);
    if (!m.graph) throw new Error('no graph');
    return m;
  } catch (err) {
    throw new SsdError(`${where}: not an ONNX model (${(err as Error).message.split('\n')[0]})`);
  }
}

function opsetOf(m: ModelProto): number {
  const d = m.opsetImport.find((o) => !o.domain || o.domain === 'ai.onnx');
  return Number(d?.version ?? 0);
}

function rawBytes(t: ITensorProto): Uint8Array | undefined {
  const r = t.rawData;
  return r && r.length ? r : undefined;
}

/** A float32 or float16 initializer's values as float32. */
export function floatValues(t: ITensorProto): Float32Array {
  const raw = rawBytes(t);
  if (t.dataType === DT.float) {
    if (raw) return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    return Float32Array.from(t.floatData ?? []);
  }
  if (t.dataType === DT.float16) {
    // float16 without raw_data is stored in int32_data, one value per element.
    const bits = raw ? new Uint16Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)) : Uint16Array.from(t.int32Data ?? []);
    return fromFloat16Bits(bits);
  }
  throw new Error(`tensor ${t.name} is not float (data type ${t.dataType})`);
}

function floatInit(name: string, dims: number[], values: Float32Array): ITensorProto {
  return { name, dataType: DT.float, dims, rawData: new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength)) };
}

function typedInit(name: string, dataType: number, dims: number[], data: Int8Array | Uint8Array | Int32Array): ITensorProto {
  return { name, dataType, dims, rawData: new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)) };
}

/**
 * fp16 -> fp32 in place: float16 initializers and Constant values become float32, Casts to float16
 * become Casts to float32 (no-ops), and declared types follow. The graph's interface is float32 or
 * uint8 in our exports either way (the fp16 graph casts after its input and before its outputs).
 */
function widenFp16(g: IGraphProto): boolean {
  let changed = false;
  for (const t of g.initializer ?? []) {
    if (t.dataType !== DT.float16) continue;
    const v = floatValues(t);
    Object.assign(t, floatInit(t.name ?? '', (t.dims ?? []).map(Number), v), { int32Data: [] });
    changed = true;
  }
  for (const n of g.node ?? []) {
    for (const a of n.attribute ?? []) {
      if (n.opType === 'Cast' && a.name === 'to' && Number(a.i) === DT.float16) { a.i = DT.float; changed = true; }
      if (a.t && a.t.dataType === DT.float16) {
        Object.assign(a.t, floatInit(a.t.name ?? '', (a.t.dims ?? []).map(Number), floatValues(a.t)), { int32Data: [] });
        changed = true;
      }
    }
  }
  const fix = (v: IValueInfoProto) => {
    const tt = v.type?.tensorType;
    if (tt && tt.elemType === DT.float16) { tt.elemType = DT.float; changed = true; }
  };
  [...(g.input ?? []), ...(g.output ?? []), ...(g.valueInfo ?? [])].forEach(fix);
  return changed;
}

interface GraphIndex {
  inits: Map<string, ITensorProto>;
  consumers: Map<string, number[]>;
  producer: Map<string, number>;
  outputs: Set<string>;
}

function indexGraph(g: IGraphProto): GraphIndex {
  const inits = new Map((g.initializer ?? []).map((t) => [t.name ?? '', t]));
  const consumers = new Map<string, number[]>();
  const producer = new Map<string, number>();
  (g.node ?? []).forEach((n, i) => {
    for (const x of n.input ?? []) if (x) consumers.set(x, [...(consumers.get(x) ?? []), i]);
    for (const y of n.output ?? []) producer.set(y, i);
  });
  return { inits, consumers, producer, outputs: new Set((g.output ?? []).map((o) => o.name ?? '')) };
}

const isFloatInit = (idx: GraphIndex, name: string | undefined): boolean => {
  const t = name ? idx.inits.get(name) : undefined;
  return !!t && t.dataType === DT.float;
};

/** The Relu a Conv's output goes through alone, if any (its index). */
function soleRelu(g: IGraphProto, idx: GraphIndex, convIndex: number): number | undefined {
  const y = g.node![convIndex]!.output![0]!;
  const cs = idx.consumers.get(y) ?? [];
  if (cs.length !== 1 || idx.outputs.has(y)) return undefined;
  return g.node![cs[0]!]!.opType === 'Relu' ? cs[0] : undefined;
}

/** A Conv's output after its Relu (if it has one alone). */
function convResult(g: IGraphProto, idx: GraphIndex, convIndex: number): string {
  const r = soleRelu(g, idx, convIndex);
  return r === undefined ? g.node![convIndex]!.output![0]! : g.node![r]!.output![0]!;
}

/**
 * Which Convs and MaxPools run in int8 and which activations need a measured range. `bytes` is an
 * fp32 or fp16 ONNX model (opset >= 13: per-channel DequantizeLinear). A Conv whose output feeds no
 * Conv or MaxPool is a head: int8 unless `opts.heads` is false.
 */
export function planQuantization(bytes: Uint8Array, where = 'model', opts: PlanOptions = {}): QuantizationPlan {
  const model = decode(bytes, where);
  const opset = opsetOf(model);
  if (opset < 13) throw new SsdError(`${where}: opset ${opset}; quantization needs opset >= 13 (per-channel DequantizeLinear): re-export with --opset 13 or later`);
  const g = model.graph!;
  const nodes = g.node ?? [];
  if (nodes.some((n) => n.opType === 'QuantizeLinear' || n.opType === 'DequantizeLinear' || n.opType === 'QLinearConv')) {
    throw new SsdError(`${where}: is already quantized`);
  }
  const source = widenFp16(g) ? 'fp16' : 'fp32';
  const idx = indexGraph(g);
  const feedsInt8Op = (t: string) => (idx.consumers.get(t) ?? []).some((c) => nodes[c]!.opType === 'Conv' || nodes[c]!.opType === 'MaxPool');
  const convs: number[] = [];
  const maxPools: number[] = [];
  nodes.forEach((n, i) => {
    if (n.opType === 'Conv' && isFloatInit(idx, n.input?.[1]) && (n.input?.[2] === undefined || n.input[2] === '' || isFloatInit(idx, n.input[2]))) {
      const w = idx.inits.get(n.input![1]!)!;
      if ((w.dims ?? []).length !== 4) return;
      if ((opts.heads ?? true) || feedsInt8Op(convResult(g, idx, i))) convs.push(i);
    } else if (n.opType === 'MaxPool' && (n.output ?? []).length === 1) {
      maxPools.push(i);
    }
  });
  // Ranges come from calibration for every quantized tensor except MaxPool outputs (they inherit).
  const pooled = new Set(maxPools.map((i) => nodes[i]!.output![0]!));
  const need: string[] = [];
  const add = (t: string) => { if (!pooled.has(t) && !need.includes(t)) need.push(t); };
  for (const i of [...convs, ...maxPools].sort((a, b) => a - b)) {
    const n = nodes[i]!;
    add(n.input![0]!);
    if (n.opType === 'Conv') add(convResult(g, idx, i));
  }
  return { model, tensors: need, convs, maxPools, source, heads: (opts.heads ?? true) ? 'int8' : 'float' };
}

/** The plan's model with every tensor to calibrate added as a graph output (float, shape left open). */
export function calibrationModel(plan: QuantizationPlan): Uint8Array {
  const m = onnx.ModelProto.decode(onnx.ModelProto.encode(plan.model).finish());
  const g = m.graph!;
  const outputs = g.output ?? (g.output = []);
  const have = new Set(outputs.map((o) => o.name));
  for (const t of plan.tensors) {
    if (have.has(t)) continue;
    outputs.push(onnx.ValueInfoProto.create({ name: t, type: { tensorType: { elemType: DT.float } } }));
  }
  return onnx.ModelProto.encode(m).finish();
}

// ---- calibration statistics ---------------------------------------------------------------------

const HIST_BINS = 2048;
/** Percentile kept by 'percentile' (onnxruntime's default, 99.999). */
export const DEFAULT_PERCENTILE = 99.999;

/** min, max and a histogram of |x| over [0, range] that doubles its range when a value exceeds it. */
class TensorStats {
  min = Infinity;
  max = -Infinity;
  range = 0;
  count = 0;
  readonly hist = new Float64Array(HIST_BINS);

  add(x: Float32Array, histogram: boolean): void {
    let mn = this.min, mx = this.max;
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      if (v < mn) mn = v;
      if (v > mx) mx = v;
    }
    if (!(Number.isFinite(mn) && Number.isFinite(mx))) throw new SsdError('calibration: the model produced a non-finite activation');
    this.min = mn; this.max = mx;
    if (!histogram) return;
    const absMax = Math.max(Math.abs(mn), Math.abs(mx));
    if (this.range === 0) this.range = absMax > 0 ? absMax : 1;
    while (absMax > this.range) this.doubleRange();
    const k = HIST_BINS / this.range;
    const h = this.hist;
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      const b = Math.floor((v < 0 ? -v : v) * k);
      h[b < HIST_BINS ? b : HIST_BINS - 1]!++;
    }
    this.count += x.length;
  }

  /** Range x2: bins 2i and 2i+1 merge into bin i. */
  private doubleRange(): void {
    const h = this.hist;
    for (let i = 0; i < HIST_BINS / 2; i++) h[i] = h[2 * i]! + h[2 * i + 1]!;
    h.fill(0, HIST_BINS / 2);
    this.range *= 2;
  }
}

/** The |x| below which `percentile` % of the values lie (upper edge of that bin). */
function percentileThreshold(s: TensorStats, percentile: number): number {
  const target = (s.count * percentile) / 100;
  let acc = 0;
  for (let b = 0; b < HIST_BINS; b++) {
    acc += s.hist[b]!;
    if (acc >= target) return ((b + 1) * s.range) / HIST_BINS;
  }
  return s.range;
}

/**
 * TensorRT's entropy calibration (as onnxruntime's 'entropy' does it): the clip threshold whose
 * `levels`-level quantized distribution is closest (KL divergence) to the measured one. The first bin
 * (|x| ~ 0: a ReLU's zeros, often half the values) is left out of the divergence: 0 is exact at any
 * threshold, and its weight would otherwise pull the threshold far in.
 */
function entropyThreshold(s: TensorStats, levels: number): number {
  const h = s.hist;
  const total = h.reduce((a, b) => a + b, 0);
  if (total === 0) return s.range;
  let bestKl = Infinity, bestI = HIST_BINS;
  for (let i = levels; i <= HIST_BINS; i += 16) {
    // p: the first i bins, the outliers folded into the last one.
    const p = new Float64Array(i);
    for (let b = 0; b < i; b++) p[b] = h[b]!;
    let outliers = 0;
    for (let b = i; b < HIST_BINS; b++) outliers += h[b]!;
    p[i - 1]! += outliers;
    // q: p squeezed into `levels` bins, spread back over the non-empty bins of each.
    const q = new Float64Array(i);
    const per = i / levels;
    for (let l = 0; l < levels; l++) {
      const a = Math.floor(l * per), z = l === levels - 1 ? i : Math.floor((l + 1) * per);
      let sum = 0, nonEmpty = 0;
      for (let b = a; b < z; b++) { sum += h[b]!; if (h[b]! > 0) nonEmpty++; }
      if (nonEmpty === 0) continue;
      for (let b = a; b < z; b++) if (h[b]! > 0) q[b] = sum / nonEmpty;
    }
    let ps = 0, qs = 0;
    for (let b = 1; b < i; b++) { ps += p[b]!; qs += q[b]!; }
    if (ps === 0 || qs === 0) continue;
    let kl = 0;
    for (let b = 1; b < i; b++) {
      const pb = p[b]! / ps;
      if (pb === 0) continue;
      const qb = q[b]! / qs;
      kl += qb > 0 ? pb * Math.log(pb / qb) : pb * 20; // a bin q cannot express costs a lot
    }
    if (kl < bestKl) { bestKl = kl; bestI = i; }
  }
  return (bestI * s.range) / HIST_BINS;
}

/** Collects activation statistics over calibration runs and turns them into ranges. */
export class RangeCollector {
  private readonly stats = new Map<string, TensorStats>();

  /**
   * `levels`: quantization levels over [0, threshold] that 'entropy' fits: 256 for uint8 activations
   * (all of [0, max] after a ReLU), 128 for symmetric int8.
   */
  constructor(readonly method: CalibrationMethod, readonly percentile = DEFAULT_PERCENTILE, readonly levels = 256) {}

  add(name: string, values: Float32Array): void {
    let s = this.stats.get(name);
    if (!s) { s = new TensorStats(); this.stats.set(name, s); }
    s.add(values, this.method !== 'minmax');
  }

  ranges(): Map<string, Range> {
    const out = new Map<string, Range>();
    for (const [name, s] of this.stats) {
      if (this.method === 'minmax' || s.count === 0) { out.set(name, { min: s.min, max: s.max }); continue; }
      const t = this.method === 'percentile' ? percentileThreshold(s, this.percentile) : entropyThreshold(s, this.levels);
      out.set(name, { min: Math.max(s.min, -t), max: Math.min(s.max, t) });
    }
    return out;
  }
}

// ---- writing the QDQ graph ----------------------------------------------------------------------

export interface QParams { scale: number; zeroPoint: number; type: ActivationType }

/** Scale and zero point of an activation range (widened to hold 0, as every quantizer does). */
export function activationParams(r: Range, type: ActivationType): QParams {
  const lo = Math.min(0, r.min), hi = Math.max(0, r.max);
  if (type === 'int8') {
    const m = Math.max(-lo, hi);
    return { scale: m > 0 ? m / 127 : 1, zeroPoint: 0, type };
  }
  if (hi === lo) return { scale: 1, zeroPoint: 0, type };
  const scale = (hi - lo) / 255;
  return { scale, zeroPoint: Math.min(255, Math.max(0, Math.round(-lo / scale))), type };
}

/** Per-output-channel symmetric int8 of an [O, ...] weight. */
export function quantizeWeightsPerChannel(w: Float32Array, outChannels: number): { q: Int8Array; scales: Float32Array } {
  const per = w.length / outChannels;
  const q = new Int8Array(w.length);
  const scales = new Float32Array(outChannels);
  for (let o = 0; o < outChannels; o++) {
    let m = 0;
    for (let i = o * per; i < (o + 1) * per; i++) m = Math.max(m, Math.abs(w[i]!));
    const s = m > 0 ? m / 127 : 1;
    scales[o] = s;
    for (let i = o * per; i < (o + 1) * per; i++) q[i] = Math.max(-127, Math.min(127, Math.round(w[i]! / s)));
  }
  return { q, scales };
}

/** Writes the QDQ model. `ranges` must hold every tensor of plan.tensors. */
export function quantizeModel(plan: QuantizationPlan, ranges: ReadonlyMap<string, Range>, opts: QuantizeOptions): QuantizeResult {
  const type = opts.activations ?? 'uint8';
  const m = onnx.ModelProto.decode(onnx.ModelProto.encode(plan.model).finish());
  const g = m.graph!;
  const nodes = g.node!;
  const idx = indexGraph(g);
  const missing = plan.tensors.filter((t) => !ranges.has(t));
  if (missing.length) throw new SsdError(`quantize: no calibration range for ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ` and ${missing.length - 3} more` : ''}`);

  // Unique names for everything added.
  const used = new Set<string>();
  for (const n of nodes) { used.add(n.name ?? ''); for (const x of [...(n.input ?? []), ...(n.output ?? [])]) used.add(x); }
  for (const t of g.initializer ?? []) used.add(t.name ?? '');
  for (const v of [...(g.input ?? []), ...(g.output ?? []), ...(g.valueInfo ?? [])]) used.add(v.name ?? '');
  const fresh = (hint: string) => { let n = hint, k = 0; while (used.has(n)) n = `${hint}_${++k}`; used.add(n); return n; };

  // Quantization parameters of every int8 tensor, MaxPool outputs inheriting in graph order.
  const params = new Map<string, QParams>();
  for (const t of plan.tensors) params.set(t, activationParams(ranges.get(t)!, type));
  for (const i of plan.maxPools) {
    const n = nodes[i]!;
    const p = params.get(n.input![0]!);
    if (p) params.set(n.output![0]!, p);
  }

  // uint8: Conv absorbs its Relu (zero point 0 at the Relu output's range clamps the same way).
  const removed = new Set<number>();
  if (type === 'uint8') {
    for (const i of plan.convs) {
      const r = soleRelu(g, idx, i);
      if (r === undefined) continue;
      const reluOut = nodes[r]!.output![0]!;
      const p = params.get(reluOut);
      // A graph output must keep its ReLU: it is read as it is, not through the quantizer.
      if (!p || p.zeroPoint !== 0 || idx.outputs.has(reluOut)) continue;
      nodes[i]!.output![0] = reluOut;
      removed.add(r);
    }
  }

  const newInits: ITensorProto[] = [];
  const qdqBefore = new Map<number, INodeProto[]>(); // node index -> nodes to place before it
  const place = (at: number, n: INodeProto) => qdqBefore.set(at, [...(qdqBefore.get(at) ?? []), n]);
  const paramInits = new Map<string, { scale: string; zp: string }>();
  const paramsFor = (t: string, p: QParams) => {
    let e = paramInits.get(t);
    if (!e) {
      e = { scale: fresh(`${t}_qscale`), zp: fresh(`${t}_qzero`) };
      newInits.push(floatInit(e.scale, [], Float32Array.of(p.scale)));
      newInits.push(p.type === 'uint8' ? typedInit(e.zp, DT.uint8, [], Uint8Array.of(p.zeroPoint)) : typedInit(e.zp, DT.int8, [], Int8Array.of(p.zeroPoint)));
      paramInits.set(t, e);
    }
    return e;
  };

  // Convs: int8 weights, int32 bias.
  for (const i of plan.convs) {
    const n = nodes[i]!;
    const x = n.input![0]!;
    const px = params.get(x);
    if (!px) throw new Error(`internal: conv input ${x} has no parameters`);
    const wT = idx.inits.get(n.input![1]!)!;
    const dims = (wT.dims ?? []).map(Number);
    const { q, scales } = quantizeWeightsPerChannel(floatValues(wT), dims[0]!);
    const wq = fresh(`${wT.name}_int8`), ws = fresh(`${wT.name}_wscale`), wz = fresh(`${wT.name}_wzero`), wd = fresh(`${wT.name}_dequant`);
    newInits.push(typedInit(wq, DT.int8, dims, q), floatInit(ws, [dims[0]!], scales), typedInit(wz, DT.int8, [dims[0]!], new Int8Array(dims[0]!)));
    place(i, { opType: 'DequantizeLinear', name: fresh(`${wd}_node`), input: [wq, ws, wz], output: [wd], attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 }] });
    n.input![1] = wd;
    const bName = n.input![2];
    if (bName) {
      const b = floatValues(idx.inits.get(bName)!);
      const bs = new Float32Array(b.length);
      const bq = new Int32Array(b.length);
      for (let c = 0; c < b.length; c++) {
        bs[c] = px.scale * scales[c]!;
        bq[c] = Math.max(-2147483647, Math.min(2147483647, Math.round(b[c]! / bs[c]!)));
      }
      const bqn = fresh(`${bName}_int32`), bsn = fresh(`${bName}_bscale`), bzn = fresh(`${bName}_bzero`), bd = fresh(`${bName}_dequant`);
      newInits.push(typedInit(bqn, DT.int32, [b.length], bq), floatInit(bsn, [b.length], bs), typedInit(bzn, DT.int32, [b.length], new Int32Array(b.length)));
      place(i, { opType: 'DequantizeLinear', name: fresh(`${bd}_node`), input: [bqn, bsn, bzn], output: [bd], attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 }] });
      n.input![2] = bd;
    }
  }

  // Activations: one QuantizeLinear after the producer, one DequantizeLinear per consumer (what
  // onnxruntime's node-unit matching wants; TensorRT folds them the same).
  const producerAt = new Map<string, number>();
  nodes.forEach((n, i) => { if (!removed.has(i)) for (const y of n.output ?? []) producerAt.set(y, i); });
  const after = new Map<number, INodeProto[]>(); // nodes to place after node i (-1: at the start)
  const placeAfter = (at: number, n: INodeProto) => after.set(at, [...(after.get(at) ?? []), n]);
  const consumersNow = new Map<string, number[]>();
  nodes.forEach((n, i) => { if (!removed.has(i)) for (const x of n.input ?? []) if (x) consumersNow.set(x, [...(consumersNow.get(x) ?? []), i]); });
  for (const [t, p] of params) {
    const { scale, zp } = paramsFor(t, p);
    const tq = fresh(`${t}_quantized`);
    placeAfter(producerAt.get(t) ?? -1, { opType: 'QuantizeLinear', name: fresh(`${t}_QuantizeLinear`), input: [t, scale, zp], output: [tq] });
    for (const c of consumersNow.get(t) ?? []) {
      const td = fresh(`${t}_dequantized`);
      place(c, { opType: 'DequantizeLinear', name: fresh(`${t}_DequantizeLinear`), input: [tq, scale, zp], output: [td] });
      const ins = nodes[c]!.input!;
      for (let k = 0; k < ins.length; k++) if (ins[k] === t) ins[k] = td;
    }
  }

  // Reassemble in an order that stays topological: Q right after its producer, DQs right before their consumer.
  const out: INodeProto[] = [...(after.get(-1) ?? [])];
  nodes.forEach((n, i) => {
    if (removed.has(i)) return;
    out.push(...(qdqBefore.get(i) ?? []), n, ...(after.get(i) ?? []));
  });
  g.node = out;
  // Float weights that only the int8 convs used are gone.
  const stillUsed = new Set(out.flatMap((n) => n.input ?? []));
  g.initializer = [...(g.initializer ?? []).filter((t) => stillUsed.has(t.name ?? '')), ...newInits];
  if (g.input) g.input = g.input.filter((v) => !idx.inits.has(v.name ?? '') || stillUsed.has(v.name ?? ''));
  g.valueInfo = [];

  const props = new Map(m.metadataProps.map((p) => [p.key ?? '', p.value ?? '']));
  props.set(META.precision, 'int8');
  props.set(META.quantization, JSON.stringify({
    method: opts.method, activations: type, weights: 'int8 per-channel symmetric', heads: plan.heads, calibration: opts.calibration, images: opts.images, source: plan.source,
  }));
  m.metadataProps = [...props].map(([key, value]) => onnx.StringStringEntryProto.create({ key, value }));
  m.docString = `${m.docString ?? ''}${m.docString ? '; ' : ''}INT8 QDQ (${type} activations, ${opts.method} calibration on ${opts.calibration})`;
  return {
    bytes: onnx.ModelProto.encode(m).finish(),
    quantizedConvs: plan.convs.length,
    quantizedMaxPools: plan.maxPools.filter((i) => params.has(nodes[i]!.output![0]!)).length,
    floatConvs: nodes.filter((n) => n.opType === 'Conv').length - plan.convs.length,
  };
}
