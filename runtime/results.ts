/**
 * Detections as a COCO results file (what `ssd eval --dt` and pycocotools' loadRes read):
 * [{ image_id, category_id, bbox: [x, y, w, h], score }], boxes in original image pixels.
 */
import { COCO_CATEGORY_IDS, COCO_CLASSES, withBackground } from '../core/labels.js';
import type { Detection } from './detector.js';

export interface CocoResult {
  /** The image file's stem (VOC ids such as "000005" keep their zeros), or a number for COCO ids. */
  image_id: string | number;
  category_id: number;
  bbox: [number, number, number, number];
  score: number;
}

const COCO_LABELS = withBackground(COCO_CLASSES);

/** Whether a model's labels are the 80 COCO categories in order (then category ids are COCO's own). */
export function isCocoLabelMap(labels: readonly string[]): boolean {
  return labels.length === COCO_LABELS.length && labels.every((l, i) => l === COCO_LABELS[i]);
}

const round3 = (v: number) => Math.round(v * 1000) / 1000;

/**
 * One results entry per detection. category_id is the official COCO category id for a COCO label
 * map (1..90 with gaps) and the label index (1..C-1) otherwise; image_id is the stem, as a number
 * only for COCO label maps whose stems are all digits (COCO file names are the zero-padded id).
 */
export function cocoResults(images: ReadonlyArray<{ imageId: string; detections: readonly Detection[] }>, labels: readonly string[]): CocoResult[] {
  const coco = isCocoLabelMap(labels);
  const out: CocoResult[] = [];
  for (const img of images) {
    const id = coco && /^\d+$/.test(img.imageId) ? Number(img.imageId) : img.imageId;
    for (const d of img.detections) {
      const [x1, y1, x2, y2] = d.box;
      out.push({
        image_id: id,
        category_id: coco ? COCO_CATEGORY_IDS[d.classId - 1]! : d.classId,
        bbox: [round3(x1), round3(y1), round3(x2 - x1), round3(y2 - y1)],
        score: Math.round(d.score * 1e6) / 1e6,
      });
    }
  }
  return out;
}
