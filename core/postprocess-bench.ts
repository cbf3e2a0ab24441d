/**
 * Benchmark of the SSD300 detection output on one core: softmax + decode + per-class NMS of 8732 boxes x
 * 21 classes (SSD-SPEC "Inference"), core/postprocess.ts beside a straightforward reference (arrays of
 * objects, full sorts, the naive NMS loop of ssd.pytorch's detection layer) timed in the same run on the
 * same inputs, with a check that both give the same detections.
 *
 *   ssd bench --core [--json]        (= npm run bench)
 */
import { cpus, loadavg } from 'node:os';
import { encodeInto } from './box-coding.js';
import { defaultBoxes, defaultBoxesXYXY } from './default-boxes.js';
import { iou } from './iou.js';
import type { Detections } from './nms.js';
import { postprocess } from './postprocess.js';
import { createRng, type Rng } from './rng.js';
import { specByName, type SsdSpec } from './specs.js';

export interface CoreBenchOptions {
  /** Timed runs of each implementation (default 200). */
  iterations?: number;
  /** Untimed runs of each before timing (default 20). */
  warmup?: number;
  /** Seed of the synthetic head outputs (default 1). */
  seed?: number;
  /** Distinct synthetic images the runs cycle through (default 8). */
  images?: number;
}

/** Wall-clock milliseconds per image, plus the mean CPU time of the process (less sensitive to a busy machine). */
export interface TimingStats { meanMs: number; p50Ms: number; p95Ms: number; minMs: number; cpuMeanMs: number }

export interface CoreBenchResult {
  model: string;
  boxes: number;
  classes: number;
  images: number;
  iterations: number;
  warmup: number;
  seed: number;
  /** Mean (box, class) pairs above the 0.01 threshold per image (foreground classes). */
  candidatesPerImage: number;
  detectionsPerImage: number;
  optimized: TimingStats;
  reference: TimingStats;
  /** reference mean / optimized mean. */
  speedup: number;
  /** Both implementations returned the same detections (classes, scores to 1e-6, boxes to 1e-5) on every image. */
  sameDetections: boolean;
  mismatch?: string;
  goalMs: number;
  node: string;
  cpu: string;
  /** Cores of the machine and its 1-minute load average at the end (wall times suffer when load > cores). */
  cores: number;
  loadAverage: number;
}

interface HeadOutputs { loc: Float32Array; logits: Float32Array }

/**
 * Synthetic head outputs that look like a trained SSD300's: background wins almost everywhere; a few
 * objects, each with a cluster of overlapping default boxes that score high for its class (and lower for
 * a confusable one) and regress to near its box; a long tail of foreground scores around 0.01.
 */
export function syntheticHeadOutputs(spec: SsdSpec, rng: Rng): HeadOutputs {
  const priors = defaultBoxes(spec);
  const priorsXYXY = defaultBoxesXYXY(spec);
  const P = priors.length / 4;
  const C = spec.labels.length;
  const loc = new Float32Array(P * 4);
  const logits = new Float32Array(P * C);
  for (let i = 0; i < P * 4; i++) loc[i] = rng.normal() * 0.5;
  for (let p = 0; p < P; p++) {
    logits[p * C] = 6.5 + rng.normal() * 0.5;
    for (let c = 1; c < C; c++) logits[p * C + c] = rng.normal() * 0.9;
  }
  const objects = 2 + rng.int(5);
  const gt = new Float32Array(4);
  for (let o = 0; o < objects; o++) {
    const cls = 1 + rng.int(C - 1);
    const other = 1 + ((cls + rng.int(C - 2)) % (C - 1));
    const w = 0.08 + rng.next() * 0.5, h = 0.08 + rng.next() * 0.5;
    const x = rng.next() * (1 - w), y = rng.next() * (1 - h);
    gt.set([x, y, x + w, y + h]);
    for (let p = 0; p < P; p++) {
      const v = iou(gt, priorsXYXY, 0, p);
      if (v < 0.3) continue;
      const bg = logits[p * C]!;
      logits[p * C + cls] = bg - 1 + 10 * (v - 0.3) + rng.normal() * 0.8;
      logits[p * C + other] = bg - 4 + 4 * (v - 0.3) + rng.normal();
      encodeInto(gt, 0, priors, p, spec.variances, loc, p, 1);
      for (let k = 0; k < 4; k++) loc[p * 4 + k] = loc[p * 4 + k]! + rng.normal() * 0.15;
    }
  }
  return { loc, logits };
}

interface RefBox { x1: number; y1: number; x2: number; y2: number }
interface RefDet { score: number; cls: number; index: number; box: RefBox }

