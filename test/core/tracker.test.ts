import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { assignFinite, assignWithLimit, solveAssignment } from '../../core/tracking/assignment.js';
import { kalmanInitiate, kalmanPredict, kalmanUpdate } from '../../core/tracking/kalman.js';
import { MotAccumulator, iouDistances } from '../../core/tracking/mot-metrics.js';
import { makeScene, type SceneFrame, type SceneObject } from '../../core/tracking/synthetic.js';
import { Tracker, type TrackerOptions } from '../../core/tracking/tracker.js';
import { createRng } from '../../core/rng.js';

/** Every injective assignment of min(r, c) pairs, by recursion (small r, c only). */
function bruteBest(cost: Float64Array, r: number, c: number, score: (i: number, j: number) => number | undefined): number {
  let best = -Infinity;
  const used = new Uint8Array(c);
  const rec = (i: number, acc: number) => {
    if (i === r) {
      best = Math.max(best, acc);
      return;
    }
    rec(i + 1, acc); // row i unmatched
    for (let j = 0; j < c; j++) {
      if (used[j]) continue;
      const s = score(i, j);
      if (s === undefined) continue;
      used[j] = 1;
      rec(i + 1, acc + s);
      used[j] = 0;
    }
  };
  rec(0, 0);
  return best;
}

describe('assignment', () => {
  it('solveAssignment finds the minimum of every full rectangular assignment', () => {
    const rng = createRng(7);
    for (let t = 0; t < 200; t++) {
      const r = 1 + rng.int(5);
      const c = 1 + rng.int(5);
      const cost = Float64Array.from({ length: r * c }, () => rng.int(10));
      const sol = solveAssignment(cost, r, c);
      const cols = [...sol].filter((j) => j >= 0);
      expect(cols.length).toBe(Math.min(r, c));
      expect(new Set(cols).size).toBe(cols.length);
      const got = [...sol].reduce((a, j, i) => a + (j >= 0 ? cost[i * c + j]! : 0), 0);
      // Maximising (BIG - cost) over pairs with exactly min(r, c) pairs = minimising cost.
      const big = 1000;
      const best = bruteBest(cost, r, c, (i, j) => big - cost[i * c + j]!);
      expect(Math.min(r, c) * big - got).toBe(best);
    }
  });

  it('assignWithLimit maximises the sum of (limit - cost) over allowed pairs, as lapjv with cost_limit', () => {
    const rng = createRng(8);
    for (let t = 0; t < 300; t++) {
      const r = rng.int(6);
      const c = rng.int(6);
      const cost = Float64Array.from({ length: r * c }, () => Math.round(rng.next() * 20) / 20);
      const limit = 0.5;
      const sol = assignWithLimit(cost, r, c, limit);
      let got = 0;
      const seen = new Set<number>();
      sol.forEach((j, i) => {
        if (j < 0) return;
        expect(cost[i * c + j]!).toBeLessThan(limit);
        expect(seen.has(j)).toBe(false);
        seen.add(j);
        got += limit - cost[i * c + j]!;
      });
      const best = bruteBest(cost, r, c, (i, j) => (cost[i * c + j]! < limit ? limit - cost[i * c + j]! : undefined));
      expect(got).toBeCloseTo(best, 9);
    }
  });

  it('assignFinite takes the most pairs first, then the least cost', () => {
    // Greedy or min-cost-first would take (0,0) at 0.1 and leave row 1 alone.
    const nan = NaN;
    const sol = assignFinite([0.1, 0.2, 0.3, nan], 2, 2);
    expect([...sol]).toEqual([1, 0]);
    expect([...assignFinite([nan, nan], 1, 2)]).toEqual([-1]);
  });
});

describe('kalman', () => {
  it('learns a constant velocity and predicts ahead', () => {
    const mean = new Float64Array(8);
    const cov = new Float64Array(64);
    kalmanInitiate(Float64Array.of(100, 50, 0.5, 40), mean, cov);
    for (let f = 1; f <= 30; f++) {
      kalmanPredict(mean, cov);
      kalmanUpdate(mean, cov, Float64Array.of(100 + 4 * f, 50 - 2 * f, 0.5, 40));
    }
    expect(mean[4]).toBeCloseTo(4, 1);
    expect(mean[5]).toBeCloseTo(-2, 1);
    for (let k = 0; k < 5; k++) kalmanPredict(mean, cov);
    expect(mean[0]).toBeCloseTo(100 + 4 * 35, 0);
    expect(mean[1]).toBeCloseTo(50 - 2 * 35, 0);
    // The covariance stays symmetric.
    for (let i = 0; i < 8; i++) for (let j = 0; j < 8; j++) expect(cov[i * 8 + j]).toBeCloseTo(cov[j * 8 + i]!, 9);
  });
});

