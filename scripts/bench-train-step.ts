/**
 * One SSD training step per backend, side by side (train/step-bench.ts does the work).
 *   npx tsx scripts/bench-train-step.ts [--config ssd300] [--batch 1] [--steps 3] [--warmup 1]
 *                                       [--backends wasm,cpu] [--json]
 */
import { cpus } from 'node:os';
import type { BackendName } from '../train/backend.js';
import { benchTrainStep, type TrainStepBenchOptions } from '../train/step-bench.js';

function arg(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
}

async function main(argv: string[]): Promise<void> {
  const opts: TrainStepBenchOptions = {
    config: arg(argv, 'config'),
    batch: arg(argv, 'batch') ? Number(arg(argv, 'batch')) : undefined,
    steps: arg(argv, 'steps') ? Number(arg(argv, 'steps')) : undefined,
    warmup: arg(argv, 'warmup') ? Number(arg(argv, 'warmup')) : undefined,
    backends: arg(argv, 'backends')?.split(',') as BackendName[] | undefined,
  };
  const results = await benchTrainStep(opts);
  const host = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}`;
  if (argv.includes('--json')) {
    process.stdout.write(`${JSON.stringify({ host, results }, null, 2)}\n`);
    return;
  }
  process.stdout.write(`\nSSD training step (forward + MultiBox loss + backward + SGD), ${host}\n`);
  process.stdout.write('| backend | config | batch | ms / step | img/s |\n| --- | --- | --- | --- | --- |\n');
  for (const r of results) process.stdout.write(`| ${r.backend} | ${r.config} | ${r.batch} | ${r.msPerStep.toFixed(0)} | ${r.imagesPerSecond.toFixed(3)} |\n`);
  process.stdout.write(`${JSON.stringify({ host, results })}\n`);
}

await main(process.argv.slice(2));