/**
 * The straightforward way: decode every box into an object, softmax every row into an array, per class
 * collect objects above the threshold, sort them all, take the top k, and run the textbook NMS loop
 * (take the best, drop everything overlapping it by more than the threshold, repeat).
 */
export function referencePostprocess(loc: Float32Array, logits: Float32Array, priors: Float32Array, spec: SsdSpec): RefDet[] {
  const C = spec.labels.length;
  const P = priors.length / 4;
  const [v0, v1, v2, v3] = spec.variances;
  const { confidenceThreshold, topKPerClass, nmsThreshold, keepTopK } = spec.postprocess;
  const boxes: RefBox[] = [];
  for (let p = 0; p < P; p++) {
    const [dcx, dcy, dw, dh] = [priors[p * 4]!, priors[p * 4 + 1]!, priors[p * 4 + 2]!, priors[p * 4 + 3]!];
    const cx = dcx + loc[p * 4]! * v0 * dw;
    const cy = dcy + loc[p * 4 + 1]! * v1 * dh;
    const w = Math.exp(Math.min(loc[p * 4 + 2]! * v2, Math.log(1000 / 16))) * dw;
    const h = Math.exp(Math.min(loc[p * 4 + 3]! * v3, Math.log(1000 / 16))) * dh;
    boxes.push({ x1: cx - w / 2, y1: cy - h / 2, x2: cx + w / 2, y2: cy + h / 2 });
  }
  const probs: number[][] = [];
  for (let p = 0; p < P; p++) {
    const row = Array.from(logits.subarray(p * C, p * C + C));
    const max = Math.max(...row);
    const exps = row.map((l) => Math.exp(l - max));
    const sum = exps.reduce((a, b) => a + b, 0);
    probs.push(exps.map((e) => e / sum));
  }
  const area = (b: RefBox) => Math.max(0, b.x2 - b.x1) * Math.max(0, b.y2 - b.y1);
  const overlap = (a: RefBox, b: RefBox) => {
    const iw = Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1);
    const ih = Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1);
    if (iw <= 0 || ih <= 0) return 0;
    const inter = iw * ih;
    return inter / (area(a) + area(b) - inter);
  };
  const all: RefDet[] = [];
  for (let c = 1; c < C; c++) {
    let cand: RefDet[] = [];
    for (let p = 0; p < P; p++) if (probs[p]![c]! > confidenceThreshold) cand.push({ score: probs[p]![c]!, cls: c, index: p, box: boxes[p]! });
    cand.sort((a, b) => b.score - a.score || a.index - b.index);
    cand = cand.slice(0, topKPerClass);
    while (cand.length > 0) {
      const best = cand.shift()!;
      all.push(best);
      cand = cand.filter((d) => overlap(best.box, d.box) <= nmsThreshold);
    }
  }
  all.sort((a, b) => b.score - a.score || a.cls - b.cls || a.index - b.index);
  return all.slice(0, keepTopK);
}

/** Same detections: equal count and classes, scores within 1e-6, boxes within 1e-5 (float32 vs float64 arithmetic). */
function compare(opt: Detections, ref: RefDet[]): string | undefined {
  if (opt.count !== ref.length) return `${opt.count} detections vs ${ref.length} in the reference`;
  for (let i = 0; i < opt.count; i++) {
    const r = ref[i]!;
    const b = [r.box.x1, r.box.y1, r.box.x2, r.box.y2].map((v) => Math.min(1, Math.max(0, v)));
    if (opt.classIds[i] !== r.cls) return `detection ${i}: class ${opt.classIds[i]} vs ${r.cls}`;
    if (Math.abs(opt.scores[i]! - r.score) > 1e-6) return `detection ${i}: score ${opt.scores[i]} vs ${r.score}`;
    for (let k = 0; k < 4; k++) if (Math.abs(opt.boxesXYXY[i * 4 + k]! - b[k]!) > 1e-5) return `detection ${i}: box ${Array.from(opt.boxesXYXY.subarray(i * 4, i * 4 + 4))} vs ${b}`;
  }
  return undefined;
}

function stats(samples: number[], cpuTotalMs: number): TimingStats {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
  return { meanMs: s.reduce((a, b) => a + b, 0) / s.length, p50Ms: at(0.5), p95Ms: at(0.95), minMs: s[0]!, cpuMeanMs: cpuTotalMs / s.length };
}

const cpuMs = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1000;

export const CORE_BENCH_GOAL_MS = 2;