describe('MOT metrics as py-motmetrics computes them', () => {
  it('the py-motmetrics README example: MOTA 0.5, MOTP 0.34, one switch, IDF1 10/12', () => {
    // Worked by hand: frame 0 pairs a-1 (0.1) and b-2 (0.2) (0.3 beats any other pairing), 3 is a
    // false positive; frame 1 keeps a-1, b is missed; frame 2 keeps a-1 although a-3 is closer (the
    // earlier pairing wins while it is pairable), and b-3 is a switch (b was with 2).
    const acc = new MotAccumulator();
    acc.update([1, 2], [1, 2, 3], [0.1, NaN, 0.3, 0.5, 0.2, 0.3]);
    acc.update([1, 2], [1], [0.2, 0.4]);
    acc.update([1, 2], [1, 3], [0.6, 0.2, 0.1, 0.6]);
    const s = acc.summary();
    expect(s).toMatchObject({ frames: 3, objects: 6, hypotheses: 6, matches: 4, switches: 1, falsePositives: 1, misses: 1 });
    expect(s.mota).toBeCloseTo(0.5, 12);
    expect(s.motp).toBeCloseTo(1.7 / 5, 12);
    // Pairable frames: (a,1) 3, (a,3) 2, (b,1) 3, (b,2) 1, (b,3) 2 -> best mapping a-1 + b-3 = 5.
    expect(s.idtp).toBe(5);
    expect(s.idf1).toBeCloseTo(10 / 12, 12);
  });

  it('py-motmetrics test_events: false positives, misses, switches, history preferred', () => {
    const acc = new MotAccumulator();
    acc.update([], [10, 11], []);
    acc.update([1, 2], [], []);
    acc.update([1, 2], [10, 11], [1, 0.5, 0.3, 1]);
    acc.update([1, 2], [10, 11], [0.2, NaN, NaN, 0.1]);
    acc.update([1, 2], [10, 11], [5, 1, 1, 5]);
    acc.update([], [], []);
    const types = acc.events.map((e) => `${e.frame}:${e.type}:${e.object ?? ''}:${e.hypothesis ?? ''}`);
    expect(types).toEqual([
      '0:FP::10', '0:FP::11',
      '1:MISS:1:', '1:MISS:2:',
      '2:MATCH:1:11', '2:MATCH:2:10',
      '3:SWITCH:1:10', '3:SWITCH:2:11',
      '4:MATCH:1:10', '4:MATCH:2:11',
    ]);
    const s = acc.summary();
    expect(s.switches).toBe(2);
    expect(s.mota).toBeCloseTo(1 - (2 + 2 + 2) / 8, 12);
  });

  it('iouDistances: 1 - IoU, NaN below IoU 0.5', () => {
    const d = iouDistances([0, 0, 10, 10], [0, 0, 10, 10, 0, 0, 10, 5, 0, 0, 10, 4]);
    expect(d[0]).toBe(0);
    expect(d[1]).toBeCloseTo(0.5, 12);
    expect(Number.isNaN(d[2]!)).toBe(true);
  });
});

interface RunResult { mota: number; idf1: number; switches: number; idsPerObject: Map<number, Set<number>> }

/** Tracks a scene; hypotheses are the detections that got a track id, in the detections' boxes. */
function track(scene: SceneFrame[], options: Partial<TrackerOptions> = {}): RunResult {
  const tracker = new Tracker(options);
  const acc = new MotAccumulator();
  const idsPerObject = new Map<number, Set<number>>();
  for (const fr of scene) {
    const ids = tracker.update(fr.detXYXY, fr.detScores, fr.detClasses);
    const hyp: number[] = [];
    const boxes: number[] = [];
    ids.forEach((id, i) => {
      if (id === 0) return;
      hyp.push(id);
      boxes.push(...fr.detXYXY.subarray(i * 4, i * 4 + 4));
    });
    acc.update(fr.gtIds, hyp, iouDistances(fr.gtXYXY, boxes));
  }
  // Which track ids each ground-truth object was paired with (MATCH or SWITCH events).
  for (const e of acc.events) {
    if (e.object === undefined || e.hypothesis === undefined) continue;
    if (!idsPerObject.has(e.object)) idsPerObject.set(e.object, new Set());
    idsPerObject.get(e.object)!.add(e.hypothesis);
  }
  const s = acc.summary();
  return { mota: s.mota, idf1: s.idf1, switches: s.switches, idsPerObject };
}

const crossing: SceneObject[] = [
  // Two same-class boxes on a collision course: they overlap fully for a few frames mid-way.
  { id: 1, classId: 1, box: [20, 100, 60, 180], vx: 4, vy: 0 },
  { id: 2, classId: 1, box: [420, 110, 460, 190], vx: -4, vy: 0 },
  // A third one crossing both diagonally.
  { id: 3, classId: 1, box: [200, 10, 240, 90], vx: 0.5, vy: 3 },
];

