/**
 * What an exported ONNX model carries in its metadata_props so that the runtime needs no other file:
 * the full spec (input size, mean, labels, default-box configuration, variances, thresholds), the input
 * layout, the postprocess mode baked into the graph, precision, producer and what is known of training.
 * The keys, layouts and modes are part of the model contract (core/model-contract.ts); this module
 * writes and reads the record.
 */
import { SsdError } from './errors.js';
import { INPUT_LAYOUTS, META, META_FORMAT_VERSION, POSTPROCESS_MODES, type InputLayout, type PostprocessMode } from './model-contract.js';
import { validateSpec, type SsdSpec } from './specs.js';

export interface TrainingInfo {
  data?: string;
  iterations?: number;
  metric?: string;
  map?: number;
}

export interface ModelMetadata {
  spec: SsdSpec;
  inputLayout: InputLayout;
  postprocess: PostprocessMode;
  /** int8: a QDQ graph written by `ssd quantize` (its props[META.quantization] say how). */
  precision: 'fp32' | 'fp16' | 'int8';
  /** For postprocess "nms": detections per image kept by the graph. */
  keepTopK?: number;
  producer: string;
  training?: TrainingInfo;
}

export function metadataToProps(m: ModelMetadata): Record<string, string> {
  const props: Record<string, string> = {
    [META.version]: META_FORMAT_VERSION,
    [META.spec]: JSON.stringify(m.spec),
    [META.inputLayout]: m.inputLayout,
    [META.postprocess]: m.postprocess,
    [META.precision]: m.precision,
    [META.producer]: m.producer,
    // Redundant with the spec, but readable by tools that show metadata (Netron, onnx.load).
    [META.labels]: m.spec.labels.join(','),
  };
  if (m.keepTopK !== undefined) props[META.keepTopK] = String(m.keepTopK);
  if (m.training) props[META.training] = JSON.stringify(m.training);
  return props;
}

export function metadataFromProps(props: Record<string, string>, where = 'model'): ModelMetadata {
  if (props[META.version] === undefined || props[META.spec] === undefined) {
    throw new SsdError(`${where}: no SSD metadata (was it written by "ssd export-onnx"?)`);
  }
  if (props[META.version] !== META_FORMAT_VERSION) throw new SsdError(`${where}: SSD metadata version ${props[META.version]} is not supported`);
  let spec: SsdSpec;
  let training: TrainingInfo | undefined;
  try {
    spec = JSON.parse(props[META.spec]!) as SsdSpec;
    training = props[META.training] ? (JSON.parse(props[META.training]!) as TrainingInfo) : undefined;
  } catch (err) {
    throw new SsdError(`${where}: corrupt SSD metadata (${(err as Error).message})`, { cause: err });
  }
  const inputLayout = props[META.inputLayout] as InputLayout;
  if (!INPUT_LAYOUTS.includes(inputLayout)) throw new SsdError(`${where}: metadata ${META.inputLayout} must be one of ${INPUT_LAYOUTS.join(', ')}`);
  const postprocess = props[META.postprocess] as PostprocessMode;
  if (!POSTPROCESS_MODES.includes(postprocess)) throw new SsdError(`${where}: metadata ${META.postprocess} must be one of ${POSTPROCESS_MODES.join(', ')}`);
  const p = props[META.precision];
  const precision = p === 'fp16' || p === 'int8' ? p : 'fp32';
  const keepTopK = props[META.keepTopK] !== undefined ? Number(props[META.keepTopK]) : undefined;
  return { spec: validateSpec(spec), inputLayout, postprocess, precision, keepTopK, producer: props[META.producer] ?? 'unknown', training };
}
