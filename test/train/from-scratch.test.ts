import { describe, expect, it } from 'vitest';
import { specByName } from '../../core/specs.js';
import { resolveConfig, type TrainConfig } from '../../train/config.js';
import { firstConvLrMultFor, train } from '../../train/trainer.js';
import { INPUT_PIXEL_STD } from '../../train/model.js';
import { backendMissing, onBackend, useBackend } from '../train-model/backends.js';
import { digitsDataset } from './helpers.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * Every small built-in config trains from scratch with its own recipe (issue: ssd-tiny went to NaN
 * within 4 iterations at any learning rate unless --batch-norm). The causes and fixes: the first conv,
 * whose input is 0..255 pixels, learned 58^2 times faster than the rest (trainer.ts firstConvLrMultFor),
 * its init was divided by that spread twice (model.ts and the trainer), and ssd-tiny's L2Norm started at
 * the 512-channel scale 20 on 64 channels (core/specs.ts l2NormScaleFor).
 */
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

async function trainFew(config: TrainConfig, iterations: number, over: Partial<TrainConfig['train']> = {}) {
  const ds = await digitsDataset(tempDir('ssd-train-scratch-data-'), 12, { size: config.spec.inputSize, seed: 3 });
  const spec = { ...config.spec, labels: ds.labels };
  const lines: string[] = [];
  const r = await train({
    config: { ...config, spec, train: { ...config.train, iterations, batchSize: 4, accumulate: 1, valEvery: 0, checkpointEvery: 0, seed: 2, ...over } },
    trainSet: ds, outDir: tempDir('ssd-train-scratch-'), progress: false, log: (l) => lines.push(l), handleSigint: false,
  });
  return { r, lines };
}

describe('built-in configs train from scratch', () => {
  it('the first conv learns at 1/58^2 only from scratch without batch norm', () => {
    const tiny = specByName('ssd-tiny');
    expect(firstConvLrMultFor(tiny, undefined)).toBeCloseTo(1 / (INPUT_PIXEL_STD * INPUT_PIXEL_STD), 12);
    expect(firstConvLrMultFor({ ...tiny, batchNorm: true }, undefined)).toBe(1);
    const imported = new Map([['conv1_1/kernel', { shape: [3, 3, 3, 8], data: new Float32Array(216) }]]);
    expect(firstConvLrMultFor(tiny, imported)).toBe(1);
  });

  for (const backend of ['tensorflow', 'wasm'] as const) {
    describe(onBackend(backend, backend), () => {
      for (const name of ['ssd-tiny', 'ssd-digits', 'digits']) {
        it.skipIf(backendMissing(backend))(`${name}: 30 iterations with its own recipe stay finite and the loss falls`, async () => {
          await useBackend(backend);
          const config = resolveConfig(name);
          const { r, lines } = await trainFew(config, 30);
          expect(r.history.loss).toHaveLength(30);
          expect(r.history.loss.every(Number.isFinite)).toBe(true);
          expect(mean(r.history.loss.slice(-5))).toBeLessThan(0.8 * mean(r.history.loss.slice(0, 5)));
          // Only the trunk without batch norm gets the first-conv multiplier, and the log says so.
          expect(lines.some((l) => /learns at lr x 0\.000297/.test(l))).toBe(!config.spec.batchNorm);
        }, 900_000);
      }

      it.skipIf(backendMissing(backend))('ssd-tiny at 10x its learning rate and no warmup stays finite', async () => {
        await useBackend(backend);
        const config = resolveConfig('ssd-tiny');
        const { r } = await trainFew(config, 20, { lr: 10 * config.train.lr, warmup: 0 });
        expect(r.history.loss.every(Number.isFinite)).toBe(true);
        expect(mean(r.history.loss.slice(-5))).toBeLessThan(mean(r.history.loss.slice(0, 5)));
      }, 900_000);
    });
  }
});