describe('Tracker on synthetic trajectories', () => {
  it('keeps identities of objects that cross (constant velocity carries them through the overlap)', () => {
    const scene = makeScene({ width: 640, height: 480, frames: 100, objects: crossing, seed: 3, noisePx: 1 });
    const r = track(scene);
    process.stdout.write(`crossing: MOTA ${r.mota.toFixed(3)}, IDF1 ${r.idf1.toFixed(3)}, ID switches ${r.switches}\n`);
    expect(r.switches).toBe(0);
    for (const o of [1, 2, 3]) expect(r.idsPerObject.get(o)?.size).toBe(1);
    expect(r.idf1).toBeGreaterThan(0.97);
  });

  it('bridges an occlusion gap within maxMisses and starts a new id after a longer one', () => {
    const objects: SceneObject[] = [{ id: 1, classId: 1, box: [10, 10, 50, 90], vx: 3, vy: 1, occluded: [[20, 35]] }];
    const scene = makeScene({ width: 640, height: 480, frames: 60, objects, seed: 4, noisePx: 0.5 });
    const short = track(scene, { maxMisses: 30 });
    expect(short.idsPerObject.get(1)?.size).toBe(1);
    expect(short.switches).toBe(0);
    // 15 frames hidden > maxMisses 10: the track died, the object comes back under a new id.
    const long = track(scene, { maxMisses: 10 });
    expect(long.idsPerObject.get(1)?.size).toBe(2);
    expect(long.switches).toBe(1);
  });

  it('low-score detections keep a track alive (ByteTrack stage 2) and are reported with its id', () => {
    const objects: SceneObject[] = [{ id: 1, classId: 1, box: [10, 10, 50, 90], vx: 3, vy: 0 }];
    const scene = makeScene({ width: 640, height: 480, frames: 30, objects, seed: 5 });
    // Frames 10..19: the detector's score drops to 0.3 (a partly occluded object).
    for (let f = 10; f < 20; f++) scene[f]!.detScores[0] = 0.3;
    const tracker = new Tracker({ maxMisses: 0 });
    const ids = scene.map((fr) => tracker.update(fr.detXYXY, fr.detScores, fr.detClasses)[0]);
    // Confirmed on frame 1 (minHits 2), then one id throughout, even with maxMisses 0.
    expect(ids[0]).toBe(0);
    expect(new Set(ids.slice(1))).toEqual(new Set([1]));
    // Without stage 2 (low threshold at the high one) the weak detections are dropped and the track dies.
    const strict = new Tracker({ maxMisses: 0, lowThreshold: 0.5 });
    const strictIds = scene.map((fr) => strict.update(fr.detXYXY, fr.detScores, fr.detClasses)[0]);
    expect(strictIds.slice(10, 20).every((id) => id === 0)).toBe(true);
    expect(strictIds[25]).toBe(2);
  });

  it('low-score detections never start tracks; spurious ones do not survive birth', () => {
    const tracker = new Tracker({ minHits: 3 });
    // A box seen once or twice and then gone never gets an id.
    expect(tracker.update([0, 0, 10, 10], [0.9], [1])[0]).toBe(0);
    expect(tracker.update([0, 0, 10, 10], [0.9], [1])[0]).toBe(0);
    expect(tracker.update([], [], [])).toHaveLength(0);
    expect(tracker.update([0, 0, 10, 10], [0.9], [1])[0]).toBe(0);
    // Born on its third consecutive hit.
    expect(tracker.update([0, 0, 10, 10], [0.9], [1])[0]).toBe(0);
    expect(tracker.update([0, 0, 10, 10], [0.9], [1])[0]).toBe(1);
    const low = new Tracker({ minHits: 1 });
    expect(low.update([0, 0, 10, 10], [0.3], [1])[0]).toBe(0);
    expect(low.confirmedTracks()).toHaveLength(0);
  });

  it('death after maxMisses frames without a match', () => {
    const tracker = new Tracker({ minHits: 1, maxMisses: 3 });
    expect(tracker.update([0, 0, 10, 10], [0.9], [1])[0]).toBe(1);
    for (let k = 1; k <= 3; k++) {
      tracker.update([], [], []);
      expect(tracker.confirmedTracks().map((t) => t.misses)).toEqual([k]);
    }
    tracker.update([], [], []);
    expect(tracker.confirmedTracks()).toHaveLength(0);
  });

  it('does not pair different classes', () => {
    const tracker = new Tracker({ minHits: 1 });
    expect(tracker.update([0, 0, 10, 10], [0.9], [1])[0]).toBe(1);
    expect(tracker.update([0, 0, 10, 10], [0.9], [2])[0]).toBe(2);
  });

  it('rejects bad options naming the field', () => {
    expect(() => new Tracker({ minHits: 0 })).toThrow(/minHits/);
    expect(() => new Tracker({ lowThreshold: 0.8, highThreshold: 0.5 })).toThrow(/lowThreshold/);
    expect(() => new Tracker({ matchIou: 2 })).toThrow(/matchIou/);
  });

  it('a crowd with misses, low scores, spurious boxes and occlusions: MOTA, IDF1, ID switches', () => {
    const rng = createRng(11);
    const objects: SceneObject[] = [];
    for (let i = 0; i < 20; i++) {
      const x = rng.uniform(0, 1200);
      const y = rng.uniform(0, 600);
      const start = rng.int(150);
      objects.push({
        id: i + 1, classId: 1, box: [x, y, x + rng.uniform(30, 60), y + rng.uniform(60, 110)],
        vx: rng.uniform(-4, 4), vy: rng.uniform(-2, 2), occluded: [[start, start + rng.int(12)]],
      });
    }
    const scene = makeScene({
      width: 1280, height: 720, frames: 200, objects, seed: 12,
      missRate: 0.05, lowScoreRate: 0.1, spuriousPerFrame: 1, noisePx: 1.5,
    });
    const r = track(scene);
    process.stdout.write(`crowd of 20: MOTA ${r.mota.toFixed(3)}, IDF1 ${r.idf1.toFixed(3)}, ID switches ${r.switches}\n`);
    // Floors, not the measured values: a regression in association or motion shows as a drop here.
    expect(r.mota).toBeGreaterThan(0.85);
    expect(r.idf1).toBeGreaterThan(0.85);
    expect(r.switches).toBeLessThanOrEqual(5);
  });
});

