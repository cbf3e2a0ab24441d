import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../atomic-write.js';
import { SsdError } from '../errors.js';
import { pixelsToVoc, vocToPixels, type BoxXYXY, type DetectionAnnotationXYXY } from '../model-contract.js';
import { readJsonFile } from './coco.js';
import { cocoResultsWithIds, type ResultsIds } from './results-ids.js';
import type { Dataset } from './types.js';

/**
 * Detection results in the two formats evaluation servers take:
 * - COCO results JSON: [{image_id, category_id, bbox: [x, y, w, h], score}], w = x2 - x1;
 * - VOC comp4 files, one per class: comp4_det_<split>_<class>.txt with lines
 *   "<image id> <score> <x1> <y1> <x2> <y2>", boxes as the annotations write them (1-based).
 *
 * One COCO results writer: results-ids.ts cocoResultsWithIds, whose caller says which image_id and
 * category_id each image and class get (ResultsIds: from a ground truth for `ssd detect --gt`,
 * numbered otherwise). toCocoResults here is that writer for a dataset's own detections (validation,
 * tests, benchmarks): category_id is the dataset's COCO category id when it has them
 * (cocoCategoryIds), else the class id (index into labels, 1..C-1); image_id is a number when the
 * sample id is a plain integer ("42"), else the id string ("000005" keeps its zeros).
 *
 * Pixel conventions (core/model-contract.ts): a COCO results bbox is in Pixels, continuous and
 * 0-based (a box over the whole image is [0, 0, W, H]), which is what `ssd detect` writes; VOC
 * annotations (and so DetectionAnnotationXYXY boxes against a VOC ground truth) count pixels 1-based
 * and inclusive (the same box is [1, 1, W, H]). Against a VOC-style ground truth (no COCO category
 * ids) a COCO results file is therefore read with x1 + 1, y1 + 1 (x2, y2 unchanged: pixelsToVoc) and
 * written with the inverse (vocToPixels), so that a detector's perfect box scores IoU 1 under the
 * devkit's +1 pixel arithmetic.
 */

/** Whether a dataset's boxes follow VOC's 1-based inclusive pixel convention (VOC XML, digits). */
export const usesVocPixels = (dataset: Pick<Dataset, 'cocoCategoryIds'>): boolean => dataset.cocoCategoryIds === undefined;

export interface CocoResult {
  image_id: number | string;
  category_id: number;
  bbox: [number, number, number, number];
  score: number;
}

/** The category_id written for a class id. */
export function categoryIdOf(dataset: Pick<Dataset, 'cocoCategoryIds'>, classId: number): number {
  const id = dataset.cocoCategoryIds?.[classId];
  return id !== undefined && id >= 0 ? id : classId;
}

function imageIdValue(id: string): number | string {
  return /^(0|-?[1-9]\d*)$/.test(id) && Number.isSafeInteger(Number(id)) ? Number(id) : id;
}

/** The ids a dataset's own detections get: imageId() takes the sample id (not a path) here. */
function datasetResultsIds(dataset: Pick<Dataset, 'name' | 'labels' | 'cocoCategoryIds'>): ResultsIds {
  return {
    source: dataset.name,
    imageId: imageIdValue,
    categoryIds: dataset.labels.map((_, k) => (k === 0 ? undefined : categoryIdOf(dataset, k))),
    labels: [...dataset.labels],
    classIds: dataset.labels.map((_, k) => (k === 0 ? undefined : k)),
    missingClasses: [],
  };
}

/** A dataset's detections (its sample ids, class ids and pixel convention) as COCO results entries. */
export function toCocoResults(dets: readonly DetectionAnnotationXYXY[], dataset: Pick<Dataset, 'name' | 'labels' | 'cocoCategoryIds'>): CocoResult[] {
  const vocPixels = usesVocPixels(dataset);
  const images = dets.map((d) => ({ path: d.imageId, detections: [{ classId: d.classId, score: d.score, box: vocPixels ? vocToPixels(d.box) : d.box }] }));
  return cocoResultsWithIds(images, datasetResultsIds(dataset));
}

export function writeCocoResults(path: string, dets: readonly DetectionAnnotationXYXY[], dataset: Pick<Dataset, 'name' | 'labels' | 'cocoCategoryIds'>): void {
  writeFileAtomic(path, JSON.stringify(toCocoResults(dets, dataset)));
}

