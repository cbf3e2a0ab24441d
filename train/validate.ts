/**
 * Validation: run the model on a dataset (no augmentation: the core's preprocessing only, warp +
 * mean subtraction, core/preprocess.ts, exactly what `ssd detect` feeds the exported model), decode
 * with the core's postprocess (the same code the runtime uses), and score with the core's evaluators:
 * VOC07 mAP for VOC data, COCO AP (the 12 pycocotools numbers) for COCO data.
 */
import * as tf from '@tensorflow/tfjs';
import { defaultBoxes } from '../core/default-boxes.js';
import type { ValidationMetric } from '../core/checkpoint.js';
import { evalCoco } from '../core/eval/coco.js';
import { evalVoc } from '../core/eval/voc.js';
import { postprocess } from '../core/postprocess.js';
import type { Dataset } from '../core/datasets/types.js';
import type { DetectionAnnotationXYXY } from '../core/model-contract.js';
import { toOriginalPixels, writeModelInput, type Geometry, type ModelInputTarget } from '../core/preprocess.js';
import type { InputSpec } from '../core/specs.js';
import { ImageSource, isVocStyle, toDatasetBox, type DecodedImage } from './data-loader.js';
import type { SsdModel } from './model.js';

export interface DetectOptions {
  batchSize?: number;
  /** Only the first `limit` samples (quick validation during training). */
  limit?: number;
  images?: ImageSource;
  /** Lower than the spec's 0.01 only for special cases; the VOC protocol uses the spec's threshold. */
  confidenceThreshold?: number;
}

/**
 * The TensorFlow.js model input (float NHWC, the spec's channel order minus its mean) for decoded
 * images, warped to the input size: the core's writeModelInput, as the runtime calls it.
 */
export function validationInput(images: readonly DecodedImage[], inputSize: number, input: InputSpec): { inputNHWC: Float32Array; geometries: Geometry[] } {
  const target: ModelInputTarget = { layout: 'float-nhwc', inputSize, input };
  const inputNHWC = new Float32Array(images.length * inputSize * inputSize * 3);
  const geometries = images.map((img, i) => writeModelInput({ data: img.dataHWC, width: img.width, height: img.height, format: 'rgb' }, target, 'warp', inputNHWC, i));
  return { inputNHWC, geometries };
}

/** Detections of the model on the dataset's images, boxes in the dataset's pixel convention. */
export async function detectDataset(model: SsdModel, dataset: Dataset, opts: DetectOptions = {}): Promise<{ detections: DetectionAnnotationXYXY[]; samples: Dataset['samples'] }> {
  const spec = model.spec;
  const S = spec.inputSize;
  const priors = defaultBoxes(spec);
  const P = priors.length / 4;
  const C = spec.labels.length;
  const images = opts.images ?? new ImageSource(64 * 1024 * 1024);
  const samples = dataset.samples.slice(0, opts.limit ?? dataset.samples.length);
  const B = opts.batchSize ?? 8;
  const vocStyle = isVocStyle(dataset);
  const detections: DetectionAnnotationXYXY[] = [];
  const used: Dataset['samples'] = [];
  for (let start = 0; start < samples.length; start += B) {
    const chunk = samples.slice(start, start + B);
    const decoded = await Promise.all(chunk.map((s) => images.load(s.imagePath)));
    const ok = chunk.map((s, i) => ({ s, img: decoded[i] })).filter((e) => e.img !== undefined);
    if (ok.length === 0) continue;
    const { inputNHWC: input, geometries } = validationInput(ok.map((e) => e.img!), S, spec.input);
    const [locData, confData] = tf.tidy(() => {
      const out = model.forward(tf.tensor4d(input, [ok.length, S, S, 3]), false);
      return [out.loc.dataSync() as Float32Array, out.conf.dataSync() as Float32Array];
    });
    ok.forEach(({ s }, i) => {
      used.push(s);
      const det = postprocess(locData.subarray(i * P * 4, (i + 1) * P * 4), confData.subarray(i * P * C, (i + 1) * P * C), priors, spec, {
        fromLogits: true, ...(opts.confidenceThreshold !== undefined ? { confidenceThreshold: opts.confidenceThreshold } : {}),
      });
      // Boxes are relative to the warped input; back to the (upright) image's pixels as the runtime maps them.
      for (let d = 0; d < det.count; d++) {
        const b = det.boxesXYXY;
        const [x1, y1, x2, y2] = toOriginalPixels(b[d * 4]!, b[d * 4 + 1]!, b[d * 4 + 2]!, b[d * 4 + 3]!, S, geometries[i]!);
        detections.push({ imageId: s.id, classId: det.classIds[d]!, score: det.scores[d]!, box: toDatasetBox(x1, y1, x2, y2, vocStyle) });
      }
    });
  }
  return { detections, samples: used };
}

/**
 * The metric a validation set is scored with: COCO data (a COCO instances JSON) with COCO's AP@[.50:.95]
 * and its 12 summary numbers, as COCO results are reported; VOC data with VOC07 11-point mAP.
 */
export function validationMetric(dataset: Dataset): ValidationMetric {
  return isVocStyle(dataset) ? 'voc07' : 'coco';
}

export interface ValidationResult {
  metric: ValidationMetric;
  /** VOC07 mAP, or COCO AP@[.50:.95] (= stats[0]); -1 when no class has ground truth. */
  map: number;
  /** COCO: AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl (COCO_STAT_NAMES). */
  stats?: number[];
  /** AP per class name (COCO: AP@[.50:.95]). */
  ap: Record<string, number>;
  images: number;
  seconds: number;
}

export async function validate(model: SsdModel, dataset: Dataset, opts: DetectOptions & { metric?: ValidationMetric } = {}): Promise<ValidationResult> {
  const t0 = performance.now();
  const { detections, samples } = await detectDataset(model, dataset, opts);
  const metric = opts.metric ?? validationMetric(dataset);
  const gt = { ...dataset, samples };
  const seconds = (): number => (performance.now() - t0) / 1000;
  if (metric === 'coco') {
    const r = evalCoco(gt, detections);
    return { metric, map: r.map, stats: r.stats, ap: r.ap, images: samples.length, seconds: seconds() };
  }
  const r = evalVoc(gt, detections, { metric });
  return { metric, map: r.map, ap: r.ap, images: samples.length, seconds: seconds() };
}
