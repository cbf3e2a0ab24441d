import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { SsdError } from '../errors.js';
import { normalizeLabels } from './voc-layout.js';
import type { Dataset, GroundTruthObject, Sample } from './types.js';

export interface CocoLoadOptions {
  /**
   * Class names to keep, in this order (with or without 'background'). Default: every category,
   * sorted by category id. Annotations of other categories are dropped (one warning per category).
   */
  labels?: readonly string[];
  /** Turn every skipped annotation or image into an SsdError naming the file. */
  strict?: boolean;
  onWarning?: (msg: string) => void;
}

interface CocoCategory {
  id: number;
  name: string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function finite(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** Reads a JSON file; a missing file or a syntax error is an SsdError naming it. */
export function readJsonFile(path: string): unknown {
  if (!existsSync(path)) throw new SsdError(`${path}: no such file`);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new SsdError(`${path}: cannot read (${(err as Error).message})`, { cause: err });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new SsdError(`${path}: malformed JSON (${(err as Error).message})`, { cause: err });
  }
}

/**
 * Builds a Dataset from a parsed COCO instances file. Category ids become contiguous class ids
 * 1..C (sorted by id, as pycocotools orders them), kept in `cocoCategoryIds` for results export;
 * boxes become x1,y1,x1+w,y1+h; iscrowd, area and annotation ids are kept for the evaluator.
 */
export function cocoDatasetFromJson(json: unknown, source: string, imagesDir: string, opts: CocoLoadOptions = {}): Dataset {
  const warnings: string[] = [];
  const warn = (msg: string): void => {
    const line = `${source}: ${msg}`;
    if (opts.strict) throw new SsdError(line);
    warnings.push(line);
    opts.onWarning?.(line);
  };
  if (!isRecord(json)) throw new SsdError(`${source}: not a COCO annotations file (expected a JSON object)`);
  const { images, annotations, categories } = json;
  if (!Array.isArray(images)) throw new SsdError(`${source}: not a COCO annotations file (no "images" array)`);
  if (!Array.isArray(categories)) throw new SsdError(`${source}: not a COCO annotations file (no "categories" array)`);
  if (annotations !== undefined && !Array.isArray(annotations)) throw new SsdError(`${source}: "annotations" is not an array`);

  const cats: CocoCategory[] = [];
  const catIds = new Set<number>();
  categories.forEach((c, i) => {
    if (!isRecord(c) || !finite(c.id) || typeof c.name !== 'string') throw new SsdError(`${source}: categories[${i}] needs a numeric "id" and a "name"`);
    if (catIds.has(c.id)) throw new SsdError(`${source}: category id ${c.id} appears twice`);
    catIds.add(c.id);
    cats.push({ id: c.id, name: c.name });
  });
  cats.sort((a, b) => a.id - b.id);

  let labels: string[];
  let cocoCategoryIds: number[];
  const classOfCategory = new Map<number, number>();
  if (opts.labels) {
    labels = normalizeLabels(opts.labels);
    cocoCategoryIds = labels.map(() => -1);
    for (const c of cats) {
      const k = labels.indexOf(c.name);
      if (k >= 1) {
        classOfCategory.set(c.id, k);
        cocoCategoryIds[k] = c.id;
      }
    }
  } else {
    labels = normalizeLabels(cats.map((c) => c.name));
    cocoCategoryIds = [-1, ...cats.map((c) => c.id)];
    cats.forEach((c, i) => classOfCategory.set(c.id, i + 1));
  }

  const samples: Sample[] = [];
  const byImage = new Map<number | string, Sample>();
  images.forEach((im, i) => {
    if (!isRecord(im) || !(finite(im.id) || typeof im.id === 'string')) return void warn(`images[${i}] has no "id"; image skipped`);
    if (byImage.has(im.id)) throw new SsdError(`${source}: image id ${String(im.id)} appears twice`);
    const fileName = typeof im.file_name === 'string' ? im.file_name : `${String(im.id)}.jpg`;
    const width = finite(im.width) ? im.width : 0;
    const height = finite(im.height) ? im.height : 0;
    const s: Sample = { id: String(im.id), imagePath: join(imagesDir, fileName), width, height, objects: [] };
    byImage.set(im.id, s);
    samples.push(s);
  });

  const droppedCats = new Set<number>();
  (annotations ?? []).forEach((a: unknown, i: number) => {
    if (!isRecord(a)) return void warn(`annotations[${i}] is not an object; skipped`);
    const where = `annotation ${finite(a.id) ? a.id : `#${i}`}`;
    const s = byImage.get(a.image_id as number | string);
    if (s === undefined) return void warn(`${where}: image_id ${String(a.image_id)} is not in "images"; skipped`);
    if (!finite(a.category_id) || !catIds.has(a.category_id)) return void warn(`${where}: unknown category_id ${String(a.category_id)}; skipped`);
    const classId = classOfCategory.get(a.category_id);
    if (classId === undefined) {
      if (!droppedCats.has(a.category_id)) {
        droppedCats.add(a.category_id);
        warnings.push(`${source}: category ${a.category_id} is not among the labels given; its annotations are dropped`);
      }
      return;
    }
    const bb = a.bbox;
    if (!Array.isArray(bb) || bb.length !== 4 || !bb.every(finite)) return void warn(`${where}: "bbox" is not [x, y, w, h]; skipped`);
    const [x, y, w, h] = bb as [number, number, number, number];
    if (w < 0 || h < 0) return void warn(`${where}: negative box size (w=${w}, h=${h}); skipped`);
    const obj: GroundTruthObject = {
      classId,
      box: [x, y, x + w, y + h],
      difficult: false,
      iscrowd: a.iscrowd === 1 || a.iscrowd === true,
      area: finite(a.area) ? a.area : w * h,
    };
    if (finite(a.id)) obj.annotationId = a.id;
    s.objects.push(obj);
  });

  return { name: source, labels, samples, warnings, cocoCategoryIds };
}

/** Loads a COCO instances JSON; images are looked up in imagesDir (default: the JSON's directory). */
export function loadCocoDataset(annotationsJson: string, imagesDir?: string, opts: CocoLoadOptions = {}): Dataset {
  const json = readJsonFile(annotationsJson);
  return cocoDatasetFromJson(json, annotationsJson, imagesDir ?? dirname(annotationsJson), opts);
}
