/**
 * Time of one SSD training step per backend, interleaved (train/step-bench.ts does the work).
 *   npx tsx scripts/bench-train-step.ts --help
 */
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { BACKEND_ORDER, type BackendName } from '../train/backend.js';
import { benchTrainStep, parseCases, type BenchCase } from '../train/step-bench.js';

const USAGE = `Usage: npx tsx scripts/bench-train-step.ts [options]

Times one SSD training step (the trainer's own step: forward, MultiBox loss, backward, SGD) per
backend. Cases and backends are interleaved round by round, so that other load on the machine hits
every backend alike; the table gives ms/step, img/s and the cores the process kept busy.

Options:
  --cases LIST      config:batch[:backend+backend[:steps]] items, comma-separated (default ssd300:1);
                    e.g. digits:8:tensorflow+wasm+cpu:20,ssd300:1,ssd300:8:tensorflow+wasm:2
  --config NAME     one case: this config (with --batch; default: the config's batch size)
  --batch N         images per step for --config
  --backends LIST   ${BACKEND_ORDER.join(',')} or a subset (default tensorflow,wasm)
  --steps N         timed steps per segment (default 3)
  --warmup N        untimed steps per segment first (default 1)
  --rounds N        interleaved rounds (default 1)
  --threads LIST    data-parallel thread counts to compare, e.g. 1,2 (default 1): each batch split over
                    that many threads, as "ssd train --threads N" runs it
  --json            print one JSON object instead of the table
  -h, --help        this help

SIGINT/SIGTERM stop the run after the running step and print what was measured (run by node
directly; under npx tsx, tsx itself ends a process that is busy in a step at once, exit code 143).`;

function positiveInt(name: string, v: string | undefined, fallback: number, min = 1): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be a whole number >= ${min}, got "${v}"`);
  return n;
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv, strict: true, allowPositionals: false,
    options: {
      cases: { type: 'string' }, config: { type: 'string' }, batch: { type: 'string' }, backends: { type: 'string' },
      steps: { type: 'string' }, warmup: { type: 'string' }, rounds: { type: 'string' }, threads: { type: 'string' }, json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (values.cases && values.config) throw new Error('give --cases or --config, not both');
  const cases: BenchCase[] = values.cases ? parseCases(values.cases)
    : [{ config: values.config ?? 'ssd300', ...(values.batch ? { batch: positiveInt('batch', values.batch, 1) } : values.config ? {} : { batch: 1 }) }];
  const backends = values.backends?.split(',').map((s) => s.trim()) as BackendName[] | undefined;
  for (const b of [...(backends ?? []), ...cases.flatMap((c) => c.backends ?? [])]) {
    if (!BACKEND_ORDER.includes(b)) throw new Error(`unknown backend "${b}" (known: ${BACKEND_ORDER.join(', ')})`);
  }

  // The steps are synchronous: a signal is handled between two steps, then the partial table prints.
  let stopSignal: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (stopSignal) process.exit(sig === 'SIGINT' ? 130 : 143);
    stopSignal = sig;
    process.stderr.write(`bench-train-step: ${sig}, stopping after this step (again to quit now)\n`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const load0 = loadavg();
  const results = await benchTrainStep({
    cases, ...(backends ? { backends } : {}),
    steps: positiveInt('steps', values.steps, 3), warmup: positiveInt('warmup', values.warmup, 1, 0), rounds: positiveInt('rounds', values.rounds, 1),
    ...(values.threads ? { threads: values.threads.split(',').map((t) => positiveInt('threads', t.trim(), 1)) } : {}),
    stopRequested: () => stopSignal !== undefined,
  });
  const load1 = loadavg();
  const host = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}`;
  const load = `load average ${load0[0]!.toFixed(2)} at start, ${load1[0]!.toFixed(2)} at end (1 min)`;
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ host, loadStart: load0[0], loadEnd: load1[0], interrupted: stopSignal ?? null, results }, null, 2)}\n`);
  } else {
    process.stdout.write(`\nSSD training step (trainer step: forward + MultiBox loss + backward + SGD), ${host}, ${load}\n`);
    process.stdout.write('| config | batch | backend | threads | ms / step | img/s | cores busy | s/step per round |\n| --- | ---: | --- | ---: | ---: | ---: | ---: | --- |\n');
    for (const r of results) {
      const spread = r.roundSeconds.map((s) => s.toFixed(2)).join(', ');
      const failed = r.error ? `failed: ${r.error}` : '';
      if (r.steps === 0) process.stdout.write(`| ${r.config} | ${r.batch} | ${r.label} | ${r.threads} | - | - | - | ${failed} |\n`);
      else process.stdout.write(`| ${r.config} | ${r.batch} | ${r.label} | ${r.threads} | ${r.msPerStep.toFixed(0)} | ${r.imagesPerSecond.toFixed(2)} | ${r.coresBusy.toFixed(2)} | ${spread}${failed ? `; ${failed}` : ''} |\n`);
    }
  }
  return stopSignal ? (stopSignal === 'SIGINT' ? 130 : 143) : 0;
}

main(process.argv.slice(2)).then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`bench-train-step: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
});
