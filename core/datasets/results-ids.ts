/**
 * The ids a detector's results file gives its images and classes, so that `ssd detect` output is
 * scored by `ssd eval` (and pycocotools, and the VOC devkit) on any dataset:
 *
 * - against a ground truth (`ssd detect --gt`): each image file is matched to a ground-truth image
 *   by its path, else its file name (else, for VOC, its file stem), and takes that image's id (a
 *   COCO image id keeps its JSON type, a number as a rule; a VOC id is the sample id, "000005");
 *   each model class takes the category id of the ground-truth class of the same name (VOC: its
 *   index in labels.txt). Images outside the ground truth (or its split) are not run; model
 *   classes the ground truth lacks are left out of the results (no evaluator scores them).
 * - without one: image ids 1..N in the order the images were listed and the category ids of the
 *   model's label map (COCO's own ids 1..90 for the 80 COCO classes, else the label index 1..C-1),
 *   written with a mapping file in COCO's layout ({"images": [{id, file_name}], "categories":
 *   [{id, name}]}) that says which is which.
 *
 * No XML is parsed here (the VOC ids come from the split files): the runtime, which ships without an
 * XML parser, uses this module.
 */
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { SsdError } from '../errors.js';
import { COCO_CATEGORY_IDS, COCO_CLASSES, withBackground } from '../labels.js';
import { cocoDatasetFromJson, readJsonFile } from './coco.js';
import { pixelsToVoc, type DetectionAnnotationXYXY, type DetectionPixelsXYXY } from '../model-contract.js';
import type { CocoResult } from './results.js';
import { findVocImage, readSplitIds, resolveVocRoots, vocLabels, vocSampleId } from './voc-layout.js';

/** The image and category ids of a ground truth, without its annotations. */
export interface GroundTruthIds {
  /** For messages: "data/digits/VOC2007 split test", "instances_val.json". */
  name: string;
  format: 'voc' | 'coco';
  /** Class names, background first. */
  labels: string[];
  /** category_id per class index (VOC: the index; COCO: the category id); index 0 is -1. */
  categoryIds: number[];
  /** Every image: its id as results files write it and where its file is (or would be). */
  images: Array<{ id: number | string; path: string }>;
}

/** A COCO annotations file is a file; a VOC tree is a directory. */
export function isCocoPath(path: string): boolean {
  return existsSync(path) && statSync(path).isFile();
}

/**
 * Reads the ids of a COCO instances JSON or a VOC tree (year directory or VOCdevkit-like parent;
 * `split` default "test"). Bad input is an SsdError naming the file.
 */
export function readGroundTruthIds(path: string, split = 'test'): GroundTruthIds {
  if (!existsSync(path)) throw new SsdError(`${path}: no such file or directory`);
  if (isCocoPath(path)) {
    const json = readJsonFile(path);
    // The loader validates the file (categories, image ids); its samples hold ids as strings, so the
    // ids themselves are taken from the JSON, where a number stays a number.
    const ds = cocoDatasetFromJson(json, path, dirname(path));
    const rawIds = new Map<string, number | string>();
    for (const im of (json as { images: unknown[] }).images) {
      const id = typeof im === 'object' && im !== null ? (im as { id?: unknown }).id : undefined;
      if (typeof id === 'number' || typeof id === 'string') rawIds.set(String(id), id);
    }
    const images = ds.samples.map((s) => ({ id: rawIds.get(s.id) ?? s.id, path: s.imagePath }));
    return { name: path, format: 'coco', labels: ds.labels, categoryIds: ds.cocoCategoryIds ?? ds.labels.map((_, k) => (k === 0 ? -1 : k)), images };
  }
  const years = resolveVocRoots(path);
  const labels = vocLabels(years);
  const images: GroundTruthIds['images'] = [];
  const seen = new Set<string>();
  for (const root of years) {
    for (const stem of readSplitIds(root, split)) {
      const id = vocSampleId(root, stem, seen);
      seen.add(id);
      images.push({ id, path: findVocImage(root, stem) ?? join(root, 'JPEGImages', `${stem}.jpg`) });
    }
  }
  return { name: `${path} split ${split}`, format: 'voc', labels, categoryIds: labels.map((_, k) => (k === 0 ? -1 : k)), images };
}

