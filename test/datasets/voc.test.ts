import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SsdError } from '../../core/errors.js';
import { VOC_CLASSES } from '../../core/labels.js';
import { imageSizeFromBytes } from '../../core/datasets/image-size.js';
import { loadVocDataset, parseVocAnnotation, resolveVocRoots, vocAnnotationXml } from '../../core/datasets/voc.js';
import { tempDir } from '../helpers/temp-dir.js';

const tmp = tempDir('ssd-voc-');

function obj(name: string, box: (number | string)[], difficult = 0): string {
  const [a, b, c, d] = box;
  return `<object><name>${name}</name><difficult>${difficult}</difficult><bndbox><xmin>${a}</xmin><ymin>${b}</ymin><xmax>${c}</xmax><ymax>${d}</ymax></bndbox></object>`;
}
function ann(file: string, objects: string[], size = '<size><width>500</width><height>375</height><depth>3</depth></size>'): string {
  return `<annotation><folder>VOC2007</folder><filename>${file}</filename>${size}${objects.join('')}</annotation>`;
}
// A 1x1 PNG header is all the loader reads when <size> is missing.
const PNG_3x2 = Buffer.from('89504e470d0a1a0a0000000d49484452000000030000000208020000', 'hex');

function makeYear(root: string, files: Record<string, string | null>, split: Record<string, string[]>, images: string[]): void {
  mkdirSync(join(root, 'Annotations'), { recursive: true });
  mkdirSync(join(root, 'JPEGImages'), { recursive: true });
  mkdirSync(join(root, 'ImageSets', 'Main'), { recursive: true });
  for (const [id, xml] of Object.entries(files)) if (xml !== null) writeFileSync(join(root, 'Annotations', `${id}.xml`), xml);
  for (const [name, ids] of Object.entries(split)) writeFileSync(join(root, 'ImageSets', 'Main', `${name}.txt`), ids.join('\n') + '\n');
  for (const img of images) writeFileSync(join(root, 'JPEGImages', img), img.endsWith('.png') ? PNG_3x2 : Buffer.from([0xff, 0xd8]));
}

