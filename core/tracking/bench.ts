/**
 * The tracker's cost per frame: a crowd of `objects` boxes moving through a 1920x1080 frame, seen
 * by a noisy detector (5% misses, 10% low scores, 2 spurious boxes a frame), tracked for `frames`
 * frames after `warmup` untimed ones. Reports wall time per Tracker.update and the tracking quality
 * of the same run (so a faster tracker that loses identities shows up).
 *
 *   npx tsx scripts/bench-tracker.ts [--objects 100] [--frames 2000]
 */
import { cpus, loadavg } from 'node:os';
import { MotAccumulator, iouDistances, type MotSummary } from './mot-metrics.js';
import { crowd, makeScene } from './synthetic.js';
import { Tracker } from './tracker.js';

export interface TrackerBenchOptions { objects?: number; frames?: number; warmup?: number; seed?: number }

export interface TrackerBenchResult {
  objects: number;
  frames: number;
  meanMs: number;
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
  /** Process CPU time per timed frame (user + system), less sensitive to a busy machine than wall time. */
  cpuMeanMs: number;
  metrics: MotSummary;
  cpu: string;
  loadAverage: number;
}

export function runTrackerBench(opts: TrackerBenchOptions = {}): TrackerBenchResult {
  const objects = opts.objects ?? 100;
  const frames = opts.frames ?? 2000;
  const warmup = opts.warmup ?? 200;
  const scene = makeScene({
    width: 1920, height: 1080, frames: warmup + frames, objects: crowd(objects, 1920, 1080, opts.seed ?? 1),
    seed: opts.seed ?? 1, missRate: 0.05, lowScoreRate: 0.1, spuriousPerFrame: 2, noisePx: 1.5,
  });
  const tracker = new Tracker();
  const acc = new MotAccumulator();
  const times: number[] = [];
  let cpuUs = 0;
  for (const [f, fr] of scene.entries()) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const ids = tracker.update(fr.detXYXY, fr.detScores, fr.detClasses);
    const dt = performance.now() - t0;
    const c1 = process.cpuUsage(c0);
    if (f >= warmup) cpuUs += c1.user + c1.system;
    if (f < warmup) continue;
    times.push(dt);
    const hyp: number[] = [];
    const hypBoxes: number[] = [];
    ids.forEach((id, i) => {
      if (id > 0) {
        hyp.push(id);
        hypBoxes.push(fr.detXYXY[i * 4]!, fr.detXYXY[i * 4 + 1]!, fr.detXYXY[i * 4 + 2]!, fr.detXYXY[i * 4 + 3]!);
      }
    });
    acc.update(fr.gtIds, hyp, iouDistances(fr.gtXYXY, hypBoxes));
  }
  const sorted = [...times].sort((a, b) => a - b);
  const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
  return {
    objects, frames, meanMs: times.reduce((a, b) => a + b, 0) / times.length, p50Ms: q(0.5), p95Ms: q(0.95), maxMs: sorted[sorted.length - 1]!, cpuMeanMs: cpuUs / 1000 / times.length,
    metrics: acc.summary(), cpu: cpus()[0]?.model ?? 'unknown', loadAverage: loadavg()[0]!,
  };
}

export function formatTrackerBench(r: TrackerBenchResult): string {
  const m = r.metrics;
  return [
    `tracker: ${r.objects} objects, ${r.frames} frames (${r.cpu}, load average ${r.loadAverage.toFixed(1)})`,
    `  Tracker.update ms per frame: mean ${r.meanMs.toFixed(3)}, p50 ${r.p50Ms.toFixed(3)}, p95 ${r.p95Ms.toFixed(3)}, max ${r.maxMs.toFixed(3)}; CPU ms per frame ${r.cpuMeanMs.toFixed(3)}`,
    `  MOTA ${m.mota.toFixed(3)}, IDF1 ${m.idf1.toFixed(3)}, ID switches ${m.switches}, misses ${m.misses}, false positives ${m.falsePositives}`,
  ].join('\n');
}
