import { beforeAll, describe, expect, it } from 'vitest';
import { ssdTiny } from '../../core/specs.js';
import { selectBackend } from '../../train/backend.js';
import { DEFAULT_RECIPE, type TrainConfig } from '../../train/config.js';
import { planShares } from '../../train/data-parallel.js';
import { train, type TrainResult } from '../../train/trainer.js';
import { backendMissing, onBackend, useBackend } from '../train-model/backends.js';
import { digitsDataset } from './helpers.js';
import { tempDir } from '../helpers/temp-dir.js';
import type { Dataset } from '../../core/datasets/types.js';

describe('planShares', () => {
  it('--threads N as asked (at most one per image), auto = one per core on a CPU backend, 1 on a GPU', () => {
    expect(planShares('auto', { label: 'tensorflow (CPU)' }, 8, 2)).toEqual({ shares: 2, reason: 'one per core (2 cores)' });
    expect(planShares('auto', { label: 'wasm' }, 4, 16)).toEqual({ shares: 4, reason: 'one per image of the batch of 4 (16 cores)' });
    expect(planShares('auto', { label: 'tensorflow (CPU)' }, 1, 2)).toEqual({ shares: 1, reason: 'a batch of one image' });
    expect(planShares('auto', { label: 'cpu' }, 8, 1)).toEqual({ shares: 1, reason: 'one core' });
    expect(planShares('auto', { label: 'tensorflow (GPU: NVIDIA RTX 4090)' }, 8, 16)).toEqual({ shares: 1, reason: 'one GPU computes the whole batch' });
    expect(planShares(2, { label: 'tensorflow (CPU)' }, 8, 2)).toEqual({ shares: 2, reason: '--threads 2' });
    expect(planShares(3, { label: 'tensorflow (CPU)' }, 2, 2)).toEqual({ shares: 2, reason: '--threads 3, at most one per image of the batch of 2' });
    expect(planShares(1, { label: 'tensorflow (CPU)' }, 8, 2).shares).toBe(1);
  });
});

/**
 * Splitting every batch over threads must give the single-thread run's losses and weights, to float
 * rounding: the shares' losses are normalised by the whole batch's positives and hard negatives are
 * mined per image. Three shares of a batch of 4 also checks uneven shares (2 + 1 + 1); accumulation
 * checks that the shares of two micro-batches add up as one thread's micro-batches do.
 */
describe('data-parallel training', () => {
  const labels = ['background', ...'0123456789'.split('')];
  // No batch norm: with it, each share would see its own batch statistics (documented), not the batch's.
  const spec = { ...ssdTiny(labels, 64), name: 'tiny64' };
  let ds: Dataset;
  beforeAll(async () => {
    await selectBackend('wasm', { log: () => {} });
    ds = await digitsDataset(tempDir('ssd-dp-data-'), 8, { size: 64, minDigitSize: 16, maxDigitSize: 30 });
  });

  const config = (accumulate: number): TrainConfig => ({
    name: 'dp', spec, augment: [{ type: 'PhotoMetricDistortion', p: 0.5 }, { type: 'MinIoURandomCrop' }, { type: 'Resize' }, { type: 'Normalize' }],
    train: { ...DEFAULT_RECIPE, iterations: 3, batchSize: 4, accumulate, lr: 1e-3, warmup: 0, steps: [], valEvery: 0, checkpointEvery: 0, seed: 3, clipGradNorm: 20 },
  });
  const run = async (shares: number, accumulate: number, log: string[] = []): Promise<TrainResult> => train({
    config: config(accumulate), trainSet: ds, outDir: tempDir('ssd-dp-run-'), progress: false, log: (l) => log.push(l), handleSigint: false,
    ...(shares > 1 ? { shares: { shares, reason: 'test' } } : {}),
  });

  for (const backend of ['tensorflow', 'wasm'] as const) {
    it.skipIf(backendMissing(backend))(onBackend(backend, `${backend}: 3 threads, and 2 with accumulation, give the losses of one thread`), async () => {
      await useBackend(backend);
      // Three threads without accumulation, two with it: each run starts its workers (a few seconds).
      for (const [accumulate, shares] of [[1, 3], [2, 2]] as const) {
        const one = await run(1, accumulate);
        {
          const log: string[] = [];
          const many = await run(shares, accumulate, log);
          expect(log.some((l) => l.startsWith(`data-parallel: each batch split over ${shares} threads`))).toBe(true);
          expect(many.history.loss).toHaveLength(one.history.loss.length);
          one.history.loss.forEach((l, i) => {
            expect(Math.abs(many.history.loss[i]! - l), `${shares} threads, accumulate ${accumulate}, iteration ${i}`).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(l)));
            expect(Math.abs(many.history.loc[i]! - one.history.loc[i]!)).toBeLessThanOrEqual(1e-4 * Math.max(1, one.history.loc[i]!));
          });
        }
      }
    }, 900_000);
  }
});