/**
 * The ground-truth image id of an image file: by its path, else its file name, else (VOC ids are
 * file stems: 000005.png, a converted copy, is still sample 000005) its stem; a name that two
 * ground-truth images share matches neither. Undefined when the ground truth does not hold it.
 */
export function groundTruthImageIds(gt: GroundTruthIds): (path: string) => number | string | undefined {
  const byPath = new Map<string, number | string>();
  const byName = new Map<string, number | string | null>();
  const byStem = new Map<string, number | string | null>();
  const add = (m: Map<string, number | string | null>, k: string, id: number | string) => m.set(k, m.has(k) && m.get(k) !== id ? null : id);
  for (const im of gt.images) {
    byPath.set(resolve(im.path), im.id);
    add(byName, basename(im.path), im.id);
    add(byStem, basename(im.path, extname(im.path)), im.id);
  }
  return (path) => {
    const exact = byPath.get(resolve(path));
    if (exact !== undefined) return exact;
    const named = byName.get(basename(path));
    if (named !== undefined) return named ?? undefined;
    return gt.format === 'voc' ? byStem.get(basename(path, extname(path))) ?? undefined : undefined;
  };
}

/** How a results writer names images and classes. */
export interface ResultsIds {
  /** For messages: the ground truth, or "numbered". */
  source: string;
  /** The image id of an image file; undefined when the ground truth does not hold it. */
  imageId(path: string): number | string | undefined;
  /** category_id per model class id (index 0 unused); undefined for a class the ground truth lacks. */
  categoryIds: Array<number | undefined>;
  /** Class names (background first) that VOC comp4 files are named after, and that classIds index. */
  labels: string[];
  /** Index into `labels` per model class id; undefined for a class the ground truth lacks. */
  classIds: Array<number | undefined>;
  /** Model classes the ground truth lacks (their detections are left out of the results). */
  missingClasses: string[];
}

/**
 * Ids from a ground truth for a model with `modelLabels` (background first). No model class in
 * the ground truth at all is an SsdError: it is the wrong ground truth for this model.
 */
export function resultsIdsFromGroundTruth(gt: GroundTruthIds, modelLabels: readonly string[]): ResultsIds {
  const classIds = modelLabels.map((name, k) => {
    const j = gt.labels.indexOf(name);
    return k >= 1 && j >= 1 ? j : undefined;
  });
  const missingClasses = modelLabels.filter((_, k) => k >= 1 && classIds[k] === undefined);
  if (missingClasses.length === modelLabels.length - 1) {
    throw new SsdError(`--gt ${gt.name}: none of the model's classes (${modelLabels.slice(1).join(', ')}) is among its classes (${gt.labels.slice(1).join(', ')})`);
  }
  const imageId = groundTruthImageIds(gt);
  return {
    source: gt.name,
    imageId,
    categoryIds: classIds.map((j) => (j === undefined ? undefined : gt.categoryIds[j])),
    labels: gt.labels,
    classIds,
    missingClasses,
  };
}

const COCO_LABELS = withBackground(COCO_CLASSES);

/** Whether a model's labels are the 80 COCO categories in order (then category ids are COCO's own). */
export function isCocoLabelMap(labels: readonly string[]): boolean {
  return labels.length === COCO_LABELS.length && labels.every((l, i) => l === COCO_LABELS[i]);
}

/** The ids of a results file written without ground truth, and the mapping file that explains them. */
export interface NumberedIds {
  ids: ResultsIds;
  /** COCO's layout, so that it also serves as the skeleton of a ground truth for these images. */
  mapping: { images: Array<{ id: number; file_name: string }>; categories: Array<{ id: number; name: string }> };
}

