/** Entry point: the tracker's cost per frame (core/tracking/bench.ts). npx tsx scripts/bench-tracker.ts [--objects N] [--frames N] [--json] */
import { parseArgs } from 'node:util';
import { formatTrackerBench, runTrackerBench } from '../core/tracking/bench.js';

const { values } = parseArgs({ options: { objects: { type: 'string' }, frames: { type: 'string' }, json: { type: 'boolean' } } });
function count(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`bench-tracker: --${flag} must be a whole number >= 1, got "${v}"\n`);
    process.exit(1);
  }
  return n;
}
const r = runTrackerBench({ objects: count('objects', values.objects), frames: count('frames', values.frames) });
process.stdout.write(values.json ? `${JSON.stringify(r)}\n` : `${formatTrackerBench(r)}\n`);
