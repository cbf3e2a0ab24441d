import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../core/checkpoint.js';
import { SsdError } from '../../core/errors.js';
import { COCO_STAT_NAMES } from '../../core/eval/coco.js';
import { metadataFromProps } from '../../core/model-metadata.js';
import { exportOnnx, inspectModel } from '../../export/index.js';
import { selectBackend } from '../../train/backend.js';
import { resolveConfig } from '../../train/config.js';
import { loadTrainingData, runTraining, validationMetric } from '../../train/index.js';
import { tempDir } from '../helpers/temp-dir.js';
import { SIZE, vocTree as vocTreeIn, writeImage } from './helpers.js';

const vocTree = (splits: Record<string, [string, number[]][][]>, labelsTxt?: string[]) => vocTreeIn(tempDir('ssd-train-data-voc-'), splits, labelsTxt);

const custom = {
  trainval: [[['zebra', [4, 4, 30, 30]], ['apple', [34, 34, 60, 60]]], [['mango', [10, 10, 50, 40]]], [['apple', [20, 8, 44, 56]]]],
  test: [[['zebra', [8, 8, 40, 40]]], [['mango', [30, 30, 60, 60]], ['apple', [2, 2, 20, 20]]]],
} satisfies Record<string, [string, number[]][][]>;

async function message(p: Promise<unknown>): Promise<string> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(SsdError);
  const msg = (err as Error).message;
  expect(msg).not.toContain('\n');
  return msg;
}

describe('custom VOC classes (issue: without labels.txt they fell back to the 20 VOC classes and trained on background)', () => {
  it('without labels.txt the classes are the names the annotations use, sorted; nothing is skipped', async () => {
    const root = await vocTree(custom);
    const lines: string[] = [];
    const d = await loadTrainingData(root, { log: (l) => lines.push(l) });
    expect(d.train.labels).toEqual(['background', 'apple', 'mango', 'zebra']);
    expect(d.val!.labels).toEqual(d.train.labels);
    expect(d.train.warnings).toEqual([]);
    expect(d.val!.warnings).toEqual([]);
    expect(d.train.samples.flatMap((s) => s.objects.map((o) => d.train.labels[o.classId]))).toEqual(['zebra', 'apple', 'mango', 'apple']);
    expect(lines).toContain('classes: 3 from the annotations of trainval (no labels.txt; --labels FILE sets them): apple, mango, zebra');
  });

  it('--labels FILE names the classes and their order; a labels.txt in the tree is used as before', async () => {
    const root = await vocTree(custom);
    const file = join(tempDir('ssd-train-data-labels-'), 'classes.txt');
    writeFileSync(file, 'zebra\napple\n');
    const d = await loadTrainingData(root, { labelsFile: file });
    expect(d.train.labels).toEqual(['background', 'zebra', 'apple']);
    expect(d.train.warnings).toEqual([expect.stringMatching(/unknown class "mango"; object skipped/)]);
    const withTxt = await vocTree(custom, ['mango', 'zebra', 'apple']);
    expect((await loadTrainingData(withTxt)).train.labels).toEqual(['background', 'mango', 'zebra', 'apple']);
    expect(await message(loadTrainingData(root, { labelsFile: join(file, 'nope.txt') }))).toMatch(/^--labels .*nope\.txt: no such file$/);
  });

  it('a split with no usable object stops with one line naming it', async () => {
    const empty = await vocTree({ trainval: [[], []], test: [[['cat', [1, 1, 20, 20]]]] });
    expect(await message(loadTrainingData(empty))).toMatch(/^--data .*VOC2007: split trainval has no object with a class name \(and there is no labels\.txt; --labels FILE names the classes\)$/);
    // Every object of an unknown class: skipped, so nothing to train on.
    const root = await vocTree(custom);
    const file = join(tempDir('ssd-train-data-labels-'), 'other.txt');
    writeFileSync(file, 'car\n');
    expect(await message(loadTrainingData(root, { labelsFile: file }))).toMatch(/^--data .*: VOC2007 trainval has no usable object in its 3 images; 4 skipped, e\.g\. .*img0\.xml: object 1 \("zebra"\): unknown class "zebra"; object skipped$/);
    // The validation split too (its classes are the training split's).
    const valOnlyOther = await vocTree({ trainval: [[['cat', [1, 1, 20, 20]]]], test: [[['dog', [1, 1, 20, 20]]]] });
    expect(await message(loadTrainingData(valOnlyOther))).toMatch(/^--data .*: VOC2007 test has no usable object in its 1 images; 1 skipped/);
  });

  it('the classes are written into the run (labels.txt), the checkpoint and the exported model', async () => {
    await selectBackend('wasm', { log: () => {} });
    const root = await vocTree(custom);
    const data = await loadTrainingData(root);
    const config = resolveConfig('ssd-tiny');
    const out = join(tempDir('ssd-train-data-run-'), 'run');
    const r = await runTraining({
      config: { ...config, train: { ...config.train, iterations: 1, batchSize: 2, valEvery: 0, checkpointEvery: 0 } },
      data, outDir: out, backend: 'wasm', log: () => {}, progress: false,
    });
    expect(r.finalValidation?.metric).toBe('voc07');
    expect(readFileSync(join(out, 'labels.txt'), 'utf8')).toBe('apple\nmango\nzebra\n');
    const ckpt = loadCheckpoint(out);
    expect(ckpt.spec.labels).toEqual(['background', 'apple', 'mango', 'zebra']);
    expect(ckpt.training!.data).toBe('VOC2007 trainval (3 images)');
    const onnx = join(out, 'model.onnx');
    await exportOnnx({ checkpoint: out, out: onnx, verify: false, log: () => {} });
    const meta = metadataFromProps(inspectModel(readFileSync(onnx)).metadata);
    expect(meta.spec.labels).toEqual(['background', 'apple', 'mango', 'zebra']);
    expect(meta.training).toMatchObject({ data: 'VOC2007 trainval (3 images)', iterations: 1, metric: expect.stringMatching(/^VOC07 11-point mAP on 2 validation images/) });
  }, 600_000);
});