/** Image ids 1..N in the order of `paths`; category ids of the model's own label map. */
export function numberedResultsIds(paths: readonly string[], modelLabels: readonly string[]): NumberedIds {
  const coco = isCocoLabelMap(modelLabels);
  const categoryIds = modelLabels.map((_, k) => (k === 0 ? undefined : coco ? COCO_CATEGORY_IDS[k - 1]! : k));
  const byPath = new Map<string, number>();
  paths.forEach((p, i) => byPath.set(resolve(p), i + 1));
  return {
    ids: {
      source: 'numbered',
      imageId: (path) => byPath.get(resolve(path)),
      categoryIds,
      labels: [...modelLabels],
      classIds: modelLabels.map((_, k) => (k === 0 ? undefined : k)),
      missingClasses: [],
    },
    mapping: {
      images: paths.map((p, i) => ({ id: i + 1, file_name: p })),
      categories: modelLabels.flatMap((name, k) => (k === 0 ? [] : [{ id: categoryIds[k]!, name }])),
    },
  };
}

/** The mapping file's text: one image or category a line, so that it diffs and greps well. */
export function mappingJson(mapping: NumberedIds['mapping']): string {
  const list = (xs: readonly object[]) => (xs.length === 0 ? '[]' : `[\n  ${xs.map((x) => JSON.stringify(x)).join(',\n  ')}\n ]`);
  return `{\n "images": ${list(mapping.images)},\n "categories": ${list(mapping.categories)}\n}\n`;
}

/** `results.json` -> `results.ids.json`: where the mapping of a numbered results file goes. */
export function mappingPathFor(resultsPath: string): string {
  return resultsPath.toLowerCase().endsWith('.json') ? `${resultsPath.slice(0, -5)}.ids.json` : `${resultsPath}.ids.json`;
}

/** The detections of one image file, as the runtime returns them (Pixels of the original image). */
export interface ImageDetections {
  path: string;
  detections: ReadonlyArray<Pick<DetectionPixelsXYXY, 'classId' | 'score' | 'box'>>;
}

const round3 = (v: number) => Math.round(v * 1000) / 1000;
const round6 = (v: number) => Math.round(v * 1e6) / 1e6;

/**
 * COCO results entries ({image_id, category_id, bbox: [x, y, w, h], score}; boxes in COCO's
 * continuous 0-based pixels, 1/1000 pixel). Detections of classes without a category id, and images
 * without an image id, are left out.
 */
export function cocoResultsWithIds(images: readonly ImageDetections[], ids: ResultsIds): CocoResult[] {
  const out: CocoResult[] = [];
  for (const img of images) {
    const imageId = ids.imageId(img.path);
    if (imageId === undefined) continue;
    for (const d of img.detections) {
      const categoryId = ids.categoryIds[d.classId];
      if (categoryId === undefined) continue;
      const [x1, y1, x2, y2] = d.box;
      out.push({ image_id: imageId, category_id: categoryId, bbox: [round3(x1), round3(y1), round3(x2 - x1), round3(y2 - y1)], score: round6(d.score) });
    }
  }
  return out;
}

/**
 * Detections for VOC comp4 files (writeVocComp4 with `ids.labels`): image ids as `vocImageId` gives
 * them, class ids into `ids.labels`, boxes in the devkit's 1-based inclusive pixels (pixelsToVoc:
 * [x1, y1, x2, y2] becomes [x1 + 1, y1 + 1, x2, y2], the shift the comp4 reader's evaluation assumes).
 */
export function vocDetectionsWithIds(images: readonly ImageDetections[], ids: ResultsIds, vocImageId: (path: string) => string | undefined): DetectionAnnotationXYXY[] {
  const out: DetectionAnnotationXYXY[] = [];
  for (const img of images) {
    const imageId = vocImageId(img.path);
    if (imageId === undefined) continue;
    for (const d of img.detections) {
      const classId = ids.classIds[d.classId];
      if (classId === undefined) continue;
      out.push({ imageId, classId, score: round6(d.score), box: pixelsToVoc(d.box).map(round3) as DetectionAnnotationXYXY['box'] });
    }
  }
  return out;
}
