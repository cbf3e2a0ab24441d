import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { SsdError } from '../errors.js';
import { BACKGROUND } from '../labels.js';
import { readImageSize } from './image-size.js';
import type { BoxXYXY } from '../model-contract.js';
import type { Dataset, GroundTruthObject, Sample } from './types.js';
import { findVocImage, readSplitIds, resolveVocRoots, vocLabels, vocSampleId } from './voc-layout.js';

export { findLabelsFile, normalizeLabels, readLabelsFile, resolveVocRoots } from './voc-layout.js';

export interface VocLoadOptions {
  /** Class names (with or without 'background' first). Default: the root's labels.txt, else the 20 VOC classes. */
  labels?: readonly string[];
  /** Turn every skipped object or sample into an SsdError naming the file. */
  strict?: boolean;
  /** Called once per skipped object or sample (the same lines end up in Dataset.warnings). */
  onWarning?: (msg: string) => void;
  /** Check that each image file exists (default true; evaluation alone can turn it off). */
  checkImages?: boolean;
}

const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  trimValues: true,
  isArray: (name, jpath) => name === 'object' && jpath === 'annotation.object',
});

export interface ParsedVocAnnotation {
  filename?: string;
  width?: number;
  height?: number;
  objects: GroundTruthObject[];
  /** Reasons objects were skipped (without the file name). */
  problems: string[];
}

type XmlNode = Record<string, unknown>;

function child(node: unknown, key: string): unknown {
  return node !== null && typeof node === 'object' ? (node as XmlNode)[key] : undefined;
}

function text(node: unknown): string | undefined {
  if (typeof node === 'string') return node;
  if (typeof node === 'number') return String(node);
  return undefined;
}

/**
 * The class names the objects of a split use, sorted: the class list of data without a labels.txt
 * (training infers it rather than assume the 20 VOC classes). Annotations that are missing or
 * malformed are passed over here; loading the split reports them.
 */
export function vocClassNames(roots: string | readonly string[], split: string): string[] {
  const names = new Set<string>();
  for (const root of resolveVocRoots(roots)) {
    for (const stem of readSplitIds(root, split)) {
      const xmlPath = join(root, 'Annotations', `${stem}.xml`);
      if (!existsSync(xmlPath)) continue;
      const xml = readFileSync(xmlPath, 'utf8');
      if (XMLValidator.validate(xml) !== true) continue;
      const objs = child(child(parser.parse(xml), 'annotation'), 'object');
      for (const obj of Array.isArray(objs) ? objs : []) {
        const name = text(child(obj, 'name'))?.trim();
        if (name && name !== BACKGROUND) names.add(name);
      }
    }
  }
  return [...names].sort();
}

/**
 * Parses one VOC annotation. Throws SsdError (message without the file name) when the XML itself is
 * malformed; objects that cannot be used are left out and described in `problems`.
 */
export function parseVocAnnotation(xml: string, labels: readonly string[]): ParsedVocAnnotation {
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw new SsdError(`malformed XML (${valid.err.msg.replace(/\s+/g, ' ')} at line ${valid.err.line})`);
  const doc: unknown = parser.parse(xml);
  const ann = child(doc, 'annotation');
  if (ann === undefined || typeof ann !== 'object' || ann === null) throw new SsdError('malformed VOC annotation (no <annotation> element)');
  const size = child(ann, 'size');
  const width = Number(text(child(size, 'width')));
  const height = Number(text(child(size, 'height')));
  const classIndex = new Map(labels.map((name, i) => [name, i]));
  const objects: GroundTruthObject[] = [];
  const problems: string[] = [];
  const objs = child(ann, 'object');
  const list = Array.isArray(objs) ? objs : [];
  list.forEach((obj, k) => {
    const name = text(child(obj, 'name'))?.trim();
    const where = `object ${k + 1}${name ? ` ("${name}")` : ''}`;
    if (!name) return void problems.push(`${where}: no <name>`);
    const classId = classIndex.get(name);
    if (classId === undefined || classId === 0) return void problems.push(`${where}: unknown class "${name}"`);
    const bb = child(obj, 'bndbox');
    const coords = ['xmin', 'ymin', 'xmax', 'ymax'].map((key) => Number(text(child(bb, key)) ?? NaN));
    if (bb === undefined) return void problems.push(`${where}: no <bndbox>`);
    if (!coords.every(Number.isFinite)) return void problems.push(`${where}: <bndbox> coordinates are not all numbers`);
    const [x1, y1, x2, y2] = coords as BoxXYXY;
    if (x1 < 0 || y1 < 0 || x2 < 0 || y2 < 0) return void problems.push(`${where}: negative box coordinate (${x1},${y1},${x2},${y2})`);
    if (x2 < x1 || y2 < y1) return void problems.push(`${where}: empty box (${x1},${y1},${x2},${y2})`);
    const diff = text(child(obj, 'difficult'))?.trim();
    objects.push({ classId, box: [x1, y1, x2, y2], difficult: diff === '1' || diff === 'true' });
  });
  const filename = text(child(ann, 'filename'))?.trim();
  return {
    ...(filename ? { filename } : {}),
    ...(Number.isFinite(width) && width > 0 ? { width } : {}),
    ...(Number.isFinite(height) && height > 0 ? { height } : {}),
    objects,
    problems,
  };
}