export async function runCoreBench(opts: CoreBenchOptions = {}): Promise<CoreBenchResult> {
  const iterations = Math.max(1, Math.floor(opts.iterations ?? 200));
  const warmup = Math.max(0, Math.floor(opts.warmup ?? 20));
  const seed = opts.seed ?? 1;
  const nImages = Math.max(1, Math.floor(opts.images ?? 8));
  const spec = specByName('ssd300');
  const priors = defaultBoxes(spec);
  const P = priors.length / 4;
  const C = spec.labels.length;
  const rng = createRng(seed);
  const inputs = Array.from({ length: nImages }, () => syntheticHeadOutputs(spec, rng));

  let candidates = 0;
  for (const { logits } of inputs) {
    for (let p = 0; p < P; p++) {
      const row = logits.subarray(p * C, p * C + C);
      let max = -Infinity;
      for (const v of row) max = Math.max(max, v);
      let sum = 0;
      for (const v of row) sum += Math.exp(v - max);
      for (let c = 1; c < C; c++) if (Math.exp(row[c]! - max) / sum > spec.postprocess.confidenceThreshold) candidates++;
    }
  }

  const optTimes: number[] = [];
  const refTimes: number[] = [];
  let optCpu = 0;
  let refCpu = 0;
  let mismatch: string | undefined;
  let detections = 0;
  // Alternate the two implementations so that both see the same machine state (frequency, other load).
  for (let i = 0; i < warmup + iterations; i++) {
    const img = inputs[i % nImages]!;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const det = postprocess(img.loc, img.logits, priors, spec);
    const t1 = performance.now();
    const c1 = process.cpuUsage();
    const ref = referencePostprocess(img.loc, img.logits, priors, spec);
    const t2 = performance.now();
    const c2 = process.cpuUsage();
    if (i < warmup) {
      if (i < nImages) mismatch ??= compare(det, ref);
      continue;
    }
    optTimes.push(t1 - t0);
    refTimes.push(t2 - t1);
    optCpu += cpuMs(c1) - cpuMs(c0);
    refCpu += cpuMs(c2) - cpuMs(c1);
    if (i - warmup < nImages) {
      mismatch ??= compare(det, ref);
      detections += det.count;
    }
  }
  const optimized = stats(optTimes, optCpu);
  const reference = stats(refTimes, refCpu);
  return {
    model: 'ssd300', boxes: P, classes: C, images: nImages, iterations, warmup, seed,
    candidatesPerImage: candidates / nImages,
    detectionsPerImage: detections / Math.min(nImages, iterations),
    optimized, reference, speedup: reference.meanMs / optimized.meanMs,
    sameDetections: mismatch === undefined, ...(mismatch ? { mismatch } : {}),
    goalMs: CORE_BENCH_GOAL_MS, node: process.version, cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: cpus().length, loadAverage: loadavg()[0] ?? 0,
  };
}

export function formatCoreBench(r: CoreBenchResult): string {
  const f = (v: number) => v.toFixed(3);
  const row = (name: string, s: TimingStats) => `| ${name} | ${f(s.meanMs)} | ${f(s.p50Ms)} | ${f(s.p95Ms)} | ${f(s.cpuMeanMs)} |`;
  return [
    `SSD300 softmax + decode + per-class NMS, ${r.boxes} boxes x ${r.classes} classes, one core (node ${r.node}, ${r.cpu}; ${r.cores} cores, load average ${r.loadAverage.toFixed(1)})`,
    `${r.images} synthetic images, ${Math.round(r.candidatesPerImage)} (box, class) scores > 0.01 and ${Math.round(r.detectionsPerImage)} detections per image; ${r.iterations} timed runs each after ${r.warmup} warm-up`,
    '',
    '| implementation | mean ms/image | p50 ms | p95 ms | CPU ms/image |',
    '| --- | ---: | ---: | ---: | ---: |',
    row('core/postprocess.ts (typed arrays)', r.optimized),
    row('reference (objects, full sorts, naive NMS)', r.reference),
    '',
    `speedup: ${r.speedup.toFixed(1)}x (mean wall time); goal <= ${r.goalMs} ms/image: ` +
      `mean ${r.optimized.meanMs <= r.goalMs ? 'met' : 'NOT met'}, p50 ${r.optimized.p50Ms <= r.goalMs ? 'met' : 'NOT met'}, CPU ${r.optimized.cpuMeanMs <= r.goalMs ? 'met' : 'NOT met'}` +
      `${r.loadAverage > r.cores ? ' (machine busier than its cores: wall times are inflated, CPU time is the better measure)' : ''}; ` +
      `same detections: ${r.sameDetections ? 'yes' : `NO (${r.mismatch})`}`,
  ].join('\n');
}
