/**
 * The model contract: what `ssd export-onnx` writes into a model and what everything that runs one
 * (runtime/detector.ts, export/verify.ts, the deployed runtime) relies on. The one home of
 *  - the input: its name, layouts and, per layout, tensor type and shape;
 *  - the outputs of each postprocess mode: names, element types, shapes;
 *  - the metadata_props keys (the record they carry and its (de)serialisation: core/model-metadata.ts);
 *  - the detection types, each named after the convention of its box.
 *
 * Box conventions, all [x1, y1, x2, y2]:
 *  - Norm: fractions of the network input, [0, 1] (the graph's `boxes` and `detection_boxes`, core/nms);
 *  - Pixels: continuous pixel coordinates of the original image, 0-based, x2 exclusive: a box over a
 *    whole W x H image is [0, 0, W, H]. What the runtime returns and COCO results hold ([x, y, w, h]).
 *  - VOC's 1-based inclusive pixel indices (the same box is [1, 1, W, H]) are VOC's file format: VOC
 *    XML annotations and comp4 results files, and the ground truth and detections scored against
 *    it (see DetectionAnnotationXYXY). `vocToPixels` / `pixelsToVoc` convert at those files.
 */

/** [x1, y1, x2, y2]; which pixels the numbers mean is in the name of the type that holds it. */
export type BoxXYXY = [number, number, number, number];

// ---- input -------------------------------------------------------------------------------------

/** The model's single input. */
export const INPUT_NAME = 'images';

/**
 * float-nchw: float32 [N, 3, S, S], the network's channel order, mean subtracted.
 * uint8-nhwc: uint8 [N, S, S, 3], RGB pixels; the graph casts, reorders and subtracts the mean.
 */
export const INPUT_LAYOUTS = ['float-nchw', 'uint8-nhwc'] as const;
export type InputLayout = (typeof INPUT_LAYOUTS)[number];

/** A dimension: a size, or a symbolic name ("N" for a dynamic batch). */
export type Dim = number | string;

/** Element type and shape of the input tensor for a layout and input size S. */
export function inputTensor(layout: InputLayout, inputSize: number, batch: Dim): { type: 'float32' | 'uint8'; dims: Dim[] } {
  const S = inputSize;
  return layout === 'float-nchw' ? { type: 'float32', dims: [batch, 3, S, S] } : { type: 'uint8', dims: [batch, S, S, 3] };
}

// ---- outputs -----------------------------------------------------------------------------------

/**
 * How much postprocessing the graph does: none (raw heads), decode (boxes and softmax scores, NMS
 * left to the runtime) or nms (SSD's detection output, padded to keepTopK).
 */
export const POSTPROCESS_MODES = ['none', 'decode', 'nms'] as const;
export type PostprocessMode = (typeof POSTPROCESS_MODES)[number];

/**
 * Output names per postprocess mode, by role:
 *  none:   loc [N, P, 4] box offsets (SSD encoding, variances applied by the decoder), conf [N, P, C] logits;
 *  decode: boxes [N, P, 4] NormXYXY, unclipped; scores [N, P, C] softmax;
 *  nms:    num_detections [N] int32; detection_boxes [N, K, 4] NormXYXY clipped to [0, 1];
 *          detection_scores [N, K]; detection_classes [N, K] int32, 1..C-1 (padding rows: score 0, class 0).
 * P default boxes, C classes with background at 0, K = keepTopK.
 */
export const OUTPUTS = {
  none: { loc: 'loc', conf: 'conf' },
  decode: { boxes: 'boxes', scores: 'scores' },
  nms: { numDetections: 'num_detections', boxes: 'detection_boxes', scores: 'detection_scores', classes: 'detection_classes' },
} as const satisfies Record<PostprocessMode, Record<string, string>>;

export type OutputRole<M extends PostprocessMode> = keyof (typeof OUTPUTS)[M];

/** The output names of a mode, in the graph's order. */
export function outputNames(mode: PostprocessMode): string[] {
  return Object.values(OUTPUTS[mode]);
}