/**
 * Loads a VOC-layout dataset: the ids of ImageSets/Main/<split>.txt in each root (roots joined in
 * the order given, e.g. VOC2007 + VOC2012), their Annotations/<id>.xml and JPEGImages/<id>.jpg.
 * Objects or samples that cannot be used are skipped with a warning naming the file and the
 * reason; with `strict` the first one is an SsdError instead.
 */
export function loadVocDataset(roots: string | readonly string[], split: string, opts: VocLoadOptions = {}): Dataset {
  const years = resolveVocRoots(roots);
  const labels = vocLabels(years, opts.labels);
  const warnings: string[] = [];
  const warn = (file: string, reason: string): void => {
    const msg = `${file}: ${reason}`;
    if (opts.strict) throw new SsdError(msg);
    warnings.push(msg);
    opts.onWarning?.(msg);
  };
  const samples: Sample[] = [];
  const seen = new Set<string>();
  const checkImages = opts.checkImages ?? true;
  for (const root of years) {
    const ids = readSplitIds(root, split);
    for (const stem of ids) {
      const xmlPath = join(root, 'Annotations', `${stem}.xml`);
      if (!existsSync(xmlPath)) {
        warn(xmlPath, 'annotation file missing; sample skipped');
        continue;
      }
      let parsed: ParsedVocAnnotation;
      try {
        parsed = parseVocAnnotation(readFileSync(xmlPath, 'utf8'), labels);
      } catch (err) {
        if (!(err instanceof SsdError)) throw err;
        warn(xmlPath, `${err.message}; sample skipped`);
        continue;
      }
      for (const p of parsed.problems) warn(xmlPath, `${p}; object skipped`);
      let imagePath = findVocImage(root, stem, parsed.filename);
      if (imagePath === undefined) {
        if (checkImages) {
          warn(xmlPath, `image ${join(root, 'JPEGImages', parsed.filename ?? `${stem}.jpg`)} missing; sample skipped`);
          continue;
        }
        imagePath = join(root, 'JPEGImages', parsed.filename ?? `${stem}.jpg`);
      }
      let { width, height } = parsed;
      if ((width === undefined || height === undefined) && existsSync(imagePath)) {
        const s = readImageSize(imagePath);
        width ??= s?.width;
        height ??= s?.height;
      }
      if (width === undefined || height === undefined) {
        if (checkImages) {
          warn(xmlPath, 'no <size> and the image header is unreadable; sample skipped');
          continue;
        }
        width ??= 0;
        height ??= 0;
      }
      // 07 and 12 ids never collide, but two copies of one year would: keep both, told apart.
      const id = vocSampleId(root, stem, seen);
      seen.add(id);
      samples.push({ id, imagePath, width, height, objects: parsed.objects });
    }
  }
  return { name: `${years.map((r) => basename(r)).join('+')} ${split}`, labels, samples, warnings };
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A VOC annotation for one sample, as the devkit writes them (boxes as given: 1-based inclusive). */
export function vocAnnotationXml(sample: Sample, labels: readonly string[], folder = 'VOC2007'): string {
  const objs = sample.objects.map((o) => {
    const [x1, y1, x2, y2] = o.box;
    return [
      '\t<object>',
      `\t\t<name>${xmlEscape(labels[o.classId] ?? String(o.classId))}</name>`,
      '\t\t<pose>Unspecified</pose>',
      '\t\t<truncated>0</truncated>',
      `\t\t<difficult>${o.difficult ? 1 : 0}</difficult>`,
      '\t\t<bndbox>',
      `\t\t\t<xmin>${x1}</xmin>`,
      `\t\t\t<ymin>${y1}</ymin>`,
      `\t\t\t<xmax>${x2}</xmax>`,
      `\t\t\t<ymax>${y2}</ymax>`,
      '\t\t</bndbox>',
      '\t</object>',
    ].join('\n');
  });
  return [
    '<annotation>',
    `\t<folder>${xmlEscape(folder)}</folder>`,
    `\t<filename>${xmlEscape(basename(sample.imagePath))}</filename>`,
    '\t<size>',
    `\t\t<width>${sample.width}</width>`,
    `\t\t<height>${sample.height}</height>`,
    '\t\t<depth>3</depth>',
    '\t</size>',
    '\t<segmented>0</segmented>',
    ...objs,
    '</annotation>',
    '',
  ].join('\n');
}
