// `ssd detect` and `ssd bench` through the real CLI (node bin/ssd.js): outputs on good input, and on bad
// input a single stderr line naming the cause, a non-zero exit and no stack trace.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { readCocoResults } from '../../core/datasets/results.js';
import type { Dataset } from '../../core/datasets/types.js';
import { readOnnxHeader } from '../../runtime/onnx-metadata.js';
import { encode, patternRgb, tinySpec, writeReluModel, writeTinyModel } from './helpers.js';
import { tempDir } from '../helpers/temp-dir.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const tmp = tempDir('ssd-cli-');

function ssd(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'ssd.js'), ...args], { cwd: ROOT, env: { ...process.env, SSD_DEBUG: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    // Ends a hang only: a run takes seconds idle, much longer on a loaded machine.
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    child.on('error', rej);
    child.on('close', (code) => {
      clearTimeout(timer);
      res({ code, stdout, stderr });
    });
  });
}

function expectOneLineError(r: { code: number | null; stderr: string }, pattern: RegExp): void {
  expect(r.code).not.toBe(0);
  expect(r.code).not.toBeNull();
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^ssd (detect|bench): /);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

let model: string;
let images: string;
beforeAll(async () => {
  model = writeTinyModel(tmp, { postprocess: 'nms', batch: 'dynamic' });
  images = join(tmp, 'images');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(join(images, 'sub'), { recursive: true });
  writeFileSync(join(images, '000005.png'), await encode(patternRgb(200, 100), 200, 100));
  writeFileSync(join(images, 'sub', '000007.jpg'), await encode(patternRgb(120, 160, 1), 120, 160, 'jpeg'));
  writeFileSync(join(images, 'notes.txt'), 'not an image');
});