export interface OutputTensor {
  name: string;
  /** ONNX element type. */
  dtype: 'float' | 'int32';
  dims: Dim[];
}

export interface OutputSizes {
  batch: Dim;
  /** P, the default boxes. */
  numPriors: number;
  /** C, classes with background. */
  numClasses: number;
  /** K, detections per image (nms only). */
  keepTopK?: number;
}

/** Name, element type and shape of each output of a mode (what the exporter declares, the runtime checks). */
export function outputTensors<M extends PostprocessMode>(mode: M, s: OutputSizes): Record<OutputRole<M>, OutputTensor> {
  const { batch: N, numPriors: P, numClasses: C } = s;
  const t = (name: string, dtype: OutputTensor['dtype'], dims: Dim[]): OutputTensor => ({ name, dtype, dims });
  let out: Record<string, OutputTensor>;
  if (mode === 'none') {
    out = { loc: t(OUTPUTS.none.loc, 'float', [N, P, 4]), conf: t(OUTPUTS.none.conf, 'float', [N, P, C]) };
  } else if (mode === 'decode') {
    out = { boxes: t(OUTPUTS.decode.boxes, 'float', [N, P, 4]), scores: t(OUTPUTS.decode.scores, 'float', [N, P, C]) };
  } else {
    if (s.keepTopK === undefined) throw new RangeError('outputTensors: nms needs keepTopK');
    const K = s.keepTopK;
    out = {
      numDetections: t(OUTPUTS.nms.numDetections, 'int32', [N]),
      boxes: t(OUTPUTS.nms.boxes, 'float', [N, K, 4]),
      scores: t(OUTPUTS.nms.scores, 'float', [N, K]),
      classes: t(OUTPUTS.nms.classes, 'int32', [N, K]),
    };
  }
  return out as Record<OutputRole<M>, OutputTensor>;
}

/** outputTensors as a list in the graph's order, for any mode. */
export function outputTensorList(mode: PostprocessMode, s: OutputSizes): OutputTensor[] {
  return Object.values(outputTensors(mode, s) as Record<string, OutputTensor>);
}

// ---- metadata ----------------------------------------------------------------------------------

/** metadata_props keys (values: core/model-metadata.ts metadataToProps). */
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
  /** int8 models (ssd quantize): JSON {method, activations, weights, calibration, images, source}. */
  quantization: 'ssd.quantization',
} as const;

/** The only ssd.format_version written and read. */
export const META_FORMAT_VERSION = '1';

// ---- detections --------------------------------------------------------------------------------

/** A detection on an image as the runtime returns it: box in Pixels of the original (EXIF-oriented) image. */
export interface DetectionPixelsXYXY {
  label: string;
  /** Index into the model's labels (0 = background, never returned). */
  classId: number;
  score: number;
  /** Continuous 0-based pixels: [0, 0, W, H] is the whole image. */
  box: BoxXYXY;
}

/**
 * A detection scored against a ground truth (ssd eval, validation, results files): box in the pixel
 * convention of that ground truth's annotations, as its objects' boxes are. VOC ground truth (VOC XML,
 * the digits data; `usesVocPixels` in core/datasets/results.ts): VOC's 1-based inclusive indices.
 * COCO ground truth: Pixels.
 */
export interface DetectionAnnotationXYXY {
  /** The ground truth's sample id ("000005"; a COCO image id as a string). */
  imageId: string;
  /** Index into the ground truth's labels, 1..C-1. */
  classId: number;
  score: number;
  box: BoxXYXY;
}

/** VOC 1-based inclusive indices -> Pixels: the pixel [1, 1] covers [0, 1) x [0, 1). */
export function vocToPixels(box: Readonly<BoxXYXY>): BoxXYXY {
  return [box[0] - 1, box[1] - 1, box[2], box[3]];
}

/** Pixels -> VOC 1-based inclusive indices (inverse of vocToPixels). */
export function pixelsToVoc(box: Readonly<BoxXYXY>): BoxXYXY {
  return [box[0] + 1, box[1] + 1, box[2], box[3]];
}
