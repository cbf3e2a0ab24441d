/**
 * Entry point: soak of `ssd stream` (runtime/stream/soak.ts). Not in CI.
 *   npx tsx scripts/soak-stream.ts [--minutes 120] [--fps 30] [--out FILE] [options]
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_CHROMIUM, formatSoak, runSoak, writeWhole } from '../runtime/stream/soak.js';

const USAGE = `usage: npx tsx scripts/soak-stream.ts [options]
Runs "ssd stream" (the real CLI, as a child) on a live test:// source with the live page open in
headless Chromium, an SSE client on /events and /metrics polled; samples the stream process's RSS
(and heap, external, ArrayBuffers from /metrics) every 30 s; prints the table and the verdict: RSS
growth from minute 10 to the end (goal < 5% over 2 hours). Ctrl-C stops and prints the table so far.
  --minutes N        run length from the first frame (default 120)
  --fps N            the source's frame rate (default 30)
  --source URI       the source (default test://ball?width=640&height=480&fps=<fps>)
  --model PATH       the model (default models/digits-ssd.onnx)
  --sample-s N       seconds between memory samples (default 30)
  --baseline-min N   growth measured from this minute on (default 10)
  --page chromium|client|none  the live page in Chromium (default when ${DEFAULT_CHROMIUM} exists), a
                     Node client pulling what the page pulls (/events?frames=1), or none
  --env K=V          extra environment for ssd stream (repeatable), e.g. MALLOC_ARENA_MAX=2
  --out FILE         also write the table and verdict to FILE (rewritten whole at every sample)
  --json             print the result as JSON instead of the table
  --help             this text`;

function fail(msg: string): never {
  process.stderr.write(`soak-stream: ${msg}\n`);
  process.exit(1);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      minutes: { type: 'string' }, fps: { type: 'string' }, source: { type: 'string' }, model: { type: 'string' },
      'sample-s': { type: 'string' }, 'baseline-min': { type: 'string' }, page: { type: 'string' },
      env: { type: 'string', multiple: true }, out: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
  }));
} catch (err) {
  fail(`${(err as Error).message}\n${USAGE}`);
}
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
function positive(flag: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!(Number.isFinite(n) && n > 0)) fail(`--${flag} must be a number > 0, got "${v}"`);
  return n;
}
const minutes = positive('minutes', values.minutes, 120);
const fps = positive('fps', values.fps, 30);
const sampleS = positive('sample-s', values['sample-s'], 30);
const baselineMin = values['baseline-min'] === '0' ? 0 : positive('baseline-min', values['baseline-min'], 10);
const page = values.page ?? undefined;
if (page !== undefined && page !== 'chromium' && page !== 'client' && page !== 'none') fail(`--page must be chromium, client or none, got "${page}"`);
if (page === 'chromium' && !existsSync(DEFAULT_CHROMIUM)) fail(`--page chromium: ${DEFAULT_CHROMIUM} not found`);
const env: Record<string, string> = {};
for (const kv of values.env ?? []) {
  const i = kv.indexOf('=');
  if (i < 1) fail(`--env must be KEY=VALUE, got "${kv}"`);
  env[kv.slice(0, i)] = kv.slice(i + 1);
}
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const model = resolve(values.model ?? join(root, 'models', 'digits-ssd.onnx'));
if (!existsSync(model)) fail(`--model ${model}: file not found`);
const out = values.out === undefined ? undefined : resolve(values.out);
if (out !== undefined && !existsSync(dirname(out))) fail(`--out ${out}: directory ${dirname(out)} does not exist`);

const stop = new AbortController();
// Ctrl-C (and SIGTERM, SIGHUP): stop the stream and Chromium, then print the table so far. `on`, not
// `once`: a terminal's Ctrl-C reaches this process twice (directly and relayed by the tsx wrapper),
// and a second signal without a handler would kill it before the table is printed.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => stop.abort());
const baselineS = baselineMin * 60;
const r = await runSoak({
  ssdBin: join(root, 'bin', 'ssd.js'), model, source: values.source, fps, durationMs: minutes * 60_000,
  sampleMs: sampleS * 1000, baselineMs: baselineS * 1000, page: page as 'chromium' | 'client' | 'none' | undefined, env,
  signal: stop.signal,
  onSample: (s, snapshot) => {
    process.stderr.write(`soak: minute ${(s.t / 60).toFixed(1)}: RSS ${s.rssMb.toFixed(1)} MB, heap ${s.heapMb?.toFixed(1) ?? '-'} MB, fps ${s.fps?.toFixed(1) ?? '-'}\n`);
    if (out !== undefined) writeWhole(out, `${formatSoak(snapshot(), baselineS)}\n(running: ${minutes} minutes planned)\n`);
  },
});
const text = values.json ? `${JSON.stringify(r)}\n` : `${formatSoak(r, baselineS)}\n`;
if (out !== undefined) writeWhole(out, `${formatSoak(r, baselineS)}\n`);
process.stdout.write(text);
if (r.reason === 'stream exited') {
  process.stderr.write(`soak-stream: ssd stream exited during the run; its stderr ended with:\n${r.stderrTail}\n`);
  process.exitCode = 1;
}