describe('ssd detect', { timeout: 300_000 }, () => {
  it('annotates every image of a directory and writes COCO results, with the ids file, that the evaluator reads', async () => {
    const out = join(tmp, 'annotated');
    const json = join(tmp, 'results.json');
    const r = await ssd(['detect', model, images, '--annotated', out, '--coco-results', json, '--threshold', '0.3']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^onnxruntime \[device cpu \(detected\)\]: provider cpu/m);
    expect(r.stdout).toMatch(/000005\.png: \d+ detections/);
    expect(r.stdout).toContain(`(image and category ids: ${join(tmp, 'results.ids.json')})`);
    // Annotated copies keep the original size and format.
    const a = await sharp(join(out, '000005.png')).metadata();
    expect([a.format, a.width, a.height]).toEqual(['png', 200, 100]);
    const b = await sharp(join(out, '000007.jpg')).metadata();
    expect([b.format, b.width, b.height]).toEqual(['jpeg', 120, 160]);
    // Without --gt: image ids 1..N in the order listed, category ids the label indices, and the
    // ids file (COCO's layout) saying which is which.
    const ids = JSON.parse(readFileSync(join(tmp, 'results.ids.json'), 'utf8')) as { images: Array<{ id: number; file_name: string }>; categories: Array<{ id: number; name: string }> };
    expect(ids.images).toEqual([{ id: 1, file_name: join(images, '000005.png') }, { id: 2, file_name: join(images, 'sub', '000007.jpg') }]);
    expect(ids.categories).toEqual(tinySpec().labels.slice(1).map((name, k) => ({ id: k + 1, name })));
    const results = JSON.parse(readFileSync(json, 'utf8')) as Array<{ image_id: number; category_id: number; bbox: number[]; score: number }>;
    expect(results.length).toBeGreaterThan(0);
    expect(new Set(results.map((e) => e.image_id))).toEqual(new Set([1, 2]));
    for (const e of results) {
      expect(e.score).toBeGreaterThanOrEqual(0.3);
      expect(e.category_id).toBeGreaterThanOrEqual(1);
      expect(e.category_id).toBeLessThanOrEqual(10);
      const [x, y, w, h] = e.bbox as [number, number, number, number];
      const [W, H] = e.image_id === 1 ? [200, 100] : [120, 160];
      expect(x).toBeGreaterThanOrEqual(0);
      expect(y).toBeGreaterThanOrEqual(0);
      expect(x + w).toBeLessThanOrEqual(W + 1e-3);
      expect(y + h).toBeLessThanOrEqual(H + 1e-3);
    }
    // The evaluator's reader (core/datasets/results.ts) takes the file as it is.
    const labels = tinySpec().labels;
    const gt: Dataset = {
      name: 'gt', labels, warnings: [],
      samples: ids.images.map((im) => ({ id: String(im.id), imagePath: im.file_name, width: 10, height: 10, objects: [] })),
    };
    const read = readCocoResults(json, gt);
    expect(read).toHaveLength(results.length);
    expect(read[0]!.imageId).toBe(String(results[0]!.image_id));
  });

  it('the old spellings --out and --json still work, each with a one-line notice', async () => {
    const out = join(tmp, 'old-annotated');
    const json = join(tmp, 'old.json');
    const r = await ssd(['detect', model, join(images, '000005.png'), '--out', out, '--json', json, '--threshold', '0.3']);
    expect(r.code).toBe(0);
    expect(r.stderr.trimEnd().split('\n')).toEqual([
      'ssd detect: --out is now --annotated; the old spelling goes in 0.3',
      'ssd detect: --json is now --coco-results; the old spelling goes in 0.3',
    ]);
    expect((await sharp(join(out, '000005.png')).metadata()).width).toBe(200);
    expect(Array.isArray(JSON.parse(readFileSync(json, 'utf8')))).toBe(true);
    expect(existsSync(join(tmp, 'old.ids.json'))).toBe(true);
  });

  it('a bad model leaves no output directory behind', async () => {
    const corrupt = join(tmp, 'corrupt-for-outputs.onnx');
    writeFileSync(corrupt, readFileSync(model).subarray(0, 5000));
    const annotated = join(tmp, 'never', 'annotated');
    const voc = join(tmp, 'never-comp4');
    const r = await ssd(['detect', corrupt, images, '--annotated', annotated, '--voc-results', voc, '--coco-results', join(tmp, 'never.json')]);
    expectOneLineError(r, /corrupt-for-outputs\.onnx: not a valid ONNX file/);
    expect(existsSync(join(tmp, 'never'))).toBe(false);
    expect(existsSync(voc)).toBe(false);
    expect(existsSync(join(tmp, 'never.json'))).toBe(false);
  });

  it.each([
    ['--coco-results into a missing directory', () => ['--coco-results', join(tmp, 'no-such-dir', 'r.json')], /--coco-results .*r\.json: directory .*no-such-dir does not exist/],
    ['--coco-results naming a directory', () => ['--coco-results', images], /--coco-results .*images: is a directory/],
    ['--annotated naming a file', () => ['--annotated', join(images, '000005.png')], /--annotated .*000005\.png: exists and is not a directory/],
    ['--voc-results under a file', () => ['--voc-results', join(images, '000005.png', 'comp4')], /--voc-results .*comp4: cannot create it \(.*000005\.png is a file\)/],
    ['--split without --gt', () => ['--split', 'test'], /--split selects the images of a VOC --gt: give --gt too/],
  ])('%s fails at once, before the model loads, in one line', async (_name, extra, pattern) => {
    const r = await ssd(['detect', model, images, ...extra()]);
    expectOneLineError(r, pattern);
    // Nothing ran: the model was never loaded (its provider line is the first thing a run prints).
    expect(r.stdout).toBe('');
  });

  it.each([
    ['missing model', () => ['detect', join(tmp, 'nope.onnx'), join(images, '000005.png')], /nope\.onnx: file not found/],
    ['corrupt model', () => {
      const p = join(tmp, 'corrupt.onnx');
      writeFileSync(p, readFileSync(model).subarray(0, 5000));
      return ['detect', p, join(images, '000005.png')];
    }, /corrupt\.onnx: not a valid ONNX file/],
    ['non-SSD model', () => ['detect', writeReluModel(join(tmp, 'relu.onnx'), readOnnxHeader(model).props), join(images, '000005.png')],
      /relu\.onnx: input x is float32 \[1,3\], but its SSD metadata .* needs uint8 \[N,96,96,3\]|needs float32 \[N,3,96,96\]/],
    ['model without SSD metadata', () => ['detect', writeReluModel(join(tmp, 'plain.onnx')), join(images, '000005.png')], /plain\.onnx: no SSD metadata/],
    ['unknown device', () => ['detect', model, join(images, '000005.png'), '--device', 'toaster'], /unknown device profile "toaster"/],
    ['missing image', () => ['detect', model, join(tmp, 'missing.jpg')], /missing\.jpg: file not found/],
    ['bad flag value', () => ['detect', model, join(images, '000005.png'), '--threshold', '2'], /--threshold must be a number in \[0, 1\]/],
  ])('%s: one line on stderr, non-zero exit', async (_name, args, pattern) => {
    expectOneLineError(await ssd(args()), pattern);
  });

  it('--shrink-on-load: a big JPEG decoded at 1/2 still gets its boxes in its own pixels', async () => {
    const big = join(tmp, 'big-detect.jpg');
    writeFileSync(big, await encode(patternRgb(400, 300, 0.5), 400, 300, 'jpeg'));
    const boxes: number[][][] = [];
    for (const extra of [[], ['--shrink-on-load']]) {
      const json = join(tmp, `big-${extra.length}.json`);
      const r = await ssd(['detect', model, big, '--coco-results', json, '--threshold', '0.2', ...extra]);
      expect(r.code, r.stderr).toBe(0);
      boxes.push((JSON.parse(readFileSync(json, 'utf8')) as Array<{ bbox: number[] }>).map((e) => e.bbox));
    }
    for (const list of boxes) {
      expect(list.length).toBeGreaterThan(0);
      for (const [x, y, w, h] of list) {
        expect(x! >= 0 && y! >= 0 && x! + w! <= 400 + 1e-3 && y! + h! <= 300 + 1e-3).toBe(true);
      }
    }
  });

  it('a truncated image among good ones is reported in one line; the others are still written', async () => {
    const bad = join(tmp, 'truncated.jpg');
    const jpeg = readFileSync(join(images, 'sub', '000007.jpg'));
    writeFileSync(bad, jpeg.subarray(0, jpeg.length >> 1));
    const json = join(tmp, 'partial.json');
    const r = await ssd(['detect', model, bad, join(images, '000005.png'), '--coco-results', json, '--threshold', '0.3']);
    expectOneLineError(r, /truncated\.jpg: cannot decode/);
    const results = JSON.parse(readFileSync(json, 'utf8')) as Array<{ image_id: number }>;
    expect(results.length).toBeGreaterThan(0);
    // Ids count the images as listed, the unreadable one included: 000005.png is image 2.
    expect(results.every((e) => e.image_id === 2)).toBe(true);
  });
});

