// `ssd quantize` end to end on the shipped digits model and a small generated digits set: the int8
// model keeps VOC07 mAP within 0.005 of fp32, the gate refuses (exit 1, one line, both figures, no
// file) when the drop allowed is negative, and bad flags are one line naming the flag.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { vocToPixels } from '../../core/model-contract.js';
import { loadVocDataset } from '../../core/datasets/voc.js';
import { inspectModel } from '../../export/index.js';
import { makeDigitsDataset } from '../../train/digits-dataset.js';
import { ROOT, ssd } from '../cli/helpers.js';
import { tempDir } from '../helpers/temp-dir.js';

const dir = tempDir('ssd-quantize-cli-');
const data = join(dir, 'digits', 'VOC2007');
const model = join(ROOT, 'models', 'digits-ssd.onnx');

beforeAll(async () => {
  await makeDigitsDataset({ outDir: join(dir, 'digits'), train: 32, test: 80, seed: 11 });
}, 300_000);

describe('ssd quantize', () => {
  it('digits model: int8 within 0.005 VOC07 mAP of fp32, metadata says int8 + method + calibration set', async () => {
    const out = join(dir, 'digits-int8.onnx');
    const r = await ssd(['quantize', model, '--calibrate', data, '--images', '32', '--val', data, '--max-drop', '0.005', '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { written: boolean; fp32: number; int8: number; metric: string };
    expect(res.written).toBe(true);
    expect(res.metric).toBe('voc07');
    expect(res.fp32).toBeGreaterThan(0.5);
    expect(Math.abs(res.fp32 - res.int8)).toBeLessThanOrEqual(0.005);
    const info = inspectModel(readFileSync(out));
    expect(info.metadata['ssd.precision']).toBe('int8');
    expect(JSON.parse(info.metadata['ssd.quantization']!)).toMatchObject({ method: 'minmax', activations: 'uint8', images: 32 });
    expect(info.ops).toContain('QuantizeLinear');
    // The runtime takes it as it is.
    const det = await ssd(['detect', out, join(data, 'JPEGImages'), '--threshold', '0.5', '--coco-results', join(dir, 'dets.json')]);
    expect(det.code, det.stderr).toBe(0);
  }, 600_000);

  it('the gate refuses with one line and both figures, and writes nothing', async () => {
    const out = join(dir, 'refused.onnx');
    const r = await ssd(['quantize', model, '--calibrate', data, '--images', '8', '--method', 'percentile', '--val', data, '--val-images', '20', '--max-drop=-1', '--out', out]);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('ssd quantize:'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/refused: voc07 mAP on 20 images .*fp32 0\.\d{4}, int8 0\.\d{4} \(drop -?\d\.\d{4}, max -1\); nothing written/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.startsWith('refused'))).toEqual([]);
  }, 600_000);

  it('COCO data: calibrates on a COCO JSON and gates on COCO mAP', async () => {
    // The digits test split as a COCO instances JSON (0-based x, y, w, h), images where they are.
    const ds = loadVocDataset(data, 'test');
    const json = {
      images: ds.samples.map((s, i) => ({ id: i + 1, file_name: `${s.id}.jpg`, width: s.width, height: s.height })),
      annotations: ds.samples.flatMap((s, i) => s.objects.map((o, k) => {
        const [x1, y1, x2, y2] = vocToPixels(o.box);
        return { id: (i + 1) * 100 + k, image_id: i + 1, category_id: o.classId, bbox: [x1, y1, x2 - x1, y2 - y1], area: (x2 - x1) * (y2 - y1), iscrowd: 0 };
      })),
      categories: ds.labels.slice(1).map((name, i) => ({ id: i + 1, name })),
    };
    const coco = join(dir, 'digits-coco.json');
    writeFileSync(coco, JSON.stringify(json));
    const out = join(dir, 'coco-int8.onnx');
    const images = join(data, 'JPEGImages');
    const r = await ssd(['quantize', model, '--calibrate', coco, '--coco-images', images, '--images', '8', '--val', coco, '--val-images', '30', '--max-drop', '1', '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { written: boolean; fp32: number; int8: number; metric: string };
    expect(res).toMatchObject({ written: true, metric: 'coco' });
    expect(res.fp32).toBeGreaterThan(0.3);
    expect(res.int8).toBeGreaterThan(0.3);
    expect(JSON.parse(inspectModel(readFileSync(out)).metadata['ssd.quantization']!).calibration).toBe('COCO digits-coco.json');
  }, 600_000);

  it.each([
    [['--calibrate', 'x', '--out', 'y.onnx'], /^ssd quantize: quantize takes one model/],
    [['MODEL', '--out', 'y.onnx'], /^ssd quantize: --calibrate is required/],
    [['MODEL', '--calibrate', 'DATA', '--out', 'y.onnx', '--method', 'kl'], /^ssd quantize: --method/],
    [['MODEL', '--calibrate', '/nonexistent', '--out', 'OUT'], /^ssd quantize: --calibrate \/nonexistent: no such file/],
    [['MODEL', '--calibrate', 'DATA', '--out', 'MODEL'], /is the input model/],
  ])('bad input %j: one line, non-zero exit', async (args, message) => {
    const argv = args.map((a) => (a === 'MODEL' ? model : a === 'DATA' ? data : a === 'OUT' ? join(dir, 'never.onnx') : a));
    const r = await ssd(['quantize', ...argv]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message);
    expect(existsSync(join(dir, 'never.onnx'))).toBe(false);
  }, 120_000);
});
