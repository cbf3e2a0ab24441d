import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../cli/main.js';
import { loadCheckpoint, saveCheckpoint, type Checkpoint, type WeightMap } from '../../core/checkpoint.js';
import { DIGIT_LABELS } from '../../core/datasets/digits.js';
import { paramSpecs, ssdTiny, type SsdSpec } from '../../core/specs.js';
import { resolveConfig, type TrainConfig } from '../../train/config.js';
import { architectureMismatch, frozenLayers, planInitFrom, type InitFrom } from '../../train/init-from.js';
import { baseLayerNames, createSsdModel } from '../../train/model.js';
import { train } from '../../train/trainer.js';
import { useBackend } from '../train-model/backends.js';
import { tempDir } from '../helpers/temp-dir.js';
import { digitsDataset, vocTree } from './helpers.js';

/**
 * `ssd train --init-from` and `--freeze base` (issue 12, "Fine-tune from them"): which weights are
 * taken, which are re-initialised, which stay fixed, and that a checkpoint of another architecture is
 * one line naming the first layer that differs. The fine-tuning-beats-scratch comparison is in
 * init-from-finetune.test.ts.
 */
const tiny = (labels: string[], over: Partial<SsdSpec> = {}): SsdSpec => ({ ...ssdTiny(labels, 64), ...over });

function checkpointOf(spec: SsdSpec, seed = 5): Checkpoint {
  const model = createSsdModel(spec, { seed });
  const weights = model.getWeights();
  model.dispose();
  return { spec, weights };
}

function configOf(spec: SsdSpec, train: Partial<TrainConfig['train']> = {}): TrainConfig {
  const base = resolveConfig('ssd-tiny');
  return {
    ...base, name: 'test-tiny', spec,
    train: { ...base.train, iterations: 3, batchSize: 2, accumulate: 1, warmup: 0, steps: [], valEvery: 0, checkpointEvery: 0, seed: 3, lr: 0.01, ...train },
  };
}

const same = (a: WeightMap, b: WeightMap, name: string): boolean => {
  const x = a.get(name)!.data;
  const y = b.get(name)!.data;
  return x.length === y.length && x.every((v, i) => v === y[i]);
};