const hasMotmetrics = spawnSync('python3', ['-c', 'import motmetrics'], { encoding: 'utf8' }).status === 0;

describe.skipIf(!hasMotmetrics)('cross-check against the installed py-motmetrics', () => {
  it('gives the same counts, MOTA and IDF1 on a tracked crowd', () => {
    const objects = crossing;
    const scene = makeScene({ width: 640, height: 480, frames: 80, objects, seed: 9, missRate: 0.1, spuriousPerFrame: 1, noisePx: 2 });
    const tracker = new Tracker();
    const acc = new MotAccumulator();
    const frames: Array<{ o: number[]; h: number[]; d: Array<number | null> }> = [];
    for (const fr of scene) {
      const ids = tracker.update(fr.detXYXY, fr.detScores, fr.detClasses);
      const hyp: number[] = [];
      const boxes: number[] = [];
      ids.forEach((id, i) => { if (id > 0) { hyp.push(id); boxes.push(...fr.detXYXY.subarray(i * 4, i * 4 + 4)); } });
      const d = iouDistances(fr.gtXYXY, boxes);
      acc.update(fr.gtIds, hyp, d);
      frames.push({ o: fr.gtIds, h: hyp, d: [...d].map((v) => (Number.isNaN(v) ? null : v)) });
    }
    const py = `
import json, sys, numpy as np, motmetrics as mm
acc = mm.MOTAccumulator(auto_id=True)
for f in json.load(sys.stdin):
    d = np.array([np.nan if v is None else v for v in f['d']], dtype=float).reshape(len(f['o']), len(f['h']))
    acc.update(f['o'], f['h'], d)
s = mm.metrics.create().compute(acc, metrics=['num_switches', 'num_misses', 'num_false_positives', 'mota', 'idf1'], return_dataframe=False)
print(json.dumps({k: float(v) for k, v in s.items()}))`;
    const out = spawnSync('python3', ['-c', py], { input: JSON.stringify(frames), encoding: 'utf8' });
    expect(out.status, out.stderr).toBe(0);
    const ref = JSON.parse(out.stdout) as Record<string, number>;
    const s = acc.summary();
    expect(s.switches).toBe(ref.num_switches);
    expect(s.misses).toBe(ref.num_misses);
    expect(s.falsePositives).toBe(ref.num_false_positives);
    expect(s.mota).toBeCloseTo(ref.mota!, 9);
    expect(s.idf1).toBeCloseTo(ref.idf1!, 9);
  });
});

describe('the tracker benchmark (scripts/bench-tracker.ts)', () => {
  it('reports timings and the run\'s tracking quality', async () => {
    const { runTrackerBench, formatTrackerBench } = await import('../../core/tracking/bench.js');
    const r = runTrackerBench({ objects: 10, frames: 30, warmup: 3 });
    expect(r).toMatchObject({ objects: 10, frames: 30 });
    expect(r.p50Ms).toBeLessThanOrEqual(r.p95Ms);
    expect(r.metrics.frames).toBe(30);
    expect(formatTrackerBench(r)).toMatch(/MOTA .*IDF1 .*ID switches/);
  });
});
