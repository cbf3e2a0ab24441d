/**
 * Synthetic multi-object scenes with ground-truth identities, for the tracker's tests and its
 * benchmark: boxes moving at constant velocity (bouncing off the frame's edges), observed through a
 * noisy detector that misses some boxes, scores some low, adds spurious boxes, and loses objects
 * while they are occluded.
 */
import { createRng } from '../rng.js';

export interface SceneObject {
  id: number;
  classId: number;
  /** Box at frame 0, xyxy pixels. */
  box: [number, number, number, number];
  /** Pixels per frame. */
  vx: number;
  vy: number;
  /** Frames [from, to) in which it is occluded: present in the truth, never detected. */
  occluded?: Array<[number, number]>;
}

export interface SceneOptions {
  width: number;
  height: number;
  frames: number;
  objects: SceneObject[];
  seed?: number;
  /** Probability that a visible object is not detected in a frame. */
  missRate?: number;
  /** Probability that a visible object's detection has a low score (0.15 .. 0.45). */
  lowScoreRate?: number;
  /** Mean spurious detections per frame (random boxes, score 0.1 .. 0.7). */
  spuriousPerFrame?: number;
  /** Standard deviation of the box corners' noise, pixels. */
  noisePx?: number;
}

export interface SceneFrame {
  /** Ground truth: ids and boxes (4 per object). */
  gtIds: number[];
  gtXYXY: Float64Array;
  /** Detector output. */
  detXYXY: Float64Array;
  detScores: Float64Array;
  detClasses: Int32Array;
}

export function makeScene(o: SceneOptions): SceneFrame[] {
  const rng = createRng(o.seed ?? 1);
  const missRate = o.missRate ?? 0;
  const lowRate = o.lowScoreRate ?? 0;
  const spurious = o.spuriousPerFrame ?? 0;
  const noise = o.noisePx ?? 0;
  const state = o.objects.map((ob) => ({ ob, box: [...ob.box] as number[], vx: ob.vx, vy: ob.vy }));
  const frames: SceneFrame[] = [];
  for (let f = 0; f < o.frames; f++) {
    const gtIds: number[] = [];
    const gt: number[] = [];
    const det: number[] = [];
    const scores: number[] = [];
    const classes: number[] = [];
    for (const s of state) {
      gtIds.push(s.ob.id);
      gt.push(...s.box);
      const hidden = (s.ob.occluded ?? []).some(([a, b]) => f >= a && f < b);
      if (!hidden && rng.next() >= missRate) {
        det.push(...s.box.map((v) => v + noise * rng.normal()));
        scores.push(rng.next() < lowRate ? rng.uniform(0.15, 0.45) : rng.uniform(0.65, 0.99));
        classes.push(s.ob.classId);
      }
      // Advance, bouncing off the edges.
      const w = s.box[2]! - s.box[0]!;
      const h = s.box[3]! - s.box[1]!;
      let x1 = s.box[0]! + s.vx;
      let y1 = s.box[1]! + s.vy;
      if (x1 < 0 || x1 + w > o.width) { s.vx = -s.vx; x1 = s.box[0]! + s.vx; }
      if (y1 < 0 || y1 + h > o.height) { s.vy = -s.vy; y1 = s.box[1]! + s.vy; }
      s.box = [x1, y1, x1 + w, y1 + h];
    }
    let k = spurious;
    while (k > 0 && rng.next() < k) {
      k -= 1;
      const w = rng.uniform(10, 60);
      const h = rng.uniform(10, 60);
      const x = rng.uniform(0, o.width - w);
      const y = rng.uniform(0, o.height - h);
      det.push(x, y, x + w, y + h);
      scores.push(rng.uniform(0.1, 0.7));
      classes.push(1);
    }
    frames.push({
      gtIds, gtXYXY: Float64Array.from(gt),
      detXYXY: Float64Array.from(det), detScores: Float64Array.from(scores), detClasses: Int32Array.from(classes),
    });
  }
  return frames;
}

/** `n` objects of class 1 spread over a grid with random velocities (the benchmark's crowd). */
export function crowd(n: number, width: number, height: number, seed = 1): SceneObject[] {
  const rng = createRng(seed);
  const cols = Math.ceil(Math.sqrt(n));
  const cw = width / cols;
  const ch = height / Math.ceil(n / cols);
  const out: SceneObject[] = [];
  for (let i = 0; i < n; i++) {
    const w = cw * rng.uniform(0.3, 0.6);
    const h = ch * rng.uniform(0.3, 0.6);
    const x = (i % cols) * cw + (cw - w) / 2;
    const y = Math.floor(i / cols) * ch + (ch - h) / 2;
    out.push({ id: i + 1, classId: 1, box: [x, y, x + w, y + h], vx: rng.uniform(-3, 3), vy: rng.uniform(-3, 3) });
  }
  return out;
}
