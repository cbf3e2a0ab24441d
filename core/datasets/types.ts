/**
 * The dataset shapes shared by training, evaluation and the tools around them. Boxes stay in the
 * pixel convention of the annotation they came from (VOC: 1-based inclusive corners; COCO: 0-based,
 * x1 + w), because the VOC evaluator's "+1 pixel" areas only make sense on the original numbers.
 * Detections scored against a dataset are DetectionAnnotationXYXY (core/model-contract.ts), in the
 * same convention.
 */
import type { BoxXYXY } from '../model-contract.js';

export interface GroundTruthObject {
  /** Index into Dataset.labels, 1..C-1 (0 is background). */
  classId: number;
  /** x1, y1, x2, y2 in pixels as written in the annotation (VOC: 1-based inclusive). */
  box: BoxXYXY;
  /** VOC "difficult": ignored by the VOC evaluator (neither a hit nor a miss). */
  difficult: boolean;
  /** COCO iscrowd: matched with crowd IoU and ignored by the COCO evaluator. */
  iscrowd?: boolean;
  /** COCO annotation area (segmentation area), which decides small/medium/large; defaults to w*h. */
  area?: number;
  /** COCO annotation id, kept for round trips. */
  annotationId?: number;
}

export interface Sample {
  /** VOC: the file stem ("000005"); COCO: the image id as a string. */
  id: string;
  imagePath: string;
  width: number;
  height: number;
  objects: GroundTruthObject[];
}

export interface Dataset {
  name: string;
  /** Class names with 'background' at index 0. */
  labels: string[];
  samples: Sample[];
  /** One line per skipped object or sample: file and reason. */
  warnings: string[];
  /** COCO only: category id of each class id (index 0 unused, -1), for results export. */
  cocoCategoryIds?: number[];
}
