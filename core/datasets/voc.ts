import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { SsdError } from '../errors.js';
import { BACKGROUND, VOC_CLASSES, withBackground } from '../labels.js';
import { readImageSize } from './image-size.js';
import type { BoxXYXY, Dataset, GroundTruthObject, Sample } from './types.js';

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

const IMAGE_EXTS = ['.jpg', '.jpeg', '.png', '.JPG', '.JPEG', '.PNG'];

/** Labels with background at 0, whether or not the list given starts with it. */
export function normalizeLabels(labels: readonly string[]): string[] {
  return labels[0] === BACKGROUND ? [...labels] : withBackground(labels);
}

/** A labels.txt: one class name a line, blank lines ignored, 'background' first optional. */
export function readLabelsFile(path: string): string[] {
  const names = readFileSync(path, 'utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  if (names.length === 0) throw new SsdError(`${path}: no class names`);
  const labels = normalizeLabels(names);
  const seen = new Set<string>();
  for (const name of labels) {
    if (seen.has(name)) throw new SsdError(`${path}: class "${name}" listed twice`);
    seen.add(name);
  }
  return labels;
}

function isVocYearDir(dir: string): boolean {
  return existsSync(join(dir, 'Annotations')) || existsSync(join(dir, 'ImageSets'));
}

/**
 * The year directories (those holding Annotations/ and ImageSets/) behind what the user named:
 * a year directory itself, or a VOCdevkit-like parent holding VOC2007/, VOC2012/, ... (all of them,
 * sorted, i.e. 07+12).
 */
export function resolveVocRoots(roots: string | readonly string[]): string[] {
  const list = typeof roots === 'string' ? [roots] : [...roots];
  if (list.length === 0) throw new SsdError('no VOC directory given');
  const out: string[] = [];
  for (const root of list) {
    if (!existsSync(root) || !statSync(root).isDirectory()) throw new SsdError(`${root}: no such directory`);
    if (isVocYearDir(root)) {
      out.push(root);
      continue;
    }
    const years = readdirSync(root)
      .filter((d) => /^VOC/i.test(d) && isVocYearDir(join(root, d)))
      .sort();
    if (years.length === 0) throw new SsdError(`${root}: not a VOC directory (no Annotations/ or ImageSets/, nor VOC*/ inside)`);
    out.push(...years.map((d) => join(root, d)));
  }
  return out;
}

/** The labels.txt that applies to a year directory: its own, else its parent's. */
export function findLabelsFile(root: string): string | undefined {
  for (const p of [join(root, 'labels.txt'), join(dirname(root), 'labels.txt')]) if (existsSync(p)) return p;
  return undefined;
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

function findImage(root: string, id: string, filename: string | undefined): string | undefined {
  const dir = join(root, 'JPEGImages');
  if (filename) {
    const p = join(dir, basename(filename));
    if (existsSync(p)) return p;
  }
  for (const ext of IMAGE_EXTS) {
    const p = join(dir, id + ext);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/**
 * Loads a VOC-layout dataset: the ids of ImageSets/Main/<split>.txt in each root (roots joined in
 * the order given, e.g. VOC2007 + VOC2012), their Annotations/<id>.xml and JPEGImages/<id>.jpg.
 * Objects or samples that cannot be used are skipped with a warning naming the file and the
 * reason; with `strict` the first one is an SsdError instead.
 */
export function loadVocDataset(roots: string | readonly string[], split: string, opts: VocLoadOptions = {}): Dataset {
  const years = resolveVocRoots(roots);
  let labels: string[];
  if (opts.labels) {
    labels = normalizeLabels(opts.labels);
  } else {
    const files = years.map(findLabelsFile);
    const first = files[0];
    if (first !== undefined) {
      labels = readLabelsFile(first);
      for (const f of files.slice(1)) {
        if (f === undefined || readLabelsFile(f).join('\n') !== labels.join('\n')) {
          throw new SsdError(`${f ?? years[files.indexOf(f)]}: class list differs from ${first}`);
        }
      }
    } else {
      if (files.some((f) => f !== undefined)) throw new SsdError(`${years[0]}: has no labels.txt but other roots do`);
      labels = withBackground(VOC_CLASSES);
    }
  }
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
    const splitFile = join(root, 'ImageSets', 'Main', `${split}.txt`);
    if (!existsSync(splitFile)) throw new SsdError(`${splitFile}: no such split file`);
    const ids = readFileSync(splitFile, 'utf8')
      .split(/\r?\n/)
      .map((l) => l.trim().split(/\s+/)[0] ?? '')
      .filter((l) => l !== '');
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
      let imagePath = findImage(root, stem, parsed.filename);
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
      const id = seen.has(stem) ? `${basename(root)}/${stem}` : stem;
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