describe('COCO data validates with COCO AP (issue: it was scored with VOC07)', () => {
  beforeAll(async () => {
    await selectBackend('wasm', { log: () => {} });
  });

  it('the 12 COCO numbers at every validation: in the log, the result and the checkpoint', async () => {
    const dir = tempDir('ssd-train-data-coco-');
    const boxes = [[4, 4, 30, 30], [34, 10, 60, 44], [10, 30, 40, 62], [20, 20, 50, 50]];
    const images = [];
    const annotations = [];
    for (let i = 0; i < boxes.length; i++) {
      await writeImage(join(dir, `c${i}.png`), [boxes[i]!]);
      images.push({ id: 100 + i, file_name: `c${i}.png`, width: SIZE, height: SIZE });
      const [x1, y1, x2, y2] = boxes[i]!;
      // Non-contiguous category ids, as COCO has.
      annotations.push({ id: i + 1, image_id: 100 + i, category_id: i % 2 ? 7 : 3, bbox: [x1, y1, x2! - x1!, y2! - y1!], area: (x2! - x1!) * (y2! - y1!), iscrowd: 0 });
    }
    const json = join(dir, 'instances.json');
    writeFileSync(json, JSON.stringify({ images, annotations, categories: [{ id: 3, name: 'red' }, { id: 7, name: 'square' }] }));
    const data = await loadTrainingData(json, { valData: json });
    expect(validationMetric(data.val!)).toBe('coco');
    const config = resolveConfig('ssd-tiny');
    const out = join(dir, 'run');
    const lines: string[] = [];
    const r = await runTraining({
      config: { ...config, train: { ...config.train, iterations: 2, batchSize: 2, valEvery: 1, valLimit: 0, checkpointEvery: 0 } },
      data, outDir: out, backend: 'wasm', log: (l) => lines.push(l), progress: false,
    });
    const final = r.finalValidation!;
    expect(final.metric).toBe('coco');
    expect(final.stats).toHaveLength(COCO_STAT_NAMES.length);
    expect(final.map).toBe(final.stats![0]);
    expect(r.validations.map((v) => [v.iteration, v.metric])).toEqual([[1, 'coco'], [2, 'coco']]);
    expect(lines.some((l) => /^val @ 1: COCO AP -?\d\.\d{4} \(AP50 -?\d\.\d{4}, AP75 -?\d\.\d{4}\) on 4 images/.test(l))).toBe(true);
    expect(lines.some((l) => /VOC07/.test(l))).toBe(false);
    expect(loadCheckpoint(out).training!.validations.every((v) => v.metric === 'coco' && v.stats?.length === 12)).toBe(true);
  }, 600_000);
});
