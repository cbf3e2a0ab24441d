// `ssd detect` and `ssd bench` through the real CLI (node bin/ssd.js): outputs on good input, and on bad
// input a single stderr line naming the cause, a non-zero exit and no stack trace.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCocoResults } from '../../core/datasets/results.js';
import type { Dataset } from '../../core/datasets/types.js';
import { readOnnxHeader } from '../../runtime/onnx-metadata.js';
import { encode, patternRgb, tempDir, tinySpec, writeReluModel, writeTinyModel } from './helpers.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const tmp = tempDir('ssd-cli-');
afterAll(tmp.cleanup);

function ssd(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'ssd.js'), ...args], { cwd: ROOT, env: { ...process.env, SSD_DEBUG: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 45_000);
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
  model = writeTinyModel(tmp.dir, { postprocess: 'nms', batch: 'dynamic' });
  images = join(tmp.dir, 'images');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(join(images, 'sub'), { recursive: true });
  writeFileSync(join(images, '000005.png'), await encode(patternRgb(200, 100), 200, 100));
  writeFileSync(join(images, 'sub', '000007.jpg'), await encode(patternRgb(120, 160, 1), 120, 160, 'jpeg'));
  writeFileSync(join(images, 'notes.txt'), 'not an image');
});

describe('ssd detect', () => {
  it('annotates every image of a directory and writes COCO results that the evaluator reads', async () => {
    const out = join(tmp.dir, 'annotated');
    const json = join(tmp.dir, 'results.json');
    const r = await ssd(['detect', model, images, '--out', out, '--json', json, '--threshold', '0.3']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^onnxruntime \[device cpu \(detected\)\]: provider cpu/m);
    expect(r.stdout).toMatch(/000005\.png: \d+ detections/);
    // Annotated copies keep the original size and format.
    const a = await sharp(join(out, '000005.png')).metadata();
    expect([a.format, a.width, a.height]).toEqual(['png', 200, 100]);
    const b = await sharp(join(out, '000007.jpg')).metadata();
    expect([b.format, b.width, b.height]).toEqual(['jpeg', 120, 160]);
    const results = JSON.parse(readFileSync(json, 'utf8')) as Array<{ image_id: string; category_id: number; bbox: number[]; score: number }>;
    expect(results.length).toBeGreaterThan(0);
    expect(new Set(results.map((e) => e.image_id))).toEqual(new Set(['000005', '000007']));
    for (const e of results) {
      expect(e.score).toBeGreaterThanOrEqual(0.3);
      expect(e.category_id).toBeGreaterThanOrEqual(1);
      expect(e.category_id).toBeLessThanOrEqual(10);
      const [x, y, w, h] = e.bbox as [number, number, number, number];
      const [W, H] = e.image_id === '000005' ? [200, 100] : [120, 160];
      expect(x).toBeGreaterThanOrEqual(0);
      expect(y).toBeGreaterThanOrEqual(0);
      expect(x + w).toBeLessThanOrEqual(W + 1e-3);
      expect(y + h).toBeLessThanOrEqual(H + 1e-3);
    }
    // The evaluator's reader (core/datasets/results.ts) takes the file as it is.
    const labels = tinySpec().labels;
    const gt: Dataset = {
      name: 'gt', labels, warnings: [],
      samples: ['000005', '000007'].map((id) => ({ id, imagePath: `${id}.jpg`, width: 10, height: 10, objects: [] })),
    };
    const read = readCocoResults(json, gt);
    expect(read).toHaveLength(results.length);
    expect(read[0]!.imageId).toBe(results[0]!.image_id);
  });

  it.each([
    ['missing model', () => ['detect', join(tmp.dir, 'nope.onnx'), join(images, '000005.png')], /nope\.onnx: file not found/],
    ['corrupt model', () => {
      const p = join(tmp.dir, 'corrupt.onnx');
      writeFileSync(p, readFileSync(model).subarray(0, 5000));
      return ['detect', p, join(images, '000005.png')];
    }, /corrupt\.onnx: not a valid ONNX file/],
    ['non-SSD model', () => ['detect', writeReluModel(join(tmp.dir, 'relu.onnx'), readOnnxHeader(model).props), join(images, '000005.png')],
      /relu\.onnx: input x is float32 \[1,3\], but its SSD metadata .* needs uint8 \[N,96,96,3\]|needs float32 \[N,3,96,96\]/],
    ['model without SSD metadata', () => ['detect', writeReluModel(join(tmp.dir, 'plain.onnx')), join(images, '000005.png')], /plain\.onnx: no SSD metadata/],
    ['unknown device', () => ['detect', model, join(images, '000005.png'), '--device', 'toaster'], /unknown device profile "toaster"/],
    ['missing image', () => ['detect', model, join(tmp.dir, 'missing.jpg')], /missing\.jpg: file not found/],
    ['bad flag value', () => ['detect', model, join(images, '000005.png'), '--threshold', '2'], /--threshold must be a number in \[0, 1\]/],
  ])('%s: one line on stderr, non-zero exit', async (_name, args, pattern) => {
    expectOneLineError(await ssd(args()), pattern);
  });

  it('a truncated image among good ones is reported in one line; the others are still written', async () => {
    const bad = join(tmp.dir, 'truncated.jpg');
    const jpeg = readFileSync(join(images, 'sub', '000007.jpg'));
    writeFileSync(bad, jpeg.subarray(0, jpeg.length >> 1));
    const json = join(tmp.dir, 'partial.json');
    const r = await ssd(['detect', model, bad, join(images, '000005.png'), '--json', json, '--threshold', '0.3']);
    expectOneLineError(r, /truncated\.jpg: cannot decode/);
    const results = JSON.parse(readFileSync(json, 'utf8')) as Array<{ image_id: string }>;
    expect(results.length).toBeGreaterThan(0);
    expect(results.every((e) => e.image_id === '000005')).toBe(true);
  });
});

describe('ssd bench', () => {
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

  it('a non-SSD file is a one-line error', async () => {
    const p = join(tmp.dir, 'text.onnx');
    writeFileSync(p, 'hello');
    expectOneLineError(await ssd(['bench', p]), /text\.onnx: not a valid ONNX file/);
  });
});
