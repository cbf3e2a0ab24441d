/**
 * Entry point: many test:// cameras in one `ssd stream` (runtime/stream/bench-streams.ts), with a
 * random-init ssd-tiny (96x96) built here.
 *   npx tsx scripts/bench-streams.ts [--sources 16] [--fps 15] [--seconds 20] [--json]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { specByName } from '../core/specs.js';
import { buildOnnxModel } from '../export/build.js';
import { formatStreamsBench, runStreamsBench } from '../runtime/stream/bench-streams.js';

const { values } = parseArgs({ options: { sources: { type: 'string' }, fps: { type: 'string' }, seconds: { type: 'string' }, json: { type: 'boolean' } } });
function count(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`bench-streams: --${flag} must be a whole number >= 1, got "${v}"\n`);
    process.exit(1);
  }
  return n;
}
const sources = count('sources', values.sources);
const fps = count('fps', values.fps);
const seconds = count('seconds', values.seconds);
const dir = mkdtempSync(join(tmpdir(), 'ssd-bench-streams-'));
try {
  const model = join(dir, 'tiny.onnx');
  writeFileSync(model, buildOnnxModel({ spec: specByName('ssd-tiny'), seed: 3, batch: 1 }));
  const ssdBin = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'ssd.js');
  const r = await runStreamsBench({ ssdBin, model, sources, fps, seconds });
  process.stdout.write(values.json ? `${JSON.stringify(r)}\n` : `${formatStreamsBench(r)}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
