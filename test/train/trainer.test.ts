import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../core/checkpoint.js';
import { paramSpecs, ssdTiny } from '../../core/specs.js';
import { selectBackend } from '../../train/backend.js';
import { DEFAULT_RECIPE, type TrainConfig } from '../../train/config.js';
import { ssdTrainPipeline } from '../../train/augment/pipeline.js';
import { CURVE_FILE, savedConfig, train, type TrainerState } from '../../train/trainer.js';
import { digitsDataset, tempDir } from './helpers.js';

const labels = ['background', ...'0123456789'.split('')];
const spec = { ...ssdTiny(labels, 64), name: 'tiny64-bn', batchNorm: true };

function config(iterations: number): TrainConfig {
  // The full SSD augmentation recipe (flip included): resuming must replay it exactly.
  return {
    name: 'test', spec, augment: ssdTrainPipeline(),
    train: { ...DEFAULT_RECIPE, iterations, batchSize: 2, accumulate: 2, lr: 1e-3, warmup: 2, steps: [4], valEvery: 0, checkpointEvery: 0, seed: 5 },
  };
}

describe('trainer', () => {
  beforeAll(async () => {
    await selectBackend('wasm', { log: () => {} });
  });

  it('N + resume N iterations give the same losses as 2N straight (weights, momentum, data stream restored)', async () => {
    const ds = await digitsDataset(tempDir('resume-data'), 6, { size: 64, minDigitSize: 16, maxDigitSize: 30 });
    const quiet = { progress: false, log: () => {}, handleSigint: false } as const;
    const straight = await train({ config: config(6), trainSet: ds, outDir: tempDir('straight'), ...quiet });
    const out = tempDir('resumed');
    const first = await train({ config: config(6), trainSet: ds, outDir: out, stopAfter: 3, ...quiet });
    expect(first.iteration).toBe(3);
    const ckpt = loadCheckpoint(out);
    const state = ckpt.state as unknown as TrainerState;
    expect(state.iteration).toBe(3);
    expect(state.microBatches).toBe(6);
    expect(state.rng).toEqual({ seed: 5, microBatches: 6 });
    // Weights, batch-norm statistics and one momentum buffer per trainable tensor.
    for (const p of paramSpecs(spec)) {
      expect(ckpt.weights.has(p.name)).toBe(true);
      expect(ckpt.optimizer?.has(`${p.name}/momentum`)).toBe(p.trainable);
    }
    expect(savedConfig(out)?.train.iterations).toBe(6);
    const second = await train({ config: config(6), trainSet: ds, outDir: out, resume: true, ...quiet });
    expect(second.iteration).toBe(6);
    expect(second.history.iterations).toEqual([0, 1, 2, 3, 4, 5]);
    straight.history.loss.forEach((l, i) => expect(second.history.loss[i]).toBeCloseTo(l, 4));
    straight.history.conf.forEach((l, i) => expect(second.history.conf[i]).toBeCloseTo(l, 4));
    expect(second.history.lr).toEqual(straight.history.lr);
    const svg = readFileSync(join(out, CURVE_FILE), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('polyline');
  });

  it('Ctrl-C finishes the step, saves a checkpoint and reports the interruption', async () => {
    const ds = await digitsDataset(tempDir('sigint-data'), 4, { size: 64, minDigitSize: 16, maxDigitSize: 30 });
    const out = tempDir('sigint');
    const lines: string[] = [];
    const run = train({ config: { ...config(200), train: { ...config(200).train, accumulate: 1 } }, trainSet: ds, outDir: out, progress: false, log: (l) => lines.push(l) });
    setTimeout(() => process.emit('SIGINT'), 1500);
    const r = await run;
    expect(r.interrupted).toBe(true);
    expect(r.iteration).toBeGreaterThan(0);
    expect(r.iteration).toBeLessThan(200);
    expect(existsSync(join(out, 'checkpoint.ssdckpt'))).toBe(true);
    expect((loadCheckpoint(out).state as unknown as TrainerState).iteration).toBe(r.iteration);
    expect(lines.some((l) => l.includes('Ctrl-C'))).toBe(true);
    expect(process.listenerCount('SIGINT')).toBe(0);
  });
});
