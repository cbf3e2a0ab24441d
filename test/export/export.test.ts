import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { saveCheckpoint, type TrainingRecord } from '../../core/checkpoint.js';
import { SsdError } from '../../core/errors.js';
import { metadataFromProps } from '../../core/model-metadata.js';
import { exportOnnx, inspectModel, randomWeights } from '../../export/index.js';
import { tiny } from './helpers.js';
import { tempDir } from '../helpers/temp-dir.js';

const dir = tempDir('ssd-export-test-');
const quiet = () => {};
const root = new URL('../../', import.meta.url).pathname;

/** A training record as the trainer writes it (core/checkpoint.ts). */
function record(over: Partial<TrainingRecord> = {}): TrainingRecord {
  return {
    iteration: 1234, totalIterations: 1234, microBatches: 1234, seed: 1, data: 'digits VOC2007 train (2000 images)',
    config: { name: 'digits', augment: [], train: {} }, history: { iterations: [], loss: [], loc: [], conf: [], lr: [] },
    validations: [], backend: 'wasm', elapsedSeconds: 1, ...over,
  };
}

function checkpoint(name: string, mutate?: (w: ReturnType<typeof randomWeights>) => void, training?: TrainingRecord): string {
  const spec = tiny();
  const weights = randomWeights(spec, 61);
  mutate?.(weights);
  return saveCheckpoint(join(dir, name), { spec, weights, ...(training ? { training } : {}) });
}

