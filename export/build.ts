/**
 * buildOnnxModel: spec + weights (or a seeded random init) -> ONNX ModelProto bytes, in memory.
 * Cheap enough for tests to make their models on the fly (ssd-tiny: a few milliseconds).
 */
import type { WeightMap } from '../core/checkpoint.js';
import { SsdError } from '../core/errors.js';
import { outputTensors, type InputLayout, type OutputTensor, type PostprocessMode } from '../core/model-contract.js';
import { metadataToProps, type TrainingInfo } from '../core/model-metadata.js';
import { numClasses, numDefaultBoxes, validateSpec, type SsdSpec } from '../core/specs.js';
import { checkWeights, emitNetwork } from './graph.js';
import { emitInput } from './input-graph.js';
import { OnnxGraph, type Dim } from './onnx-builder.js';
import { emitDecode, emitNms } from './postprocess-graph.js';
import { producerInfo } from './producer.js';
import { randomWeights } from './random-init.js';

export const DEFAULT_OPSET = 17;
export const MIN_OPSET = 13;
export const MAX_OPSET = 18;

export interface BuildOptions {
  spec: SsdSpec;
  /** Canonical WeightMap (e.g. from a checkpoint); omitted = seeded random init. */
  weights?: WeightMap;
  seed?: number;
  /** Default 'float-nchw'. */
  input?: InputLayout;
  /** Default 'decode'. */
  postprocess?: PostprocessMode;
  /** Fixed batch size or 'dynamic' (symbolic dimension "N"). Default 1. */
  batch?: number | 'dynamic';
  /** 13..18, default 17. */
  opset?: number;
  fp16?: boolean;
  /** Detections kept per image in 'nms' mode; default spec.postprocess.keepTopK (200). */
  keepTopK?: number;
  training?: TrainingInfo;
  /** Test hook: keep BatchNormalization nodes instead of folding them. */
  foldBatchNorm?: boolean;
}

export interface BuiltModel {
  bytes: Uint8Array;
  /** The outputs as declared, in graph order (names and shapes: core/model-contract.ts). */
  outputs: OutputTensor[];
  /** Op type -> count. */
  ops: Map<string, number>;
  numPriors: number;
  opset: number;
  keepTopK?: number;
}

export function buildOnnxModel(opts: BuildOptions): Uint8Array {
  return buildOnnxModelInfo(opts).bytes;
}

export function buildOnnxModelInfo(opts: BuildOptions): BuiltModel {
  const spec = validateSpec(opts.spec);
  const opset = opts.opset ?? DEFAULT_OPSET;
  if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) throw new SsdError(`opset ${opset} is not supported (${MIN_OPSET}..${MAX_OPSET})`);
  const batchOpt = opts.batch ?? 1;
  if (batchOpt !== 'dynamic' && (!Number.isInteger(batchOpt) || batchOpt < 1)) throw new SsdError(`batch must be a whole number >= 1 or "dynamic", got ${String(batchOpt)}`);
  const batch: Dim = batchOpt === 'dynamic' ? 'N' : batchOpt;
  const input = opts.input ?? 'float-nchw';
  const postprocess = opts.postprocess ?? 'decode';
  const dtype = opts.fp16 ? 'float16' : 'float';
  const keepTopKOpt = opts.keepTopK ?? spec.postprocess.keepTopK;
  if (!Number.isInteger(keepTopKOpt) || keepTopKOpt < 1) throw new SsdError(`keep-top-k must be a whole number >= 1, got ${keepTopKOpt}`);
  const weights = opts.weights ?? randomWeights(spec, opts.seed ?? 1);
  checkWeights(spec, weights);

  const g = new OnnxGraph(opset);
  const x = emitInput(g, spec, input, batch, dtype);
  const heads = emitNetwork(g, spec, weights, x, { dtype, foldBatchNorm: opts.foldBatchNorm });
  const P = heads.numPriors;
  if (P !== numDefaultBoxes(spec)) throw new Error(`internal: heads give ${P} boxes, default boxes ${numDefaultBoxes(spec)}`);
  const C = numClasses(spec);
  const outputs: OutputTensor[] = [];
  const out = (value: string, o: OutputTensor) => {
    g.output(value, o.name, o.dtype, o.dims);
    outputs.push(o);
  };
  const sizes = { batch, numPriors: P, numClasses: C };
  let keepTopK: number | undefined;
  if (postprocess === 'none') {
    const o = outputTensors('none', sizes);
    out(heads.loc, o.loc);
    out(heads.conf, o.conf);
  } else {
    const dec = emitDecode(g, spec, heads.loc, heads.conf);
    if (postprocess === 'decode') {
      const o = outputTensors('decode', sizes);
      out(dec.boxes, o.boxes);
      out(dec.scores, o.scores);
    } else {
      const nms = emitNms(g, spec, dec.boxes, dec.scores, keepTopKOpt);
      keepTopK = nms.keepTopK;
      const o = outputTensors('nms', { ...sizes, keepTopK });
      out(nms.numDetections, o.numDetections);
      out(nms.boxes, o.boxes);
      out(nms.scores, o.scores);
      out(nms.classes, o.classes);
    }
  }
  const producer = producerInfo();
  const bytes = g.toModel({
    graphName: spec.name,
    producerName: producer.name,
    producerVersion: producer.version,
    docString: `SSD ${spec.name}: input ${input}, postprocess ${postprocess}, ${opts.fp16 ? 'fp16' : 'fp32'}`,
    metadata: metadataToProps({
      spec, inputLayout: input, postprocess, precision: opts.fp16 ? 'fp16' : 'fp32', keepTopK,
      producer: `${producer.name} ${producer.version}`, training: opts.training,
    }),
  });
  return { bytes, outputs, ops: g.opCounts(), numPriors: P, opset, keepTopK };
}
