/**
 * Validation: run the model on a dataset (resize + mean subtraction only), decode with the core's
 * postprocess (the same code the runtime uses), and score with the core's VOC evaluator.
 */
import * as tf from '@tensorflow/tfjs';
import { defaultBoxes } from '../core/default-boxes.js';
import { evalVoc, type VocEvalResult, type VocMetric } from '../core/eval/voc.js';
import { postprocess } from '../core/postprocess.js';
import type { Dataset, Detection } from '../core/datasets/types.js';
import { normalizeHWC } from './augment/normalize.js';
import { resizeBilinear } from './augment/resize.js';
import { ImageSource, isVocStyle, toDatasetBox } from './data-loader.js';
import type { SsdModel } from './model.js';

export interface DetectOptions {
  batchSize?: number;
  /** Only the first `limit` samples (quick validation during training). */
  limit?: number;
  images?: ImageSource;
  /** Lower than the spec's 0.01 only for special cases; the VOC protocol uses the spec's threshold. */
  confidenceThreshold?: number;
}

/** Detections of the model on the dataset's images, boxes in the dataset's pixel convention. */
export async function detectDataset(model: SsdModel, dataset: Dataset, opts: DetectOptions = {}): Promise<{ detections: Detection[]; samples: Dataset['samples'] }> {
  const spec = model.spec;
  const S = spec.inputSize;
  const priors = defaultBoxes(spec);
  const P = priors.length / 4;
  const C = spec.labels.length;
  const images = opts.images ?? new ImageSource(64 * 1024 * 1024);
  const samples = dataset.samples.slice(0, opts.limit ?? dataset.samples.length);
  const B = opts.batchSize ?? 8;
  const vocStyle = isVocStyle(dataset);
  const detections: Detection[] = [];
  const used: Dataset['samples'] = [];
  for (let start = 0; start < samples.length; start += B) {
    const chunk = samples.slice(start, start + B);
    const decoded = await Promise.all(chunk.map((s) => images.load(s.imagePath)));
    const ok = chunk.map((s, i) => ({ s, img: decoded[i] })).filter((e) => e.img !== undefined);
    if (ok.length === 0) continue;
    const input = new Float32Array(ok.length * S * S * 3);
    ok.forEach(({ img }, i) => {
      const resized = resizeBilinear({ dataHWC: Float32Array.from(img!.dataHWC), width: img!.width, height: img!.height }, S, S);
      input.set(normalizeHWC(resized.dataHWC, spec.input), i * S * S * 3);
    });
    const [locData, confData] = tf.tidy(() => {
      const out = model.forward(tf.tensor4d(input, [ok.length, S, S, 3]), false);
      return [out.loc.dataSync() as Float32Array, out.conf.dataSync() as Float32Array];
    });
    ok.forEach(({ s, img }, i) => {
      used.push(s);
      const det = postprocess(locData.subarray(i * P * 4, (i + 1) * P * 4), confData.subarray(i * P * C, (i + 1) * P * C), priors, spec, {
        fromLogits: true, ...(opts.confidenceThreshold !== undefined ? { confidenceThreshold: opts.confidenceThreshold } : {}),
      });
      // Boxes are relative to the warped input; scale back to the original image (stretch, as Resize did).
      for (let d = 0; d < det.count; d++) {
        const b = det.boxesXYXY;
        detections.push({
          imageId: s.id,
          classId: det.classIds[d]!,
          score: det.scores[d]!,
          box: toDatasetBox(b[d * 4]! * img!.width, b[d * 4 + 1]! * img!.height, b[d * 4 + 2]! * img!.width, b[d * 4 + 3]! * img!.height, vocStyle),
        });
      }
    });
  }
  return { detections, samples: used };
}

export async function validate(model: SsdModel, dataset: Dataset, opts: DetectOptions & { metric?: VocMetric } = {}): Promise<VocEvalResult & { images: number; seconds: number }> {
  const t0 = performance.now();
  const { detections, samples } = await detectDataset(model, dataset, opts);
  const result = evalVoc({ ...dataset, samples }, detections, { metric: opts.metric ?? 'voc07' });
  return { ...result, images: samples.length, seconds: (performance.now() - t0) / 1000 };
}
