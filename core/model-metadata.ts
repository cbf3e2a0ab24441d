/**
 * What an exported ONNX model carries in its metadata_props so that the runtime needs no other file:
 * the full spec (input size, mean, labels, default-box configuration, variances, thresholds), the input
 * layout, the postprocess mode baked into the graph, precision, producer and what is known of training.
 */
import { SsdError } from './errors.js';
import { validateSpec, type SsdSpec } from './specs.js';

export const INPUT_LAYOUTS = ['float-nchw', 'uint8-nhwc'] as const;
export type InputLayout = (typeof INPUT_LAYOUTS)[number];
export const POSTPROCESS_MODES = ['none', 'decode', 'nms'] as const;
export type PostprocessMode = (typeof POSTPROCESS_MODES)[number];

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
  precision: 'fp32' | 'fp16';
  /** For postprocess "nms": detections per image kept by the graph. */
  keepTopK?: number;
  producer: string;
  training?: TrainingInfo;
}

/** metadata_props keys. */
export const META = {
  version: 'ssd.format_version',
  spec: 'ssd.spec',
  inputLayout: 'ssd.input_layout',
  postprocess: 'ssd.postprocess',
  precision: 'ssd.precision',
  keepTopK: 'ssd.keep_top_k',
  producer: 'ssd.producer',
  training: 'ssd.training',
  labels: 'ssd.labels',
} as const;

export function metadataToProps(m: ModelMetadata): Record<string, string> {
  const props: Record<string, string> = {
    [META.version]: '1',
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
  if (props[META.version] !== '1') throw new SsdError(`${where}: SSD metadata version ${props[META.version]} is not supported`);
  let spec: SsdSpec;
  let training: TrainingInfo | undefined;
  try {
    spec = JSON.parse(props[META.spec]!) as SsdSpec;
    training = props[META.training] ? (JSON.parse(props[META.training]!) as TrainingInfo) : undefined;
  } catch (err) {
    throw new SsdError(`${where}: corrupt SSD metadata (${(err as Error).message})`);
  }
  const inputLayout = props[META.inputLayout] as InputLayout;
  if (!INPUT_LAYOUTS.includes(inputLayout)) throw new SsdError(`${where}: metadata ${META.inputLayout} must be one of ${INPUT_LAYOUTS.join(', ')}`);
  const postprocess = props[META.postprocess] as PostprocessMode;
  if (!POSTPROCESS_MODES.includes(postprocess)) throw new SsdError(`${where}: metadata ${META.postprocess} must be one of ${POSTPROCESS_MODES.join(', ')}`);
  const precision = props[META.precision] === 'fp16' ? 'fp16' : 'fp32';
  const keepTopK = props[META.keepTopK] !== undefined ? Number(props[META.keepTopK]) : undefined;
  return { spec: validateSpec(spec), inputLayout, postprocess, precision, keepTopK, producer: props[META.producer] ?? 'unknown', training };
}