describe('planInitFrom', () => {
  const digits = [...DIGIT_LABELS];
  // The checkpoint has its own conventions (as an import would): RGB with another mean, clamped priors,
  // other box sizes, other thresholds.
  const ckSpec = tiny(digits, { name: 'imported-tiny', input: { channelOrder: 'rgb', mean: [123, 117, 104] }, clampPriors: 'cxcywh' });
  ckSpec.maps = ckSpec.maps.map((m) => ({ ...m, minSize: m.minSize * 0.9 }));
  ckSpec.postprocess = { ...ckSpec.postprocess, clipBeforeNms: true, keepTopK: 100 };
  let ck: Checkpoint;
  let from: InitFrom;
  beforeAll(async () => {
    await useBackend('wasm');
    ck = checkpointOf(ckSpec);
    from = { source: 'ck.ssdckpt', checkpoint: ck };
  });

  it('same classes: every weight is taken, nothing re-initialised', () => {
    const plan = planInitFrom(from, configOf(tiny(digits)));
    expect(plan.classesChanged).toBe(false);
    expect(plan.reinitialised).toEqual([]);
    expect([...plan.weights.keys()].sort()).toEqual([...ck.weights.keys()].sort());
  });

  it('other classes: the conf heads are re-initialised with the new width, the rest kept; the checkpoint keeps its conventions', () => {
    const labels = ['background', 'even', 'odd'];
    const plan = planInitFrom(from, configOf(tiny(labels)));
    expect(plan.classesChanged).toBe(true);
    expect(plan.reinitialised.sort()).toEqual(['conf0/bias', 'conf0/kernel', 'conf1/bias', 'conf1/kernel', 'conf2/bias', 'conf2/kernel']);
    expect(plan.spec.labels).toEqual(labels);
    expect(plan.spec.input).toEqual(ckSpec.input);
    expect(plan.spec.clampPriors).toBe('cxcywh');
    expect(plan.spec.maps).toEqual(ckSpec.maps);
    expect(plan.spec.sources).toEqual(ckSpec.sources);
    expect(plan.spec.postprocess).toEqual(ckSpec.postprocess);
    expect(plan.spec.name).toBe('imported-tiny');
    // The model takes the plan's weights; the new conf heads have boxes x 3 channels.
    const model = createSsdModel(plan.spec, { seed: 1, weights: plan.weights });
    try {
      const got = model.getWeights();
      for (const p of paramSpecs(plan.spec)) {
        if (p.name.startsWith('conf')) {
          const k = p.name.endsWith('kernel') ? p.shape[3]! : p.shape[0]!;
          expect(k % 3, p.name).toBe(0);
          expect(got.get(p.name)!.shape).toEqual(p.shape);
          expect(ck.weights.get(p.name)!.shape).not.toEqual(p.shape);
        } else {
          expect(same(got, ck.weights, p.name), p.name).toBe(true);
        }
      }
      expect(got.get('conf0/kernel')!.shape).toEqual([3, 3, 64, 4 * 3]);
    } finally {
      model.dispose();
    }
  });

  it('a permutation of the same classes is other classes too', () => {
    const permuted = ['background', ...digits.slice(1).reverse()];
    expect(planInitFrom(from, configOf(tiny(permuted))).reinitialised).toHaveLength(6);
  });

  it('another architecture: one line naming the first layer that differs', () => {
    const narrow = tiny(digits);
    narrow.layers = narrow.layers.map((l) => (l.name === 'conv4_3' && l.kind === 'conv' ? { ...l, out: 32 } : l));
    expect(() => planInitFrom(from, configOf(narrow))).toThrow(/^--init-from ck\.ssdckpt: does not fit config test-tiny: layer conv4_3 is conv 64 3x3 .* in the checkpoint, conv 32 3x3 .* in the config$/);
    expect(architectureMismatch(ckSpec, { ...tiny(digits), batchNorm: true })).toMatch(/^layer conv1_1 has no batch norm in the checkpoint, batch norm in the config$/);
    expect(architectureMismatch(ckSpec, ssdTiny(digits, 96))).toMatch(/^input size 64 in the checkpoint, 96 in the config$/);
    const extra = tiny(digits);
    extra.maps = extra.maps.map((m, i) => (i === 1 ? { ...m, aspectRatios: [2] } : m));
    expect(architectureMismatch(ckSpec, extra)).toMatch(/^head loc1\/conf1 \(on fc7\) has 6 boxes per location in the checkpoint, 4 in the config$/);
    const noNorm = tiny(digits);
    noNorm.sources = noNorm.sources.map((s) => ({ layer: s.layer }));
    expect(architectureMismatch(ckSpec, noNorm)).toMatch(/^layer conv4_3_norm \(L2Norm\) is in the checkpoint, not in the config$/);
  });

  it('--freeze base is the trunk up to fc7', () => {
    const layers = frozenLayers(ckSpec, 'base');
    expect([...layers]).toEqual(baseLayerNames(ckSpec));
    expect(layers.has('fc7')).toBe(true);
    expect(layers.has('conv6_1')).toBe(false);
    expect(frozenLayers(ckSpec, undefined).size).toBe(0);
  });
});

describe('config files', () => {
  it('may set clampPriors, postprocess.clipBeforeNms and train.freeze', () => {
    const file = join(tempDir('ssd-init-config-'), 'c.json');
    writeFileSync(file, JSON.stringify({ base: 'ssd-tiny', clampPriors: 'wh', postprocess: { clipBeforeNms: true }, train: { freeze: 'base' } }));
    const c = resolveConfig(file);
    expect(c.spec.clampPriors).toBe('wh');
    expect(c.spec.postprocess.clipBeforeNms).toBe(true);
    expect(c.spec.postprocess.nmsThreshold).toBe(0.45);
    expect(c.train.freeze).toBe('base');
    writeFileSync(file, JSON.stringify({ base: 'ssd-tiny', train: { freeze: 'all' } }));
    expect(() => resolveConfig(file)).toThrow(/train\.freeze must be one of base, got "all"/);
  });
});

