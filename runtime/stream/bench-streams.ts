/**
 * Many cameras in one process: `ssd stream` with `sources` live test:// sources at `fps` each, run as
 * a child process the way a user runs it (bin/ssd.js sizes the libuv pool from the command line),
 * JSON lines read back; after `warmupS` seconds from the first frame of the last source to start,
 * the frames whose `ts` falls in the next `seconds` are counted per source. The goal: every source
 * at the camera's rate, and none more than 20% below the best served (min / max >= 0.8).
 *
 *   npx tsx scripts/bench-streams.ts [--sources 16] [--fps 15] [--seconds 20] [--batch 1|dynamic]
 */
import { spawn } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { createInterface } from 'node:readline';

export interface StreamsBenchOptions {
  /** bin/ssd.js of the checkout. */
  ssdBin: string;
  model: string;
  /** The model's batch dimension, for the report (the model file decides). */
  modelBatch?: number | 'dynamic';
  sources?: number;
  fps?: number;
  width?: number;
  height?: number;
  warmupS?: number;
  seconds?: number;
}

export interface StreamsBenchResult {
  sources: number;
  cameraFps: number;
  modelBatch: number | 'dynamic';
  seconds: number;
  /** Detected frames per second of each source over the window. */
  perSourceFps: number[];
  minFps: number;
  maxFps: number;
  meanFps: number;
  /** min / max: 1 = perfectly even. */
  evenness: number;
  /** Mean session.run ms over the window. */
  inferMs: number;
  cpu: string;
  cores: number;
  loadAverage: [number, number];
}

interface Line { source: string; ts: number; infer_ms: number }

export async function runStreamsBench(o: StreamsBenchOptions): Promise<StreamsBenchResult> {
  const n = o.sources ?? 16;
  const fps = o.fps ?? 15;
  const warmupS = o.warmupS ?? 5;
  const seconds = o.seconds ?? 20;
  const uris = Array.from({ length: n }, (_, i) => `test://${i % 2 ? 'ball' : 'smpte'}?width=${o.width ?? 320}&height=${o.height ?? 240}&fps=${fps}`);
  const env = { ...process.env };
  delete env.UV_THREADPOOL_SIZE;
  const load0 = loadavg()[0]!;
  const child = spawn(process.execPath, [o.ssdBin, 'stream', ...uris, '--model', o.model, '--quiet', '--connect-timeout', '120'], {
    stdio: ['ignore', 'pipe', 'pipe'], env,
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const firstTs = new Map<string, number>();
  const window: Line[] = [];
  let windowStart: number | undefined;
  const done = new Promise<void>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    rl.on('line', (text) => {
      const l = JSON.parse(text) as Line;
      if (!firstTs.has(l.source)) firstTs.set(l.source, l.ts);
      if (windowStart === undefined && firstTs.size === n) windowStart = Math.max(...firstTs.values()) + warmupS * 1000;
      if (windowStart === undefined || l.ts < windowStart) return;
      if (l.ts >= windowStart + seconds * 1000) {
        rl.close();
        resolve();
        return;
      }
      window.push(l);
    });
    child.once('exit', (code) => reject(new Error(`ssd stream exited (${String(code)}) before the window ended:\n${stderr}`)));
  });
  try {
    await done;
  } finally {
    child.kill('SIGINT');
  }
  const perSourceFps = Array.from({ length: n }, (_, i) => window.filter((l) => l.source === `src${i}`).length / seconds);
  const minFps = Math.min(...perSourceFps);
  const maxFps = Math.max(...perSourceFps);
  return {
    sources: n, cameraFps: fps, modelBatch: o.modelBatch ?? 1, seconds, perSourceFps, minFps, maxFps,
    meanFps: perSourceFps.reduce((a, b) => a + b, 0) / n,
    evenness: maxFps > 0 ? minFps / maxFps : 0,
    inferMs: window.reduce((a, l) => a + l.infer_ms, 0) / Math.max(1, window.length),
    cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, loadAverage: [load0, loadavg()[0]!],
  };
}

export function formatStreamsBench(r: StreamsBenchResult): string {
  return [
    `${r.sources} test:// sources at ${r.cameraFps} fps in one ssd stream, model batch ${r.modelBatch}, ${r.seconds} s window (${r.cpu} x${r.cores}, load average ${r.loadAverage[0].toFixed(1)} -> ${r.loadAverage[1].toFixed(1)})`,
    `  per-source fps: min ${r.minFps.toFixed(2)}, mean ${r.meanFps.toFixed(2)}, max ${r.maxFps.toFixed(2)}; min/max ${r.evenness.toFixed(3)} (goal >= 0.8)`,
    `  session.run ms (mean) ${r.inferMs.toFixed(2)}; all: ${r.perSourceFps.map((v) => v.toFixed(2)).join(' ')}`,
  ].join('\n');
}
