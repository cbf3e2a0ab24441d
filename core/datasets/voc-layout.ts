/**
 * The VOC directory layout without the XML: year directories, labels.txt, split files and image
 * files. Kept apart from voc.ts (which parses annotations with fast-xml-parser) so that the runtime
 * (`ssd detect --gt`, COCO results ids) can read a VOC tree's ids without shipping an XML parser to
 * the device; voc.ts re-exports everything here.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { SsdError } from '../errors.js';
import { BACKGROUND, VOC_CLASSES, withBackground } from '../labels.js';

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

/**
 * The class list of year directories: `labels` when given, else their labels.txt (all the same),
 * else the 20 VOC classes; background first.
 */
export function vocLabels(years: readonly string[], labels?: readonly string[]): string[] {
  if (labels) return normalizeLabels(labels);
  const files = years.map(findLabelsFile);
  const first = files[0];
  if (first === undefined) {
    if (files.some((f) => f !== undefined)) throw new SsdError(`${years[0]}: has no labels.txt but other roots do`);
    return withBackground(VOC_CLASSES);
  }
  const out = readLabelsFile(first);
  for (const [i, f] of files.entries()) {
    if (i === 0) continue;
    if (f === undefined || readLabelsFile(f).join('\n') !== out.join('\n')) throw new SsdError(`${f ?? years[i]}: class list differs from ${first}`);
  }
  return out;
}

/** The image ids of ImageSets/Main/<split>.txt (first word of each non-blank line). */
export function readSplitIds(root: string, split: string): string[] {
  const splitFile = join(root, 'ImageSets', 'Main', `${split}.txt`);
  if (!existsSync(splitFile)) throw new SsdError(`${splitFile}: no such split file`);
  return readFileSync(splitFile, 'utf8')
    .split(/\r?\n/)
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((l) => l !== '');
}

/** JPEGImages/<filename> (the annotation's), else JPEGImages/<id>.jpg|.jpeg|.png, if it exists. */
export function findVocImage(root: string, id: string, filename?: string): string | undefined {
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
 * The sample id of `stem` in year directory `root`, given the ids taken so far: the stem itself, or
 * `<year dir>/<stem>` when an earlier root already had it (two copies of one year would collide;
 * 07 and 12 ids never do).
 */
export function vocSampleId(root: string, stem: string, seen: ReadonlySet<string>): string {
  return seen.has(stem) ? `${basename(root)}/${stem}` : stem;
}