describe('train --init-from (wasm)', () => {
  beforeAll(async () => {
    await useBackend('wasm');
  });

  async function data(labels?: (classId: number) => number, names?: string[]) {
    const ds = await digitsDataset(tempDir('ssd-init-data-'), 6, { size: 64, seed: 4, minDigitSize: 16, maxDigitSize: 32 });
    if (!labels) return ds;
    return { ...ds, labels: names!, samples: ds.samples.map((s) => ({ ...s, objects: s.objects.map((o) => ({ ...o, classId: labels(o.classId) })) })) };
  }

  it('same classes: the run starts from exactly the source weights, with no optimizer state', async () => {
    const spec = tiny([...DIGIT_LABELS]);
    const ck = checkpointOf(spec, 11);
    const out = tempDir('ssd-init-same-');
    const lines: string[] = [];
    const r = await train({
      config: configOf(spec), trainSet: await data(), outDir: out, initFrom: { source: 'src', checkpoint: ck },
      stopAfter: 0, progress: false, handleSigint: false, log: (l) => lines.push(l),
    });
    expect(r.iteration).toBe(0);
    const saved = loadCheckpoint(out);
    for (const name of ck.weights.keys()) expect(same(saved.weights, ck.weights, name), name).toBe(true);
    expect(saved.optimizer).toBeUndefined();
    expect(saved.training!.config.train.firstConvLrMult).toBe(1);
    const init = lines.filter((l) => l.startsWith('init: '));
    expect(init).toHaveLength(1);
    expect(init[0]).toMatch(/^init: from src \(ssd-tiny64\): loaded \d+ tensors .*; same 10 classes, nothing re-initialised; frozen nothing; keeps its input/);
  });

  it('--freeze base: the trunk (and its batch-norm statistics) is unchanged after steps, heads and extras learn', async () => {
    const spec = { ...tiny([...DIGIT_LABELS]), batchNorm: true };
    const ck = checkpointOf(spec, 12);
    const evenOdd = ['background', 'even', 'odd'];
    const out = tempDir('ssd-init-freeze-');
    const lines: string[] = [];
    // Weight decay on: a frozen weight that received it would move even without a gradient.
    const config = configOf({ ...spec, labels: evenOdd }, { freeze: 'base', weightDecay: 0.05, iterations: 3 });
    const r = await train({
      config, trainSet: await data((c) => ((c - 1) % 2 === 0 ? 1 : 2), evenOdd), outDir: out,
      initFrom: { source: 'src', checkpoint: ck }, progress: false, handleSigint: false, log: (l) => lines.push(l),
    });
    expect(r.iteration).toBe(3);
    const saved = loadCheckpoint(out);
    expect(saved.spec.labels).toEqual(evenOdd);
    expect(saved.training!.config.train.freeze).toBe('base');
    const base = new Set(baseLayerNames(spec));
    let frozenChecked = 0;
    let moved = 0;
    for (const name of saved.weights.keys()) {
      const layer = name.split('/')[0]!;
      if (base.has(layer)) {
        expect(same(saved.weights, ck.weights, name), name).toBe(true);
        frozenChecked++;
      } else if (ck.weights.get(name)?.shape.join('x') === saved.weights.get(name)!.shape.join('x') && !same(saved.weights, ck.weights, name)) moved++;
    }
    expect(frozenChecked).toBe(baseLayerNames(spec).filter((n) => spec.layers.find((l) => l.name === n)!.kind === 'conv').length * 6);
    expect(moved).toBeGreaterThan(0);
    expect([...(saved.optimizer?.keys() ?? [])].some((k) => base.has(k.split('/')[0]!))).toBe(false);
    const init = lines.filter((l) => l.startsWith('init: '));
    expect(init).toHaveLength(1);
    expect(init[0]).toMatch(/re-initialised conf0-2 \(10 classes -> 2: even, odd\); frozen base conv1_1\.\.fc7 \(8 convs, [\d,]+ values/);
  });
});

describe('ssd train --init-from (CLI)', () => {
  afterEach(() => vi.restoreAllMocks());

  async function run(args: string[]): Promise<{ code: number; err: string; stderr: string }> {
    const lines: string[] = [];
    const stderr: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => { lines.push(a.join(' ')); });
    vi.spyOn(console, 'log').mockImplementation(() => {});
    vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => { stderr.push(String(s)); return true; });
    const code = await main(['train', ...args]);
    return { code, err: lines.join('\n'), stderr: stderr.join('') };
  }

  it('fine-tunes an imported-style checkpoint on other classes, and refuses what does not fit in one line', async () => {
    await useBackend('wasm');
    const dir = tempDir('ssd-init-cli-');
    const root = await vocTree(dir, { trainval: [[['a', [4, 4, 30, 30]]], [['b', [20, 20, 60, 60]]]], test: [[['a', [8, 8, 40, 40]]]] });
    // An import has no training record: spec + weights only.
    const src = join(dir, 'imported');
    saveCheckpointDir(src, checkpointOf(ssdTiny(['background', 'x', 'y', 'z'], 96)));
    const out = join(dir, 'run');
    const ok = await run(['--init-from', src, '--data', root, '--out', out, '--iterations', '2', '--batch', '2', '--freeze', 'base', '--quiet', '--backend', 'wasm', '--val-every', '0']);
    expect(ok.err).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stderr).toMatch(/init: from .*imported\/checkpoint\.ssdckpt \(ssd-tiny96\): loaded .* re-initialised conf0-2 \(3 classes -> 2: a, b\); frozen base conv1_1\.\.fc7/);
    const ck = loadCheckpoint(out);
    expect(ck.spec.labels).toEqual(['background', 'a', 'b']);
    expect(ck.training!.iteration).toBe(2);

    const narrow = join(dir, 'narrow.json');
    writeFileSync(narrow, JSON.stringify({ base: 'ssd-tiny', layers: ssdTiny(['background', 'x'], 96).layers.map((l) => (l.name === 'fc7' && l.kind === 'conv' ? { ...l, out: 64 } : l)) }));
    let r = await run(['--init-from', src, '--config', narrow, '--data', root, '--out', join(dir, 'bad'), '--iterations', '1', '--quiet']);
    expect(r.code).toBe(1);
    expect(r.err.split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/--init-from .*checkpoint\.ssdckpt: does not fit config ssd-tiny96: layer fc7 is conv 128 1x1 .* in the checkpoint, conv 64 1x1 .* in the config/);
    r = await run(['--init-from', join(dir, 'nothing'), '--data', root, '--out', join(dir, 'bad'), '--quiet']);
    expect(r.err).toMatch(/--init-from checkpoint .*nothing: no such file or directory/);
    r = await run(['--init-from', src, '--freeze', 'everything', '--data', root, '--out', join(dir, 'bad'), '--quiet']);
    expect(r.err).toMatch(/--freeze must be one of base, got "everything"/);
    r = await run(['--init-from', src, '--backbone-weights', 'vgg.onnx', '--data', root, '--out', join(dir, 'bad'), '--quiet']);
    expect(r.err).toMatch(/give --init-from or --backbone-weights, not both/);
  }, 300_000);
});

function saveCheckpointDir(dir: string, ck: Checkpoint): void {
  mkdirSync(dir, { recursive: true });
  saveCheckpoint(join(dir, 'checkpoint.ssdckpt'), ck);
}
