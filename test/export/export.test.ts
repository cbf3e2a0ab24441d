import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { saveCheckpoint } from '../../core/checkpoint.js';
import { SsdError } from '../../core/errors.js';
import { metadataFromProps } from '../../core/model-metadata.js';
import { exportOnnx, inspectModel, randomWeights } from '../../export/index.js';
import { tiny } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'ssd-export-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const quiet = () => {};
const root = new URL('../../', import.meta.url).pathname;

function checkpoint(name: string, mutate?: (w: ReturnType<typeof randomWeights>) => void, state?: Record<string, unknown>): string {
  const spec = tiny();
  const weights = randomWeights(spec, 61);
  mutate?.(weights);
  return saveCheckpoint(join(dir, name), { spec, weights, state });
}

describe('exportOnnx', () => {
  it('exports a checkpoint, verified, with training info in the metadata', async () => {
    const ckpt = checkpoint('good.ssdckpt', undefined, { iteration: 1234, dataset: 'digits' });
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
    expect(meta.training).toEqual({ data: 'digits', iterations: 1234 });
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
    const ok = await run('node', [join(root, 'bin/ssd.js'), 'export-onnx', '--init', 'random', '--config', 'ssd-tiny', '--out', out, '--postprocess', 'decode', '--batch', '2'], { cwd: root });
    expect(ok.stdout).toMatch(/wrote .*cli\.onnx \(\d+\.\d\d MB\): ssd-tiny96, 828 default boxes/);
    expect(ok.stdout).toMatch(/verified \(fp32, tfjs \w+ vs onnxruntime cpu, batch 2\) on random pixels: loc max \|diff\| /);
    expect(ok.stdout).toMatch(/ops: Conv x16/);
    const bad = await run('node', [join(root, 'bin/ssd.js'), 'export-onnx', '--checkpoint', join(dir, 'garbage.ssdckpt'), '--out', join(dir, 'y.onnx')], { cwd: root }).catch((e: { code: number; stderr: string }) => e);
    expect((bad as { code: number }).code).toBe(1);
    expect((bad as { stderr: string }).stderr.trim().split('\n')).toEqual([expect.stringMatching(/^ssd export-onnx: checkpoint .*garbage\.ssdckpt: not an SSD checkpoint \(bad magic\)$/)]);
  });
});

describe('trainingInfoFromState', () => {
  it('reads the trainer state (iteration, config, last validation mAP) and plain keys', async () => {
    const { trainingInfoFromState } = await import('../../export/index.js');
    expect(trainingInfoFromState({
      iteration: 5000, config: { name: 'ssd300-voc' }, maps: [{ iteration: 2500, map: 0.41, images: 500 }, { iteration: 5000, map: 0.52, images: 4952 }],
    })).toEqual({ data: 'config ssd300-voc', iterations: 5000, map: 0.52, metric: 'VOC07 11-point mAP on 4952 validation images at iteration 5000' });
    expect(trainingInfoFromState({ dataset: 'voc07+12', iterations: 120000, mAP: 0.772, metric: 'VOC07 test' })).toEqual({ data: 'voc07+12', iterations: 120000, map: 0.772, metric: 'VOC07 test' });
    expect(trainingInfoFromState({ rng: { seed: 1 } })).toBeUndefined();
    expect(trainingInfoFromState(undefined)).toBeUndefined();
  });
});