describe('VOC loader', () => {
  const devkit = join(tmp, 'VOCdevkit');
  const y07 = join(devkit, 'VOC2007');
  const y12 = join(devkit, 'VOC2012');
  makeYear(
    y07,
    {
      '000001': ann('000001.jpg', [obj('dog', [48, 240, 195, 371]), obj('person', [8, 12, 352, 498], 1)]),
      '000002': ann('000002.jpg', [obj('train', [139, 200, 207, 301]), obj('unicorn', [1, 1, 5, 5]), obj('car', [-3, 1, 5, 5]), obj('car', [10, 10, 5, 20])]),
      '000003': '<annotation><object><name>dog</name></annotation>',
      '000004': ann('000004.jpg', [obj('cat', [1, 2, 3, 4])]),
      '000005': null,
      '000006': ann('000006.png', [obj('cat', [1, 1, 3, 2])], ''),
    },
    { test: ['000001', '000002', '000003', '000004', '000005', '000006'], onlyGood: ['000001'] },
    ['000001.jpg', '000002.jpg', '000003.jpg', '000006.png'],
  );
  makeYear(y12, { '2008_000001': ann('2008_000001.jpg', [obj('cat', [1.5, 2, 30.25, 40])]) }, { test: ['2008_000001'] }, ['2008_000001.jpg']);

  it('parses objects, difficult flags and sizes; skips bad objects and samples with a warning naming the file', () => {
    const seen: string[] = [];
    const ds = loadVocDataset(y07, 'test', { onWarning: (m) => seen.push(m) });
    expect(ds.labels[0]).toBe('background');
    expect(ds.labels.slice(1)).toEqual([...VOC_CLASSES]);
    expect(ds.samples.map((s) => s.id)).toEqual(['000001', '000002', '000006']);
    const [s1, s2, s6] = ds.samples;
    expect(s1!.width).toBe(500);
    expect(s1!.height).toBe(375);
    expect(s1!.objects).toEqual([
      { classId: VOC_CLASSES.indexOf('dog') + 1, box: [48, 240, 195, 371], difficult: false },
      { classId: VOC_CLASSES.indexOf('person') + 1, box: [8, 12, 352, 498], difficult: true },
    ]);
    expect(s2!.objects).toHaveLength(1);
    // Size from the PNG header when <size> is missing.
    expect([s6!.width, s6!.height]).toEqual([3, 2]);
    expect(ds.warnings).toEqual(seen);
    const w = ds.warnings.join('\n');
    expect(w).toMatch(/000002\.xml: object 2 \("unicorn"\): unknown class "unicorn"; object skipped/);
    expect(w).toMatch(/000002\.xml: object 3 \("car"\): negative box coordinate/);
    expect(w).toMatch(/000002\.xml: object 4 \("car"\): empty box/);
    expect(w).toMatch(/000003\.xml: malformed XML/);
    expect(w).toMatch(/000004\.xml: image .*000004\.jpg missing; sample skipped/);
    expect(w).toMatch(/000005\.xml: annotation file missing/);
    expect(ds.warnings).toHaveLength(6);
  });

  it('strict mode turns the first problem into an SsdError naming the file', () => {
    expect(() => loadVocDataset(y07, 'test', { strict: true })).toThrow(SsdError);
    expect(() => loadVocDataset(y07, 'test', { strict: true })).toThrow(/000002\.xml: object 2 \("unicorn"\): unknown class/);
    expect(loadVocDataset(y07, 'onlyGood', { strict: true }).samples).toHaveLength(1);
  });

  it('joins years (07+12) from a VOCdevkit directory, and errors on a missing split', () => {
    expect(resolveVocRoots(devkit)).toEqual([y07, y12]);
    const ds = loadVocDataset(devkit, 'test');
    expect(ds.samples.map((s) => s.id)).toEqual(['000001', '000002', '000006', '2008_000001']);
    expect(ds.samples[3]!.objects[0]!.box).toEqual([1.5, 2, 30.25, 40]);
    expect(() => loadVocDataset(y07, 'nope')).toThrow(/ImageSets\/Main\/nope\.txt: no such split file/);
    expect(() => loadVocDataset(join(tmp, 'missing'), 'test')).toThrow(/no such directory/);
  });

  it('uses labels.txt when the root has one, and given labels over it', () => {
    const root = join(tmp, 'digits', 'VOC2007');
    makeYear(root, { a: ann('a.jpg', [obj('7', [1, 1, 9, 9]), obj('dog', [1, 1, 9, 9])]) }, { test: ['a'] }, ['a.jpg']);
    writeFileSync(join(tmp, 'digits', 'labels.txt'), '0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n');
    const ds = loadVocDataset(join(tmp, 'digits'), 'test');
    expect(ds.labels).toEqual(['background', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(ds.samples[0]!.objects).toEqual([{ classId: 8, box: [1, 1, 9, 9], difficult: false }]);
    expect(ds.warnings[0]).toMatch(/unknown class "dog"/);
    const ds2 = loadVocDataset(root, 'test', { labels: ['dog'] });
    expect(ds2.labels).toEqual(['background', 'dog']);
    expect(ds2.samples[0]!.objects[0]!.classId).toBe(1);
  });

  it('writes annotations that parse back to the same objects', () => {
    const labels = ['background', 'a', 'b'];
    const sample = { id: 'x', imagePath: '/d/x.png', width: 64, height: 48, objects: [{ classId: 2, box: [3, 4, 20, 30] as [number, number, number, number], difficult: true }] };
    const back = parseVocAnnotation(vocAnnotationXml(sample, labels), labels);
    expect(back).toEqual({ filename: 'x.png', width: 64, height: 48, objects: sample.objects, problems: [] });
  });

  it('reads JPEG and PNG sizes from headers', () => {
    expect(imageSizeFromBytes(PNG_3x2)).toEqual({ width: 3, height: 2 });
    // SOI, APP0 of length 4, SOF0 with height 0x0102 and width 0x0304.
    const jpeg = Buffer.from('ffd8ffe00004aaaaffc0001108010203040301220002', 'hex');
    expect(imageSizeFromBytes(jpeg)).toEqual({ width: 0x0304, height: 0x0102 });
    expect(imageSizeFromBytes(Buffer.from('hello'))).toBeUndefined();
  });
});