/**
 * Finds the sample an image id in a results file means: the id itself, else an integer written
 * without the zeros the file stem has (5 for "000005"), else a file name ("000005.jpg").
 */
export function imageIdResolver(gt: Dataset): (raw: number | string) => string | undefined {
  const exact = new Set(gt.samples.map((s) => s.id));
  const byNumber = new Map<string, string | null>();
  for (const s of gt.samples) {
    if (/^\d+$/.test(s.id)) {
      const k = String(Number(s.id));
      byNumber.set(k, byNumber.has(k) ? null : s.id);
    }
  }
  return (raw) => {
    const str = String(raw);
    if (exact.has(str)) return str;
    const viaNumber = byNumber.get(/^\d+$/.test(str) ? String(Number(str)) : str);
    if (viaNumber) return viaNumber;
    const stem = str.replace(/^.*[\\/]/, '').replace(/\.[A-Za-z]+$/, '');
    return exact.has(stem) ? stem : undefined;
  };
}

function classIdResolver(gt: Dataset): (categoryId: number) => number | undefined {
  const ids = gt.cocoCategoryIds;
  if (ids) {
    const m = new Map<number, number>();
    ids.forEach((c, k) => {
      if (k >= 1 && c >= 0) m.set(c, k);
    });
    return (c) => m.get(c);
  }
  return (c) => (Number.isInteger(c) && c >= 1 && c < gt.labels.length ? c : undefined);
}

/** Reads a COCO results JSON against the ground truth it will be evaluated on. Any bad entry is an SsdError. */
export function readCocoResults(path: string, gt: Dataset): DetectionAnnotationXYXY[] {
  const json = readJsonFile(path);
  if (!Array.isArray(json)) throw new SsdError(`${path}: not a COCO results file (expected a JSON array of {image_id, category_id, bbox, score})`);
  const imageOf = imageIdResolver(gt);
  const classOf = classIdResolver(gt);
  const vocPixels = usesVocPixels(gt);
  return json.map((r: unknown, i: number): DetectionAnnotationXYXY => {
    const bad = (why: string): SsdError => new SsdError(`${path}: entry ${i}: ${why}`);
    if (typeof r !== 'object' || r === null) throw bad('not an object');
    const e = r as Record<string, unknown>;
    if (typeof e.image_id !== 'number' && typeof e.image_id !== 'string') throw bad('no "image_id"');
    const imageId = imageOf(e.image_id);
    if (imageId === undefined) throw bad(`image_id ${JSON.stringify(e.image_id)} is not in the ground truth`);
    if (typeof e.category_id !== 'number') throw bad('no numeric "category_id"');
    const classId = classOf(e.category_id);
    if (classId === undefined) throw bad(`unknown class: category_id ${e.category_id} is not in the ground truth's categories`);
    const bb = e.bbox;
    // Any finite box is scored, negative coordinates included (unclipped SSD boxes leave the image);
    // JSON has no NaN or Infinity, so a non-number (null, "NaN") is what a broken writer leaves.
    if (!Array.isArray(bb) || bb.length !== 4) throw bad('"bbox" is not [x, y, w, h]');
    if (!bb.every((v) => typeof v === 'number' && Number.isFinite(v))) throw bad(`"bbox" ${JSON.stringify(bb).slice(0, 80)} is not four finite numbers`);
    const [x, y, w, h] = bb as [number, number, number, number];
    if (w < 0 || h < 0) throw bad(`inverted box: negative size (w=${w}, h=${h})`);
    if (typeof e.score !== 'number' || !Number.isFinite(e.score)) throw bad('no numeric "score"');
    const pixels: BoxXYXY = [x, y, x + w, y + h];
    return { imageId, classId, score: e.score, box: vocPixels ? pixelsToVoc(pixels) : pixels };
  });
}

// comp4_det_test_cat.txt (devkit), or comp4_<salt>_det_test_cat.txt as py-faster-rcnn names them.
const COMP4_RE = /^comp\d+(?:_[^_]+)?_det_(.+)\.txt$/;

