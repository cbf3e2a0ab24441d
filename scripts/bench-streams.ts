/**
 * Entry point: many test:// cameras in one `ssd stream` (runtime/stream/bench-streams.ts), with a
 * random-init ssd-tiny (96x96) built here.
 *   npx tsx scripts/bench-streams.ts [--sources 16] [--fps 15] [--seconds 20] [--batch 1|dynamic] [--json]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { specByName } from '../core/specs.js';
import { buildOnnxModel } from '../export/build.js';
import { formatStreamsBench, runStreamsBench } from '../runtime/stream/bench-streams.js';

const USAGE = `Usage: npx tsx scripts/bench-streams.ts [options]

Runs N live test:// sources (320x240, alternately ball and smpte) in one \`ssd stream\` child with a
random-init ssd-tiny (96x96), counts the JSON lines per source over a window that starts --warmup
seconds after the last source's first frame, and prints per-source fps and min/max (goal >= 0.8).

  --sources N        cameras (default 16)
  --fps N            frame rate of each camera (default 15)
  --seconds N        length of the counted window (default 20)
  --warmup N         seconds after the last source's first frame before the window (default 5)
  --batch 1|dynamic  the model's batch dimension: 1 (default; one frame per session.run) or
                     dynamic (up to 8 cameras' frames in one session.run)
  --json             one JSON object instead of the table
  --help             this text`;

const { values } = parseArgs({
  options: {
    sources: { type: 'string' }, fps: { type: 'string' }, seconds: { type: 'string' }, warmup: { type: 'string' },
    batch: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean' },
  },
});
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
function count(flag: string, v: string | undefined, min = 1): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`bench-streams: --${flag} must be a whole number >= ${min}, got "${v}"\n`);
    process.exit(1);
  }
  return n;
}
const sources = count('sources', values.sources);
const fps = count('fps', values.fps);
const seconds = count('seconds', values.seconds);
const warmupS = count('warmup', values.warmup, 0);
if (values.batch !== undefined && values.batch !== '1' && values.batch !== 'dynamic') {
  process.stderr.write(`bench-streams: --batch must be 1 or dynamic, got "${values.batch}"\n`);
  process.exit(1);
}
const batch = values.batch === 'dynamic' ? 'dynamic' : 1;
const dir = mkdtempSync(join(tmpdir(), 'ssd-bench-streams-'));
try {
  const model = join(dir, 'tiny.onnx');
  writeFileSync(model, buildOnnxModel({ spec: specByName('ssd-tiny'), seed: 3, batch }));
  const ssdBin = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'ssd.js');
  const r = await runStreamsBench({ ssdBin, model, modelBatch: batch, sources, fps, seconds, warmupS });
  process.stdout.write(values.json ? `${JSON.stringify(r)}\n` : `${formatStreamsBench(r)}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