describe('ssd bench', { timeout: 300_000 }, () => {
  it('--json prints one object with session and pipeline throughput measured in the same run', async () => {
    const r = await ssd(['bench', model, '--frames', '4', '--rounds', '2', '--threads', '1', '--json']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const j = JSON.parse(lines[0]!) as Record<string, unknown>;
    for (const k of ['session_fps', 'pipeline_fps', 'ratio']) expect(typeof j[k]).toBe('number');
    expect(j.ratio).toBeCloseTo((j.pipeline_fps as number) / (j.session_fps as number), 9);
    expect(j).toMatchObject({ frames: 4, provider: 'cpu', thread: 'worker', spec: 'ssd-tiny96' });
    expect(r.stderr).toMatch(/^onnxruntime .*provider cpu/);
  });

  it('--shrink-on-load decodes a big --image smaller; without --image it is a one-line error', async () => {
    const big = join(tmp, 'big-bench.jpg');
    writeFileSync(big, await encode(patternRgb(400, 300), 400, 300, 'jpeg'));
    const r = await ssd(['bench', model, '--frames', '2', '--rounds', '1', '--threads', '1', '--image', big, '--shrink-on-load', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout.trim()) as { source: string }).source).toMatch(/big-bench\.jpg \(jpeg 400x300\), read and decoded with shrink-on-load/);
    expectOneLineError(await ssd(['bench', model, '--shrink-on-load']), /--shrink-on-load needs --image FILE/);
  });

  it('a non-SSD file is a one-line error', async () => {
    const p = join(tmp, 'text.onnx');
    writeFileSync(p, 'hello');
    expectOneLineError(await ssd(['bench', p]), /text\.onnx: not a valid ONNX file/);
  });
});
