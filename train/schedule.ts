/**
 * Learning-rate schedule of the SSD recipe (SSD-SPEC "Training recipe"): a linear warmup from
 * `warmupFactor * lr` to `lr` over the first `warmupIterations`, then multistep decay by `gamma` at
 * each of `steps`. Iterations count from 0 (the first optimizer step is iteration 0).
 */
export interface LrSchedule {
  baseLr: number;
  warmupIterations: number;
  /** Starting fraction of baseLr during warmup (mmdetection's warmup_ratio). */
  warmupFactor: number;
  /** Iterations at which the rate is multiplied by `gamma` (SSD300: 80k, 100k). */
  steps: number[];
  gamma: number;
}

export const SSD_SCHEDULE: LrSchedule = { baseLr: 1e-3, warmupIterations: 500, warmupFactor: 1 / 3, steps: [80_000, 100_000], gamma: 0.1 };

export function learningRate(s: LrSchedule, iteration: number): number {
  let lr = s.baseLr;
  for (const step of s.steps) if (iteration >= step) lr *= s.gamma;
  if (iteration < s.warmupIterations) {
    const t = iteration / s.warmupIterations;
    lr *= s.warmupFactor + (1 - s.warmupFactor) * t;
  }
  return lr;
}