/** Writes comp4_det_<split>_<class>.txt for every class (empty files included, as the devkit expects). */
export function writeVocComp4(dir: string, dets: readonly DetectionAnnotationXYXY[], labels: readonly string[], opts: { split?: string; prefix?: string } = {}): string[] {
  mkdirSync(dir, { recursive: true });
  const split = opts.split ?? 'test';
  const prefix = opts.prefix ?? 'comp4';
  const lines: string[][] = labels.map(() => []);
  for (const d of dets) {
    const [x1, y1, x2, y2] = d.box;
    lines[d.classId]?.push(`${d.imageId} ${d.score} ${x1} ${y1} ${x2} ${y2}\n`);
  }
  const files: string[] = [];
  for (let c = 1; c < labels.length; c++) {
    const file = join(dir, `${prefix}_det_${split}_${labels[c]}.txt`);
    writeFileAtomic(file, lines[c]!.join(''));
    files.push(file);
  }
  return files;
}

/**
 * Reads every comp<N>_det_<split>_<class>.txt in a directory. A file whose class is not in the
 * ground truth's labels, a malformed line, an unknown image, or a box that is not finite or is
 * inverted (x2 - x1 + 1 < 0) is an SsdError naming the file (and line); any other box is read as it
 * is. With `split`, only that split's files are read.
 */
export function readVocComp4Dir(dir: string, gt: Dataset, opts: { split?: string } = {}): DetectionAnnotationXYXY[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new SsdError(`${dir}: no such directory`);
  const imageOf = imageIdResolver(gt);
  // Longest names first, so that a class named "a_b" is not read as class "b" of split "..._a".
  const byLength = gt.labels.map((name, k) => ({ name, k })).filter((x) => x.k >= 1).sort((a, b) => b.name.length - a.name.length);
  const files = readdirSync(dir).filter((f) => COMP4_RE.test(f)).sort();
  const dets: DetectionAnnotationXYXY[] = [];
  let used = 0;
  for (const f of files) {
    const rest = COMP4_RE.exec(f)![1]!;
    const hit = byLength.find((x) => rest.endsWith(`_${x.name}`));
    const path = join(dir, f);
    if (!hit) throw new SsdError(`${path}: unknown class (the name ends in none of: ${gt.labels.slice(1).join(', ')})`);
    const split = rest.slice(0, rest.length - hit.name.length - 1);
    if (opts.split !== undefined && split !== opts.split) continue;
    used++;
    const text = readFileSync(path, 'utf8');
    text.split(/\r?\n/).forEach((line, n) => {
      const t = line.trim();
      if (t === '') return;
      const parts = t.split(/\s+/);
      const nums = parts.slice(1).map(Number);
      if (parts.length !== 6 || nums.some((v, k) => Number.isNaN(v) && !/^[-+]?(nan|inf|infinity)$/i.test(parts[k + 1]!))) {
        throw new SsdError(`${path}:${n + 1}: expected "<image_id> <score> <x1> <y1> <x2> <y2>", got "${t.slice(0, 80)}"`);
      }
      // Any finite box is scored, as the devkit and pycocotools do (unclipped SSD boxes leave the
      // image); NaN, infinite and inverted ones are refused.
      if (!nums.every(Number.isFinite)) throw new SsdError(`${path}:${n + 1}: score and box must be finite numbers, got "${t.slice(0, 80)}"`);
      const imageId = imageOf(parts[0]!);
      if (imageId === undefined) throw new SsdError(`${path}:${n + 1}: image "${parts[0]}" is not in the ground truth`);
      const [score, x1, y1, x2, y2] = nums as [number, number, number, number, number];
      // 1-based inclusive pixels: the devkit's width is x2 - x1 + 1, so a sub-pixel box has x2 < x1.
      if (x2 - x1 + 1 < 0 || y2 - y1 + 1 < 0) throw new SsdError(`${path}:${n + 1}: inverted box ${x1} ${y1} ${x2} ${y2} (x2 - x1 + 1 or y2 - y1 + 1 is negative)`);
      dets.push({ imageId, classId: hit.k, score, box: [x1, y1, x2, y2] });
    });
  }
  if (used === 0) {
    throw new SsdError(`${dir}: no comp4_det_${opts.split ?? '<split>'}_<class>.txt files`);
  }
  return dets;
}