describe('exportOnnx', () => {
  it('exports a checkpoint, verified, with training info in the metadata', async () => {
    const ckpt = checkpoint('good.ssdckpt', undefined, record());
    const out = join(dir, 'good.onnx');
    const r = await exportOnnx({ checkpoint: ckpt, out, postprocess: 'nms', input: 'uint8-nhwc', batch: 'dynamic', log: quiet });
    expect(r.bytes).toBe(readFileSync(out).length);
    expect(r.verification?.passed).toBe(true);
    expect(r.verification!.batch).toBe(2);
    for (const c of r.verification!.checks) {
      expect(c.locMaxAbsDiff).toBeLessThanOrEqual(1e-4);
      expect(c.confMaxAbsDiff).toBeLessThanOrEqual(1e-4);
      expect(c.nmsMatchRate).toBeGreaterThanOrEqual(0.97);
    }
    const meta = metadataFromProps(inspectModel(readFileSync(out)).metadata);
    expect(meta.training).toEqual({ data: 'digits VOC2007 train (2000 images)', iterations: 1234 });
    expect(meta.postprocess).toBe('nms');
    expect(r.outputs.map((o) => o.name)).toEqual(['num_detections', 'detection_boxes', 'detection_scores', 'detection_classes']);
  });

  it('fp16 reports the size ratio and the accuracy change vs fp32', async () => {
    const r = await exportOnnx({ spec: tiny(), init: 'random', seed: 3, out: join(dir, 'fp16.onnx'), fp16: true, log: quiet });
    const f = r.verification!.fp16!;
    expect(f.sizeRatio).toBeGreaterThan(0.45);
    expect(f.sizeRatio).toBeLessThan(0.56);
    expect(f.confMaxAbsDiff).toBeGreaterThan(0);
    expect(f.scoreMaxAbsDiff).toBeLessThan(0.01);
  });

  it('a bad checkpoint gives a one-line SsdError', async () => {
    const garbage = join(dir, 'garbage.ssdckpt');
    writeFileSync(garbage, 'not a checkpoint at all');
    await expect(exportOnnx({ checkpoint: garbage, out: join(dir, 'x.onnx'), log: quiet })).rejects.toThrow(/not an SSD checkpoint \(bad magic\)/);
    const cut = checkpoint('cut.ssdckpt');
    truncateSync(cut, readFileSync(cut).length - 100);
    const err = await exportOnnx({ checkpoint: cut, out: join(dir, 'x.onnx'), log: quiet }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SsdError);
    expect((err as Error).message).toMatch(/truncated/);
    expect((err as Error).message).not.toContain('\n');
    await expect(exportOnnx({ checkpoint: join(dir, 'nope'), out: join(dir, 'x.onnx'), log: quiet })).rejects.toThrow(/no such file/);
    await expect(exportOnnx({ checkpoint: cut, spec: { ...tiny(), name: 'other' }, out: join(dir, 'x.onnx'), log: quiet })).rejects.toThrow(SsdError);
    await expect(exportOnnx({ out: join(dir, 'x.onnx'), log: quiet })).rejects.toThrow(/--checkpoint DIR or --init random/);
    await expect(exportOnnx({ init: 'random', spec: tiny(), out: join(dir, 'missing-dir', 'x.onnx'), log: quiet })).rejects.toThrow(/does not exist/);
  });

  it('writes atomically: a failed verification leaves the previous file and no temporary file', async () => {
    const out = join(dir, 'keep.onnx');
    writeFileSync(out, 'previous model');
    // A NaN weight: the graph is valid but its outputs are not; verification must catch it.
    const ckpt = checkpoint('nan.ssdckpt', (w) => { w.get('conf1/bias')!.data[0] = NaN; });
    await expect(exportOnnx({ checkpoint: ckpt, out, log: quiet })).rejects.toThrow(/verification failed, nothing written: .*conf/);
    const notImage = join(dir, 'photo.jpg');
    writeFileSync(notImage, 'no pixels here');
    await expect(exportOnnx({ init: 'random', spec: tiny(), out, image: notImage, log: quiet })).rejects.toThrow(/--image .*photo\.jpg: cannot read it as an image/);
    expect(readFileSync(out, 'utf8')).toBe('previous model');
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('the CLI prints a summary, and one line (no stack) for a bad checkpoint', async () => {
    const run = promisify(execFile);
    const out = join(dir, 'cli.onnx');
    const ok = await run('node', [join(root, 'bin/ssd.js'), 'export-onnx', '--init', 'random', '--config', 'ssd-tiny', '--out', out, '--postprocess', 'decode', '--batch-dim', '2'], { cwd: root });
    expect(ok.stdout).toMatch(/wrote .*cli\.onnx \(\d+\.\d\d MB\): ssd-tiny96, 828 default boxes/);
    expect(ok.stdout).toMatch(/verified \(fp32, tfjs \w+ vs onnxruntime cpu, batch 2\) on random pixels: loc max \|diff\| /);
    expect(ok.stdout).toMatch(/ops: Conv x16/);
    const bad = await run('node', [join(root, 'bin/ssd.js'), 'export-onnx', '--checkpoint', join(dir, 'garbage.ssdckpt'), '--out', join(dir, 'y.onnx')], { cwd: root }).catch((e: { code: number; stderr: string }) => e);
    expect((bad as { code: number }).code).toBe(1);
    expect((bad as { stderr: string }).stderr.trim().split('\n')).toEqual([expect.stringMatching(/^ssd export-onnx: checkpoint .*garbage\.ssdckpt: not an SSD checkpoint \(bad magic\)$/)]);
  }, 600_000); // child processes: seconds idle, 25-45 s at load 10-19; the bound ends a hang only
});

describe('trainingInfo (the training record of a checkpoint -> model metadata)', () => {
  it('reads the typed record: data, iterations, the last validation and its metric', async () => {
    const { trainingInfo } = await import('../../export/index.js');
    const voc = record({
      iteration: 5000, valData: 'VOC2007 test (4952 images)',
      validations: [{ iteration: 2500, metric: 'voc07', map: 0.41, images: 500 }, { iteration: 5000, metric: 'voc07', map: 0.52, images: 4952 }],
    });
    expect(trainingInfo(voc)).toEqual({
      data: 'digits VOC2007 train (2000 images)', iterations: 5000, map: 0.52,
      metric: 'VOC07 11-point mAP on 4952 validation images of VOC2007 test (4952 images) at iteration 5000',
    });
    const stats = [0.25, 0.43, 0.26, 0.07, 0.27, 0.4, 0.23, 0.34, 0.36, 0.11, 0.39, 0.55];
    const coco = record({ iteration: 400, validations: [{ iteration: 400, metric: 'coco', map: 0.25, stats, images: 50 }] });
    expect(trainingInfo(coco)).toMatchObject({ iterations: 400, map: 0.25, metric: 'COCO AP@[.50:.95] on 50 validation images at iteration 400 (AP50 0.4300, AP75 0.2600)' });
    expect(trainingInfo(record())).toEqual({ data: 'digits VOC2007 train (2000 images)', iterations: 1234 });
    expect(trainingInfo(undefined)).toBeUndefined();
  });
});
