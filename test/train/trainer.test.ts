import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { loadCheckpoint } from '../../core/checkpoint.js';
import { paramSpecs, ssdTiny } from '../../core/specs.js';
import { selectBackend } from '../../train/backend.js';
import { DEFAULT_RECIPE, type TrainConfig } from '../../train/config.js';
import { ssdTrainPipeline } from '../../train/augment/pipeline.js';
import { CURVE_FILE, LABELS_FILE, savedConfig, train } from '../../train/trainer.js';
import { backendMissing, onBackend, useBackend } from '../train-model/backends.js';
import { digitsDataset } from './helpers.js';
import { tempDir } from '../helpers/temp-dir.js';

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

  for (const backend of ['tensorflow', 'wasm'] as const) it.skipIf(backendMissing(backend))(onBackend(backend, `${backend}: N + resume N iterations give the same losses as 2N straight (weights, momentum, data stream restored)`), async () => {
    await useBackend(backend);
    const ds = await digitsDataset(tempDir('ssd-train-resume-data-'), 6, { size: 64, minDigitSize: 16, maxDigitSize: 30 });
    const quiet = { progress: false, log: () => {}, handleSigint: false } as const;
    const straight = await train({ config: config(6), trainSet: ds, outDir: tempDir('ssd-train-straight-'), ...quiet });
    const out = tempDir('ssd-train-resumed-');
    const first = await train({ config: config(6), trainSet: ds, outDir: out, stopAfter: 3, ...quiet });
    expect(first.iteration).toBe(3);
    const ckpt = loadCheckpoint(out);
    // The typed training record (core/checkpoint.ts): position in the stream, seed, config, history.
    const record = ckpt.training!;
    expect(record.iteration).toBe(3);
    expect(record.totalIterations).toBe(6);
    expect(record.microBatches).toBe(6);
    expect(record.seed).toBe(5);
    expect(record.data).toBe(`${ds.name} (6 images)`);
    expect(record.config.name).toBe('test');
    expect(record.history.iterations).toEqual([0, 1, 2]);
    // Batch norm: the first conv learns at the plain rate (the multiplier is for from-scratch trunks without it).
    expect(record.config.train.firstConvLrMult).toBe(1);
    expect(readFileSync(join(out, LABELS_FILE), 'utf8')).toBe(`${labels.slice(1).join('\n')}\n`);
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
    const ds = await digitsDataset(tempDir('ssd-train-sigint-data-'), 4, { size: 64, minDigitSize: 16, maxDigitSize: 30 });
    const out = tempDir('ssd-train-sigint-');
    // Ctrl-C once the first step is done, i.e. on the progress line it prints (not after a guessed
    // time: on a loaded machine the setup alone can take seconds). The progress bar writes to stderr.
    let stderr = '';
    let sent = false;
    const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stderr += String(chunk);
      if (!sent && /iter [1-9]\d*\/200/.test(stderr)) {
        sent = true;
        setImmediate(() => process.emit('SIGINT'));
      }
      return true;
    });
    const r = await train({ config: { ...config(200), train: { ...config(200).train, accumulate: 1 } }, trainSet: ds, outDir: out, log: () => {} })
      .finally(() => write.mockRestore());
    expect(r.interrupted).toBe(true);
    expect(r.iteration).toBeGreaterThan(0);
    expect(r.iteration).toBeLessThan(200);
    expect(existsSync(join(out, 'checkpoint.ssdckpt'))).toBe(true);
    expect(loadCheckpoint(out).training!.iteration).toBe(r.iteration);
    expect(sent).toBe(true);
    expect(stderr).toContain('Ctrl-C: finishing this step');
    expect(process.listenerCount('SIGINT')).toBe(0);
  });
});
